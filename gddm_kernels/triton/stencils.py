"""Triton stencils: one program per BLOCK_H x BLOCK_W tile of one image, fp32 arithmetic,
Neumann boundary through load masks, outputs rounded to nearest (`_rounded`). Same maths and argument order as
gddm_kernels.reference.stencils; the formulas mirror csrc/stencils.h.

Offsets: an image's base offset is int64; the in-image offset i * s_h + j * s_w of a strided
input is int32 when the view's in-image reach (the largest such offset) fits, else int64
(constexpr INDEX_64, see `needs_int64`), so a small view of a huge tensor (a slice, one channel
of channels-last data) is read in bounds. Outputs are contiguous images of at most
dispatch.MAX_TRITON_IMAGE_ELEMENTS elements, whose in-image offsets always fit in int32."""

import triton
import triton.language as tl
from torch import Tensor

from .._layout import field_shape, fold_batch, image_shape

BLOCK_H = 8
BLOCK_W = 128
NUM_WARPS = 4
INT32_MAX = 2**31 - 1


def needs_int64(x: Tensor, inner_dims: int) -> bool:
    """Whether the largest in-image offset of `x` (sum of (size - 1) * stride over its last
    `inner_dims` dims) overflows int32."""
    reach = sum((size - 1) * stride for size, stride in zip(x.shape[-inner_dims:], x.stride()[-inner_dims:]))
    return reach > INT32_MAX


@triton.jit
def _grid_tile(H, W, BLOCK_H: tl.constexpr, BLOCK_W: tl.constexpr):
    """This program's image n (int64), row indices (BLOCK_H, 1) and column indices
    (1, BLOCK_W): the 1-D grid enumerates images x row tiles x column tiles. Every Triton
    kernel of the package walks its images this way."""
    pid = tl.program_id(0)
    tiles_w = tl.cdiv(W, BLOCK_W)
    tiles_h = tl.cdiv(H, BLOCK_H)
    n = (pid // (tiles_w * tiles_h)).to(tl.int64)
    rest = pid % (tiles_w * tiles_h)
    i = (rest // tiles_w) * BLOCK_H + tl.arange(0, BLOCK_H)[:, None]
    j = (rest % tiles_w) * BLOCK_W + tl.arange(0, BLOCK_W)[None, :]
    return n, i, j


@triton.jit
def _tile(B1, H, W, s_b0, s_b1, BLOCK_H: tl.constexpr, BLOCK_W: tl.constexpr):
    """_grid_tile plus the image's input base offset (batch folded as (B0, B1)) and the
    in-image mask."""
    n, i, j = _grid_tile(H, W, BLOCK_H, BLOCK_W)
    base = (n // B1) * s_b0 + (n % B1) * s_b1
    return n, base, i, j, (i < H) & (j < W)


@triton.jit
def _rounded(x, dtype: tl.constexpr):
    """float32 `x` in `dtype`, rounded to nearest even as torch's .to(dtype) is. For bfloat16 the
    rounding is done on the bits: Triton's interpreter (TRITON_INTERPRET=1, 3.8) truncates in
    its float32 -> bfloat16 cast whatever rounding mode the program asks for, while compiled
    code rounds to nearest; the integer form rounds alike in both (NaN stays a quiet NaN)."""
    if dtype == tl.bfloat16:
        bits = x.to(tl.uint32, bitcast=True)
        nearest = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
        high = tl.where(x != x, (bits >> 16) | 0x40, nearest)
        return high.to(tl.uint16).to(tl.bfloat16, bitcast=True)
    return x.to(dtype)


@triton.jit
def _store(ptr, value, mask):
    """Store float32 `value` at `ptr`, rounded to nearest in the pointer's element type."""
    tl.store(ptr, _rounded(value, ptr.dtype.element_ty), mask=mask)


@triton.jit
def _offset(i, j, s_h, s_w, INDEX_64: tl.constexpr):
    """In-image offset i * s_h + j * s_w, in int64 when INDEX_64."""
    if INDEX_64:
        return i.to(tl.int64) * s_h + j.to(tl.int64) * s_w
    return i * s_h + j * s_w


@triton.jit
def _forward_difference(next, here, next_inside):
    return tl.where(next_inside, next - here, 0.0)


@triton.jit
def _laplacian_from(c, up, down, left, right):
    return 0.25 * (((up - c) + (down - c)) + ((left - c) + (right - c)))


@triton.jit
def _gradient_kernel(x_ptr, out_ptr, B1, H, W, s_b0, s_b1, s_h, s_w, scale, INDEX_64: tl.constexpr,
                     BLOCK_H: tl.constexpr, BLOCK_W: tl.constexpr):
    n, base, i, j, inside = _tile(B1, H, W, s_b0, s_b1, BLOCK_H, BLOCK_W)
    p = x_ptr + base + _offset(i, j, s_h, s_w, INDEX_64)
    has_down = inside & (i + 1 < H)
    has_right = inside & (j + 1 < W)
    c = tl.load(p, mask=inside, other=0.0).to(tl.float32)
    down = tl.load(p + s_h, mask=has_down, other=0.0).to(tl.float32)
    right = tl.load(p + s_w, mask=has_right, other=0.0).to(tl.float32)
    o = out_ptr + (n * 2 * H + i) * W + j
    _store(o, scale * _forward_difference(down, c, has_down), inside)
    _store(o + H * W, scale * _forward_difference(right, c, has_right), inside)


@triton.jit
def _divergence_kernel(g_ptr, out_ptr, B1, H, W, s_b0, s_b1, s_c, s_h, s_w, scale,
                       INDEX_64: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_W: tl.constexpr):
    n, base, i, j, inside = _tile(B1, H, W, s_b0, s_b1, BLOCK_H, BLOCK_W)
    pv = g_ptr + base + _offset(i, j, s_h, s_w, INDEX_64)
    ph = pv + s_c
    # Each difference exists only where the forward difference it came from was inside.
    gv = tl.load(pv, mask=inside & (i + 1 < H), other=0.0).to(tl.float32)
    gv_up = tl.load(pv - s_h, mask=inside & (i > 0), other=0.0).to(tl.float32)
    gh = tl.load(ph, mask=inside & (j + 1 < W), other=0.0).to(tl.float32)
    gh_left = tl.load(ph - s_w, mask=inside & (j > 0), other=0.0).to(tl.float32)
    div = (gv - gv_up) + (gh - gh_left)
    _store(out_ptr + (n * H + i) * W + j, scale * div, inside)


@triton.jit
def _laplacian_kernel(x_ptr, out_ptr, B1, H, W, s_b0, s_b1, s_h, s_w, scale, INDEX_64: tl.constexpr,
                      BLOCK_H: tl.constexpr, BLOCK_W: tl.constexpr):
    n, base, i, j, inside = _tile(B1, H, W, s_b0, s_b1, BLOCK_H, BLOCK_W)
    p = x_ptr + base + _offset(i, j, s_h, s_w, INDEX_64)
    c = tl.load(p, mask=inside, other=0.0).to(tl.float32)
    # Edge-replicate: a neighbour outside the image is the centre pixel itself.
    up = tl.load(p - s_h, mask=inside & (i > 0), other=0.0).to(tl.float32)
    down = tl.load(p + s_h, mask=inside & (i + 1 < H), other=0.0).to(tl.float32)
    left = tl.load(p - s_w, mask=inside & (j > 0), other=0.0).to(tl.float32)
    right = tl.load(p + s_w, mask=inside & (j + 1 < W), other=0.0).to(tl.float32)
    up = tl.where(i > 0, up, c)
    down = tl.where(i + 1 < H, down, c)
    left = tl.where(j > 0, left, c)
    right = tl.where(j + 1 < W, right, c)
    lap = _laplacian_from(c, up, down, left, right)
    _store(out_ptr + (n * H + i) * W + j, scale * lap, inside)


def _grid(batch: int, H: int, W: int) -> tuple[int]:
    return (batch * triton.cdiv(H, BLOCK_H) * triton.cdiv(W, BLOCK_W),)


def gradient(x: Tensor, scale: float = 1.0) -> Tensor:
    """scale * forward differences: (..., H, W) -> contiguous (..., 2, H, W)."""
    xb = fold_batch(x, 2)
    B0, B1, H, W = xb.shape
    out = x.new_empty(field_shape(x.shape))
    _gradient_kernel[_grid(B0 * B1, H, W)](
        xb, out, B1, H, W, *xb.stride(), scale, INDEX_64=needs_int64(xb, 2), BLOCK_H=BLOCK_H, BLOCK_W=BLOCK_W,
        num_warps=NUM_WARPS)
    return out


def divergence(g: Tensor, scale: float = 1.0) -> Tensor:
    """scale * negative adjoint of `gradient`: (..., 2, H, W) -> contiguous (..., H, W)."""
    gb = fold_batch(g, 3)
    B0, B1, _, H, W = gb.shape
    out = g.new_empty(image_shape(g.shape))
    _divergence_kernel[_grid(B0 * B1, H, W)](
        gb, out, B1, H, W, *gb.stride(), scale, INDEX_64=needs_int64(gb, 2), BLOCK_H=BLOCK_H, BLOCK_W=BLOCK_W,
        num_warps=NUM_WARPS)
    return out


def laplacian(x: Tensor, scale: float = 1.0) -> Tensor:
    """scale * the paper's 5-point Laplacian, edge-replicated: (..., H, W) -> contiguous."""
    xb = fold_batch(x, 2)
    B0, B1, H, W = xb.shape
    out = x.new_empty(x.shape)
    _laplacian_kernel[_grid(B0 * B1, H, W)](
        xb, out, B1, H, W, *xb.stride(), scale, INDEX_64=needs_int64(xb, 2), BLOCK_H=BLOCK_H, BLOCK_W=BLOCK_W,
        num_warps=NUM_WARPS)
    return out
