"""Triton kernels of the multigrid stages, with the signatures of torch.ops.gddm_C.mg_*; the
maths mirrors csrc/multigrid.h (face coefficients 1/4 * length / centre distance)."""

import torch
import triton
import triton.language as tl
from torch import Tensor

from .stencils import BLOCK_W, NUM_WARPS, _grid_tile

# Rows of BLOCK_W pixels per program: the stages gather neighbours, cell widths and (restrict)
# four children per output, so fewer pixels per thread than the stencils. At the stencils' 8 rows
# ptxas gave smooth 104-128 registers (25% occupancy), restrict 255 and 320 B of spills; at 2 and
# 1 rows, 40-46 and 69 (benchmarks/static_report.py).
SMOOTH_BLOCK_H = 2
RESTRICT_BLOCK_H = 1
PROLONG_BLOCK_H = 4


@triton.jit
def _face(length, width_a, width_b):
    return 0.5 * length / (width_a + width_b)


@triton.jit
def _operator(u_ptr, wy_ptr, wx_ptr, i, j, H, W, inside):
    """(L u)[i, j] and the diagonal d[i, j] of an image at u_ptr (rows of length W)."""
    c = tl.load(u_ptr + i * W + j, mask=inside, other=0.0)
    wy = tl.load(wy_ptr + i, mask=inside, other=1.0)
    wx = tl.load(wx_ptr + j, mask=inside, other=1.0)
    up_ok = inside & (i > 0)
    down_ok = inside & (i + 1 < H)
    left_ok = inside & (j > 0)
    right_ok = inside & (j + 1 < W)
    t_up = tl.where(up_ok, _face(wx, tl.load(wy_ptr + i - 1, mask=up_ok, other=1.0), wy), 0.0)
    t_down = tl.where(down_ok, _face(wx, wy, tl.load(wy_ptr + i + 1, mask=down_ok, other=1.0)), 0.0)
    t_left = tl.where(left_ok, _face(wy, tl.load(wx_ptr + j - 1, mask=left_ok, other=1.0), wx), 0.0)
    t_right = tl.where(right_ok, _face(wy, wx, tl.load(wx_ptr + j + 1, mask=right_ok, other=1.0)), 0.0)
    lu = t_up * (tl.load(u_ptr + (i - 1) * W + j, mask=up_ok, other=0.0) - c)
    lu += t_down * (tl.load(u_ptr + (i + 1) * W + j, mask=down_ok, other=0.0) - c)
    lu += t_left * (tl.load(u_ptr + i * W + j - 1, mask=left_ok, other=0.0) - c)
    lu += t_right * (tl.load(u_ptr + i * W + j + 1, mask=right_ok, other=0.0) - c)
    return lu, t_up + t_down + t_left + t_right, c


@triton.jit
def _smooth_kernel(u_ptr, f_ptr, wy_ptr, wx_ptr, H, W, color, BLOCK_H: tl.constexpr, BLOCK_W: tl.constexpr):
    n, i, j = _grid_tile(H, W, BLOCK_H, BLOCK_W)
    inside = (i < H) & (j < W) & ((i + j) % 2 == color)
    img = u_ptr + n * H * W
    lu, d, c = _operator(img, wy_ptr, wx_ptr, i, j, H, W, inside)
    f = tl.load(f_ptr + n * H * W + i * W + j, mask=inside, other=0.0)
    updated = tl.where(d > 0, c - (f - lu) / tl.where(d > 0, d, 1.0), c)
    tl.store(img + i * W + j, updated, mask=inside)


@triton.jit
def _residual_restrict_kernel(u_ptr, f_ptr, wy_ptr, wx_ptr, out_ptr, H, W, BLOCK_H: tl.constexpr,
                              BLOCK_W: tl.constexpr):
    Hc = (H + 1) // 2
    Wc = (W + 1) // 2
    n, I, J = _grid_tile(Hc, Wc, BLOCK_H, BLOCK_W)
    coarse_inside = (I < Hc) & (J < Wc)
    img = u_ptr + n * H * W
    rhs = f_ptr + n * H * W
    total = tl.zeros((BLOCK_H, BLOCK_W), dtype=out_ptr.dtype.element_ty)
    for di in tl.static_range(2):
        for dj in tl.static_range(2):
            i = 2 * I + di
            j = 2 * J + dj
            inside = coarse_inside & (i < H) & (j < W)
            lu, _, _ = _operator(img, wy_ptr, wx_ptr, i, j, H, W, inside)
            total += tl.where(inside, tl.load(rhs + i * W + j, mask=inside, other=0.0) - lu, 0.0)
    tl.store(out_ptr + (n * Hc + I) * Wc + J, total, mask=coarse_inside)


@triton.jit
def _prolong_correct_kernel(u_ptr, e_ptr, lo_y_ptr, hi_y_ptr, w_y_ptr, lo_x_ptr, hi_x_ptr, w_x_ptr, H, W, Hc, Wc,
                            BLOCK_H: tl.constexpr, BLOCK_W: tl.constexpr):
    n, i, j = _grid_tile(H, W, BLOCK_H, BLOCK_W)
    inside = (i < H) & (j < W)
    coarse = e_ptr + n * Hc * Wc
    lo_y = tl.load(lo_y_ptr + i, mask=inside, other=0)
    hi_y = tl.load(hi_y_ptr + i, mask=inside, other=0)
    wy = tl.load(w_y_ptr + i, mask=inside, other=0.0)
    lo_x = tl.load(lo_x_ptr + j, mask=inside, other=0)
    hi_x = tl.load(hi_x_ptr + j, mask=inside, other=0)
    wx = tl.load(w_x_ptr + j, mask=inside, other=0.0)
    at_lo = (1 - wx) * tl.load(coarse + lo_y * Wc + lo_x, mask=inside, other=0.0) + wx * tl.load(
        coarse + lo_y * Wc + hi_x, mask=inside, other=0.0)
    at_hi = (1 - wx) * tl.load(coarse + hi_y * Wc + lo_x, mask=inside, other=0.0) + wx * tl.load(
        coarse + hi_y * Wc + hi_x, mask=inside, other=0.0)
    p = u_ptr + n * H * W + i * W + j
    tl.store(p, tl.load(p, mask=inside, other=0.0) + (1 - wy) * at_lo + wy * at_hi, mask=inside)


def _grid(batch: int, rows: int, cols: int, block_h: int) -> tuple[int]:
    return (batch * triton.cdiv(rows, block_h) * triton.cdiv(cols, BLOCK_W),)


def _batch(u: Tensor) -> int:
    return u.numel() // (u.shape[-2] * u.shape[-1])


def mg_smooth_(u: Tensor, f: Tensor, widths_y: Tensor, widths_x: Tensor, color: int) -> None:
    """One red (0) or black (1) Gauss-Seidel half sweep on contiguous (..., H, W), in place."""
    H, W = u.shape[-2:]
    _smooth_kernel[_grid(_batch(u), H, W, SMOOTH_BLOCK_H)](u, f, widths_y, widths_x, H, W, color, BLOCK_H=SMOOTH_BLOCK_H,
                                                           BLOCK_W=BLOCK_W, num_warps=NUM_WARPS)


def mg_residual_restrict(u: Tensor, f: Tensor, widths_y: Tensor, widths_x: Tensor) -> Tensor:
    """f - L u summed over 2x2 children: (..., H, W) -> (..., ceil(H/2), ceil(W/2))."""
    H, W = u.shape[-2:]
    Hc, Wc = (H + 1) // 2, (W + 1) // 2
    out = torch.empty(*u.shape[:-2], Hc, Wc, dtype=u.dtype, device=u.device)
    _residual_restrict_kernel[_grid(_batch(u), Hc, Wc, RESTRICT_BLOCK_H)](
        u, f, widths_y, widths_x, out, H, W, BLOCK_H=RESTRICT_BLOCK_H, BLOCK_W=BLOCK_W, num_warps=NUM_WARPS)
    return out


def mg_prolong_correct_(u: Tensor, e: Tensor, lo_y: Tensor, hi_y: Tensor, weight_y: Tensor, lo_x: Tensor,
                        hi_x: Tensor, weight_x: Tensor) -> None:
    """u += the bilinear interpolation of the coarse correction e, in place."""
    H, W = u.shape[-2:]
    Hc, Wc = e.shape[-2:]
    _prolong_correct_kernel[_grid(_batch(u), H, W, PROLONG_BLOCK_H)](
        u, e, lo_y, hi_y, weight_y, lo_x, hi_x, weight_x, H, W, Hc, Wc, BLOCK_H=PROLONG_BLOCK_H, BLOCK_W=BLOCK_W,
        num_warps=NUM_WARPS)
