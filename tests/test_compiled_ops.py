"""The compiled backends' C++ ops (csrc/public_ops.cpp, csrc/sampler_ops.cpp): the public
functions reach them directly when cpu (or cuda) is the backend in force, and they must give
what the op layer torch.ops.gddm.* gives on the same backend: layouts, dtypes, autograd,
errors; their coefficient tables must equal the Python formulas of gddm_kernels.diffusion."""

import math
import re
from pathlib import Path

import pytest
import torch

import gddm_kernels as gk
from gddm_kernels import _diffusion_contract as contract
from gddm_kernels import diffusion, dispatch
from gddm_kernels._C import DCT_DIRECT_MAX_WORK
from gddm_kernels._diffusion_contract import STEP_COEFS
from gddm_kernels.schedules import cosine_schedule, linear_schedule

from conftest import TOLERANCES

SCHEDULE = linear_schedule()
SHAPES = [(5, 7), (3, 1, 9), (2, 3, 1, 1), (2, 2, 3, 6, 5)]
NDIM_OPS = ["gradient", "divergence", "laplacian", "poisson_solve", "reconstruct"]


def _input(op: str, shape: tuple[int, ...], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    field = op in ("divergence", "reconstruct")
    full = (*shape[:-2], 2, *shape[-2:]) if field else shape
    return torch.randn(full, dtype=dtype)


def _public(op: str, x: torch.Tensor, backend: str | None = None) -> torch.Tensor:
    return getattr(gk, op)(x, backend=backend)


def _views(x: torch.Tensor) -> list[torch.Tensor]:
    """x itself, a transposed (non-contiguous) copy, a strided slice and a channels-last-like permutation."""
    views = [x, x.transpose(-1, -2).contiguous().transpose(-1, -2), torch.cat([x, x], -1)[..., ::2]]
    if x.dim() >= 4:
        views.append(x.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2) if x.dim() == 4 else x)
    return views


def test_the_compiled_backend_is_the_fast_path_by_default():
    x = torch.randn(2, 4, 4)
    assert dispatch.compiled_fast_path(None, x) is dispatch.BACKENDS["cpu"]
    assert dispatch.compiled_fast_path("cpu", x) is dispatch.BACKENDS["cpu"]
    assert dispatch.compiled_fast_path("reference", x) is None
    with gk.use_backend("reference"):
        assert dispatch.compiled_fast_path(None, x) is None
    assert dispatch.compiled_fast_path(None, torch.ones(3, 3, dtype=torch.int64)) is None


def test_the_fast_path_runs_the_cpp_op():
    x = torch.randn(2, 8, 8)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        gk.laplacian(x)
        gk.poisson_solve(x)
    names = {event.name for event in prof.events()}
    assert {"gddm_C::laplacian_nd", "gddm_C::poisson_solve_nd"} <= names
    assert "gddm::laplacian" not in names


@pytest.mark.parametrize("op", NDIM_OPS)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16], ids=str)
def test_cpp_ops_equal_the_op_layer(op, shape, dtype):
    for x in _views(_input(op, shape, dtype)):
        fast = _public(op, x)
        layered = getattr(torch.ops.gddm, op)(x, 0.0 if op in ("poisson_solve", "reconstruct") else 1.0, "cpu")
        atol, rtol = TOLERANCES[dtype]
        assert fast.shape == layered.shape and fast.dtype == layered.dtype and fast.is_contiguous()
        torch.testing.assert_close(fast.double(), layered.double(), atol=atol * 10, rtol=rtol * 10)


def _direct_work(shape: tuple[int, ...]) -> int:
    """The work of the CPU solve's direct cosine sums on images of `shape` (csrc/poisson.h)."""
    *lead, H, W = shape
    return math.prod(lead) * H * W * (H + W)


@pytest.mark.parametrize("shape", [(3, 8, 5), (3, 40, 37)], ids=["direct-path", "fft-path"])
def test_cpp_poisson_paths_agree_with_the_reference(shape):
    assert (_direct_work(shape) <= DCT_DIRECT_MAX_WORK) == (shape[-1] < 10)  # one shape on each side
    f = torch.randn(shape, dtype=torch.float64)
    torch.testing.assert_close(gk.poisson_solve(f, mean=0.5), gk.poisson_solve(f, mean=0.5, backend="reference"))
    g = torch.randn(shape[0], 2, *shape[1:], dtype=torch.float64)
    torch.testing.assert_close(gk.reconstruct(g, mean=-1.0), gk.reconstruct(g, mean=-1.0, backend="reference"))


@pytest.mark.parametrize("op", NDIM_OPS)
@pytest.mark.parametrize("shape", [(2, 6, 5), (1, 35, 30)], ids=["direct-path", "fft-path"])
def test_cpp_ops_gradcheck(op, shape):
    assert (_direct_work(shape) <= DCT_DIRECT_MAX_WORK) == (shape[-2] < 10)
    x = _input(op, shape, torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: _public(op, t), (x,))
    assert torch.autograd.gradgradcheck(lambda t: _public(op, t), (x,))


@pytest.mark.parametrize("op", NDIM_OPS)
def test_cpp_ops_opcheck(op):
    x = _input(op, (2, 5, 6))
    extra = (0.25,) if op in ("poisson_solve", "reconstruct") else (2.0,)
    torch.library.opcheck(getattr(torch.ops.gddm_C, f"{op}_nd"), (x, *extra))


def test_compiled_public_function_traces_without_graph_breaks():
    f = torch.compile(lambda x: gk.poisson_solve(gk.laplacian(x)), fullgraph=True)
    x = torch.randn(2, 16, 16)
    torch.testing.assert_close(f(x), gk.poisson_solve(gk.laplacian(x)))


@pytest.mark.parametrize("op,bad,error,match", [
    ("laplacian", torch.ones(4, 4, dtype=torch.int64), TypeError, "must have a floating dtype"),
    ("gradient", torch.ones(4), ValueError, "must have shape \\(..., H, W\\)"),
    ("divergence", torch.ones(3, 4, 4), ValueError, "must be a gradient field"),
])
def test_direct_cpp_calls_are_checked(op, bad, error, match):
    with pytest.raises(error, match=f"gddm.{op}: argument .* {match}"):
        getattr(torch.ops.gddm_C, f"{op}_nd")(bad, 1.0)


# ---- coefficients ---------------------------------------------------------------------------

def _times(schedule, batch: int = 6, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    T = schedule.num_timesteps
    t = torch.randint(1, T - 1, (batch,), generator=gen)
    t_prev = t - torch.randint(1, 50, (batch,), generator=gen)
    t_prev = torch.where(t_prev < -1, -1, t_prev)
    t_prev[0] = -1  # the clean sample
    t_last = torch.clamp(t + torch.randint(1, 50, (batch,), generator=gen), max=T - 1)
    return t, t_prev, t_last


def _python_table(coefs: dict) -> torch.Tensor:
    return diffusion._coef_table(coefs)


@pytest.mark.parametrize("schedule", [SCHEDULE, cosine_schedule()], ids=["linear", "cosine"])
@pytest.mark.parametrize("prediction", ["eps", "x0", "v"])
@pytest.mark.parametrize("k", [1.0, contract.DOMAIN_SCALES["gradient"]])
def test_step_coefficient_tables_equal_the_python_formulas(schedule, prediction, k):
    t, t_prev, t_last = _times(schedule)
    code = contract.PREDICTION_CODES[prediction]
    gammas = schedule.gammas64
    cases = {
        "ddpm": (None, 0.0, False, diffusion._ddpm_coefs(t, t_prev, schedule, k, prediction)),
        "ddim": (None, 0.7, False, diffusion._ddim_coefs(t, t_prev, schedule, 0.7, k, prediction, None)),
        "ddim-clip": (None, 0.3, True, diffusion._ddim_coefs(t, t_prev, schedule, 0.3, k, prediction, 1.0)),
        "dpm-1": (None, 0.0, False, diffusion._dpm_coefs(t, t_prev, None, schedule, k, prediction)),
        "dpm-2": (t_last, 0.0, False, diffusion._dpm_coefs(t, t_prev, t_last, schedule, k, prediction)),
    }
    for name, (last, eta, clip, coefs) in cases.items():
        sampler = contract.SAMPLER_CODES[name.split("-")[0]]
        table = torch.ops.gddm_C.step_coefs(gammas, t, t_prev, last, sampler, code, eta, k, clip)
        torch.testing.assert_close(table, _python_table(coefs), atol=1e-12, rtol=1e-12, msg=name)


@pytest.mark.parametrize("prediction", ["c", "x0"])
def test_attenuation_coefficient_table_equals_the_python_formulas(prediction):
    t = torch.tensor([1.0, 0.5, 0.31, 0.02], dtype=torch.float64)
    t_prev = torch.tensor([0.9, 0.0, 0.3, 0.01], dtype=torch.float64)
    table = torch.ops.gddm_C.step_coefs(torch.empty(0, dtype=torch.float64), t, t_prev, None,
                                        contract.SAMPLER_CODES["attenuation"],
                                        contract.ATTENUATION_PREDICTION_CODES[prediction], 0.8, 1.3, False)
    expected = _python_table(diffusion._attenuation_coefs(t, t_prev, 0.8, 1.3, prediction))
    torch.testing.assert_close(table, expected, atol=1e-12, rtol=1e-12)


def test_noise_coefficient_tables():
    t = torch.tensor([0, 5, 999])
    g = SCHEDULE.gamma(t)
    table = torch.ops.gddm_C.noise_coefs(SCHEDULE.gammas64, t, 1.5)
    torch.testing.assert_close(table, torch.stack([g.sqrt(), 1.5 * (1 - g).sqrt()], 1), atol=1e-15, rtol=0)
    times = torch.tensor([0.0, 0.25, 1.0])
    table = torch.ops.gddm_C.noise_coefs(torch.empty(0, dtype=torch.float64), times, 2.0)
    torch.testing.assert_close(table, torch.stack([1 - times.double(), 2 * times.double().sqrt()], 1))


@pytest.mark.parametrize("call,match", [
    (lambda t: diffusion.ddim_step(torch.randn(2, 3), torch.randn(2, 3), t, t - 1, SCHEDULE),
     r"gddm.ddim_step: argument `t` must lie in \[0, 1000\), got \[1000\]"),
    (lambda t: diffusion.add_noise(torch.randn(2, 1, 3, 3), t, SCHEDULE),
     r"gddm.add_noise: argument `t` must lie in \[0, 1000\), got \[1000\]"),
])
def test_cpp_range_checks_name_the_argument_and_values(call, match):
    with pytest.raises(ValueError, match=match):
        call(torch.tensor([5, 1000]))


def test_compiled_step_and_noise_draw_the_seed_like_the_op_layer():
    """With a generator, the C++ ops draw the seed exactly as torch.randint in Python would."""
    x = torch.randn(2, 3, 8, 8)
    t = torch.tensor([300, 20])
    fast = diffusion.ddpm_step(x, x, t, t - 7, SCHEDULE, generator=torch.Generator().manual_seed(3))
    layered = diffusion.ddpm_step(x, x, t, t - 7, SCHEDULE, generator=torch.Generator().manual_seed(3),
                                  backend="reference")
    torch.testing.assert_close(fast, layered, atol=1e-5, rtol=1e-5)
    fast, eps = diffusion.add_noise(x, t, SCHEDULE, "laplacian", generator=torch.Generator().manual_seed(4))
    layered, eps_ref = diffusion.add_noise(x, t, SCHEDULE, "laplacian", generator=torch.Generator().manual_seed(4),
                                           backend="reference")
    torch.testing.assert_close(eps, eps_ref, atol=2e-6, rtol=0)
    torch.testing.assert_close(fast, layered, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("domain", contract.DOMAINS)
@pytest.mark.parametrize("noise_model", contract.NOISE_MODELS)
def test_compiled_add_noise_gradcheck(domain, noise_model):
    x = torch.randn(2, 1, 5, 4, dtype=torch.float64, requires_grad=True)
    t = torch.tensor([10, 700])
    noise = torch.randn(contract.noise_shape(x.shape, domain, noise_model == "exact"), dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda v: diffusion.add_noise(v, t, SCHEDULE, domain, noise_model, noise)[0],
                                    (x,))


def _enum(header: str, name: str) -> list[str]:
    body = re.search(rf"enum {name} \{{([^}}]*)\}}", header).group(1)
    return [entry.split("=")[0].strip() for entry in body.split(",") if entry.strip()]


def test_sampler_codes_agree_with_the_cpp_header():
    header = (Path(gk.__file__).parent.parent / "csrc" / "step_coefs.h").read_text()
    assert [e[1:].lower() for e in _enum(header, "Sampler")] == list(contract.SAMPLER_CODES)
    assert list(contract.SAMPLER_CODES.values()) == list(range(len(contract.SAMPLER_CODES)))
    assert [e[len("kPredict"):].lower() for e in _enum(header, "Prediction")] == list(contract.PREDICTION_CODES)
    assert list(contract.PREDICTION_CODES.values()) == list(range(len(contract.PREDICTION_CODES)))


# ---- the step's tensor checks in C++ (csrc/sampler_checks.h) -----------------------------------

def _bad_step_calls(backend: str | None) -> dict[str, object]:
    """Calls whose tensors break a requirement the compiled op checks (shape, device, batch)."""
    x = torch.randn(2, 3, 4, 4)
    t, t_prev = torch.tensor([500, 400]), torch.tensor([480, 380])

    def ddim(**kw):
        args = dict(sample=x, model_output=x, t=t, t_prev=t_prev)
        args.update(kw)
        return diffusion.ddim_step(args.pop("sample"), args.pop("model_output"), args.pop("t"), args.pop("t_prev"),
                                   SCHEDULE, backend=backend, **args)

    return {
        "model_output shape": lambda: ddim(model_output=x[:1]),
        "model_output device": lambda: ddim(model_output=x.to("meta")),
        "uncond_output shape": lambda: ddim(uncond_output=x[:, :1], guidance_scale=2.0),
        "t batch": lambda: ddim(t=torch.tensor([500, 500, 500])),
        "t_prev batch": lambda: ddim(t_prev=torch.tensor([480])),
        "noise shape": lambda: ddim(eta=0.5, noise=x[..., :2]),
        "prev_x0 shape": lambda: diffusion.dpm_solver_2m_step(x, x, t, t_prev, SCHEDULE, prev_x0=x[:1],
                                                              t_last=t + 10, backend=backend),
        "t_last batch": lambda: diffusion.dpm_solver_2m_step(x, x, t, t_prev, SCHEDULE, prev_x0=x,
                                                             t_last=torch.tensor([510]), backend=backend),
    }


@pytest.mark.parametrize("case", list(_bad_step_calls(None)))
def test_compiled_step_raises_the_python_checks_messages(case):
    """On the compiled fast path the step's tensors are checked by the C++ op: same error type
    and message as the Python checks of the reference backend's path."""
    with pytest.raises((ValueError, TypeError, RuntimeError)) as expected:
        _bad_step_calls("reference")[case]()
    with pytest.raises(expected.type) as fast:
        _bad_step_calls(None)[case]()
    assert str(fast.value) == str(expected.value)


def test_compiled_attenuation_step_names_the_pair_entry():
    x = torch.randn(2, 3, 4, 4)
    tc = torch.tensor([0.5, 0.4])
    with pytest.raises(ValueError, match=r"gddm.attenuation_step: argument `model_output\[1\]` must have the shape "
                                         r"of `sample` \(2, 3, 4, 4\) on cpu, got shape \(2, 3, 4\) on cpu"):
        diffusion.attenuation_step(x, (x, x[..., 0]), tc, tc / 2)


def test_direct_sampler_step_call_checks_the_sample():
    x = torch.randn(())
    with pytest.raises(ValueError, match=r"gddm.ddim_step: argument `sample` must have shape \(B, \.\.\.\)"):
        torch.ops.gddm_C.sampler_step(x, x, None, None, None, None, SCHEDULE.gammas64, torch.tensor([5]),
                                      torch.tensor([4]), None, 1, 0, 0.0, 1.0, 0.0, 0.0, None, None, False, False)


# ---- the CPU step's two forms ----------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16], ids=str)
@pytest.mark.parametrize("inputs", ["x m", "x m m2 prev z", "x m guided"])
def test_cpu_step_folded_form_matches_step_at(dtype, inputs):
    """Without clipping the CPU kernel folds each sample's coefficients (csrc/diffusion.h
    affine_step); with a clip bound no value reaches, it evaluates step_at term by term. Both
    forms give the same step."""
    shape = (3, 2, 5, 7)
    table = torch.randn(3, len(STEP_COEFS), dtype=torch.float64).to(torch.float64 if dtype == torch.float64
                                                                   else torch.float32)
    x, m, m2, prev, z, uncond = (torch.randn(shape, dtype=dtype) for _ in range(6))
    full = inputs != "x m"
    guided = inputs == "x m guided"
    args = (x, m, uncond if guided else None, m2 if full else None, None, prev if full else None, table,
            2.0 if guided else 0.0)

    def step(clip: float) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.ops.gddm_C.diffusion_step(*args, clip, z if full else None, None, True)

    folded, folded_x0 = step(0.0)
    term_by_term, x0 = step(1e30)
    atol, rtol = TOLERANCES[dtype]
    scale = 1.0 if dtype in (torch.float32, torch.float64) else 4.0  # bf16: the two forms round apart
    torch.testing.assert_close(folded, term_by_term, atol=50 * scale * atol, rtol=50 * scale * rtol)
    torch.testing.assert_close(folded_x0, x0, atol=0, rtol=0)


def test_add_noise_without_grad_takes_the_device_kernel_with_the_same_result():
    """sampler_add_noise skips its autograd Function when no gradient is wanted."""
    x = torch.randn(2, 3, 6, 5)
    t, z = torch.tensor([10, 900]), torch.randn(2, 3, 6, 5)
    plain, _ = diffusion.add_noise(x, t, SCHEDULE, "laplacian", noise=z)
    tracked, _ = diffusion.add_noise(x.clone().requires_grad_(), t, SCHEDULE, "laplacian", noise=z)
    assert plain.grad_fn is None and tracked.grad_fn is not None
    assert torch.equal(plain, tracked.detach())


@pytest.mark.parametrize("requires_grad", [False, True], ids=["kernel", "autograd"])
@pytest.mark.parametrize("process", ["add_noise", "attenuation_add_noise"])
def test_compiled_add_noise_checks_the_batch_of_t(process, requires_grad):
    """The times of a noise-add are checked against the data's batch by the C++ op, on its
    kernel path and on its autograd path, with the message of the Python checks."""
    x = torch.randn(2, 3, 4, 4, requires_grad=requires_grad)
    t = torch.tensor([5, 6, 7]) if process == "add_noise" else torch.tensor([0.5, 0.6, 0.7])

    def call(backend):
        if process == "add_noise":
            return diffusion.add_noise(x, t, SCHEDULE, noise=torch.randn(2, 3, 4, 4), backend=backend)
        return diffusion.attenuation_add_noise(x, t, noise=torch.randn(2, 3, 4, 4), backend=backend)

    with pytest.raises(ValueError) as expected:
        call("reference")
    with pytest.raises(ValueError) as fast:
        call(None)
    assert str(fast.value) == str(expected.value)
    assert f"gddm.{process}: argument `t` must have shape (B,) = (2,)" in str(fast.value)
