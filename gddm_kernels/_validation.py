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

