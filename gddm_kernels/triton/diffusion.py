"""Triton kernels of the fused noise-add and the generic step, with the signatures of
torch.ops.gddm_C.{add_noise, diffusion_step}; the maths and the Philox noise mirror
csrc/diffusion.h (specification: gddm_kernels/reference/fused_diffusion.py and random.py)."""

import torch
import triton
import triton.language as tl
from torch import Tensor

from .._diffusion_contract import DOMAIN_CODES, STEP_COEF_INDEX, STEP_COEFS, noise_shape
from .stencils import BLOCK_H, BLOCK_W, NUM_WARPS, _grid_tile, _store

STEP_BLOCK = 1024
# Warps of a launch that generates its noise: Philox4x32-10 and Box-Muller per element are
# register-heavy, so the same tile over twice the threads (4 pixels a thread, still 128-bit
# float32 accesses) roughly halves the registers per thread (benchmarks/static_report.py).
GENERATING_NUM_WARPS = 8
# Columns of the step-coefficient table (gddm_kernels/_diffusion_contract.py STEP_COEFS), as
# compile-time constants of the kernels.
NUM_STEP_COEFS = tl.constexpr(len(STEP_COEFS))
A0 = tl.constexpr(STEP_COEF_INDEX["a0"])
A1 = tl.constexpr(STEP_COEF_INDEX["a1"])
E0 = tl.constexpr(STEP_COEF_INDEX["e0"])
E1 = tl.constexpr(STEP_COEF_INDEX["e1"])
E2 = tl.constexpr(STEP_COEF_INDEX["e2"])
E3 = tl.constexpr(STEP_COEF_INDEX["e3"])
R = tl.constexpr(STEP_COEF_INDEX["r"])
C0 = tl.constexpr(STEP_COEF_INDEX["c0"])
C1 = tl.constexpr(STEP_COEF_INDEX["c1"])
C2 = tl.constexpr(STEP_COEF_INDEX["c2"])
C3 = tl.constexpr(STEP_COEF_INDEX["c3"])


@triton.jit
def _normal_at(seed, index):
    """Standard normal at flat `index` (int64) of stream `seed` (int64), as csrc/diffusion.h:
    Philox4x32-10 of the element's group index // 4 (counter (group words, 0, 0), key = seed
    words), Box-Muller on the output pair (r0, r1) or (r2, r3) (24-bit uniforms), cos or sin
    by the lane."""
    group = index // 4
    lane = index % 4
    c0 = (group & 0xFFFFFFFF).to(tl.uint32)
    c1 = ((group >> 32) & 0xFFFFFFFF).to(tl.uint32)
    c2 = c0 * 0
    c3 = c0 * 0
    k0 = (seed & 0xFFFFFFFF).to(tl.uint32)
    k1 = ((seed >> 32) & 0xFFFFFFFF).to(tl.uint32)
    for _ in tl.static_range(10):
        hi0 = tl.umulhi(c0, 0xD2511F53)
        lo0 = c0 * 0xD2511F53
        hi1 = tl.umulhi(c2, 0xCD9E8D57)
        lo1 = c2 * 0xCD9E8D57
        n0 = hi1 ^ c1 ^ k0
        n2 = hi0 ^ c3 ^ k1
        c0 = n0
        c1 = lo1
        c2 = n2
        c3 = lo0
        k0 = k0 + 0x9E3779B9
        k1 = k1 + 0xBB67AE85
    first_pair = lane < 2
    ra = tl.where(first_pair, c0, c2)
    rb = tl.where(first_pair, c1, c3)
    u1 = ((ra >> 8).to(tl.int32).to(tl.float32) + 1.0) * 5.9604644775390625e-08
    u2 = (rb >> 8).to(tl.int32).to(tl.float32) * 5.9604644775390625e-08
    rho = tl.sqrt(-2.0 * tl.log(u1))
    theta = 6.283185307179586 * u2
    return tl.where(lane % 2 == 0, rho * tl.cos(theta), rho * tl.sin(theta))


@triton.jit
def _eps(noise_ptr, seed, index, mask, GIVEN: tl.constexpr):
    # if/else, not an early return: the compiler builds the code after a constexpr `if ...:
    # return` too, and _normal_at does not compile on the int32 placeholder seed of GIVEN noise.
    if GIVEN:
        eps = tl.load(noise_ptr + index, mask=mask, other=0.0).to(tl.float32)
    else:
        eps = _normal_at(seed, index)
    return eps


@triton.jit
def _y(x_ptr, noise_ptr, seed, img, ii, jj, W, a, s, mask, EXACT: tl.constexpr, GIVEN: tl.constexpr):
    """a x (+ s eps for the exact model) at pixel (ii, jj) of the image starting at img."""
    idx = img + ii * W + jj
    v = a * tl.load(x_ptr + idx, mask=mask, other=0.0).to(tl.float32)
    if EXACT:
        v += s * _eps(noise_ptr, seed, idx, mask, GIVEN)
    return v


@triton.jit
def _add_noise_kernel(x_ptr, coef_ptr, noise_ptr, seed_ptr, out_ptr, noise_out_ptr, images_per_sample, H, W,
                      DOMAIN: tl.constexpr, EXACT: tl.constexpr, GIVEN: tl.constexpr, WRITE_NOISE: tl.constexpr,
                      BLOCK_H: tl.constexpr, BLOCK_W: tl.constexpr):
    n, i, j = _grid_tile(H, W, BLOCK_H, BLOCK_W)
    inside = (i < H) & (j < W)
    b = n // images_per_sample
    a = tl.load(coef_ptr + 2 * b).to(tl.float32)
    s = tl.load(coef_ptr + 2 * b + 1).to(tl.float32)
    seed = 0
    if not GIVEN:
        seed = tl.load(seed_ptr)
    img = n * H * W
    at = img + i * W + j
    c = _y(x_ptr, noise_ptr, seed, img, i, j, W, a, s, inside, EXACT, GIVEN)
    if DOMAIN == 1:  # gradient
        has_down = inside & (i + 1 < H)
        has_right = inside & (j + 1 < W)
        gv = tl.where(has_down, _y(x_ptr, noise_ptr, seed, img, i + 1, j, W, a, s, has_down, EXACT, GIVEN) - c, 0.0)
        gh = tl.where(has_right, _y(x_ptr, noise_ptr, seed, img, i, j + 1, W, a, s, has_right, EXACT, GIVEN) - c, 0.0)
        fv = 2 * img + i * W + j
        fh = fv + H * W
        if EXACT:
            _store(out_ptr + fv, gv, inside)
            _store(out_ptr + fh, gh, inside)
            if WRITE_NOISE:
                _store(noise_out_ptr + at, _eps(noise_ptr, seed, at, inside, GIVEN), inside)
        else:
            ev = _eps(noise_ptr, seed, fv, inside, GIVEN)
            eh = _eps(noise_ptr, seed, fh, inside, GIVEN)
            _store(out_ptr + fv, gv + s * ev, inside)
            _store(out_ptr + fh, gh + s * eh, inside)
            if WRITE_NOISE:
                _store(noise_out_ptr + fv, ev, inside)
                _store(noise_out_ptr + fh, eh, inside)
    else:
        v = c
        if DOMAIN == 2:  # laplacian, edge-replicate
            up_ok = inside & (i > 0)
            down_ok = inside & (i + 1 < H)
            left_ok = inside & (j > 0)
            right_ok = inside & (j + 1 < W)
            up = tl.where(up_ok, _y(x_ptr, noise_ptr, seed, img, i - 1, j, W, a, s, up_ok, EXACT, GIVEN), c)
            down = tl.where(down_ok, _y(x_ptr, noise_ptr, seed, img, i + 1, j, W, a, s, down_ok, EXACT, GIVEN), c)
            left = tl.where(left_ok, _y(x_ptr, noise_ptr, seed, img, i, j - 1, W, a, s, left_ok, EXACT, GIVEN), c)
            right = tl.where(right_ok, _y(x_ptr, noise_ptr, seed, img, i, j + 1, W, a, s, right_ok, EXACT, GIVEN), c)
            v = 0.25 * (((up - c) + (down - c)) + ((left - c) + (right - c)))
        e = _eps(noise_ptr, seed, at, inside, GIVEN)
        if not EXACT:
            v += s * e
        _store(out_ptr + at, v, inside)
        if WRITE_NOISE:
            _store(noise_out_ptr + at, e, inside)


@triton.jit
def _term(c, v):
    """c * v, and exactly 0 when the coefficient c is 0 (even for an infinite or NaN v): a term
    the step's specification leaves out contributes nothing."""
    return tl.where(c == 0.0, 0.0, c * v)


@triton.jit
def _step_kernel(x_ptr, m_ptr, mu_ptr, m2_ptr, m2u_ptr, prev_ptr, coef_ptr, noise_ptr, seed_ptr, out_ptr, x0_ptr,
                 per_sample, guidance, clip, HAS_UNCOND: tl.constexpr, HAS_M2: tl.constexpr,
                 HAS_PREV: tl.constexpr, NOISE: tl.constexpr, WRITE_X0: tl.constexpr, BLOCK: tl.constexpr):
    """One program per BLOCK elements of one sample, so the sample's 11 coefficients are scalar
    loads. NOISE: 0 none, 1 given, 2 generated."""
    chunks = tl.cdiv(per_sample, BLOCK)
    sample = tl.program_id(0) // chunks
    offset = (tl.program_id(0) % chunks) * BLOCK + tl.arange(0, BLOCK)
    mask = offset < per_sample
    idx = sample.to(tl.int64) * per_sample + offset
    k = coef_ptr + sample * NUM_STEP_COEFS
    x = tl.load(x_ptr + idx, mask=mask, other=0.0).to(tl.float32)
    m = tl.load(m_ptr + idx, mask=mask, other=0.0).to(tl.float32)
    if HAS_UNCOND:
        mu = tl.load(mu_ptr + idx, mask=mask, other=0.0).to(tl.float32)
        m = mu + guidance * (m - mu)
    x0 = _term(tl.load(k + A0), x) + _term(tl.load(k + A1), m)
    if clip > 0:
        x0 = tl.minimum(tl.maximum(x0, -clip), clip)
    eps = _term(tl.load(k + E0), x) + _term(tl.load(k + E1), m) + _term(tl.load(k + E2), x0)
    if HAS_M2:
        m2 = tl.load(m2_ptr + idx, mask=mask, other=0.0).to(tl.float32)
        if HAS_UNCOND:
            m2u = tl.load(m2u_ptr + idx, mask=mask, other=0.0).to(tl.float32)
            m2 = m2u + guidance * (m2 - m2u)
        eps += _term(tl.load(k + E3), m2)
    d = x0
    if HAS_PREV:
        prev = tl.load(prev_ptr + idx, mask=mask, other=0.0).to(tl.float32)
        d = x0 + _term(tl.load(k + R), x0 - prev)
    out = _term(tl.load(k + C0), x) + _term(tl.load(k + C1), d) + _term(tl.load(k + C2), eps)
    if NOISE == 1:
        out += _term(tl.load(k + C3), tl.load(noise_ptr + idx, mask=mask, other=0.0).to(tl.float32))
    if NOISE == 2:
        out += _term(tl.load(k + C3), _normal_at(tl.load(seed_ptr), idx))
    _store(out_ptr + idx, out, mask)
    if WRITE_X0:
        _store(x0_ptr + idx, x0, mask)


def add_noise(x0: Tensor, coefs: Tensor, domain: str, exact: bool, noise: Tensor | None,
                     seed: Tensor | None, write_noise: bool) -> tuple[Tensor, Tensor]:
    """The fused noise-add (specification: reference.fused_diffusion.add_noise). The kernel
    reads contiguous images (int64 image offsets): other views are copied first."""
    x0, coefs = x0.contiguous(), coefs.contiguous()
    noise = None if noise is None else noise.contiguous()
    H, W = x0.shape[-2:]
    field = (*x0.shape[:-2], 2, H, W)
    out = x0.new_empty(field if domain == "gradient" else x0.shape)
    generated = noise is None
    noise_out = x0.new_empty(noise_shape(x0.shape, domain, exact) if generated and write_noise else (0,))
    images = x0.numel() // (H * W) if H * W else 0
    if images:
        grid = (images * triton.cdiv(H, BLOCK_H) * triton.cdiv(W, BLOCK_W),)
        _add_noise_kernel[grid](
            x0, coefs, noise if noise is not None else x0, seed if seed is not None else coefs, out,
            noise_out if noise_out.numel() else out, images // x0.shape[0], H, W, DOMAIN=DOMAIN_CODES[domain],
            EXACT=exact, GIVEN=not generated, WRITE_NOISE=bool(noise_out.numel()), BLOCK_H=BLOCK_H,
            BLOCK_W=BLOCK_W, num_warps=GENERATING_NUM_WARPS if generated else NUM_WARPS)
    return out, noise_out


def diffusion_step(x: Tensor, m: Tensor, m_uncond: Tensor | None, m2: Tensor | None, m2_uncond: Tensor | None,
                   prev_x0: Tensor | None, coefs: Tensor, guidance: float, clip: float, noise: Tensor | None,
                   seed: Tensor | None, write_x0: bool) -> tuple[Tensor, Tensor]:
    """The fused generic step (specification: reference.fused_diffusion.diffusion_step). The kernel
    reads contiguous tensors at int64 flat indices: other views are copied first."""
    x, m, m_uncond, m2, m2_uncond, prev_x0, coefs, noise = (
        None if t is None else t.contiguous() for t in (x, m, m_uncond, m2, m2_uncond, prev_x0, coefs, noise))
    out = torch.empty_like(x)
    x0_out = x.new_empty(x.shape if write_x0 else (0,))
    numel = x.numel()
    if numel:
        noise_mode = 1 if noise is not None else (2 if seed is not None else 0)
        per_sample = numel // x.shape[0]
        _step_kernel[(x.shape[0] * triton.cdiv(per_sample, STEP_BLOCK),)](
            x, m, m_uncond if m_uncond is not None else x, m2 if m2 is not None else x,
            m2_uncond if m2_uncond is not None else x, prev_x0 if prev_x0 is not None else x, coefs,
            noise if noise is not None else x, seed if seed is not None else coefs, out,
            x0_out if write_x0 else out, per_sample, guidance, clip,
            HAS_UNCOND=m_uncond is not None, HAS_M2=m2 is not None, HAS_PREV=prev_x0 is not None,
            NOISE=noise_mode, WRITE_X0=write_x0, BLOCK=STEP_BLOCK,
            num_warps=GENERATING_NUM_WARPS if noise_mode == 2 else NUM_WARPS)
    return out, x0_out
