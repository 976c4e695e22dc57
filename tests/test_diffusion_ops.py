"""The fused diffusion ops on every backend against the maths specification
(gddm_kernels.reference.diffusion, itself checked against diffusers), the in-kernel Philox
noise against its specification (reference.random), and the op layer (opcheck, compile,
gradcheck, errors)."""

import math

import pytest
import torch

import gddm_kernels.diffusion as fused
from gddm_kernels.reference import diffusion as spec
from gddm_kernels.reference import random as ref_random
from gddm_kernels.schedules import cosine_schedule, linear_schedule
from gddm_kernels.triton import diffusion as triton_diffusion

from conftest import ALL_CASES, gen, supports

TOL = {torch.float32: 2e-5, torch.float64: 1e-12, torch.bfloat16: 2e-2, torch.float16: 2e-3}
DOMAINS = ["image", "gradient", "laplacian"]
T = torch.tensor([0, 5, 400, 999])
T_PREV = torch.tensor([-1, 2, 399, 900])


def close(actual: torch.Tensor, expected: torch.Tensor, dtype: torch.dtype) -> None:
    scale = max(1.0, expected.abs().max().item())
    torch.testing.assert_close(actual.cpu().double(), expected.cpu().double(), atol=TOL[dtype] * scale, rtol=0)


def skip_unsupported(backend: str, dtype: torch.dtype) -> None:
    if not supports(backend, dtype):
        pytest.skip(f"{backend} does not support {dtype}")


# ---- add_noise ------------------------------------------------------------------------------

@pytest.mark.parametrize("backend,device", ALL_CASES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16], ids=str)
@pytest.mark.parametrize("noise_model", ["paper", "exact"])
@pytest.mark.parametrize("domain", DOMAINS)
def test_add_noise_matches_spec(domain, noise_model, dtype, backend, device):
    skip_unsupported(backend, dtype)
    schedule = linear_schedule().to(device)
    x0 = torch.randn(4, 2, 9, 11, dtype=torch.float64).to(device, dtype)
    _, eps = spec.add_noise(x0, T.to(device), schedule, domain, noise_model)
    expected, _ = spec.add_noise(x0, T.to(device), schedule, domain, noise_model, noise=eps)
    actual, returned = fused.add_noise(x0, T.to(device), schedule, domain, noise_model, noise=eps, backend=backend)
    assert returned is eps and actual.shape == expected.shape and actual.dtype == dtype
    close(actual, expected, dtype)


@pytest.mark.parametrize("backend,device", ALL_CASES)
@pytest.mark.parametrize("noise_model", ["paper", "exact"])
@pytest.mark.parametrize("domain", DOMAINS)
def test_generated_noise_is_the_philox_stream(domain, noise_model, backend, device):
    """In-kernel noise == reference.random.normal(seed) at the noise's flat indices, and the
    returned noise is the one used (spec recomputation with it)."""
    schedule = cosine_schedule().to(device)
    x0 = torch.randn(4, 3, 8, 10, device=device)
    seed = int(torch.randint(0, fused.SEED_HIGH, (1,), generator=gen(7, device), device=device).item())
    x_t, eps = fused.add_noise(x0, T.to(device), schedule, domain, noise_model, generator=gen(7, device),
                               backend=backend)
    torch.testing.assert_close(eps.cpu(), ref_random.normal(seed, tuple(eps.shape)), atol=2e-6, rtol=0)
    expected, _ = spec.add_noise(x0, T.to(device), schedule, domain, noise_model, noise=eps)
    close(x_t, expected, torch.float32)
    x_again, _ = fused.add_noise(x0, T.to(device), schedule, domain, noise_model, generator=gen(7, device),
                                 return_noise=False, backend=backend)
    torch.testing.assert_close(x_again, x_t)  # reproducible, and the noise write is optional


def test_noise_statistics_and_domain_variances():
    schedule = linear_schedule()
    zeros = torch.zeros(2, 1, 256, 256)
    t = torch.tensor([100, 700])
    g = schedule.gamma(t)
    for domain, factor in [("image", 1.0), ("gradient", 2.0), ("laplacian", 1.25)]:
        x_t, eps = fused.add_noise(zeros, t, schedule, domain, generator=gen(0, "cpu"))
        assert abs(eps.mean().item()) < 0.01 and abs(eps.var().item() - 1) < 0.02
        for b in range(2):
            assert abs(x_t[b].var().item() / (factor * (1 - g[b].item())) - 1) < 0.03
    flat = eps.flatten()
    assert abs(torch.corrcoef(torch.stack([flat[:-1], flat[1:]]))[0, 1].item()) < 0.01  # neighbours independent
    _, other = fused.add_noise(zeros, t, schedule, "laplacian", generator=gen(1, "cpu"))
    assert abs(torch.corrcoef(torch.stack([eps.flatten(), other.flatten()]))[0, 1].item()) < 0.01  # seeds independent


def test_noise_is_independent_of_triton_block_size(monkeypatch):
    x = torch.randn(3, 1000)
    coefs = torch.zeros(3, 11)
    coefs[:, 10] = 1.0  # out = z
    seed = torch.tensor([12345])
    first, _ = triton_diffusion.diffusion_step(x, x, None, None, None, None, coefs, 0.0, 0.0, None, seed, False)
    monkeypatch.setattr(triton_diffusion, "STEP_BLOCK", 128)
    second, _ = triton_diffusion.diffusion_step(x, x, None, None, None, None, coefs, 0.0, 0.0, None, seed, False)
    torch.testing.assert_close(first, second, atol=0, rtol=0)
    torch.testing.assert_close(first, ref_random.normal(12345, (3, 1000)), atol=2e-6, rtol=0)


def test_bfloat16_keeps_noise_at_small_t():
    schedule = linear_schedule()
    x0 = torch.rand(8, 1, 16, 16).bfloat16()
    t = torch.tensor([0, 1, 2, 3, 4, 5, 0, 1])
    x_t, eps = fused.add_noise(x0, t, schedule, generator=gen(3, "cpu"))
    delta = x_t.float() - schedule.sqrt_gammas[t].reshape(-1, 1, 1, 1) * x0.float()
    expected = schedule.sqrt_one_minus_gammas[t].reshape(-1, 1, 1, 1) * eps.float()
    assert (delta != 0).float().mean() > 0.5
    torch.testing.assert_close(delta, expected, atol=2e-2, rtol=0)


@pytest.mark.parametrize("backend", ["reference", "cpu"])
@pytest.mark.parametrize("domain", DOMAINS)
def test_add_noise_gradcheck(domain, backend):
    schedule = linear_schedule()
    x0 = torch.randn(2, 1, 5, 6, dtype=torch.float64, requires_grad=True)
    t = torch.tensor([3, 800])
    noise = torch.randn(fused.noise_shape(x0.shape, domain, False), dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda x: fused.add_noise(x, t, schedule, domain, noise=noise, backend=backend)[0], (x0,))


# ---- reverse steps --------------------------------------------------------------------------

STEPS = {
    "ddpm": lambda impl, *a, **k: impl.ddpm_step(*a, **k),
    "ddim-eta0": lambda impl, *a, **k: impl.ddim_step(*a, eta=0.0, **k),
    "ddim-eta0.6": lambda impl, *a, **k: impl.ddim_step(*a, eta=0.6, **k),
}


@pytest.mark.parametrize("backend,device", ALL_CASES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16], ids=str)
@pytest.mark.parametrize("clip", [None, 1.5])
@pytest.mark.parametrize("prediction_type", ["eps", "x0", "v"])
@pytest.mark.parametrize("step", list(STEPS))
def test_steps_match_spec(step, prediction_type, clip, dtype, backend, device):
    skip_unsupported(backend, dtype)
    schedule = linear_schedule().to(device)
    x, m, u, z = (torch.randn(4, 3, 5, 7, dtype=torch.float64).to(device, dtype) for _ in range(4))
    t, t_prev = T.to(device), T_PREV.to(device)
    common = dict(prediction_type=prediction_type, clip_x0=clip, noise=z, domain_scale=math.sqrt(2))
    expected = STEPS[step](spec, x, m, t, t_prev, schedule, **common)
    close(STEPS[step](fused, x, m, t, t_prev, schedule, backend=backend, **common), expected, dtype)
    guided = dict(common, uncond_output=u, guidance_scale=3.0)
    expected = STEPS[step](spec, x, m, t, t_prev, schedule, **guided)
    close(STEPS[step](fused, x, m, t, t_prev, schedule, backend=backend, **guided), expected, dtype)


@pytest.mark.parametrize("backend,device", ALL_CASES)
@pytest.mark.parametrize("prediction_type", ["eps", "x0", "v"])
def test_dpm_solver_2m_chain_matches_spec(prediction_type, backend, device):
    schedule = cosine_schedule().to(device)
    x = torch.randn(3, 2, 6, 6, device=device)
    times = [torch.full((3,), v, device=device) for v in (900, 600, 300, -1)]
    ours, theirs = (x, None), (x, None)
    for i in range(3):
        m = torch.randn_like(x)
        kwargs = dict(prediction_type=prediction_type, clip_x0=2.0)
        prev = {} if i == 0 else dict(t_last=times[i - 1])
        ours = fused.dpm_solver_2m_step(ours[0], m, times[i], times[i + 1], schedule, backend=backend,
                                        **({} if i == 0 else dict(prev_x0=ours[1])), **prev, **kwargs)
        theirs = spec.dpm_solver_2m_step(theirs[0], m, times[i], times[i + 1], schedule,
                                         **({} if i == 0 else dict(prev_x0=theirs[1])), **prev, **kwargs)
        close(ours[0], theirs[0], torch.float32)
        close(ours[1], theirs[1], torch.float32)


@pytest.mark.parametrize("backend,device", ALL_CASES)
@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("prediction_type", ["c", "x0"])
def test_attenuation_step_matches_spec(prediction_type, eta, backend, device):
    x, c, e, cu, eu, z = (torch.randn(3, 4, 5, device=device) for _ in range(6))
    t = torch.tensor([1.0, 0.5, 0.2], device=device)
    t_prev = torch.tensor([0.9, 0.0, 0.1], device=device)
    common = dict(prediction_type=prediction_type, eta=eta, clip_x0=1.0, noise=z, domain_scale=1.2,
                  uncond_output=(cu, eu), guidance_scale=2.0)
    expected = spec.attenuation_step(x, (c, e), t, t_prev, **common)
    close(fused.attenuation_step(x, (c, e), t, t_prev, backend=backend, **common), expected, torch.float32)


@pytest.mark.parametrize("backend,device", ALL_CASES)
def test_generated_step_noise_is_reproducible_and_per_seed(backend, device):
    schedule = linear_schedule().to(device)
    x, m = torch.randn(2, 3, 4, 4, device=device), torch.randn(2, 3, 4, 4, device=device)
    t, t_prev = torch.tensor([500, 10], device=device), torch.tensor([499, 9], device=device)
    a = fused.ddpm_step(x, m, t, t_prev, schedule, generator=gen(5, device), backend=backend)
    b = fused.ddpm_step(x, m, t, t_prev, schedule, generator=gen(5, device), backend=backend)
    c = fused.ddpm_step(x, m, t, t_prev, schedule, generator=gen(6, device), backend=backend)
    torch.testing.assert_close(a, b, atol=0, rtol=0)
    assert not torch.allclose(a, c)
    seed = int(torch.randint(0, fused.SEED_HIGH, (1,), generator=gen(5, device), device=device).item())
    z = ref_random.normal(seed, tuple(x.shape)).to(device)
    close(a, spec.ddpm_step(x, m, t, t_prev, schedule, noise=z), torch.float32)


# ---- op layer -------------------------------------------------------------------------------

@pytest.mark.parametrize("backend,device", ALL_CASES)
def test_opcheck(backend, device):
    x0 = torch.randn(2, 3, 5, 6, device=device, requires_grad=True)
    coefs = torch.rand(2, 2, device=device)
    noise = torch.randn(2, 3, 2, 5, 6, device=device)
    torch.library.opcheck(torch.ops.gddm.add_noise.default, (x0, coefs, "gradient", False, noise, None, False, backend))
    seed = torch.tensor([42], device=device)
    torch.library.opcheck(torch.ops.gddm.add_noise.default, (x0, coefs, "laplacian", True, None, seed, True, backend),
                          test_utils=("test_schema", "test_faketensor"))
    x = torch.randn(2, 3, 4, device=device)
    step_coefs = torch.rand(2, 11, device=device)
    torch.library.opcheck(torch.ops.gddm.diffusion_step.default,
                          (x, x.clone(), x.clone(), None, None, x.clone(), step_coefs, 2.0, 1.0, x.clone(), None, True,
                           backend))


def test_compile_fullgraph_sampler_step():
    schedule = linear_schedule()
    x, m, z = torch.randn(2, 3, 8, 8), torch.randn(2, 3, 8, 8), torch.randn(2, 3, 8, 8)
    t, t_prev = torch.tensor([500, 20]), torch.tensor([480, 0])

    def step(x, m, z):
        return fused.ddim_step(x, m, t, t_prev, schedule, eta=0.3, noise=z)

    torch.testing.assert_close(torch.compile(step, fullgraph=True)(x, m, z), step(x, m, z))


@pytest.mark.parametrize("call,error,match", [
    (lambda s, x: fused.add_noise(x, torch.tensor([1.0, 2.0]), s), TypeError, "integer"),
    (lambda s, x: fused.add_noise(x, torch.tensor([1]), s), ValueError, "shape"),
    (lambda s, x: fused.add_noise(x, torch.tensor([1, 1000]), s), ValueError, r"\[0, 1000\)"),
    (lambda s, x: fused.add_noise(x, torch.tensor([1, 2]), s, domain="fourier"), ValueError, "domain"),
    (lambda s, x: fused.add_noise(x, torch.tensor([1, 2]), s, noise_model="x"), ValueError, "noise_model"),
    (lambda s, x: fused.add_noise(x, torch.tensor([1, 2]), s, noise=torch.randn(2, 3)), ValueError, "noise"),
    (lambda s, x: fused.ddpm_step(x, x[:1], torch.tensor([5, 5]), torch.tensor([4, 4]), s), ValueError,
     "model_output"),
    (lambda s, x: fused.ddpm_step(x, x, torch.tensor([5, 5]), torch.tensor([4, 4]), s, prediction_type="y"),
     ValueError, "prediction_type"),
    (lambda s, x: fused.ddim_step(x, x, torch.tensor([5, 5]), torch.tensor([4, 4]), s, eta=2.0), ValueError, "eta"),
    (lambda s, x: fused.dpm_solver_2m_step(x, x, torch.tensor([5, 5]), torch.tensor([4, 4]), s, prev_x0=x),
     ValueError, "t_last"),
    (lambda s, x: fused.ddpm_step(x, x, torch.tensor([5, 5]), torch.tensor([6, 4]), s), ValueError, "t_prev"),
    (lambda s, x: fused.ddpm_step(x, x, torch.tensor([5, 5]), torch.tensor([4, 4]), s, noise=x,
                                  generator=torch.Generator()), ValueError, "generator"),
])
def test_argument_errors(call, error, match):
    with pytest.raises(error, match=match):
        call(linear_schedule(), torch.randn(2, 3, 4, 4))


# ---- GPU: no host sync, CUDA-graph capture ----------------------------------------------------

@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("backend", ["cuda", "triton"])
def test_sampler_steps_capture_in_a_cuda_graph_without_host_sync(backend):
    device = "cuda"
    schedule = linear_schedule().to(device)
    x0 = torch.randn(4, 3, 32, 32, device=device)
    t = torch.full((4,), 600, device=device)
    t_prev = torch.full((4,), 580, device=device)
    m = torch.randn_like(x0)

    def sample_steps():
        x_t, _ = fused.add_noise(x0, t, schedule, "laplacian", generator=None, backend=backend)
        x = fused.ddpm_step(x_t, m, t, t_prev, schedule, backend=backend)
        x = fused.ddim_step(x, m, t_prev, t_prev - 20, schedule, eta=0.5, backend=backend)
        x, x0_pred = fused.dpm_solver_2m_step(x, m, t_prev - 20, t_prev - 40, schedule, prev_x0=m,
                                              t_last=t_prev, backend=backend)
        return x

    sample_steps()  # compile / autotune outside the capture
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        sample_steps()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = sample_steps()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    graph.replay()
    torch.cuda.synchronize()
    assert out.isfinite().all()
