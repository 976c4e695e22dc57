"""Reference forward diffusion and reverse steps (docs/design.md, "Diffusion"): the executable
specification of the "noise-add" and "denoise-update" kernels.

Notation. g_t = gamma_t = prod_{s<=t} (1 - beta_s) (diffusers' alphas_cumprod), read per sample
with `schedule.gamma`. B = sample.shape[0]; `t`, `t_prev` are (B,) integer tensors, one
timestep per sample, on the sample's device; t_prev = -1 denotes the clean sample (g_{-1} = 1),
the target of a chain's last step. A step goes from t to any t_prev < t (not only t - 1).
The analytic-attenuation process of Huang et al. (`attenuation_add_noise`, `attenuation_step`)
has no schedule: its `t`, `t_prev` are (B,) floating times in [0, 1].

Domains and the noise scale k (Gong 2023 eqs. 14 and 21). In a domain with
scale k the forward process is

    x_t = sqrt(g_t) x_0 + k sqrt(1 - g_t) eps,    k = DOMAIN_SCALES[domain],

so y = x / k follows the standard process. Every step here is the standard (image-domain)
step applied to y and mapped back; in x this means that k multiplies every noise term: the
eps inside the x_0 prediction, the eps direction of DDIM and the fresh noise z. Model outputs
are read accordingly: an eps or v prediction is a unit-scale target (eps ~ N(0, I),
v = sqrt(g) eps - sqrt(1 - g) x_0 / k), an x0 prediction is in the domain's own units.
The steps assume the paper noise model (i.i.d. noise of the field's shape).

Model output handling shared by all steps (applied in this order):
  * classifier-free guidance: with `uncond_output` and `guidance_scale` s the output used is
    uncond + s (cond - uncond);
  * `prediction_type` "eps" | "x0" | "v" turns it into x_0 (and eps where a step needs it):
        eps:  x_0 = (x_t - k sqrt(1-g) eps) / sqrt(g)
        x0:   eps = (x_t - sqrt(g) x_0) / (k sqrt(1-g))
        v:    x_0 = sqrt(g) x_t - k sqrt(1-g) v,   eps = sqrt(g) v + sqrt(1-g) x_t / k;
  * `clip_x0` c clamps x_0 to [-c, c] (a step that needs eps then re-derives it from the
    clamped x_0, like guided-diffusion's DDIM and diffusers' use_clipped_model_output=True).

Precision. Per-sample coefficients are computed in float64 from `schedule.gammas64` and cast
to the arithmetic dtype of the sample (or x0): float32 for float16/bfloat16/float32 data,
float64 for float64 data. Model outputs and noise are converted to it, the arithmetic runs in
it, and the result is rounded once to the sample's dtype.

Random numbers. `noise=` gives the standard normal draw explicitly (any floating dtype);
otherwise it is drawn with torch.randn(generator=generator) in the data's dtype and on its
device. Passing both is an error.

No host synchronisation: coefficients are gathered by indexing, per-sample cases use
torch.where, and value checks on device tensors are device-side asserts (see
gddm_kernels.schedules). Everything traces with torch.compile(fullgraph=True) when `noise` is
given.
"""

from collections.abc import Callable

import torch
from torch import Tensor

from .._diffusion_checks import (check_choice, check_clip, check_eta, check_forward,
                                 check_guidance, check_like, check_pair, check_positive, check_sample, describe,
                                 check_unit_times)
from .._diffusion_contract import (ATTENUATION_PREDICTION_TYPES, DOMAIN_SCALES, NOISE_MODELS, PREDICTION_TYPES,
                                   noise_shape)
from .._validation import arithmetic_dtype, check_tensor
from ..schedules import Schedule, check_per_sample, check_values, log_snr
from .stencils import gradient, laplacian



def _identity(x: Tensor) -> Tensor:
    return x


_OPERATORS: dict[str, Callable[[Tensor], Tensor]] = {
    "image": _identity, "gradient": gradient, "laplacian": laplacian}


# --------------------------------------------------------------------------------------------
# Forward diffusion
# --------------------------------------------------------------------------------------------

def add_noise(x0: Tensor, t: Tensor, schedule: Schedule, domain: str = "image",
              noise_model: str = "paper", noise: Tensor | None = None,
              generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Sample the forward process q(x_t | x_0) of a domain at per-sample timesteps.

    With g = g_t per sample and D the domain's operator (identity, `gradient`, `laplacian`):

        noise_model "paper" (the default):
            image      x_t = sqrt(g) x0 + sqrt(1-g) eps                          eps: (B, ..., H, W)
            gradient   G_t = sqrt(g) gradient(x0) + sqrt(2 (1-g)) eps  (eq. 14)  eps: (B, ..., 2, H, W)
            laplacian  L_t = sqrt(g) laplacian(x0) + sqrt(5 (1-g)) / 2 eps (eq. 21)  eps: (B, ..., H, W)
        noise_model "exact": the operator applied to image-shaped noise,
            x_t = sqrt(g) D(x0) + sqrt(1-g) D(eps),  eps: (B, ..., H, W)
            (= D(image-domain x_t): the field stays integrable; "exact" and "paper" coincide
            for the image domain).

    Args:
        x0: clean images (B, ..., H, W), floating dtype; B is the sample dim.
        t: (B,) integer timesteps in [0, T), on x0's device.
        schedule: a Schedule on x0's device.
        domain: "image", "gradient" or "laplacian".
        noise_model: "paper" or "exact".
        noise: the standard normal eps (shape as above), or None to draw it.
        generator: torch.Generator for the draw when `noise` is None.
    Returns:
        (x_t, eps): x_t in x0's dtype, shape (B, ..., 2, H, W) for the gradient domain else
        x0's shape; eps the noise used (the training target), drawn in x0's dtype.
    """
    op = "add_noise"
    check_forward(x0, domain, noise_model, op)
    schedule.check_timesteps(t, x0.shape[0], x0.device, op, "t")
    eps = _noise(op, noise, generator, noise_shape(x0.shape, domain, noise_model == "exact"), x0)
    g = schedule.gamma(t)
    return _mix(x0, g.sqrt(), (1 - g).sqrt(), eps, domain, noise_model), eps


def attenuation_add_noise(x0: Tensor, t: Tensor, domain: str = "image", noise_model: str = "paper",
                          noise: Tensor | None = None,
                          generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Sample the forward process of the analytic-attenuation model (Huang et al. 2023,
    "Simultaneous Image-to-Zero and Zero-to-Noise", Alg. 1) with the linear attenuation
    H_t = c t, c = -F0, at per-sample continuous times t in [0, 1]:

        F_t = F0 + H_t + k sqrt(t) eps = (1 - t) F0 + k sqrt(t) eps,     F0 = D(x0),

    k = DOMAIN_SCALES[domain] (1, sqrt(2), sqrt(5)/2), D the domain's operator; the signal
    decays to zero while the noise grows, so F_0 = F0 and F_1 = k eps. Noise models as
    `add_noise`: "paper" adds i.i.d. noise of the field's shape (eps (B, ..., 2, H, W) in the
    gradient domain), "exact" applies the operator to image-shaped noise,
    F_t = (1 - t) D(x0) + sqrt(t) D(eps). `attenuation_step` is the matching reverse step.

    Args:
        x0: clean images (B, ..., H, W), floating dtype; B is the sample dim.
        t: (B,) floating times in [0, 1], on x0's device.
        domain, noise_model, noise, generator: as `add_noise`.
    Returns:
        (F_t, eps): F_t in x0's dtype (the field's shape), eps the noise used (drawn in x0's
        dtype); the training targets are c = -D(x0) and eps.
    """
    op = "attenuation_add_noise"
    check_forward(x0, domain, noise_model, op)
    t64 = check_unit_times(t, x0, op).double()
    eps = _noise(op, noise, generator, noise_shape(x0.shape, domain, noise_model == "exact"), x0)
    return _mix(x0, 1 - t64, t64.sqrt(), eps, domain, noise_model), eps






def _mix(x0: Tensor, signal: Tensor, spread: Tensor, eps: Tensor, domain: str, noise_model: str) -> Tensor:
    """a D(x0) + k s eps ("paper") or a D(x0) + s D(eps) ("exact") with per-sample float64
    a = `signal`, s = `spread` (B,), computed in the arithmetic dtype, returned in x0's."""
    dtype = arithmetic_dtype(x0.dtype)
    operator = _OPERATORS[domain]
    field = operator(x0.to(dtype))
    if noise_model == "exact":
        noise_term = _per_sample(spread, field) * operator(eps.to(dtype))
    else:
        noise_term = _per_sample(DOMAIN_SCALES[domain] * spread, field) * eps.to(dtype)
    return (_per_sample(signal, field) * field + noise_term).to(x0.dtype)


# --------------------------------------------------------------------------------------------
# Reverse steps
# --------------------------------------------------------------------------------------------

def ddpm_step(sample: Tensor, model_output: Tensor, t: Tensor, t_prev: Tensor, schedule: Schedule, *,
              prediction_type: str = "eps", clip_x0: float | None = None,
              uncond_output: Tensor | None = None, guidance_scale: float | None = None,
              noise: Tensor | None = None, generator: torch.Generator | None = None,
              domain_scale: float = 1.0) -> Tensor:
    """Ancestral DDPM step x_t -> x_{t_prev} (Ho et al. 2020 eqs. 6-7; Gong 2023 eq. 5, in
    the gradient / Laplacian domains eqs. 15 / 22), the posterior q(x_{t_prev} | x_t, x_0) with
    the "fixed_small" variance, for any t_prev < t:

        a = g_t / g_{t_prev},   b = 1 - a                      (b = beta_t when t_prev = t - 1)
        mean  = sqrt(g_{t_prev}) b / (1 - g_t) x_0 + sqrt(a) (1 - g_{t_prev}) / (1 - g_t) x_t
        var   = (1 - g_{t_prev}) / (1 - g_t) b
        x_{t_prev} = mean + k sqrt(var) z,   z ~ N(0, I),  no noise where t == 0.

    Matches diffusers' DDPMScheduler.step (variance_type "fixed_small") with prev_t = t_prev.

    Args:
        sample: x_t, shape (B, ...), floating dtype.
        model_output: the model's prediction, sample's shape (see the module notes for
            `prediction_type`, `clip_x0`, `uncond_output`, `guidance_scale`).
        t: (B,) integer timesteps in [0, T); t_prev: (B,) in [-1, t) (-1: the clean sample).
        schedule: a Schedule on the sample's device.
        noise: z, sample's shape, or None to draw it with `generator`.
        domain_scale: k (DOMAIN_SCALES: 1, sqrt(2), sqrt(5)/2).
    Returns:
        x_{t_prev} in the sample's dtype.
    """
    op = "ddpm_step"
    x, m = _step_inputs(op, sample, model_output, t, t_prev, schedule, prediction_type, clip_x0,
                        uncond_output, guidance_scale, domain_scale)
    z = _noise(op, noise, generator, sample.shape, sample).to(x.dtype)
    g, g_prev = schedule.gamma(t), schedule.gamma(t_prev)
    b = 1 - g / g_prev
    coef_x0 = g_prev.sqrt() * b / (1 - g)
    coef_xt = (1 - b).sqrt() * (1 - g_prev) / (1 - g)
    std = torch.where(t > 0, domain_scale * ((1 - g_prev) / (1 - g) * b).sqrt(), 0.0)
    x0 = _clip(_predict_x0(x, m, g, domain_scale, prediction_type), clip_x0)
    x_prev = _per_sample(coef_x0, x) * x0 + _per_sample(coef_xt, x) * x + _per_sample(std, x) * z
    return x_prev.to(sample.dtype)


def ddim_step(sample: Tensor, model_output: Tensor, t: Tensor, t_prev: Tensor, schedule: Schedule, *,
              eta: float = 0.0, prediction_type: str = "eps", clip_x0: float | None = None,
              uncond_output: Tensor | None = None, guidance_scale: float | None = None,
              noise: Tensor | None = None, generator: torch.Generator | None = None,
              domain_scale: float = 1.0) -> Tensor:
    """DDIM step x_t -> x_{t_prev} (Song et al. 2021, eq. 12; diffusers' DDIMScheduler.step):

        sigma = eta sqrt((1 - g_{t_prev}) / (1 - g_t) (1 - g_t / g_{t_prev}))
        x_{t_prev} = sqrt(g_{t_prev}) x_0 + k sqrt(1 - g_{t_prev} - sigma^2) eps + k sigma z.

    eta = 0 is deterministic (no noise is drawn, `noise` is unused), eta = 1 has the DDPM
    posterior variance.
    eps is the model's (or, with `clip_x0`, re-derived from the clamped x_0; see the module
    notes). t_prev = -1 takes g_{t_prev} = 1 (diffusers' set_alpha_to_one=True).

    Args: as `ddpm_step`, plus eta in [0, 1]. Returns x_{t_prev} in the sample's dtype.
    """
    op = "ddim_step"
    check_eta(eta, op)
    x, m = _step_inputs(op, sample, model_output, t, t_prev, schedule, prediction_type, clip_x0,
                        uncond_output, guidance_scale, domain_scale)
    g, g_prev = schedule.gamma(t), schedule.gamma(t_prev)
    sigma = eta * ((1 - g_prev) / (1 - g) * (1 - g / g_prev)).sqrt()
    coef_eps = domain_scale * (1 - g_prev - sigma**2).clamp(min=0).sqrt()
    x0 = _clip(_predict_x0(x, m, g, domain_scale, prediction_type), clip_x0)
    if clip_x0 is None:
        eps = _predict_eps(x, m, g, domain_scale, prediction_type)
    else:
        eps = _predict_eps(x, x0, g, domain_scale, "x0")
    x_prev = _per_sample(g_prev.sqrt(), x) * x0 + _per_sample(coef_eps, x) * eps
    if eta > 0:
        z = _noise(op, noise, generator, sample.shape, sample).to(x.dtype)
        x_prev = x_prev + _per_sample(domain_scale * sigma, x) * z
    return x_prev.to(sample.dtype)


def dpm_solver_2m_step(sample: Tensor, model_output: Tensor, t: Tensor, t_prev: Tensor, schedule: Schedule, *,
                       prev_x0: Tensor | None = None, t_last: Tensor | None = None,
                       prediction_type: str = "eps", clip_x0: float | None = None,
                       uncond_output: Tensor | None = None, guidance_scale: float | None = None,
                       domain_scale: float = 1.0) -> tuple[Tensor, Tensor]:
    """DPM-Solver++(2M) step x_t -> x_{t_prev} (Lu et al. 2022, Algorithm 2; diffusers'
    DPMSolverMultistepScheduler, algorithm_type "dpmsolver++", solver_order 2, "midpoint").

    With alpha = sqrt(g), sigma = sqrt(1 - g), lambda = log(alpha / sigma) per timestep:

        h = lambda_{t_prev} - lambda_t,   h_last = lambda_t - lambda_{t_last}
        D = x_0                                        first order (prev_x0 is None, or t_prev == -1)
        D = x_0 + h / (2 h_last) (x_0 - prev_x0)       second order (the "midpoint" 2M update)
        x_{t_prev} = (sigma_{t_prev} / sigma_t) x_t - alpha_{t_prev} (exp(-h) - 1) D.

    The solver is deterministic and, written with x_0, independent of k (domain_scale only
    enters the x_0 prediction). A step into t_prev = -1 (sigma = 0) is first order per sample
    and returns x_0, like diffusers' final step with final_sigmas_type "zero".

    Args:
        sample, model_output, t, t_prev, schedule, prediction_type, clip_x0, uncond_output,
            guidance_scale, domain_scale: as `ddpm_step`.
        prev_x0: the x_0 prediction returned by the previous step (at t_last), or None for a
            first-order step (the chain's first step).
        t_last: (B,) integer timesteps of prev_x0, in (t, T); given exactly when prev_x0 is.
    Returns:
        (x_{t_prev}, x_0), both in the sample's dtype; pass x_0 as the next step's prev_x0.
    """
    op = "dpm_solver_2m_step"
    x, m = _step_inputs(op, sample, model_output, t, t_prev, schedule, prediction_type, clip_x0,
                        uncond_output, guidance_scale, domain_scale)
    if (prev_x0 is None) != (t_last is None):
        raise ValueError(
            f"gddm.{op}: arguments `prev_x0` and `t_last` must be given together (second order) or "
            f"both omitted (first order), got prev_x0={describe(prev_x0)}, t_last={describe(t_last)}"
        )
    if prev_x0 is not None:
        x0_last = check_like(prev_x0, sample, op, "prev_x0").to(x.dtype)
        schedule.check_timesteps(t_last, sample.shape[0], sample.device, op, "t_last")
        check_values(t_last > t, t_last, op, "t_last", "be larger than `t` per sample")
    g, g_prev = schedule.gamma(t), schedule.gamma(t_prev)
    lam, lam_prev = log_snr(g), log_snr(g_prev)
    h = lam_prev - lam
    x0 = _clip(_predict_x0(x, m, g, domain_scale, prediction_type), clip_x0)
    d = x0
    if prev_x0 is not None:
        h_last = lam - log_snr(schedule.gamma(t_last))
        ratio = torch.where(t_prev >= 0, h / (2 * h_last), 0.0)
        d = x0 + _per_sample(ratio, x) * (x0 - x0_last)
    coef_xt = (1 - g_prev).sqrt() / (1 - g).sqrt()
    coef_d = -g_prev.sqrt() * torch.expm1(-h)
    x_prev = _per_sample(coef_xt, x) * x + _per_sample(coef_d, x) * d
    return x_prev.to(sample.dtype), x0.to(sample.dtype)


def attenuation_step(sample: Tensor, model_output: tuple[Tensor, Tensor], t: Tensor, t_prev: Tensor, *,
                     prediction_type: str = "c", eta: float = 1.0, clip_x0: float | None = None,
                     uncond_output: tuple[Tensor, Tensor] | None = None,
                     guidance_scale: float | None = None, noise: Tensor | None = None,
                     generator: torch.Generator | None = None, domain_scale: float = 1.0) -> Tensor:
    """Analytic-attenuation step of Huang et al. 2023 ("Simultaneous Image-to-Zero and
    Zero-to-Noise", Alg. 2) with the linear attenuation H_t = c t, continuous t in (0, 1].

    Forward process: x_t = x_0 + H_t + k sqrt(t) eps; x_1 is pure noise, so H_1 = -x_0 and
    c = -x_0. Given x_t, x_0 (equivalently c) and eps, the Brownian bridge of the Wiener part
    gives, for s = t - t_prev,

        x_{t_prev} = x_t + H_{t_prev} - H_t - k s / sqrt(t) eps + k sigma z
                   = x_t - c s - k s / sqrt(t) eps + k sigma z,    sigma^2 = s (t - s) / t,

    which is Alg. 2 (eta = 1). Derivation of the deterministic variant: for any sigma^2 <=
    t_prev, x_{t_prev} = x_0 + H_{t_prev} + k sqrt(t_prev - sigma^2) eps + k sigma z has the
    forward marginal N(x_0 + H_{t_prev}, k^2 t_prev) (the DDIM construction); eliminating x_0
    with x_t gives

        x_{t_prev} = x_t - c s - k (sqrt(t) - sqrt(t_prev - sigma^2)) eps + k sigma z,
        sigma = eta sqrt(s (t - s) / t).

    eta = 1 recovers the bridge above (t_prev - sigma^2 = t_prev^2 / t), eta = 0 is the
    deterministic step x_{t_prev} = x_t - c s - k (sqrt(t) - sqrt(t_prev)) eps (no noise
    drawn). A step to t_prev = 0 returns x_t - c t - k sqrt(t) eps = x_0 for exact predictions.

    Args:
        sample: x_t, shape (B, ...), floating dtype.
        model_output: (attenuation, eps) of the paper's two-decoder network, each the sample's
            shape; attenuation is c (prediction_type "c") or x_0 = -c ("x0").
        t: (B,) floating times in (0, 1]; t_prev: (B,) in [0, t).
        eta: in [0, 1]; 1 is Alg. 2, 0 the deterministic variant.
        clip_x0: clamps x_0 = -c to [-clip_x0, clip_x0].
        uncond_output: the unconditional (attenuation, eps) pair, with guidance_scale s:
            each output becomes uncond + s (cond - uncond).
        noise, generator, domain_scale: as `ddpm_step`.
    Returns:
        x_{t_prev} in the sample's dtype.
    """
    op = "attenuation_step"
    check_choice(prediction_type, ATTENUATION_PREDICTION_TYPES, op, "prediction_type")
    check_eta(eta, op)
    x = check_sample(sample, op).to(arithmetic_dtype(sample.dtype))
    check_positive(domain_scale, op, "domain_scale")
    check_clip(clip_x0, op)
    batch = sample.shape[0]
    check_per_sample(t, batch, sample.device, op, "t", integer=False)
    check_per_sample(t_prev, batch, sample.device, op, "t_prev", integer=False)
    check_values((t > 0) & (t <= 1), t, op, "t", "lie in (0, 1]")
    check_values((t_prev >= 0) & (t_prev < t), t_prev, op, "t_prev", "lie in [0, t) per sample")
    check_guidance(uncond_output, guidance_scale, op)
    conds = check_pair(model_output, op, "model_output")
    unconds = (None, None) if uncond_output is None else check_pair(uncond_output, op, "uncond_output")
    attenuation, eps = (
        _guided(op, sample, conds[i], unconds[i], guidance_scale, x.dtype,
                f"model_output[{i}]", f"uncond_output[{i}]")
        for i in range(2)
    )
    x0 = _clip(-attenuation if prediction_type == "c" else attenuation, clip_x0)

    t64, t_prev64 = t.double(), t_prev.double()
    s = t64 - t_prev64
    sigma = eta * (s * t_prev64 / t64).sqrt()
    coef_eps = domain_scale * (t64.sqrt() - (t_prev64 - sigma**2).clamp(min=0).sqrt())
    x_prev = x + _per_sample(s, x) * x0 - _per_sample(coef_eps, x) * eps
    if eta > 0:
        z = _noise(op, noise, generator, sample.shape, sample).to(x.dtype)
        x_prev = x_prev + _per_sample(domain_scale * sigma, x) * z
    return x_prev.to(sample.dtype)


# --------------------------------------------------------------------------------------------
# Shared pieces
# --------------------------------------------------------------------------------------------

def _step_inputs(op: str, sample: Tensor, model_output: Tensor, t: Tensor, t_prev: Tensor,
                 schedule: Schedule, prediction_type: str, clip_x0: float | None,
                 uncond_output: Tensor | None, guidance_scale: float | None,
                 domain_scale: float) -> tuple[Tensor, Tensor]:
    """Checks the arguments every discrete step shares; returns x_t and the (guided) model
    output in the arithmetic dtype."""
    x = check_sample(sample, op).to(arithmetic_dtype(sample.dtype))
    check_choice(prediction_type, PREDICTION_TYPES, op, "prediction_type")
    check_positive(domain_scale, op, "domain_scale")
    check_clip(clip_x0, op)
    batch = sample.shape[0]
    schedule.check_timesteps(t, batch, sample.device, op, "t")
    schedule.check_timesteps(t_prev, batch, sample.device, op, "t_prev", allow_clean=True)
    check_values(t_prev < t, t_prev, op, "t_prev", "be smaller than `t` per sample")
    check_guidance(uncond_output, guidance_scale, op)
    guided = _guided(op, sample, model_output, uncond_output, guidance_scale, x.dtype,
                     "model_output", "uncond_output")
    return x, guided


def _guided(op: str, sample: Tensor, cond: object, uncond: object, guidance_scale: float | None,
            dtype: torch.dtype, cond_arg: str, uncond_arg: str) -> Tensor:
    """The model output in `dtype`, with classifier-free guidance uncond + s (cond - uncond)
    when an unconditional output is given."""
    out = check_like(cond, sample, op, cond_arg).to(dtype)
    if uncond is None:
        return out
    base = check_like(uncond, sample, op, uncond_arg).to(dtype)
    return base + guidance_scale * (out - base)


def _predict_x0(x: Tensor, m: Tensor, g: Tensor, k: float, prediction_type: str) -> Tensor:
    """x_0 from the model output m at x_t = sqrt(g) x_0 + k sqrt(1-g) eps (module notes)."""
    sqrt_g, sqrt_1mg = _per_sample(g.sqrt(), x), _per_sample((1 - g).sqrt(), x)
    if prediction_type == "eps":
        return (x - k * sqrt_1mg * m) / sqrt_g
    if prediction_type == "x0":
        return m
    return sqrt_g * x - k * sqrt_1mg * m


def _predict_eps(x: Tensor, m: Tensor, g: Tensor, k: float, prediction_type: str) -> Tensor:
    """eps from the model output m at x_t = sqrt(g) x_0 + k sqrt(1-g) eps (module notes)."""
    sqrt_g, sqrt_1mg = _per_sample(g.sqrt(), x), _per_sample((1 - g).sqrt(), x)
    if prediction_type == "eps":
        return m
    if prediction_type == "x0":
        return (x - sqrt_g * m) / (k * sqrt_1mg)
    return sqrt_g * m + sqrt_1mg * x / k


def _clip(x0: Tensor, clip_x0: float | None) -> Tensor:
    return x0 if clip_x0 is None else x0.clamp(-clip_x0, clip_x0)


def _per_sample(coef: Tensor, like: Tensor) -> Tensor:
    """A (B,) float64 coefficient as a (B, 1, ..., 1) tensor in `like`'s dtype."""
    return coef.to(like.dtype).reshape(-1, *([1] * (like.dim() - 1)))


def _noise(op: str, noise: Tensor | None, generator: torch.Generator | None, shape: tuple[int, ...],
           like: Tensor) -> Tensor:
    """The given standard normal `noise` (checked against `shape`), else a fresh draw."""
    if noise is None:
        return torch.randn(shape, generator=generator, device=like.device, dtype=like.dtype)
    if generator is not None:
        raise ValueError(f"gddm.{op}: argument `generator` must be None when `noise` is given, got a generator")
    check_tensor(noise, op, "noise")
    if noise.shape != shape or noise.device != like.device:
        raise ValueError(
            f"gddm.{op}: argument `noise` must have shape {tuple(shape)} on {like.device}, "
            f"got shape {tuple(noise.shape)} on {noise.device}"
        )
    return noise
















