"""Public diffusion API: fused noise-add and reverse steps (torch.ops.gddm.add_noise /
diffusion_step underneath). Same signatures and maths as gddm_kernels.reference.diffusion
(the specification, see its module notes); here each call is one fused kernel:

* per-sample coefficients are formed from the schedule in float64 on the data's device (B
  numbers each, no host sync) and handed to the kernel in the arithmetic dtype (float32 for
  fp16/bf16/fp32 data, float64 for float64);
* noise is `noise=` or generated inside the kernel by counter-based Philox from a seed drawn
  with `generator` on the data's device (no host sync, CUDA-graph capturable, independent of
  block sizes; gddm_kernels.reference.random is its specification).

Both forward processes, `add_noise` (the schedule's x_t = sqrt(g) D(x0) + k sqrt(1-g) eps) and
`attenuation_add_noise` (Huang et al.'s F_t = (1 - t) D(x0) + k sqrt(t) eps), are the one
noise-add kernel x_t = a D(x0) + s eps with their own per-sample (a, s). Every step is the
generic affine update of reference/fused_diffusion.py; the functions below only say which
coefficients make it a DDPM, DDIM, DPM-Solver++(2M) or attenuation step.
"""

import torch
from torch import Tensor

from . import _fused_calls, ops
from ._diffusion_checks import (check_choice, check_clip, check_eta, check_forward, check_guidance, check_like,
                                check_pair, check_positive, check_sample, check_unit_times)
from ._diffusion_contract import (ATTENUATION_PREDICTION_CODES, ATTENUATION_PREDICTION_TYPES, DOMAIN_CODES,
                                  DOMAIN_SCALES, DOMAINS, NOISE_MODELS, PREDICTION_CODES, PREDICTION_TYPES,
                                  SAMPLER_CODES, STEP_COEFS, noise_shape)
from ._validation import arithmetic_dtype, check_tensor
from .dispatch import AUTO, compiled_fast_path
from .schedules import INTEGER_DTYPES, Schedule, check_per_sample, check_values, log_snr

__all__ = ["add_noise", "attenuation_add_noise", "ddpm_step", "ddim_step", "dpm_solver_2m_step", "attenuation_step",
           "ReverseTrajectory", "DOMAINS", "DOMAIN_SCALES", "NOISE_MODELS", "PREDICTION_TYPES",
           "ATTENUATION_PREDICTION_TYPES"]

SEED_HIGH = 2**62  # seeds are drawn uniformly from [0, SEED_HIGH)
NO_CLIP = 0.0


def _seed(generator: torch.Generator | None, device: torch.device) -> Tensor:
    """A (1,) int64 seed drawn on `device` from `generator` (or the device's default)."""
    return torch.randint(0, SEED_HIGH, (1,), generator=generator, device=device, dtype=torch.int64)


def _dense(t: Tensor | None, dtype: torch.dtype) -> Tensor | None:
    """t in `dtype` and contiguous, as the kernels read it (t itself when it already is: no op
    call); None stays None."""
    return t if t is None or (t.dtype == dtype and t.is_contiguous()) else t.to(dtype).contiguous()


def _checked_noise(op: str, noise: Tensor | None, generator: torch.Generator | None,
                   shape: tuple[int, ...] | None, like: Tensor) -> Tensor | None:
    """`noise` in like's dtype, checked (shape None: its shape and device are left to the
    compiled op, which checks them with the same message)."""
    if noise is None:
        return None
    if generator is not None:
        raise ValueError(f"gddm.{op}: argument `generator` must be None when `noise` is given, got a generator")
    check_tensor(noise, op, "noise")
    if shape is not None and (tuple(noise.shape) != tuple(shape) or noise.device != like.device):
        raise ValueError(f"gddm.{op}: argument `noise` must have shape {tuple(shape)} on {like.device}, "
                         f"got shape {tuple(noise.shape)} on {noise.device}")
    return _dense(noise, like.dtype)


def add_noise(x0: Tensor, t: Tensor, schedule: Schedule, domain: str = "image", noise_model: str = "paper",
              noise: Tensor | None = None, generator: torch.Generator | None = None, *, return_noise: bool = True,
              backend: str | None = None) -> tuple[Tensor, Tensor | None]:
    """Forward diffusion q(x_t | x_0) of a domain at per-sample timesteps, one fused pass:

        image      x_t = sqrt(g) x0 + sqrt(1-g) eps
        gradient   G_t = sqrt(g) gradient(x0) + sqrt(2 (1-g)) eps        (paper eq. 14)
        laplacian  L_t = sqrt(g) laplacian(x0) + sqrt(5 (1-g)) / 2 eps   (paper eq. 21)
        "exact"    x_t = D(sqrt(g) x0 + sqrt(1-g) eps), eps image-shaped (integrable field)

    Args: as gddm_kernels.reference.diffusion.add_noise, plus
        return_noise: with generated noise, also materialise and return it (the training
            target); False skips that write and returns None.
        backend: "reference", "cpu", "cuda", "triton" or None (context, GDDM_BACKEND, auto).
    Returns:
        (x_t, eps): x_t in x0's dtype ((B, ..., 2, H, W) in the gradient domain); eps the noise
        used (the given one, the generated one, or None when return_noise=False).
    Differentiable in x0.
    """
    op = "add_noise"
    check_forward(x0, domain, noise_model, op)
    if compiled_fast_path(backend, x0) is not None:
        return _compiled_add_noise(op, x0, schedule.gammas64, _times(t, x0, op, "t"), domain, noise_model, noise,
                                   generator, return_noise)
    t = schedule.check_timesteps(t, x0.shape[0], x0.device, op, "t")
    g = schedule.gamma(t)
    return _fused_add_noise(op, x0, g.sqrt(), (1 - g).sqrt(), domain, noise_model, noise, generator, return_noise,
                            backend)


def attenuation_add_noise(x0: Tensor, t: Tensor, domain: str = "image", noise_model: str = "paper",
                          noise: Tensor | None = None, generator: torch.Generator | None = None, *,
                          return_noise: bool = True, backend: str | None = None) -> tuple[Tensor, Tensor | None]:
    """Forward process of the analytic-attenuation model (Huang et al. Alg. 1, H_t = c t,
    c = -F0) at per-sample continuous times t (B,) in [0, 1], one fused pass (maths:
    reference.diffusion.attenuation_add_noise):

        F_t = (1 - t) D(x0) + k sqrt(t) eps                ("paper", k = DOMAIN_SCALES[domain])
        F_t = D((1 - t) x0 + sqrt(t) eps), eps image-shaped ("exact")

    i.e. torch.ops.gddm.add_noise with the per-sample coefficients [1 - t, k sqrt(t)].
    Args, returns and noise as `add_noise`, with `t` floating instead of a schedule's
    timesteps. Differentiable in x0.
    """
    op = "attenuation_add_noise"
    check_forward(x0, domain, noise_model, op)
    if compiled_fast_path(backend, x0) is not None:
        return _compiled_add_noise(op, x0, _NO_TABLE, _times(t, x0, op, "t", integer=False), domain, noise_model,
                                   noise, generator, return_noise)
    t64 = check_unit_times(t, x0, op).double()
    return _fused_add_noise(op, x0, 1 - t64, t64.sqrt(), domain, noise_model, noise, generator, return_noise,
                            backend)


_NO_TABLE = torch.empty(0, dtype=torch.float64)  # the attenuation process has no schedule table


def _compiled_add_noise(op: str, x0: Tensor, gammas: Tensor, t: Tensor, domain: str, noise_model: str,
                        noise: Tensor | None, generator: torch.Generator | None,
                        return_noise: bool) -> tuple[Tensor, Tensor | None]:
    """The noise-add on the compiled backend: coefficients, seed and kernel in one C++ op
    (csrc/sampler_ops.cpp), the checks of `t` (shape, device, range) included; (x_t, eps) as
    `add_noise`."""
    exact = noise_model == "exact"
    eps = _checked_noise(op, noise, generator, noise_shape(x0.shape, domain, exact), x0)
    scale = 1.0 if exact else DOMAIN_SCALES[domain]
    x_t, written = torch.ops.gddm_C.sampler_add_noise(x0.contiguous(), gammas, t, DOMAIN_CODES[domain], exact, scale,
                                                      eps, generator, return_noise)
    if eps is not None:
        return x_t, noise
    return x_t, written if return_noise else None


def _fused_add_noise(op: str, x0: Tensor, signal: Tensor, spread: Tensor, domain: str, noise_model: str,
                     noise: Tensor | None, generator: torch.Generator | None, return_noise: bool,
                     backend: str | None) -> tuple[Tensor, Tensor | None]:
    """x_t = a D(x0) + k s eps ("paper") or D(a x0 + s eps) ("exact") in one kernel, with the
    per-sample float64 coefficients a = `signal`, s = `spread` (B,); (x_t, eps) as `add_noise`."""
    exact = noise_model == "exact"
    eps = _checked_noise(op, noise, generator, noise_shape(x0.shape, domain, exact), x0)
    scale = 1.0 if exact else DOMAIN_SCALES[domain]
    coefs = torch.stack([signal, scale * spread], dim=1).to(arithmetic_dtype(x0.dtype))
    seed = _seed(generator, x0.device) if eps is None else None
    x_t, written = ops.add_noise(x0.contiguous(), coefs, domain, exact, eps, seed, return_noise, backend or AUTO)
    if eps is not None:
        return x_t, noise
    return x_t, written if return_noise else None


# ---- reverse steps ------------------------------------------------------------------------------

def _prediction_coefs(g: Tensor, k: float, prediction_type: str) -> dict[str, Tensor]:
    """a0, a1 (x0 from x and m) and e0, e1 (eps from x and m) for a prediction type."""
    sg, s1g = g.sqrt(), (1 - g).sqrt()
    one, zero = torch.ones_like(g), torch.zeros_like(g)
    if prediction_type == "eps":
        return {"a0": 1 / sg, "a1": -k * s1g / sg, "e0": zero, "e1": one}
    if prediction_type == "x0":
        return {"a0": zero, "a1": one, "e0": 1 / (k * s1g), "e1": -sg / (k * s1g)}
    return {"a0": sg, "a1": -k * s1g, "e0": s1g / k, "e1": sg}


def _coef_table(coefs: dict[str, Tensor]) -> Tensor:
    """The named coefficients (float64, all of one shape S: (B,) for a step, (steps, B) for a
    trajectory; missing ones are 0) as the kernel's table (*S, len(STEP_COEFS)), float64."""
    shape = torch.broadcast_shapes(*(value.shape for value in coefs.values()))
    first = next(iter(coefs.values()))
    zero = torch.zeros(shape, dtype=torch.float64, device=first.device)
    return torch.stack([coefs[name].expand(shape) if name in coefs else zero for name in STEP_COEFS], dim=-1)


def _launch(op: str, sample: Tensor, model_output: Tensor, table: Tensor, *, uncond_output: Tensor | None = None,
            guidance_scale: float | None = None, m2: Tensor | None = None, m2_uncond: Tensor | None = None,
            prev_x0: Tensor | None = None, clip_x0: float | None = None, noise: Tensor | None = None,
            generator: torch.Generator | None = None, draws_noise: bool = False, write_x0: bool = False,
            backend: str | None = None) -> tuple[Tensor, Tensor]:
    """One fused step with the coefficient table (B, len(STEP_COEFS)) of `_coef_table`."""
    z = _checked_noise(op, noise, generator, tuple(sample.shape), sample) if draws_noise else None
    seed = _seed(generator, sample.device) if draws_noise and z is None else None
    dtype = sample.dtype
    return _fused_calls.diffusion_step(
        sample.contiguous(), _dense(model_output, dtype), _dense(uncond_output, dtype), _dense(m2, dtype),
        _dense(m2_uncond, dtype), _dense(prev_x0, dtype), _dense(table, arithmetic_dtype(dtype)),
        float(guidance_scale or 0.0), float(clip_x0 or NO_CLIP), z, seed, write_x0, backend)


def _check_step(op: str, sample: Tensor, model_output: Tensor, t: Tensor, t_prev: Tensor, schedule: Schedule,
                prediction_type: str, clip_x0: float | None, uncond_output: Tensor | None,
                guidance_scale: float | None, domain_scale: float) -> tuple[Tensor, Tensor]:
    """The checks every schedule step shares off the compiled fast path; returns (t, t_prev) as
    int64."""
    check_sample(sample, op)
    check_like(model_output, sample, op, "model_output")
    check_choice(prediction_type, PREDICTION_TYPES, op, "prediction_type")
    check_positive(domain_scale, op, "domain_scale")
    check_clip(clip_x0, op)
    check_guidance(uncond_output, guidance_scale, op)
    if uncond_output is not None:
        check_like(uncond_output, sample, op, "uncond_output")
    batch = sample.shape[0]
    t = schedule.check_timesteps(t, batch, sample.device, op, "t")
    t_prev = schedule.check_timesteps(t_prev, batch, sample.device, op, "t_prev", allow_clean=True)
    check_values(t_prev < t, t_prev, op, "t_prev", "be smaller than `t` per sample")
    return t, t_prev


def _times(t: object, sample: Tensor, op: str, arg: str, integer: bool = True) -> Tensor:
    """Per-sample times for the compiled op: a tensor of the right kind of dtype (int64
    timesteps or floating times) goes on as it is, its shape, device and values checked by the
    op; anything else through check_per_sample (errors, integer dtypes converted to int64)."""
    if isinstance(t, Tensor) and (t.dtype is torch.int64 if integer else t.dtype.is_floating_point):
        return t
    return check_per_sample(t, check_sample(sample, op).shape[0], sample.device, op, arg, integer=integer)


def _tensor(x: Tensor | None, sample: Tensor, op: str, arg: str) -> Tensor | None:
    """A given model output (or previous x0) for the compiled op: a floating tensor, in the
    sample's dtype; its shape and device are checked by the op."""
    return None if x is None else _dense(check_tensor(x, op, arg), sample.dtype)


def _compiled_step(op: str, sampler: str, sample: Tensor, model_output: Tensor, gammas: Tensor, t: Tensor,
                   t_prev: Tensor, *, prediction_type: str, domain_scale: float, eta: float = 0.0,
                   clip_x0: float | None = None, t_last: Tensor | None = None, uncond_output: Tensor | None = None,
                   guidance_scale: float | None = None, m2: Tensor | None = None, m2_uncond: Tensor | None = None,
                   prev_x0: Tensor | None = None, noise: Tensor | None = None,
                   generator: torch.Generator | None = None, draws_noise: bool = False,
                   write_x0: bool = False) -> tuple[Tensor, Tensor]:
    """One step on the compiled backend (`sample` a floating tensor, as compiled_fast_path
    found it): the scalar arguments and the tensors' types are checked here; the tensors'
    shapes and devices, the times' ranges, the coefficients (from the gamma table), the seed
    and the kernel are one C++ op (csrc/sampler_ops.cpp, csrc/sampler_checks.h), with the same
    messages as the checks off this path."""
    attenuation = sampler == "attenuation"
    codes = ATTENUATION_PREDICTION_CODES if attenuation else PREDICTION_CODES
    if prediction_type not in codes:
        check_choice(prediction_type, tuple(codes), op, "prediction_type")
    check_positive(domain_scale, op, "domain_scale")
    check_clip(clip_x0, op)
    check_guidance(uncond_output, guidance_scale, op)
    m_name, u_name = ("model_output[0]", "uncond_output[0]") if attenuation else ("model_output", "uncond_output")
    z = _checked_noise(op, noise, generator, None, sample) if draws_noise else None
    return torch.ops.gddm_C.sampler_step(
        sample.contiguous(), _tensor(model_output, sample, op, m_name), _tensor(uncond_output, sample, op, u_name),
        _tensor(m2, sample, op, "model_output[1]"), _tensor(m2_uncond, sample, op, "uncond_output[1]"),
        _tensor(prev_x0, sample, op, "prev_x0"), gammas, _times(t, sample, op, "t", not attenuation),
        _times(t_prev, sample, op, "t_prev", not attenuation),
        None if t_last is None else _times(t_last, sample, op, "t_last"), SAMPLER_CODES[sampler],
        codes[prediction_type], float(eta), float(domain_scale), float(guidance_scale or 0.0),
        float(clip_x0 or NO_CLIP), z, generator, draws_noise, write_x0)


def ddpm_step(sample: Tensor, model_output: Tensor, t: Tensor, t_prev: Tensor, schedule: Schedule, *,
              prediction_type: str = "eps", clip_x0: float | None = None, uncond_output: Tensor | None = None,
              guidance_scale: float | None = None, noise: Tensor | None = None,
              generator: torch.Generator | None = None, domain_scale: float = 1.0,
              backend: str | None = None) -> Tensor:
    """Ancestral DDPM step x_t -> x_{t_prev} in one kernel (maths: reference.diffusion.ddpm_step):
    x_{t_prev} = c_x0 x_0 + c_xt x_t + k sqrt(var) z, no noise where t == 0."""
    op = "ddpm_step"
    if compiled_fast_path(backend, sample) is not None:
        out, _ = _compiled_step(op, "ddpm", sample, model_output, schedule.gammas64, t, t_prev,
                                prediction_type=prediction_type, domain_scale=domain_scale, clip_x0=clip_x0,
                                uncond_output=uncond_output, guidance_scale=guidance_scale, noise=noise,
                                generator=generator, draws_noise=True)
        return out
    t, t_prev = _check_step(op, sample, model_output, t, t_prev, schedule, prediction_type, clip_x0, uncond_output,
                            guidance_scale, domain_scale)
    out, _ = _launch(op, sample, model_output, _coef_table(_ddpm_coefs(t, t_prev, schedule, domain_scale,
                                                                        prediction_type)),
                     uncond_output=uncond_output, guidance_scale=guidance_scale, clip_x0=clip_x0, noise=noise,
                     generator=generator, draws_noise=True, backend=backend)
    return out


def _ddpm_coefs(t: Tensor, t_prev: Tensor, schedule: Schedule, k: float, prediction_type: str) -> dict[str, Tensor]:
    """DDPM's coefficients for timesteps t, t_prev of any (same) shape."""
    g, g_prev = schedule.gamma(t), schedule.gamma(t_prev)
    b = 1 - g / g_prev
    coefs = _prediction_coefs(g, k, prediction_type)
    coefs.update(c0=(1 - b).sqrt() * (1 - g_prev) / (1 - g), c1=g_prev.sqrt() * b / (1 - g),
                 c3=torch.where(t > 0, k * ((1 - g_prev) / (1 - g) * b).sqrt(), 0.0))
    return coefs


def ddim_step(sample: Tensor, model_output: Tensor, t: Tensor, t_prev: Tensor, schedule: Schedule, *,
              eta: float = 0.0, prediction_type: str = "eps", clip_x0: float | None = None,
              uncond_output: Tensor | None = None, guidance_scale: float | None = None, noise: Tensor | None = None,
              generator: torch.Generator | None = None, domain_scale: float = 1.0,
              backend: str | None = None) -> Tensor:
    """DDIM step in one kernel (maths: reference.diffusion.ddim_step):
    x_{t_prev} = sqrt(g') x_0 + k sqrt(1 - g' - sigma^2) eps + k sigma z."""
    op = "ddim_step"
    check_eta(eta, op)
    if compiled_fast_path(backend, sample) is not None:
        out, _ = _compiled_step(op, "ddim", sample, model_output, schedule.gammas64, t, t_prev,
                                prediction_type=prediction_type, domain_scale=domain_scale, eta=eta, clip_x0=clip_x0,
                                uncond_output=uncond_output, guidance_scale=guidance_scale, noise=noise,
                                generator=generator, draws_noise=eta > 0)
        return out
    t, t_prev = _check_step(op, sample, model_output, t, t_prev, schedule, prediction_type, clip_x0, uncond_output,
                            guidance_scale, domain_scale)
    table = _coef_table(_ddim_coefs(t, t_prev, schedule, eta, domain_scale, prediction_type, clip_x0))
    out, _ = _launch(op, sample, model_output, table, uncond_output=uncond_output, guidance_scale=guidance_scale,
                     clip_x0=clip_x0, noise=noise, generator=generator, draws_noise=eta > 0, backend=backend)
    return out


def _ddim_coefs(t: Tensor, t_prev: Tensor, schedule: Schedule, eta: float, k: float, prediction_type: str,
                clip_x0: float | None) -> dict[str, Tensor]:
    """DDIM's coefficients for timesteps t, t_prev of any (same) shape."""
    g, g_prev = schedule.gamma(t), schedule.gamma(t_prev)
    sigma = eta * ((1 - g_prev) / (1 - g) * (1 - g / g_prev)).sqrt()
    coefs = _prediction_coefs(g, k, prediction_type)
    if clip_x0 is not None:  # eps re-derived from the clamped x0
        coefs.update(e0=1 / (k * (1 - g).sqrt()), e1=torch.zeros_like(g), e2=-g.sqrt() / (k * (1 - g).sqrt()))
    coefs.update(c1=g_prev.sqrt(), c2=k * (1 - g_prev - sigma**2).clamp(min=0).sqrt(), c3=k * sigma)
    return coefs


def dpm_solver_2m_step(sample: Tensor, model_output: Tensor, t: Tensor, t_prev: Tensor, schedule: Schedule, *,
                       prev_x0: Tensor | None = None, t_last: Tensor | None = None, prediction_type: str = "eps",
                       clip_x0: float | None = None, uncond_output: Tensor | None = None,
                       guidance_scale: float | None = None, domain_scale: float = 1.0,
                       backend: str | None = None) -> tuple[Tensor, Tensor]:
    """DPM-Solver++(2M) step in one kernel (maths: reference.diffusion.dpm_solver_2m_step):
    x_{t_prev} = (sigma'/sigma) x_t - alpha' (exp(-h) - 1) D. Returns (x_{t_prev}, x_0)."""
    op = "dpm_solver_2m_step"
    if (prev_x0 is None) != (t_last is None):
        raise ValueError(f"gddm.{op}: arguments `prev_x0` and `t_last` must be given together (second order) "
                         "or both omitted (first order)")
    if compiled_fast_path(backend, sample) is not None:
        return _compiled_step(op, "dpm", sample, model_output, schedule.gammas64, t, t_prev,
                              prediction_type=prediction_type, domain_scale=domain_scale, clip_x0=clip_x0,
                              t_last=t_last, uncond_output=uncond_output, guidance_scale=guidance_scale,
                              prev_x0=prev_x0, write_x0=True)
    t, t_prev = _check_step(op, sample, model_output, t, t_prev, schedule, prediction_type, clip_x0, uncond_output,
                            guidance_scale, domain_scale)
    if prev_x0 is not None:
        check_like(prev_x0, sample, op, "prev_x0")
        t_last = schedule.check_timesteps(t_last, sample.shape[0], sample.device, op, "t_last")
        check_values(t_last > t, t_last, op, "t_last", "be larger than `t` per sample")
    table = _coef_table(_dpm_coefs(t, t_prev, t_last, schedule, domain_scale, prediction_type))
    return _launch(op, sample, model_output, table, uncond_output=uncond_output, guidance_scale=guidance_scale,
                   prev_x0=prev_x0, clip_x0=clip_x0, write_x0=True, backend=backend)


def _dpm_coefs(t: Tensor, t_prev: Tensor, t_last: Tensor | None, schedule: Schedule, k: float,
               prediction_type: str) -> dict[str, Tensor]:
    """DPM-Solver++(2M)'s coefficients for timesteps of any (same) shape; first order (r = 0)
    without `t_last`."""
    g, g_prev = schedule.gamma(t), schedule.gamma(t_prev)
    h = log_snr(g_prev) - log_snr(g)
    coefs = _prediction_coefs(g, k, prediction_type)
    if t_last is not None:
        h_last = log_snr(g) - log_snr(schedule.gamma(t_last))
        coefs["r"] = torch.where(t_prev >= 0, h / (2 * h_last), 0.0)
    coefs.update(c0=(1 - g_prev).sqrt() / (1 - g).sqrt(), c1=-g_prev.sqrt() * torch.expm1(-h))
    return coefs


def attenuation_step(sample: Tensor, model_output: tuple[Tensor, Tensor], t: Tensor, t_prev: Tensor, *,
                     prediction_type: str = "c", eta: float = 1.0, clip_x0: float | None = None,
                     uncond_output: tuple[Tensor, Tensor] | None = None, guidance_scale: float | None = None,
                     noise: Tensor | None = None, generator: torch.Generator | None = None,
                     domain_scale: float = 1.0, backend: str | None = None) -> Tensor:
    """Analytic-attenuation step (Huang et al. Alg. 2, H_t = c t) in one kernel (maths:
    reference.diffusion.attenuation_step): x_{t_prev} = x_t - c s - k (sqrt(t) - sqrt(t_prev -
    sigma^2)) eps + k sigma z, sigma = eta sqrt(s (t - s) / t), s = t - t_prev."""
    op = "attenuation_step"
    check_eta(eta, op)
    if compiled_fast_path(backend, sample) is not None:
        attenuation, eps = check_pair(model_output, op, "model_output")
        unconds = (None, None) if uncond_output is None else check_pair(uncond_output, op, "uncond_output")
        out, _ = _compiled_step(op, "attenuation", sample, attenuation, _NO_TABLE, t, t_prev,
                                prediction_type=prediction_type, domain_scale=domain_scale, eta=eta, clip_x0=clip_x0,
                                uncond_output=unconds[0], guidance_scale=guidance_scale, m2=eps,
                                m2_uncond=unconds[1], noise=noise, generator=generator, draws_noise=eta > 0)
        return out
    check_choice(prediction_type, ATTENUATION_PREDICTION_TYPES, op, "prediction_type")
    check_positive(domain_scale, op, "domain_scale")
    check_clip(clip_x0, op)
    check_guidance(uncond_output, guidance_scale, op)
    (attenuation, eps), unconds = _attenuation_outputs(sample, model_output, uncond_output, op)
    batch = sample.shape[0]
    check_per_sample(t, batch, sample.device, op, "t", integer=False)
    check_per_sample(t_prev, batch, sample.device, op, "t_prev", integer=False)
    check_values((t > 0) & (t <= 1), t, op, "t", "lie in (0, 1]")
    check_values((t_prev >= 0) & (t_prev < t), t_prev, op, "t_prev", "lie in [0, t) per sample")
    out, _ = _launch(op, sample, attenuation, _coef_table(_attenuation_coefs(t, t_prev, eta, domain_scale,
                                                                           prediction_type)),
                     uncond_output=unconds[0], guidance_scale=guidance_scale, m2=eps, m2_uncond=unconds[1],
                     clip_x0=clip_x0, noise=noise, generator=generator, draws_noise=eta > 0, backend=backend)
    return out


def _attenuation_outputs(sample: Tensor, model_output: object, uncond_output: object,
                         op: str) -> tuple[tuple[Tensor, Tensor], tuple[Tensor | None, Tensor | None]]:
    """The checked (attenuation, eps) pair and its unconditional twin ((None, None) if absent)."""
    check_sample(sample, op)
    conds = check_pair(model_output, op, "model_output")
    unconds = (None, None) if uncond_output is None else check_pair(uncond_output, op, "uncond_output")
    for i, tensor in enumerate((*conds, *[u for u in unconds if u is not None])):
        check_like(tensor, sample, op, "model_output" if i < 2 else "uncond_output")
    return conds, unconds


def _attenuation_coefs(t: Tensor, t_prev: Tensor, eta: float, k: float, prediction_type: str) -> dict[str, Tensor]:
    """The attenuation step's coefficients for times t, t_prev of any (same) shape."""
    t64, t_prev64 = t.double(), t_prev.double()
    s = t64 - t_prev64
    sigma = eta * (s * t_prev64 / t64).sqrt()
    one = torch.ones_like(t64)
    return {"a1": -one if prediction_type == "c" else one, "e3": one, "c0": one, "c1": s,
            "c2": -k * (t64.sqrt() - (t_prev64 - sigma**2).clamp(min=0).sqrt()), "c3": k * sigma}


# ---- whole trajectories -------------------------------------------------------------------------

TRAJECTORY_SAMPLERS = ("ddpm", "ddim", "dpm", "attenuation")


class ReverseTrajectory:
    """A sampler loop's steps with every coefficient computed once, up front.

    The step functions above form their per-sample coefficients from the schedule on every call
    (some twenty small tensor ops); over a whole trajectory that costs more than the fused
    kernel itself at small sizes. Here the coefficient table of all steps, (steps, B, 11)
    float64 on the times' device, is built in one go from the same formulas (`_ddpm_coefs`,
    ...), the times are checked once, and `step(i, ...)` is one fused kernel: the same result as
    the step function of `sampler` at (times[i], times[i + 1]), noise drawn the same way.

    Args:
        sampler: "ddpm", "ddim", "dpm" (DPM-Solver++(2M): first order on step 0, second order
            after) or "attenuation".
        times: (steps + 1, B) on the data's device: integer timesteps of `schedule`, strictly
            decreasing per sample down to -1 (the clean sample) or any t_prev >= 0 for the
            schedule's samplers; floating times in (0, 1] decreasing to >= 0 for "attenuation".
        schedule: the Schedule (None for "attenuation").
        eta, prediction_type, clip_x0, domain_scale: as the step functions (prediction_type None:
            "eps", or "c" for "attenuation").
    """

    def __init__(self, sampler: str, times: Tensor, schedule: Schedule | None = None, *, eta: float = 0.0,
                 prediction_type: str | None = None, clip_x0: float | None = None, domain_scale: float = 1.0) -> None:
        op = "ReverseTrajectory"
        check_choice(sampler, TRAJECTORY_SAMPLERS, op, "sampler")
        attenuation = sampler == "attenuation"
        prediction_type = prediction_type or ("c" if attenuation else "eps")
        check_choice(prediction_type, ATTENUATION_PREDICTION_TYPES if attenuation else PREDICTION_TYPES, op,
                      "prediction_type")
        check_eta(eta, op)
        check_positive(domain_scale, op, "domain_scale")
        check_clip(clip_x0, op)
        if not isinstance(times, Tensor) or times.dim() != 2 or times.shape[0] < 2:
            raise ValueError(f"gddm.{op}: argument `times` must be a (steps + 1, B) tensor with steps >= 1, got "
                             f"{tuple(times.shape) if isinstance(times, Tensor) else type(times).__name__}")
        t, t_prev = times[:-1], times[1:]
        if attenuation:
            if schedule is not None:
                raise ValueError(f"gddm.{op}: the attenuation sampler takes no `schedule`, got one")
            if not times.dtype.is_floating_point:
                raise TypeError(f"gddm.{op}: argument `times` must be floating for 'attenuation', got {times.dtype}")
            check_values((t > 0) & (t <= 1), t, op, "times", "lie in (0, 1] before the last row")
            check_values((t_prev >= 0) & (t_prev < t), t_prev, op, "times", "decrease per sample to >= 0")
            coefs = _attenuation_coefs(t, t_prev, eta, domain_scale, prediction_type)
        else:
            if not isinstance(schedule, Schedule):
                raise TypeError(f"gddm.{op}: sampler {sampler!r} needs a `schedule`, got {type(schedule).__name__}")
            if times.dtype not in INTEGER_DTYPES or times.device != schedule.device:
                raise ValueError(f"gddm.{op}: argument `times` must hold integer timesteps on the schedule's device "
                                 f"{schedule.device}, got {times.dtype} on {times.device}")
            times = times.long()  # one conversion: uint8 would index as a mask and wrap below 0
            t, t_prev = times[:-1], times[1:]
            T = schedule.num_timesteps
            check_values((t >= 0) & (t < T), t, op, "times", f"lie in [0, {T}) before the last row")
            check_values((t_prev >= -1) & (t_prev < t), t_prev, op, "times", "decrease strictly per sample to >= -1")
            if sampler == "ddpm":
                coefs = _ddpm_coefs(t, t_prev, schedule, domain_scale, prediction_type)
            elif sampler == "ddim":
                coefs = _ddim_coefs(t, t_prev, schedule, eta, domain_scale, prediction_type, clip_x0)
            else:  # step i > 0 extrapolates from step i - 1 (t_last = times[i - 1]); step 0 is first
                # order: its row gets a stand-in t_last and then r = 0
                coefs = _dpm_coefs(t, t_prev, torch.cat([t[:1], t[:-1]]), schedule, domain_scale, prediction_type)
                coefs["r"] = torch.cat([torch.zeros_like(coefs["r"][:1]), coefs["r"][1:]])
        self.sampler, self.eta, self.clip_x0 = sampler, eta, clip_x0
        self.steps = times.shape[0] - 1
        self.table = _coef_table(coefs)
        self._batch, self._device = self.table.shape[1], self.table.device
        self._step_name = f"ReverseTrajectory.step ({sampler})"
        self._draws_noise = sampler == "ddpm" or (sampler != "dpm" and eta > 0)
        self._kernel_rows: dict[torch.dtype, list[Tensor]] = {}

    def _kernel_row(self, i: int, dtype: torch.dtype) -> Tensor:
        """Step i's rows of `table` in the kernels' arithmetic dtype for samples of `dtype`: the
        whole table converted once, and split into its steps' (B, 11) rows once (indexing a
        tensor on every step would cost a tensor op)."""
        arithmetic = arithmetic_dtype(dtype)
        rows = self._kernel_rows.get(arithmetic)
        if rows is None:
            rows = self._kernel_rows[arithmetic] = list(self.table.to(arithmetic).unbind(0))
        return rows[i]

    def step(self, i: int, sample: Tensor, model_output: Tensor | tuple[Tensor, Tensor], *,
             prev_x0: Tensor | None = None, uncond_output: Tensor | tuple[Tensor, Tensor] | None = None,
             guidance_scale: float | None = None, noise: Tensor | None = None,
             generator: torch.Generator | None = None, backend: str | None = None) -> Tensor | tuple[Tensor, Tensor]:
        """Step i (times[i] -> times[i + 1]) in one kernel. `model_output` (and `uncond_output`
        with `guidance_scale`) is (c, eps) for "attenuation"; "dpm" takes the previous step's x0
        as `prev_x0` (None on step 0) and returns (x_prev, x0); the others return x_prev."""
        op = self._step_name
        if not 0 <= i < self.steps:
            raise ValueError(f"gddm.{op}: argument `i` must lie in [0, {self.steps}), got {i}")
        check_sample(sample, op)
        check_guidance(uncond_output, guidance_scale, op)
        if sample.shape[0] != self._batch or sample.device != self._device:
            raise ValueError(f"gddm.{op}: `sample` must have B = {self._batch} samples on {self._device}, got "
                             f"shape {tuple(sample.shape)} on {sample.device}")
        table = self._kernel_row(i, sample.dtype)
        m2 = m2_uncond = None
        if self.sampler == "attenuation":
            (model_output, m2), (uncond_output, m2_uncond) = _attenuation_outputs(sample, model_output,
                                                                                  uncond_output, op)
        else:
            check_like(model_output, sample, op, "model_output")
            if uncond_output is not None:
                check_like(uncond_output, sample, op, "uncond_output")
        if self.sampler == "dpm":
            if (prev_x0 is None) != (i == 0):
                raise ValueError(f"gddm.{op}: argument `prev_x0` must be None on step 0 and the previous step's "
                                 f"x0 after it, got {'None' if prev_x0 is None else 'a tensor'} on step {i}")
            if prev_x0 is not None:
                check_like(prev_x0, sample, op, "prev_x0")
            return _launch(op, sample, model_output, table, uncond_output=uncond_output,
                           guidance_scale=guidance_scale, prev_x0=prev_x0, clip_x0=self.clip_x0, write_x0=True,
                           backend=backend)
        out, _ = _launch(op, sample, model_output, table, uncond_output=uncond_output, guidance_scale=guidance_scale,
                         m2=m2, m2_uncond=m2_uncond, clip_x0=self.clip_x0, noise=noise, generator=generator,
                         draws_noise=self._draws_noise, backend=backend)
        return out
