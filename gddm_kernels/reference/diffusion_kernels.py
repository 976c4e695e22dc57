"""The fused diffusion kernels' contract in plain PyTorch (csrc/diffusion.h): the generic
noise-add and the generic affine step with per-sample coefficients. The maths of each
sampler (which coefficients make a DDPM, DDIM, DPM-Solver++ or attenuation step) lives in
gddm_kernels/_diffusion.py and is checked against reference/diffusion.py."""

import torch
from torch import Tensor

from . import random
from .stencils import _opmath, gradient, laplacian

DOMAINS = ("image", "gradient", "laplacian")
STEP_COEFS = ("a0", "a1", "e0", "e1", "e2", "e3", "r", "c0", "c1", "c2", "c3")


def _per_sample(coef: Tensor, like: Tensor) -> Tensor:
    """(B,) -> (B, 1, ..., 1) to broadcast against `like`."""
    return coef.reshape(-1, *([1] * (like.dim() - 1)))


def _operator(domain: str, x: Tensor) -> Tensor:
    return {"image": lambda t: t, "gradient": gradient, "laplacian": laplacian}[domain](x)


def noise_shape(x0_shape: torch.Size, domain: str, exact: bool) -> tuple[int, ...]:
    """Shape of the standard normal a noise-add consumes: the field's for the gradient domain's
    paper model, the image's otherwise."""
    if domain == "gradient" and not exact:
        return (*x0_shape[:-2], 2, *x0_shape[-2:])
    return tuple(x0_shape)


def add_noise_kernel(x0: Tensor, coefs: Tensor, domain: str, exact: bool, noise: Tensor | None,
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
        x_t = _operator(domain, _per_sample(a, xa) * xa + _per_sample(s, xa) * eps)
    else:
        signal = _operator(domain, xa)
        x_t = _per_sample(a, signal) * signal + _per_sample(s, signal) * eps
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
    x0 = k["a0"] * xa + k["a1"] * mm
    if clip > 0:
        x0 = x0.clamp(-clip, clip)
    eps = k["e0"] * xa + k["e1"] * mm + k["e2"] * x0 + k["e3"] * mm2
    d = x0 + k["r"] * (x0 - (prev_x0.to(xa.dtype) if prev_x0 is not None else 0.0))
    if noise is not None:
        z = noise.to(xa.dtype)
    elif seed is not None:
        z = random.normal(int(seed.item()), tuple(x.shape), x.device).to(xa.dtype)
    else:
        z = torch.zeros_like(xa)
    out = k["c0"] * xa + k["c1"] * d + k["c2"] * eps + k["c3"] * z
    return out.to(x.dtype), (x0.to(x.dtype) if write_x0 else x.new_empty(0))
