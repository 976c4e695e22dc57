"""The reference diffusion layer (gddm_kernels.schedules, gddm_kernels.reference.diffusion)
against diffusers' schedulers as an independent oracle, plus the domain noise statistics, the
attenuation step, low-precision behaviour, argument errors and sync-free tracing.

diffusers is only a test oracle: schedulers are built from config arguments (no downloads) and
stepped one sample at a time, since they take a scalar timestep. For the float64 comparisons
their gamma table is replaced by ours (`alphas_cumprod`, and the gamma of the clean sample), so
the step formulas are compared at float64 precision; the tables themselves are compared with
diffusers' own float32 ones separately."""

import re

import pytest
import torch

from gddm_kernels.reference import gradient, laplacian
from gddm_kernels.reference.diffusion import (
    DOMAIN_SCALES,
    add_noise,
    attenuation_step,
    ddim_step,
    ddpm_step,
    dpm_solver_2m_step,
)
from gddm_kernels.schedules import Schedule, cosine_schedule, linear_schedule, schedule_from_betas

from conftest import HAS_CUDA

diffusers = pytest.importorskip("diffusers")

T = 1000
SCHEDULE = linear_schedule(T)
SHAPE = (4, 3, 6, 5)  # (B, C, H, W)
DIFFUSERS_PREDICTION = {"eps": "epsilon", "x0": "sample", "v": "v_prediction"}
F64 = dict(atol=1e-10, rtol=1e-10)


def randn(*shape, seed: int = 0, dtype=torch.float64) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def oracle(cls, prediction_type: str, **config):
    """A diffusers scheduler on the linear schedule whose gamma table is ours, in float64."""
    scheduler = cls(num_train_timesteps=T, beta_schedule="linear", beta_start=1e-4, beta_end=0.02,
                    prediction_type=DIFFUSERS_PREDICTION[prediction_type], **config)
    scheduler.alphas_cumprod = SCHEDULE.gammas64.clone()
    one = torch.tensor(1.0, dtype=torch.float64)
    if hasattr(scheduler, "final_alpha_cumprod"):
        scheduler.final_alpha_cumprod = one
    if hasattr(scheduler, "one"):
        scheduler.one = one
    return scheduler


# ---- schedules ------------------------------------------------------------------------------

@pytest.mark.parametrize("make,beta_schedule", [(linear_schedule, "linear"),
                                                (cosine_schedule, "squaredcos_cap_v2")])
def test_schedule_tables_match_diffusers(make, beta_schedule):
    ours = make()
    theirs = diffusers.DDPMScheduler(num_train_timesteps=T, beta_schedule=beta_schedule)
    torch.testing.assert_close(ours.betas, theirs.betas, atol=1e-8, rtol=1e-6)
    # diffusers' cumprod runs in float32: about 1e-5 relative near gamma ~ 0 for the cosine.
    torch.testing.assert_close(ours.gammas, theirs.alphas_cumprod, atol=1e-7, rtol=5e-5)
    assert all(table.dtype == torch.float32 for table in (ours.betas, ours.alphas, ours.gammas,
                                                           ours.sqrt_gammas, ours.sqrt_one_minus_gammas))
    # The float32 tables are the float64 values rounded once.
    assert torch.equal(ours.sqrt_gammas, ours.gammas64.sqrt().float())
    assert torch.equal(ours.sqrt_one_minus_gammas, (1 - ours.gammas64).sqrt().float())
    assert ours.num_timesteps == T and ours.betas.max() <= 0.999


def test_schedule_from_betas_and_gather():
    schedule = schedule_from_betas([0.1, 0.2, 0.5])
    torch.testing.assert_close(schedule.gammas64, torch.tensor([0.9, 0.72, 0.36], dtype=torch.float64))
    gamma = schedule.gamma(torch.tensor([2, -1, 0]))
    assert gamma.dtype == torch.float64
    torch.testing.assert_close(gamma, torch.tensor([0.36, 1.0, 0.9], dtype=torch.float64))
    moved = schedule.to("meta")
    assert isinstance(moved, Schedule) and moved.device.type == "meta" and moved.gammas64.dtype == torch.float64


@pytest.mark.parametrize("call,match", [
    (lambda: schedule_from_betas([0.1, 0.0]), r"`betas` must lie in \(0, 1\], got \[0.0\]"),
    (lambda: schedule_from_betas([0.1, 1.5]), r"`betas` must lie in \(0, 1\]"),
    (lambda: schedule_from_betas([[0.1]]), r"`betas` must have shape \(T,\)"),
    (lambda: linear_schedule(0), r"gddm.linear_schedule: argument `T` must be a positive int"),
    (lambda: linear_schedule(10, beta_end=2.0), r"`beta_end` must lie in \(0, 1\]"),
    (lambda: cosine_schedule(10, s=0.0), r"`s` must be positive"),
])
def test_schedule_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ---- forward diffusion ----------------------------------------------------------------------

def test_add_noise_image_matches_diffusers():
    x0, eps = randn(*SHAPE, seed=1), randn(*SHAPE, seed=2)
    t = torch.tensor([0, 7, 500, 999])
    x_t, returned = add_noise(x0, t, SCHEDULE, noise=eps)
    assert returned is eps
    torch.testing.assert_close(x_t, oracle(diffusers.DDPMScheduler, "eps").add_noise(x0, eps, t), **F64)
    # float32 data against diffusers' own float32 tables.
    theirs = diffusers.DDPMScheduler(num_train_timesteps=T).add_noise(x0.float(), eps.float(), t)
    torch.testing.assert_close(add_noise(x0.float(), t, SCHEDULE, noise=eps.float())[0], theirs,
                               atol=2e-6, rtol=2e-6)


@pytest.mark.parametrize("domain", ["image", "gradient", "laplacian"])
def test_add_noise_domains_follow_the_formulas(domain):
    x0, t = randn(*SHAPE, seed=3), torch.tensor([1, 100, 600, 999])
    g = SCHEDULE.gammas64[t].reshape(-1, 1, 1, 1)
    operator = {"image": lambda x: x, "gradient": gradient, "laplacian": laplacian}[domain]
    signal = operator(x0)
    while g.dim() < signal.dim():
        g = g.unsqueeze(-1)
    # Paper model (eqs. 14, 21): i.i.d. noise of the field's shape, scaled by k.
    eps = randn(*signal.shape, seed=4)
    x_t, _ = add_noise(x0, t, SCHEDULE, domain=domain, noise=eps)
    torch.testing.assert_close(x_t, g.sqrt() * signal + DOMAIN_SCALES[domain] * (1 - g).sqrt() * eps, **F64)
    # Exact model: the operator of image-shaped noise, i.e. the operator of the image-domain x_t.
    eps_image = randn(*SHAPE, seed=5)
    x_t_exact, returned = add_noise(x0, t, SCHEDULE, domain=domain, noise_model="exact", noise=eps_image)
    assert returned.shape == SHAPE
    torch.testing.assert_close(x_t_exact, operator(add_noise(x0, t, SCHEDULE, noise=eps_image)[0]), **F64)


@pytest.mark.parametrize("noise_model", ["paper", "exact"])
@pytest.mark.parametrize("domain,variance_factor", [("gradient", 2.0), ("laplacian", 1.25)])
def test_domain_noise_variance(domain, variance_factor, noise_model):
    """x0 = 0 leaves the noise term: variance 2 (1 - g) for gradients, 5 (1 - g) / 4 for
    Laplacians (in the interior for the exact model, whose boundary terms differ)."""
    t = torch.tensor([3, 300, 999])
    x0 = torch.zeros(3, 96, 96, dtype=torch.float64)
    generator = torch.Generator().manual_seed(6)
    x_t, eps = add_noise(x0, t, SCHEDULE, domain=domain, noise_model=noise_model, generator=generator)
    if noise_model == "paper":
        assert eps.shape == x_t.shape
    interior = x_t[..., 1:-2, 1:-2].reshape(3, -1)
    variance = interior.var(dim=1)
    expected = variance_factor * (1 - SCHEDULE.gammas64[t])
    torch.testing.assert_close(variance, expected, rtol=0.08, atol=0)


def test_add_noise_bfloat16_keeps_noise_at_small_t():
    """Coefficients stay float32 for bfloat16 data: at t <= 5, sqrt(1 - g) ~ 0.01-0.03 must
    survive (a bfloat16 gamma table rounds g_0 = 0.9999 to 1 and drops the noise)."""
    t = torch.arange(6)
    x0 = (torch.rand(6, 1, 32, 32, generator=torch.Generator().manual_seed(7)) - 0.5).bfloat16()
    eps = randn(6, 1, 32, 32, seed=8, dtype=torch.bfloat16)
    x_t, _ = add_noise(x0, t, SCHEDULE, noise=eps)
    assert x_t.dtype == torch.bfloat16
    assert torch.equal(x_t, add_noise(x0.float(), t, SCHEDULE, noise=eps.float())[0].bfloat16())
    residual = (x_t.float() - SCHEDULE.sqrt_gammas[t].reshape(-1, 1, 1, 1) * x0.float()).reshape(6, -1)
    torch.testing.assert_close(residual.std(dim=1), SCHEDULE.sqrt_one_minus_gammas[t], rtol=0.2, atol=0)


def test_add_noise_draws_with_the_generator():
    x0, t = randn(*SHAPE, seed=9, dtype=torch.float32), torch.tensor([5, 6, 7, 8])
    x_t, eps = add_noise(x0, t, SCHEDULE, domain="gradient", generator=torch.Generator().manual_seed(3))
    expected = torch.randn(4, 3, 2, 6, 5, generator=torch.Generator().manual_seed(3))
    assert eps.dtype == torch.float32 and torch.equal(eps, expected)
    assert torch.equal(x_t, add_noise(x0, t, SCHEDULE, domain="gradient", noise=expected)[0])


# ---- reverse steps against diffusers --------------------------------------------------------

# Per sample: diffusers' custom timesteps, and the index of the step to take, so that t_prev is
# t - 1, a larger jump, and -1 (the last step, from t > 0 and from t = 0).
DDPM_CHAINS = [([999, 700, 400, 0], 0), ([600, 599, 300], 0), ([300, 20, 5], 2), ([50, 10, 0], 2)]


@pytest.mark.parametrize("clip_x0", [None, 1.0])
@pytest.mark.parametrize("prediction_type", ["eps", "x0", "v"])
def test_ddpm_step_matches_diffusers(prediction_type, clip_x0):
    x, out = randn(*SHAPE, seed=10), 2 * randn(*SHAPE, seed=11)
    t = torch.tensor([chain[i] for chain, i in DDPM_CHAINS])
    t_prev = torch.tensor([chain[i + 1] if i + 1 < len(chain) else -1 for chain, i in DDPM_CHAINS])
    expected = []
    for b, (chain, _) in enumerate(DDPM_CHAINS):
        scheduler = oracle(diffusers.DDPMScheduler, prediction_type, clip_sample=clip_x0 is not None,
                           clip_sample_range=clip_x0 or 1.0)
        scheduler.set_timesteps(timesteps=chain)
        step = scheduler.step(out[b:b + 1], int(t[b]), x[b:b + 1], generator=torch.Generator().manual_seed(b))
        expected.append(step.prev_sample)
    # diffusers draws (1, ...) per sample from the generator; the same draws, batched.
    noise = torch.cat([randn(1, *SHAPE[1:], seed=b) for b in range(len(DDPM_CHAINS))])
    got = ddpm_step(x, out, t, t_prev, SCHEDULE, prediction_type=prediction_type, clip_x0=clip_x0, noise=noise)
    # diffusers keeps a 1e-10 standard deviation (clamped variance) for t > 0 -> -1.
    torch.testing.assert_close(got, torch.cat(expected), atol=1e-9, rtol=1e-10)


def test_ddpm_step_generator_is_noise():
    x, out = randn(*SHAPE, seed=12), randn(*SHAPE, seed=13)
    t = torch.tensor([10, 500, 999, 1])
    drawn = ddpm_step(x, out, t, t - 1, SCHEDULE, generator=torch.Generator().manual_seed(4))
    given = ddpm_step(x, out, t, t - 1, SCHEDULE, noise=randn(*SHAPE, seed=4))
    assert torch.equal(drawn, given)


@pytest.mark.parametrize("clip_x0", [None, 1.5])
@pytest.mark.parametrize("eta", [0.0, 0.7])
@pytest.mark.parametrize("prediction_type", ["eps", "x0", "v"])
def test_ddim_step_matches_diffusers(prediction_type, eta, clip_x0):
    x, out, noise = randn(*SHAPE, seed=14), 2 * randn(*SHAPE, seed=15), randn(*SHAPE, seed=16)
    # Per sample: (num_inference_steps, t); diffusers steps to t - T // steps, or the clean sample.
    cases = [(10, 999), (50, 480), (1000, 1), (7, 100)]
    t = torch.tensor([step for _, step in cases])
    t_prev = torch.tensor([max(step - T // n, -1) for n, step in cases])
    expected = []
    for b, (n, step) in enumerate(cases):
        scheduler = oracle(diffusers.DDIMScheduler, prediction_type, clip_sample=clip_x0 is not None,
                           clip_sample_range=clip_x0 or 1.0)
        scheduler.set_timesteps(n)
        expected.append(scheduler.step(out[b:b + 1], step, x[b:b + 1], eta=eta,
                                       use_clipped_model_output=clip_x0 is not None,
                                       variance_noise=noise[b:b + 1]).prev_sample)
    got = ddim_step(x, out, t, t_prev, SCHEDULE, eta=eta, prediction_type=prediction_type, clip_x0=clip_x0,
                    noise=noise)
    torch.testing.assert_close(got, torch.cat(expected), **F64)


# Per sample, diffusers' custom timesteps of a whole DPM-Solver++ chain (ending at sigma = 0).
DPM_CHAINS = [[999, 700, 400, 150, 20], [900, 850, 500, 100, 3], [640, 320, 160, 80, 40], [999, 998, 997, 2, 1]]


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # diffusers on float64 tables
@pytest.mark.parametrize("prediction_type", ["eps", "x0", "v"])
def test_dpm_solver_2m_chain_matches_diffusers(prediction_type):
    """A whole chain: a first-order step, second-order (2M) steps, a first-order final step.
    (diffusers' DPM-Solver offers dynamic thresholding, not a clamp: clip_x0 is tested below.)"""
    config = dict(algorithm_type="dpmsolver++", solver_order=2, solver_type="midpoint", lower_order_final=True,
                  final_sigmas_type="zero")
    schedulers = [oracle(diffusers.DPMSolverMultistepScheduler, prediction_type, **config) for _ in DPM_CHAINS]
    for scheduler, chain in zip(schedulers, DPM_CHAINS):
        scheduler.set_timesteps(timesteps=chain)

    x_ours = x_theirs = 3 * randn(*SHAPE, seed=17, dtype=torch.float32)
    x_exact, prev_x0, prev_x0_exact, t_last = x_ours.double(), None, None, None
    for i in range(len(DPM_CHAINS[0])):
        out = randn(*SHAPE, seed=20 + i, dtype=torch.float32)
        t = torch.tensor([chain[i] for chain in DPM_CHAINS])
        t_prev = torch.tensor([chain[i + 1] if i + 1 < len(chain) else -1 for chain in DPM_CHAINS])
        x_ours, x0 = dpm_solver_2m_step(x_ours, out, t, t_prev, SCHEDULE, prev_x0=prev_x0, t_last=t_last,
                                        prediction_type=prediction_type)
        x_exact, prev_x0_exact = dpm_solver_2m_step(x_exact, out.double(), t, t_prev, SCHEDULE,
                                                    prev_x0=prev_x0_exact, t_last=t_last,
                                                    prediction_type=prediction_type)
        steps = [s.step(out[b:b + 1], int(t[b]), x_theirs[b:b + 1]).prev_sample for b, s in enumerate(schedulers)]
        x_theirs = torch.cat(steps)
        x0_theirs = torch.cat([s.model_outputs[-1] for s in schedulers])
        # diffusers computes in float32, coefficients included: at 997 -> 2 after 998 -> 997
        # (h / h_last ~ 1e3) its error reaches ~2e-5 of the scale; ours stays ~3e-7 of the
        # float64 result since its coefficients are float64.
        scale = x_exact.abs().max().item()
        torch.testing.assert_close(x_ours, x_theirs, atol=5e-5 * scale, rtol=0)
        torch.testing.assert_close(x0, x0_theirs, atol=5e-5 * prev_x0_exact.abs().max().item(), rtol=0)
        torch.testing.assert_close(x_ours.double(), x_exact, atol=1e-6 * scale, rtol=0)
        prev_x0, t_last = x0, t


# ---- guidance, domains, precision -----------------------------------------------------------

STEPS = {
    "ddpm": lambda x, out, t, **kw: ddpm_step(x, out, t, t - 5, SCHEDULE, **kw),
    "ddim": lambda x, out, t, **kw: ddim_step(x, out, t, t - 5, SCHEDULE, eta=0.5, **kw),
    "dpm": lambda x, out, t, **kw: dpm_solver_2m_step(x, out, t, t - 5, SCHEDULE, prev_x0=-x, t_last=t + 5,
                                                      **{k: v for k, v in kw.items() if k != "noise"})[0],
}
STEP_T = torch.tensor([5, 100, 600, 990])


@pytest.mark.parametrize("step", list(STEPS))
def test_classifier_free_guidance(step):
    x, cond, uncond, noise = (randn(*SHAPE, seed=s) for s in (30, 31, 32, 33))
    guided = STEPS[step](x, cond, STEP_T, uncond_output=uncond, guidance_scale=3.5, noise=noise)
    torch.testing.assert_close(guided, STEPS[step](x, uncond + 3.5 * (cond - uncond), STEP_T, noise=noise), **F64)


@pytest.mark.parametrize("prediction_type", ["eps", "x0", "v"])
@pytest.mark.parametrize("step", list(STEPS))
def test_domain_scale_is_the_image_step_on_x_over_k(step, prediction_type):
    """step_k(x, out) == k step_1(x / k, out'), out' = out / k for x0 predictions (module notes)."""
    k = DOMAIN_SCALES["gradient"]
    x, out, noise = randn(*SHAPE, seed=34), randn(*SHAPE, seed=35), randn(*SHAPE, seed=36)
    scaled = STEPS[step](x, out, STEP_T, prediction_type=prediction_type, noise=noise, domain_scale=k)
    unit_out = out / k if prediction_type == "x0" else out
    # STEPS["dpm"] passes prev_x0 = -x, which scales with x.
    image = STEPS[step](x / k, unit_out, STEP_T, prediction_type=prediction_type, noise=noise)
    torch.testing.assert_close(scaled, k * image, **F64)


@pytest.mark.parametrize("step", list(STEPS))
def test_clip_x0_clamps_the_x0_prediction(step):
    x, out, noise = randn(*SHAPE, seed=40), 3 * randn(*SHAPE, seed=41), randn(*SHAPE, seed=42)
    clipped = STEPS[step](x, out, STEP_T, prediction_type="x0", clip_x0=1.2, noise=noise)
    torch.testing.assert_close(clipped, STEPS[step](x, out.clamp(-1.2, 1.2), STEP_T, prediction_type="x0",
                                                    noise=noise), **F64)
    assert not torch.allclose(clipped, STEPS[step](x, out, STEP_T, prediction_type="x0", noise=noise))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("step", list(STEPS))
def test_half_precision_steps_compute_in_float32(step, dtype):
    x, out, noise = (randn(*SHAPE, seed=s, dtype=dtype) for s in (37, 38, 39))
    got = STEPS[step](x, out, STEP_T, noise=noise)
    assert got.dtype == dtype
    assert torch.equal(got, STEPS[step](x.float(), out.float(), STEP_T, noise=noise.float()).to(dtype))


# ---- analytic attenuation (Huang et al., Alg. 2) --------------------------------------------

def attenuation_forward(x0, eps, t, k=1.0):
    """x_t = x_0 + H_t + k sqrt(t) eps with H_t = c t, c = -x_0."""
    t = t.double().reshape(-1, 1, 1, 1)
    return (1 - t) * x0 + k * t.sqrt() * eps


def test_attenuation_step_is_algorithm_2():
    x, c, eps, z = (randn(*SHAPE, seed=s) for s in (40, 41, 42, 43))
    t, t_prev = torch.tensor([1.0, 0.5, 0.3, 0.02]), torch.tensor([0.9, 0.1, 0.0, 0.01])
    k = DOMAIN_SCALES["laplacian"]
    got = attenuation_step(x, (c, eps), t, t_prev, noise=z, domain_scale=k)
    tt, tp = t.double().reshape(-1, 1, 1, 1), t_prev.double().reshape(-1, 1, 1, 1)
    s = tt - tp
    # u = x_t + H_{t-s} - H_t - s / sqrt(t) eps,  sigma^2 = s (t - s) / t
    u = x + c * (tt - s) - c * tt - k * s / tt.sqrt() * eps
    torch.testing.assert_close(got, u + k * (s * (tt - s) / tt).sqrt() * z, **F64)
    # x0 prediction = -c, and the x0 clamp.
    torch.testing.assert_close(attenuation_step(x, (-c, eps), t, t_prev, prediction_type="x0", noise=z,
                                                domain_scale=k), got, **F64)
    clipped = attenuation_step(x, (c, eps), t, t_prev, clip_x0=0.5, noise=z, domain_scale=k)
    torch.testing.assert_close(clipped, attenuation_step(x, (c.clamp(-0.5, 0.5), eps), t, t_prev, noise=z,
                                                         domain_scale=k), **F64)


def test_attenuation_deterministic_variant_stays_on_the_forward_path():
    x0, eps = randn(*SHAPE, seed=44), randn(*SHAPE, seed=45)
    t, t_prev = torch.tensor([1.0, 0.8, 0.4, 0.05]), torch.tensor([0.5, 0.0, 0.39, 0.01])
    x_t = attenuation_forward(x0, eps, t, k=2.0)
    got = attenuation_step(x_t, (-x0, eps), t, t_prev, eta=0.0, domain_scale=2.0)
    torch.testing.assert_close(got, attenuation_forward(x0, eps, t_prev, k=2.0), **F64)


@pytest.mark.parametrize("eta", [1.0, 0.5])
def test_attenuation_step_keeps_the_forward_marginal(eta):
    """With exact predictions, x_{t_prev} ~ N((1 - t_prev) x_0, t_prev) when x_t is a forward sample."""
    x0 = torch.full((2, 128, 128), 0.7, dtype=torch.float64)
    t, t_prev = torch.tensor([0.9, 0.5], dtype=torch.float64), torch.tensor([0.6, 0.1], dtype=torch.float64)
    eps = randn(2, 128, 128, seed=46)
    x_t = (1 - t.reshape(-1, 1, 1)) * x0 + t.sqrt().reshape(-1, 1, 1) * eps
    x_prev = attenuation_step(x_t, (-x0, eps), t, t_prev, eta=eta, generator=torch.Generator().manual_seed(47))
    flat = x_prev.reshape(2, -1)
    torch.testing.assert_close(flat.mean(dim=1), 0.7 * (1 - t_prev), atol=0.02, rtol=0)
    torch.testing.assert_close(flat.var(dim=1), t_prev, rtol=0.06, atol=0)


def test_attenuation_guidance():
    x, c, eps, uc, ue, z = (randn(*SHAPE, seed=s) for s in range(50, 56))
    t, t_prev = torch.full((4,), 0.5), torch.full((4,), 0.25)
    guided = attenuation_step(x, (c, eps), t, t_prev, uncond_output=(uc, ue), guidance_scale=2.0, noise=z)
    manual = attenuation_step(x, (uc + 2 * (c - uc), ue + 2 * (eps - ue)), t, t_prev, noise=z)
    torch.testing.assert_close(guided, manual, **F64)


# ---- argument errors ------------------------------------------------------------------------

X, OUT = randn(*SHAPE, seed=60), randn(*SHAPE, seed=61)
TS = torch.tensor([10, 20, 30, 40])
ATT_T = torch.full((4,), 0.5)


ERROR_CASES = [
    (lambda: add_noise(X, TS.float(), SCHEDULE), TypeError, r"gddm.add_noise: argument `t` must have an integer dtype"),
    (lambda: add_noise(X, TS[:3], SCHEDULE), ValueError, r"`t` must have shape \(B,\) = \(4,\).*got shape \(3,\)"),
    (lambda: add_noise(X, TS[:, None], SCHEDULE), ValueError, r"`t` must have shape \(B,\)"),
    (lambda: add_noise(X, TS + 975, SCHEDULE), ValueError, r"`t` must lie in \[0, 1000\), got \[1005, 1015\]"),
    (lambda: add_noise(X, -TS, SCHEDULE), ValueError, r"`t` must lie in \[0, 1000\)"),
    (lambda: add_noise(X, [1, 2, 3, 4], SCHEDULE), TypeError, r"`t` must be a torch.Tensor, got list"),
    (lambda: add_noise(X, TS, SCHEDULE, domain="divergence"), ValueError,
     r"`domain` must be one of 'image', 'gradient', 'laplacian', got 'divergence'"),
    (lambda: add_noise(X, TS, SCHEDULE, noise_model="integrable"), ValueError, r"`noise_model` must be one of"),
    (lambda: add_noise(X[0, 0], TS, SCHEDULE), ValueError, r"`x0` must have shape \(B, \.\.\., H, W\)"),
    (lambda: add_noise(X.int(), TS, SCHEDULE), TypeError, r"`x0` must have a floating dtype"),
    (lambda: add_noise(X, TS, SCHEDULE, domain="gradient", noise=OUT), ValueError,
     r"`noise` must have shape \(4, 3, 2, 6, 5\)"),
    (lambda: add_noise(X, TS, SCHEDULE, noise=OUT, generator=torch.Generator()), ValueError,
     r"`generator` must be None when `noise` is given"),
    (lambda: add_noise(X, TS, SCHEDULE.to("meta")), ValueError, r"argument `schedule` must be on the device of `t`"),
    (lambda: ddpm_step(X, OUT, TS, TS - 1, SCHEDULE, prediction_type="epsilon"), ValueError,
     r"gddm.ddpm_step: argument `prediction_type` must be one of 'eps', 'x0', 'v', got 'epsilon'"),
    (lambda: ddpm_step(X, OUT[:, :2], TS, TS - 1, SCHEDULE), ValueError,
     r"`model_output` must have the shape of `sample` \(4, 3, 6, 5\).*got shape \(4, 2, 6, 5\)"),
    (lambda: ddpm_step(X, OUT, TS, TS, SCHEDULE), ValueError, r"`t_prev` must be smaller than `t` per sample"),
    (lambda: ddpm_step(X, OUT, TS, TS - 20, SCHEDULE), ValueError, r"`t_prev` must lie in \[-1, 1000\), got \[-10\]"),
    (lambda: ddpm_step(X, OUT, TS.double(), TS - 1, SCHEDULE), TypeError, r"`t` must have an integer dtype"),
    (lambda: ddpm_step(X, OUT, TS, TS - 1, SCHEDULE, uncond_output=OUT), ValueError,
     r"`uncond_output` and `guidance_scale` must be given together"),
    (lambda: ddpm_step(X, OUT, TS, TS - 1, SCHEDULE, guidance_scale=2.0), ValueError,
     r"`uncond_output` and `guidance_scale` must be given together"),
    (lambda: ddpm_step(X, OUT, TS, TS - 1, SCHEDULE, clip_x0=-1.0), ValueError, r"`clip_x0` must be a positive"),
    (lambda: ddpm_step(X, OUT, TS, TS - 1, SCHEDULE, domain_scale=0), ValueError, r"`domain_scale` must be a positive"),
    (lambda: ddpm_step(X, OUT, TS, TS - 1, SCHEDULE, noise=OUT[:2]), ValueError, r"`noise` must have shape"),
    (lambda: ddim_step(X, OUT, TS, TS - 1, SCHEDULE, eta=1.5), ValueError,
     r"gddm.ddim_step: argument `eta` must lie in \[0, 1\]"),
    (lambda: dpm_solver_2m_step(X, OUT, TS, TS - 1, SCHEDULE, t_last=TS + 1), ValueError,
     r"`prev_x0` and `t_last` must be given together"),
    (lambda: dpm_solver_2m_step(X, OUT, TS, TS - 1, SCHEDULE, prev_x0=OUT), ValueError,
     r"`prev_x0` and `t_last` must be given together"),
    (lambda: dpm_solver_2m_step(X, OUT, TS, TS - 1, SCHEDULE, prev_x0=OUT, t_last=TS), ValueError,
     r"`t_last` must be larger than `t` per sample"),
    (lambda: attenuation_step(X, OUT, ATT_T, ATT_T / 2), TypeError, r"`model_output` must be a pair"),
    (lambda: attenuation_step(X, (OUT, OUT), TS, TS - 1), TypeError, r"`t` must have a floating dtype"),
    (lambda: attenuation_step(X, (OUT, OUT), ATT_T + 1, ATT_T), ValueError, r"`t` must lie in \(0, 1\]"),
    (lambda: attenuation_step(X, (OUT, OUT), ATT_T, ATT_T), ValueError, r"`t_prev` must lie in \[0, t\)"),
    (lambda: attenuation_step(X, (OUT, OUT), ATT_T, ATT_T / 2, prediction_type="eps"), ValueError,
     r"`prediction_type` must be one of 'c', 'x0'"),
    (lambda: attenuation_step(X, (OUT, OUT[:1]), ATT_T, ATT_T / 2), ValueError,
     r"`model_output\[1\]` must have the shape of `sample`"),
]


@pytest.mark.parametrize("call,error,match", ERROR_CASES,
                         ids=[re.sub(r"\W+", "-", match).strip("-")[:48] for _, _, match in ERROR_CASES])
def test_argument_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


# ---- no host sync ---------------------------------------------------------------------------

def run_everything(x, out, noise, t, schedule):
    """One call of each op with explicit noise (a generator draw is not traced)."""
    x_t, _ = add_noise(x, t, schedule, domain="gradient", noise_model="exact", noise=noise)
    a = ddpm_step(x, out, t, t - 3, schedule, prediction_type="v", clip_x0=1.0, noise=noise,
                  uncond_output=x, guidance_scale=2.0)
    b = ddim_step(x, out, t, t - 3, schedule, eta=0.5, noise=noise, domain_scale=DOMAIN_SCALES["gradient"])
    c, x0 = dpm_solver_2m_step(x, out, t, t - 3, schedule, prev_x0=out, t_last=t + 3)
    d = attenuation_step(x, (out, noise), t.float() / 1000, t.float() / 2000, noise=noise)
    return x_t, a, b, c, x0, d


def test_traces_without_graph_breaks():
    """fullgraph=True fails on any host sync (.item(), nonzero, data-dependent Python branch)."""
    x, out, noise = randn(*SHAPE, seed=70), randn(*SHAPE, seed=71), randn(*SHAPE, seed=72)
    args = (x, out, noise, torch.tensor([900, 10, 400, 3]), SCHEDULE)
    compiled = torch.compile(run_everything, fullgraph=True, backend="aot_eager")
    for got, expected in zip(compiled(*args), run_everything(*args)):
        torch.testing.assert_close(got, expected, **F64)


def test_range_checks_are_device_asserts_when_traced():
    """Traced (and on GPUs) a bad value trips torch._assert_async instead of a host-side check."""
    compiled = torch.compile(add_noise, fullgraph=True, backend="eager")
    with pytest.raises(RuntimeError, match=r"gddm.add_noise: argument `t` must lie in \[0, 1000\)"):
        compiled(X, TS + 975, SCHEDULE, noise=OUT)


@pytest.mark.cuda
@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")
def test_no_host_sync_on_cuda():
    schedule = SCHEDULE.to("cuda")
    x, out, noise = (randn(*SHAPE, seed=s).cuda() for s in (73, 74, 75))
    t = torch.tensor([900, 10, 400, 3], device="cuda")
    expected = run_everything(x.cpu(), out.cpu(), noise.cpu(), t.cpu(), SCHEDULE)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        results = run_everything(x, out, noise, t, schedule)
        drawn = ddpm_step(x, out, t, t - 1, schedule)  # a generator draw is sync-free too
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert drawn.isfinite().all()
    for got, want in zip(results, expected):
        torch.testing.assert_close(got.cpu(), want, atol=1e-9, rtol=1e-9)
