"""Argument checks of the op layer. They run before any kernel, on real and fake tensors
alike, and name the op, the argument and what was expected.

NaN/Inf policy for the stencils: non-finite values propagate like in any linear stencil
(they are not checked, which would cost a pass over the data)."""

import torch
from torch import Tensor

from ._diffusion_contract import DOMAINS, STEP_COEFS, noise_shape

FLOATING_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def check_tensor(x: object, op: str, arg: str) -> Tensor:
    """`x` is a floating-point tensor (fp16, bf16, fp32 or fp64)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"gddm.{op}: argument `{arg}` must be a torch.Tensor, got {type(x).__name__}")
    if x.dtype not in FLOATING_DTYPES:
        raise TypeError(
            f"gddm.{op}: argument `{arg}` must have a floating dtype (float16, bfloat16, float32 "
            f"or float64), got {x.dtype}"
        )
    return x


def check_image(x: object, op: str, arg: str = "x") -> Tensor:
    """`x` is a batch of images of shape (..., H, W)."""
    x = check_tensor(x, op, arg)
    if x.dim() < 2:
        raise ValueError(
            f"gddm.{op}: argument `{arg}` must have shape (..., H, W) with at least 2 dims, "
            f"got shape {tuple(x.shape)}"
        )
    return x


def check_field(g: object, op: str, arg: str = "g") -> Tensor:
    """`g` is a batch of gradient fields of shape (..., 2, H, W)."""
    g = check_tensor(g, op, arg)
    if g.dim() < 3 or g.shape[-3] != 2:
        raise ValueError(
            f"gddm.{op}: argument `{arg}` must be a gradient field of shape (..., 2, H, W) "
            f"(component dim -3 of size 2), got shape {tuple(g.shape)}"
        )
    return g


MULTIGRID_CYCLES = ("V", "FMG")
MAX_MULTIGRID_CYCLES = 10_000  # far past any useful count (a cycle gains ~10x); bounds the history


def check_multigrid_args(f: object, x0: object, tol: object, max_cycles: object, cycle: object) -> None:
    """Arguments of the multigrid solve: images f, an optional initial guess of f's shape,
    dtype class and device, tol > 0, max_cycles >= 1, a known cycle type."""
    op = "poisson_solve"
    f = check_image(f, op, "f")
    if x0 is not None:
        x0 = check_image(x0, op, "x0")
        if x0.shape != f.shape or x0.device != f.device:
            raise ValueError(
                f"gddm.{op}: argument `x0` must match `f` in shape and device, got {tuple(x0.shape)} on "
                f"{x0.device} for f {tuple(f.shape)} on {f.device}"
            )
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not tol > 0:
        raise ValueError(f"gddm.{op}: argument `tol` must be a number > 0, got {tol!r}")
    if isinstance(max_cycles, bool) or not isinstance(max_cycles, int) or not 1 <= max_cycles <= MAX_MULTIGRID_CYCLES:
        raise ValueError(f"gddm.{op}: argument `max_cycles` must be an integer >= 1 and <= {MAX_MULTIGRID_CYCLES}, "
                         f"got {max_cycles!r}")
    if cycle not in MULTIGRID_CYCLES:
        raise ValueError(f"gddm.{op}: argument `cycle` must be one of {MULTIGRID_CYCLES}, got {cycle!r}")


def arithmetic_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype the kernels compute in for data of `dtype`: float64 for float64, float32 for
    float32, float16 and bfloat16 (which are read and written in their own dtype)."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _check_coefs(coefs: object, x: Tensor, columns: int, op: str) -> None:
    coefs = check_tensor(coefs, op, "coefs")
    expected = arithmetic_dtype(x.dtype)
    if coefs.dim() != 2 or coefs.shape != (x.shape[0], columns) or coefs.dtype != expected or coefs.device != x.device:
        raise ValueError(
            f"gddm.{op}: argument `coefs` must be a ({x.shape[0]}, {columns}) {expected} tensor on {x.device} "
            f"(one row per sample), got shape {tuple(coefs.shape)}, {coefs.dtype} on {coefs.device}")


def _check_same(t: object, x: Tensor, shape: tuple[int, ...], op: str, arg: str) -> None:
    if t is None:
        return
    t = check_tensor(t, op, arg)
    if tuple(t.shape) != tuple(shape) or t.dtype != x.dtype or t.device != x.device:
        raise ValueError(
            f"gddm.{op}: argument `{arg}` must be a tensor of shape {tuple(shape)}, {x.dtype} on {x.device}, "
            f"got shape {tuple(t.shape)}, {t.dtype} on {t.device}")


def _check_seed(seed: object, x: Tensor, op: str) -> None:
    if seed is None:
        return
    if not isinstance(seed, Tensor):
        raise TypeError(f"gddm.{op}: argument `seed` must be a torch.Tensor, got {type(seed).__name__}")
    if seed.dtype != torch.int64 or seed.numel() != 1 or seed.device != x.device:
        raise ValueError(f"gddm.{op}: argument `seed` must be a one-element int64 tensor on {x.device}, got "
                         f"shape {tuple(seed.shape)}, {seed.dtype} on {seed.device}")


def check_add_noise_args(x0: object, coefs: object, domain: object, exact: bool, noise: object,
                         seed: object) -> Tensor:
    """The fused noise-add's arguments (every backend accepts exactly these, in any layout):
    images x0 (B, ..., H, W), coefs (B, 2) in the arithmetic dtype, a known domain, exactly one
    of `noise` (the noise's shape, x0's dtype) and `seed`."""
    op = "add_noise"
    x0 = check_image(x0, op, "x0")
    if x0.dim() < 3:
        raise ValueError(f"gddm.{op}: argument `x0` must be a (B, ..., H, W) tensor with at least 3 dims, "
                         f"got shape {tuple(x0.shape)}")
    if domain not in DOMAINS:
        raise ValueError(f"gddm.{op}: argument `domain` must be one of {DOMAINS}, got {domain!r}")
    if (noise is None) == (seed is None):
        raise ValueError(f"gddm.{op}: exactly one of the arguments `noise` and `seed` must be given")
    _check_coefs(coefs, x0, 2, op)
    _check_same(noise, x0, noise_shape(x0.shape, domain, exact), op, "noise")
    _check_seed(seed, x0, op)
    return x0


def check_step_args(x: object, m: object, m_uncond: object, m2: object, m2_uncond: object, prev_x0: object,
                    coefs: object, noise: object, seed: object) -> Tensor:
    """The fused step's arguments (every backend accepts exactly these, in any layout): x
    (B, ...), model outputs, previous x0 and noise of x's shape and dtype, coefs (B, 11) in the
    arithmetic dtype, at most one of `noise` and `seed`."""
    op = "diffusion_step"
    x = check_tensor(x, op, "x")
    if x.dim() < 1:
        raise ValueError(f"gddm.{op}: argument `x` must be a (B, ...) tensor, got shape {tuple(x.shape)}")
    if m is None:
        raise ValueError(f"gddm.{op}: argument `m` (the model output) must be a tensor, got None")
    for name, t in (("m", m), ("m_uncond", m_uncond), ("m2", m2), ("m2_uncond", m2_uncond), ("prev_x0", prev_x0),
                    ("noise", noise)):
        _check_same(t, x, tuple(x.shape), op, name)
    if noise is not None and seed is not None:
        raise ValueError(f"gddm.{op}: at most one of the arguments `noise` and `seed` may be given")
    if m2_uncond is not None and (m2 is None or m_uncond is None):
        raise ValueError(f"gddm.{op}: argument `m2_uncond` needs `m2` and `m_uncond`")
    _check_coefs(coefs, x, len(STEP_COEFS), op)
    _check_seed(seed, x, op)
    return x
