"""Argument checks of the diffusion API, shared by the fused functions (gddm_kernels.diffusion)
and the reference (gddm_kernels.reference.diffusion). Each names the op and the argument and
says what was expected; they run before any kernel."""

from torch import Tensor

from ._diffusion_contract import DOMAINS, NOISE_MODELS
from ._validation import check_image, check_tensor
from .schedules import check_per_sample, check_values


def check_forward(x0: object, domain: object, noise_model: object, op: str) -> None:
    """Arguments every forward process shares: images x0 (B, ..., H, W) with at least 3 dims,
    a known domain and noise model."""
    check_image(x0, op, "x0")
    if x0.dim() < 3:
        raise ValueError(
            f"gddm.{op}: argument `x0` must have shape (B, ..., H, W) with at least 3 dims, "
            f"got shape {tuple(x0.shape)}"
        )
    check_choice(domain, DOMAINS, op, "domain")
    check_choice(noise_model, NOISE_MODELS, op, "noise_model")


def check_unit_times(t: object, x0: Tensor, op: str) -> Tensor:
    """`t` is a (B,) floating tensor on x0's device with values in [0, 1]."""
    t = check_per_sample(t, x0.shape[0], x0.device, op, "t", integer=False)
    check_values((t >= 0) & (t <= 1), t, op, "t", "lie in [0, 1]")
    return t


def check_sample(sample: object, op: str) -> Tensor:
    """`sample` is a floating (B, ...) tensor with at least one dim (the batch)."""
    sample = check_tensor(sample, op, "sample")
    if sample.dim() < 1:
        raise ValueError(f"gddm.{op}: argument `sample` must have shape (B, ...), got a 0-dim tensor")
    return sample


def check_like(x: object, sample: Tensor, op: str, arg: str) -> Tensor:
    """`x` is a floating tensor of the sample's shape on its device."""
    x = check_tensor(x, op, arg)
    if x.shape != sample.shape or x.device != sample.device:
        raise ValueError(
            f"gddm.{op}: argument `{arg}` must have the shape of `sample` {tuple(sample.shape)} on "
            f"{sample.device}, got shape {tuple(x.shape)} on {x.device}"
        )
    return x


def check_pair(pair: object, op: str, arg: str) -> tuple[object, object]:
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise TypeError(
            f"gddm.{op}: argument `{arg}` must be a pair (attenuation, eps) of tensors, got {describe(pair)}"
        )
    return pair[0], pair[1]


def check_guidance(uncond_output: object, guidance_scale: object, op: str) -> None:
    if (uncond_output is None) != (guidance_scale is None):
        raise ValueError(
            f"gddm.{op}: arguments `uncond_output` and `guidance_scale` must be given together "
            f"(classifier-free guidance) or both omitted, got uncond_output={describe(uncond_output)}, "
            f"guidance_scale={guidance_scale!r}"
        )
    if guidance_scale is not None and (isinstance(guidance_scale, bool)
                                       or not isinstance(guidance_scale, (int, float))):
        raise TypeError(
            f"gddm.{op}: argument `guidance_scale` must be a float, got {type(guidance_scale).__name__}"
        )


def check_choice(value: object, choices: tuple[str, ...], op: str, arg: str) -> None:
    if value not in choices:
        raise ValueError(
            f"gddm.{op}: argument `{arg}` must be one of {', '.join(map(repr, choices))}, got {value!r}"
        )


def check_positive(value: object, op: str, arg: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"gddm.{op}: argument `{arg}` must be a positive float, got {value!r}")


def check_clip(clip_x0: object, op: str) -> None:
    if clip_x0 is not None:
        check_positive(clip_x0, op, "clip_x0")


def describe(x: object) -> str:
    """A short description of an argument for error messages (no tensor contents)."""
    if isinstance(x, Tensor):
        return f"a tensor of shape {tuple(x.shape)}"
    if isinstance(x, (tuple, list)):
        return f"a {type(x).__name__} of length {len(x)}"
    return repr(x)


def check_eta(eta: object, op: str) -> None:
    """`eta` (the share of fresh noise in a step) is a number in [0, 1]."""
    if isinstance(eta, bool) or not isinstance(eta, (int, float)) or not 0.0 <= eta <= 1.0:
        raise ValueError(f"gddm.{op}: argument `eta` must lie in [0, 1], got {eta!r}")
