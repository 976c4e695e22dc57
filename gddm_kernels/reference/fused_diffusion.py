"""The specification of the two fused diffusion kernels, gddm::add_noise and
gddm::diffusion_step (the `reference` backend of those ops): a generic noise-add and a generic
affine step with per-sample coefficients (layout: gddm_kernels/_diffusion_contract.py).

reference/diffusion.py specifies the samplers (DDPM, DDIM, DPM-Solver++(2M), attenuation);
each of them is one call of the generic kernel here with the coefficients that
gddm_kernels/diffusion.py computes, which tests/test_diffusion_ops.py checks sampler by
sampler. The C++/CUDA kernels (csrc/diffusion.h) and the Triton kernels implement this file.

Non-finite values: a term whose coefficient is exactly 0 contributes exactly 0, also when its
tensor holds an Inf or NaN (so a model output the sampler does not use cannot poison the
step, as in the sampler-level specification).
"""

import torch
from torch import Tensor

from .._diffusion_contract import STEP_COEFS, noise_shape
from . import random
from .stencils import _opmath, gradient, laplacian


def _per_sample(coef: Tensor, like: Tensor) -> Tensor:
    """(B,) -> (B, 1, ..., 1) to broadcast against `like`."""
    return coef.reshape(-1, *([1] * (like.dim() - 1)))


def _term(coef: Tensor, value: Tensor) -> Tensor:
    """coef * value, exactly 0 where coef == 0 (whatever value holds there)."""
    return torch.where(coef == 0, 0.0, coef * value)


def _operator(domain: str, x: Tensor) -> Tensor:
    return {"image": lambda t: t, "gradient": gradient, "laplacian": laplacian}[domain](x)


def add_noise(x0: Tensor, coefs: Tensor, domain: str, exact: bool, noise: Tensor | None,
                     seed: Tensor | None, write_noise: bool) -> tuple[Tensor, Tensor]:
    """x_t = a D(x0) + s eps (paper) or D(a x0 + s eps) (exact), (a, s) = coefs[b] per sample;
    eps = `noise`, or random.normal(seed) at the noise's flat indices. Returns (x_t, the
    generated noise if write_noise else an empty tensor)."""
    xa = _opmath(x0)
    shape = noise_shape(x0.shape, domain, exact)
    generated = noise is None
    eps = random.normal(int(seed.item()), shape, x0.device) if generated else noise
    eps = eps.to(xa.dtype)
    a, s = coefs[:, 0], coefs[:, 1]
    if exact:
        x_t = _operator(domain, _term(_per_sample(a, xa), xa) + _term(_per_sample(s, xa), eps))
    else:
        signal = _operator(domain, xa)
        x_t = _term(_per_sample(a, signal), signal) + _term(_per_sample(s, signal), eps)
    written = eps.to(x0.dtype) if generated and write_noise else x0.new_empty(0)
    return x_t.to(x0.dtype).contiguous(), written


def diffusion_step(x: Tensor, m: Tensor, m_uncond: Tensor | None, m2: Tensor | None, m2_uncond: Tensor | None,
                   prev_x0: Tensor | None, coefs: Tensor, guidance: float, clip: float, noise: Tensor | None,
                   seed: Tensor | None, write_x0: bool) -> tuple[Tensor, Tensor]:
    """The generic step (coefficient names STEP_COEFS, one row per sample):

        m   = m_uncond + guidance (m - m_uncond)      (when m_uncond is given; m2 likewise)
        x0  = clip(a0 x + a1 m)                        (clip > 0 clamps to [-clip, clip])
        eps = e0 x + e1 m + e2 x0 + e3 m2
        D   = x0 + r (x0 - prev_x0)
        out = c0 x + c1 D + c2 eps + c3 z              (z = noise, random.normal(seed), or 0)

    Returns (out, x0 if write_x0 else an empty tensor), in x's dtype.
    """
    xa = _opmath(x)
    k = {name: _per_sample(coefs[:, i], xa) for i, name in enumerate(STEP_COEFS)}

    def guided(cond: Tensor | None, uncond: Tensor | None) -> Tensor:
        if cond is None:
            return torch.zeros_like(xa)
        c = cond.to(xa.dtype)
        return c if uncond is None else uncond.to(xa.dtype) + guidance * (c - uncond.to(xa.dtype))

    mm, mm2 = guided(m, m_uncond), guided(m2, m2_uncond)
    x0 = _term(k["a0"], xa) + _term(k["a1"], mm)
    if clip > 0:
        x0 = x0.clamp(-clip, clip)
    eps = _term(k["e0"], xa) + _term(k["e1"], mm) + _term(k["e2"], x0) + _term(k["e3"], mm2)
    d = x0 + _term(k["r"], x0 - (prev_x0.to(xa.dtype) if prev_x0 is not None else 0.0))
    if noise is not None:
        z = noise.to(xa.dtype)
    elif seed is not None:
        z = random.normal(int(seed.item()), tuple(x.shape), x.device).to(xa.dtype)
    else:
        z = torch.zeros_like(xa)
    out = _term(k["c0"], xa) + _term(k["c1"], d) + _term(k["c2"], eps) + _term(k["c3"], z)
    return out.to(x.dtype), (x0.to(x.dtype) if write_x0 else x.new_empty(0))
