"""Reference stencils on images (..., H, W) with a Neumann boundary (DESIGN.md section 2).

Arithmetic is done in float32 for float16/bfloat16 inputs (float64 stays float64) and the
result is returned in the input dtype, as the fused kernels do. Outputs are contiguous.
"""

import torch
import torch.nn.functional as F
from torch import Tensor


def _opmath(x: Tensor) -> Tensor:
    """`x` in its arithmetic dtype: float32 for half types, unchanged otherwise."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def gradient(x: Tensor, scale: float = 1.0) -> Tensor:
    """scale * forward differences of x: (..., H, W) -> (..., 2, H, W).

    Component 0: x[i+1, j] - x[i, j] (0 on the last row);
    component 1: x[i, j+1] - x[i, j] (0 on the last column).
    """
    xa = _opmath(x)
    vertical = xa.new_zeros(xa.shape)
    horizontal = xa.new_zeros(xa.shape)
    vertical[..., :-1, :] = xa[..., 1:, :] - xa[..., :-1, :]
    horizontal[..., :, :-1] = xa[..., :, 1:] - xa[..., :, :-1]
    return (scale * torch.stack([vertical, horizontal], dim=-3)).to(x.dtype)


def divergence(g: Tensor, scale: float = 1.0) -> Tensor:
    """scale * the negative adjoint of `gradient`: (..., 2, H, W) -> (..., H, W).

    Backward differences with the forward differences' zero boundary values dropped:
    div(g)[i, j] = g0[i, j] [i < H-1] - g0[i-1, j] [i > 0] + g1[i, j] [j < W-1] - g1[i, j-1] [j > 0],
    so that <gradient(x), g> == -<x, divergence(g)> exactly.
    """
    ga = _opmath(g)
    vertical, horizontal = ga[..., 0, :, :], ga[..., 1, :, :]
    div = ga.new_zeros(vertical.shape)
    div[..., :-1, :] += vertical[..., :-1, :]
    div[..., 1:, :] -= vertical[..., :-1, :]
    div[..., :, :-1] += horizontal[..., :, :-1]
    div[..., :, 1:] -= horizontal[..., :, :-1]
    return (scale * div).to(g.dtype)


def laplacian(x: Tensor, scale: float = 1.0) -> Tensor:
    """scale * the paper's kernel [[0, 1/4, 0], [1/4, -1, 1/4], [0, 1/4, 0]] with an
    edge-replicate (Neumann) boundary: (..., H, W) -> (..., H, W).

    Equals 0.25 * divergence(gradient(x)) up to rounding.
    """
    xa = _opmath(x)
    flat = xa.reshape(-1, 1, *xa.shape[-2:])
    padded = F.pad(flat, (1, 1, 1, 1), mode="replicate").reshape(*xa.shape[:-2], xa.shape[-2] + 2, xa.shape[-1] + 2)
    centre = padded[..., 1:-1, 1:-1]
    up, down = padded[..., :-2, 1:-1], padded[..., 2:, 1:-1]
    left, right = padded[..., 1:-1, :-2], padded[..., 1:-1, 2:]
    lap = 0.25 * (((up - centre) + (down - centre)) + ((left - centre) + (right - centre)))
    return (scale * lap).to(x.dtype).contiguous()
