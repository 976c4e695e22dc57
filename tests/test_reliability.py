"""Defects found by review and fuzzing, each pinned by a test that fails without its fix:
per-thread backend choice, integer timesteps of every dtype, direct op calls checked on every
backend, clear errors for 0-dim samples and absurd cycle counts, NaN/Inf policies."""

import threading

import pytest
import torch

import gddm_kernels as gk
from gddm_kernels import diffusion, dispatch, reference
from gddm_kernels._diffusion_contract import STEP_COEFS
from gddm_kernels.reference import diffusion as spec
from gddm_kernels.schedules import linear_schedule

SCHEDULE = linear_schedule()
BACKENDS = ["reference", "cpu", "triton"]


def test_use_backend_is_per_thread():
    """Two threads in different use_backend blocks each see their own backend."""
    x = torch.randn(4, 4)
    inside, release = threading.Barrier(2), threading.Event()
    seen = {}

    def run(name: str) -> None:
        with gk.use_backend(name):
            inside.wait()  # both threads are inside their blocks now
            seen[name] = dispatch.select("laplacian", "auto", x)
            release.wait(5)

    threads = [threading.Thread(target=run, args=(name,)) for name in ("reference", "cpu")]
    for thread in threads:
        thread.start()
    inside_ok = True
    for thread in threads:
        release.set()
        thread.join(10)
        inside_ok &= not thread.is_alive()
    assert inside_ok
    assert seen["reference"] is dispatch.BACKENDS["reference"].implementation
    assert seen["cpu"] is dispatch.BACKENDS["cpu"].implementation


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64])
def test_every_integer_timestep_dtype_gives_the_int64_result(dtype):
    """uint8 used to index as a boolean mask (B == T gave wrong gammas), int8/int16 raised."""
    schedule = linear_schedule(4)
    x = torch.randn(4, 1, 3, 3)
    t = torch.tensor([3, 1, 2, 0])
    t_prev = torch.tensor([2, 0, 1, -1]) if dtype != torch.uint8 else torch.tensor([2, 0, 1, 0])
    t_prev = t_prev if dtype != torch.uint8 else torch.where(t > 0, t - 1, 0)
    noise = torch.randn_like(x)
    expected, _ = diffusion.add_noise(x, t, schedule, noise=noise)
    actual, _ = diffusion.add_noise(x, t.to(dtype), schedule, noise=noise)
    torch.testing.assert_close(actual, expected, rtol=0, atol=0)
    t = t.clamp(min=1)
    step = diffusion.ddim_step(x, noise, t.to(dtype), t_prev.to(dtype), schedule)
    torch.testing.assert_close(step, diffusion.ddim_step(x, noise, t, t_prev, schedule), rtol=0, atol=0)
    spec_step = spec.ddim_step(x, noise, t.to(dtype), t_prev.to(dtype), schedule)
    torch.testing.assert_close(spec_step, step, rtol=1e-5, atol=1e-6)


def test_uint8_trajectory_times():
    times = torch.tensor([[3, 3], [2, 1], [0, 0]], dtype=torch.uint8)
    schedule = linear_schedule(4)
    table = diffusion.ReverseTrajectory("ddim", times, schedule).table
    torch.testing.assert_close(table, diffusion.ReverseTrajectory("ddim", times.long(), schedule).table)


def _step_args(x: torch.Tensor) -> dict:
    return dict(x=x, m=torch.randn_like(x), m_uncond=None, m2=None, m2_uncond=None, prev_x0=None,
                coefs=torch.zeros(x.shape[0], len(STEP_COEFS)), guidance=0.0, clip=0.0, noise=None, seed=None,
                write_x0=False)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case,match", [
    ("short coefs", "`coefs` must be a \\(2, 11\\)"),
    ("double coefs", "`coefs` must be a \\(2, 11\\) torch.float32"),
    ("short m", "`m` must be a tensor of shape \\(2, 3, 4\\)"),
    ("noise and seed", "at most one of the arguments `noise` and `seed`"),
    ("bad seed", "`seed` must be a one-element int64"),
])
def test_direct_step_calls_are_checked_on_every_backend(backend, case, match):
    x = torch.randn(2, 3, 4)
    args = _step_args(x)
    if case == "short coefs":
        args["coefs"] = torch.zeros(2, 5)
    elif case == "double coefs":
        args["coefs"] = args["coefs"].double()
    elif case == "short m":
        args["m"] = torch.randn(2, 3)
    elif case == "noise and seed":
        args["noise"], args["seed"] = torch.randn_like(x), torch.zeros(1, dtype=torch.int64)
    elif case == "bad seed":
        args["seed"] = torch.zeros(2, dtype=torch.int32)
    with pytest.raises((ValueError, TypeError), match=match):
        torch.ops.gddm.diffusion_step(*args.values(), backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case,match", [
    ("wide coefs", "`coefs` must be a \\(2, 2\\)"),
    ("domain", "`domain` must be one of"),
    ("neither", "exactly one of the arguments `noise` and `seed`"),
    ("field noise", "`noise` must be a tensor of shape \\(2, 3, 2, 4, 5\\)"),
])
def test_direct_add_noise_calls_are_checked_on_every_backend(backend, case, match):
    x0 = torch.randn(2, 3, 4, 5)
    domain, coefs, noise, seed = "image", torch.zeros(2, 2), torch.randn_like(x0), None
    if case == "wide coefs":
        coefs = torch.zeros(2, 11)
    elif case == "domain":
        domain = "spectral"
    elif case == "neither":
        noise = None
    elif case == "field noise":
        domain = "gradient"
    with pytest.raises((ValueError, TypeError), match=match):
        torch.ops.gddm.add_noise(x0, coefs, domain, False, noise, seed, True, backend)


def _transposed(*shape: int) -> torch.Tensor:
    """Random values in a non-contiguous (last two dims transposed) view of `shape`."""
    return torch.randn(*shape[:-2], shape[-1], shape[-2]).transpose(-1, -2)


@pytest.mark.parametrize("backend", BACKENDS)
def test_direct_calls_take_strided_views_as_their_values(backend):
    """A direct op call on views computes what it computes on contiguous copies of them (the
    kernels index contiguous data; the op hands them dense copies)."""
    x, m, noise = _transposed(2, 3, 4, 5), _transposed(2, 3, 4, 5), _transposed(2, 3, 4, 5)
    step_coefs = torch.randn(2, 2 * len(STEP_COEFS))[:, ::2]
    step = torch.ops.gddm.diffusion_step(x, m, None, None, None, None, step_coefs, 0.0, 0.0, noise, None, True,
                                         backend)
    dense = torch.ops.gddm.diffusion_step(x.contiguous(), m.contiguous(), None, None, None, None,
                                          step_coefs.contiguous(), 0.0, 0.0, noise.contiguous(), None, True, backend)
    noise_coefs = torch.rand(2, 4)[:, ::2]
    noisy = torch.ops.gddm.add_noise(x, noise_coefs, "laplacian", False, noise, None, False, backend)
    dense_noisy = torch.ops.gddm.add_noise(x.contiguous(), noise_coefs.contiguous(), "laplacian", False,
                                           noise.contiguous(), None, False, backend)
    for out, expected in ((step, dense), (noisy, dense_noisy)):
        torch.testing.assert_close(out[0], expected[0], rtol=0, atol=0)
        torch.testing.assert_close(out[1], expected[1], rtol=0, atol=0)


@pytest.mark.parametrize("step", ["ddpm", "ddim", "attenuation", "trajectory"])
def test_zero_dim_sample_is_a_clear_error(step):
    x = torch.tensor(1.0)
    t = torch.tensor([5])
    with pytest.raises(ValueError, match="`sample` must have shape \\(B, ...\\), got a 0-dim tensor"):
        if step == "ddpm":
            diffusion.ddpm_step(x, x, t, t - 1, SCHEDULE)
        elif step == "ddim":
            diffusion.ddim_step(x, x, t, t - 1, SCHEDULE)
        elif step == "attenuation":
            diffusion.attenuation_step(x, (x, x), torch.tensor([0.5]), torch.tensor([0.2]))
        else:
            diffusion.ReverseTrajectory("ddim", torch.tensor([[5], [2]]), SCHEDULE).step(0, x, x)


@pytest.mark.parametrize("max_cycles", [10**8, 2**62, 0])
def test_absurd_cycle_counts_are_refused_before_allocating(max_cycles):
    with pytest.raises(ValueError, match="`max_cycles` must be an integer >= 1 and <= 10000"):
        gk.poisson_solve(torch.randn(4, 4), method="multigrid", max_cycles=max_cycles)


@pytest.mark.parametrize("eta", [-0.1, 1.5, float("nan"), "0.5"])
def test_eta_outside_unit_interval_is_refused(eta):
    t = torch.tensor([5])
    with pytest.raises(ValueError, match="`eta` must lie in \\[0, 1\\]"):
        diffusion.ddim_step(torch.randn(1, 4), torch.randn(1, 4), t, t - 1, SCHEDULE, eta=eta)


@pytest.mark.parametrize("backend", ["reference", "cpu"])
@pytest.mark.parametrize("size", [8, 64])  # the CPU's matrix-product and FFT paths
@pytest.mark.parametrize("bad", [float("inf"), float("-inf"), float("nan")])
def test_one_non_finite_value_makes_its_whole_image_nan(backend, size, bad):
    f = torch.randn(2, size, size)
    f[0, 3, 3] = bad
    u = gk.poisson_solve(f, backend=backend)
    assert u[0].isnan().all()
    torch.testing.assert_close(u[1], gk.poisson_solve(f[1], backend=backend))


def test_zero_coefficient_times_inf_is_zero_in_the_kernel_contract():
    """The generic step ignores a model output whose coefficient is 0 (an Inf there used to give NaN)."""
    x = torch.randn(2, 5)
    m = torch.randn(2, 5)
    m2 = torch.full((2, 5), float("inf"))
    coefs = torch.zeros(2, len(STEP_COEFS))
    coefs[:, STEP_COEFS.index("a1")] = 1.0
    coefs[:, STEP_COEFS.index("c1")] = 1.0
    out, _ = reference.diffusion_step(x, m, None, m2, None, None, coefs, 0.0, 0.0, None, None, False)
    torch.testing.assert_close(out, m)
