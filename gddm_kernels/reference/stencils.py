"""Reference stencils on images (..., H, W) with a Neumann boundary (docs/design.md, "Operators").

Arithmetic is done in float32 for float16/bfloat16 inputs (float64 stays float64) and the
result is returned in the input dtype, as the fused kernels do. Outputs are contiguous.
"""

import torch
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
    c = _opmath(x)
    up = torch.cat([c[..., :1, :], c[..., :-1, :]], dim=-2)  # x[i-1, j], x[-1, j] := x[0, j]
    down = torch.cat([c[..., 1:, :], c[..., -1:, :]], dim=-2)  # x[i+1, j], x[H, j] := x[H-1, j]
    left = torch.cat([c[..., :1], c[..., :-1]], dim=-1)
    right = torch.cat([c[..., 1:], c[..., -1:]], dim=-1)
    lap = 0.25 * (((up - c) + (down - c)) + ((left - c) + (right - c)))
    return (scale * lap).to(x.dtype).contiguous()
