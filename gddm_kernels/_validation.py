"""Argument checks of the op layer. They run before any kernel, on real and fake tensors
alike, and name the op, the argument and what was expected.

NaN/Inf policy for the stencils: non-finite values propagate like in any linear stencil
(they are not checked, which would cost a pass over the data)."""

import torch
from torch import Tensor

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
    if not isinstance(tol, (int, float)) or not tol > 0:
        raise ValueError(f"gddm.{op}: argument `tol` must be a number > 0, got {tol!r}")
    if not isinstance(max_cycles, int) or max_cycles < 1:
        raise ValueError(f"gddm.{op}: argument `max_cycles` must be an integer >= 1, got {max_cycles!r}")
    if cycle not in MULTIGRID_CYCLES:
        raise ValueError(f"gddm.{op}: argument `cycle` must be one of {MULTIGRID_CYCLES}, got {cycle!r}")
