"""Triton kernels of the cosine-transform Poisson solve (the three passes around torch.fft of
gddm_kernels/_spectral.py), with the signatures of torch.ops.gddm_C.{dct_reorder,
spectral_solve_, dct_unreorder}. The maths mirrors csrc/poisson.h."""

import torch
import triton
import triton.language as tl
from torch import Tensor

from .stencils import (BLOCK_H, BLOCK_W, NUM_WARPS, _grid_tile, _offset, _store, _tile,
                       needs_int64)

# The spectral solve evaluates four twiddles and four coefficients per pixel pair: 2 rows per
# program (2 pixels a thread) keep it near 40 registers, where the stencils' 8 rows took 148
# (19% occupancy; benchmarks/static_report.py).
SPECTRAL_BLOCK_H = 2

@triton.jit
def _dct_source(m, N):
    """Original index of element m of Makhoul's reordered signal of length N."""
    return tl.where(m < (N + 1) // 2, 2 * m, 2 * (N - 1 - m) + 1)


@triton.jit
def _dct_position(n, N):
    """Position of original sample n in Makhoul's reordered signal."""
    return tl.where(n % 2 == 0, n // 2, N - 1 - n // 2)


@triton.jit
def _dct_reorder_kernel(x_ptr, out_ptr, B1, H, W, s_b0, s_b1, s_c, s_h, s_w, scale, FIELD: tl.constexpr,
                        INDEX_64: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_W: tl.constexpr):
    n, base, m1, m2, inside = _tile(B1, H, W, s_b0, s_b1, BLOCK_H, BLOCK_W)
    i = _dct_source(m1, H)
    j = _dct_source(m2, W)
    p = x_ptr + base + _offset(i, j, s_h, s_w, INDEX_64)
    if FIELD:  # 0.25 * divergence of the gradient field at (i, j), as in stencils._divergence_kernel
        v = tl.load(p, mask=inside & (i + 1 < H), other=0.0).to(tl.float32)
        v -= tl.load(p - s_h, mask=inside & (i > 0), other=0.0).to(tl.float32)
        v += tl.load(p + s_c, mask=inside & (j + 1 < W), other=0.0).to(tl.float32)
        v -= tl.load(p + s_c - s_w, mask=inside & (j > 0), other=0.0).to(tl.float32)
    else:
        v = tl.load(p, mask=inside, other=0.0).to(tl.float32)
    tl.store(out_ptr + (n * H + m1) * W + m2, scale * v, mask=inside)


@triton.jit
def _dct_coefficient(a_re, a_im, b_re, b_im, tp_c, tp_s, tq_c, tq_s):
    """X[p, q] = 1/2 Re(w1(p) (w2(q) A + conj(w2(q)) B)), A = V[p, q], B = V[p, -q]."""
    pr = tq_c * (a_re + b_re) + tq_s * (a_im - b_im)
    pi = tq_c * (a_im + b_im) - tq_s * (a_re - b_re)
    return 0.5 * (tp_c * pr + tp_s * pi)


@triton.jit
def _eigenvalue(tp_s, tq_s):
    return -(tp_s * tp_s + tq_s * tq_s)


@triton.jit
def _spectral_solve_kernel(z_ptr, H, W, mean, BLOCK_H: tl.constexpr, BLOCK_W: tl.constexpr):
    """Rows p and H-p of one image's half spectrum (viewed as float pairs), in place."""
    Wh = W // 2 + 1
    pairs = H // 2 + 1
    n, p, q = _grid_tile(pairs, Wh, BLOCK_H, BLOCK_W)
    inside = (p < pairs) & (q < Wh)
    p_m = (H - p) % H
    a_ptr = z_ptr + 2 * ((n * H + p) * Wh + q)
    b_ptr = z_ptr + 2 * ((n * H + p_m) * Wh + q)
    a_re = tl.load(a_ptr, mask=inside, other=0.0)
    a_im = tl.load(a_ptr + 1, mask=inside, other=0.0)
    b_re = tl.load(b_ptr, mask=inside, other=0.0)
    b_im = tl.load(b_ptr + 1, mask=inside, other=0.0)
    angle_p = 1.5707963267948966 * p.to(tl.float32) / H
    angle_q = 1.5707963267948966 * q.to(tl.float32) / W
    tp_c, tp_s = tl.cos(angle_p), tl.sin(angle_p)
    tq_c, tq_s = tl.cos(angle_q), tl.sin(angle_q)
    # Y = X / lambda at (p, q), (H-p, q), (p, W-q), (H-p, W-q); mirrors swap cos and sin, and an
    # index equal to H (or W) holds no coefficient.
    dc = (p == 0) & (q == 0)
    lam_pq = tl.where(dc, 1.0, _eigenvalue(tp_s, tq_s))
    y_pq = tl.where(dc, mean * H * W, _dct_coefficient(a_re, a_im, b_re, -b_im, tp_c, tp_s, tq_c, tq_s) / lam_pq)
    y_mq = _dct_coefficient(b_re, b_im, a_re, -a_im, tp_s, tp_c, tq_c, tq_s) / _eigenvalue(tp_c, tq_s)
    y_pm = _dct_coefficient(b_re, -b_im, a_re, a_im, tp_c, tp_s, tq_s, tq_c) / _eigenvalue(tp_s, tq_c)
    y_mm = _dct_coefficient(a_re, -a_im, b_re, b_im, tp_s, tp_c, tq_s, tq_c) / _eigenvalue(tp_c, tq_c)
    y_mq = tl.where(p > 0, y_mq, 0.0)
    y_pm = tl.where(q > 0, y_pm, 0.0)
    y_mm = tl.where((p > 0) & (q > 0), y_mm, 0.0)
    # Z = conj(w1 w2) (R - i I) for row p (twiddles tp) and row H-p (mirrored twiddles).
    c_a = tp_c * tq_c - tp_s * tq_s
    s_a = tp_c * tq_s + tp_s * tq_c
    c_b = tp_s * tq_c - tp_c * tq_s
    s_b = tp_s * tq_s + tp_c * tq_c
    r_a, i_a = y_pq - y_mm, y_mq + y_pm
    r_b, i_b = y_mq - y_pm, y_pq + y_mm
    tl.store(a_ptr, c_a * r_a + s_a * i_a, mask=inside)
    tl.store(a_ptr + 1, s_a * r_a - c_a * i_a, mask=inside)
    write_b = inside & (p > 0) & (p_m != p)
    tl.store(b_ptr, c_b * r_b + s_b * i_b, mask=write_b)
    tl.store(b_ptr + 1, s_b * r_b - c_b * i_b, mask=write_b)


@triton.jit
def _dct_unreorder_kernel(v_ptr, out_ptr, H, W, BLOCK_H: tl.constexpr, BLOCK_W: tl.constexpr):
    n, _, i, j, inside = _tile(1, H, W, 0, 0, BLOCK_H, BLOCK_W)
    src = (n * H + _dct_position(i, H)) * W + _dct_position(j, W)
    v = tl.load(v_ptr + src, mask=inside, other=0.0)
    _store(out_ptr + (n * H + i) * W + j, v, inside)


def _grid(batch: int, rows: int, cols: int, block_h: int = BLOCK_H) -> tuple[int]:
    return (batch * triton.cdiv(rows, block_h) * triton.cdiv(cols, BLOCK_W),)


def dct_reorder(x: Tensor, field: bool, scale: float) -> Tensor:
    """(B0, B1, H, W) or (B0, B1, 2, H, W) field -> (B0, B1, H, W) float32 in Makhoul's order."""
    B0, B1 = x.shape[:2]
    H, W = x.shape[-2:]
    out = torch.empty(B0, B1, H, W, dtype=torch.float32, device=x.device)
    s_b0, s_b1 = x.stride()[:2]
    s_c = x.stride(2) if field else 0
    _dct_reorder_kernel[_grid(B0 * B1, H, W)](
        x, out, B1, H, W, s_b0, s_b1, s_c, x.stride(-2), x.stride(-1), scale, FIELD=field,
        INDEX_64=needs_int64(x, 2), BLOCK_H=BLOCK_H, BLOCK_W=BLOCK_W, num_warps=NUM_WARPS)
    return out


def spectral_solve_(spectrum: Tensor, H: int, W: int, mean: float) -> None:
    """In place on the contiguous complex64 half spectrum (..., H, W//2+1)."""
    batch = spectrum.numel() // (H * (W // 2 + 1))
    _spectral_solve_kernel[_grid(batch, H // 2 + 1, W // 2 + 1, SPECTRAL_BLOCK_H)](
        torch.view_as_real(spectrum), H, W, mean, BLOCK_H=SPECTRAL_BLOCK_H, BLOCK_W=BLOCK_W, num_warps=NUM_WARPS)


def dct_unreorder(v: Tensor, dtype: torch.dtype) -> Tensor:
    """Contiguous float32 (..., H, W) in Makhoul's order -> natural order in `dtype`."""
    H, W = v.shape[-2:]
    out = torch.empty(v.shape, dtype=dtype, device=v.device)
    _dct_unreorder_kernel[_grid(v.numel() // (H * W), H, W)](
        v, out, H, W, BLOCK_H=BLOCK_H, BLOCK_W=BLOCK_W, num_warps=NUM_WARPS)
    return out


def dct_solve(x: Tensor, field: bool, scale: float, mean: float) -> Tensor:
    """The large-image DCT solve (gddm_kernels/_spectral.py): the three Triton passes around
    torch.fft's rfft2 / irfft2, (B0, B1, [2,] H, W) -> (B0, B1, H, W)."""
    H, W = x.shape[-2:]
    spectrum = torch.fft.rfft2(dct_reorder(x, field, scale))
    spectral_solve_(spectrum, H, W, mean)
    return dct_unreorder(torch.fft.irfft2(spectrum, s=(H, W)), x.dtype)
