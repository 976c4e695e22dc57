"""torch.ops.gddm.{add_noise, diffusion_step}: the fused forward-diffusion and generic
reverse-step kernels (specification: gddm_kernels/reference/fused_diffusion.py). Both check
their arguments themselves (also on the fake), so a direct torch.ops.gddm.* call on any
backend gets the same clear errors as the public functions of gddm_kernels.diffusion. They
take tensors in any layout; the kernels read contiguous copies (`_contiguous`), outputs are
contiguous.

add_noise is linear in x0: its backward is a[b] D^T(grad) per sample (D^T = identity,
-divergence, laplacian). diffusion_step is for sampling and has no autograd formula.
"""

import torch
from torch import Tensor

from .._diffusion_contract import noise_shape, output_shape
from .._validation import check_add_noise_args, check_step_args
from ..dispatch import AUTO, select
from .stencils import divergence, laplacian


def _contiguous(t: Tensor | None) -> Tensor | None:
    """t as the kernels index it: contiguous (t itself when it already is)."""
    return None if t is None else t.contiguous()


@torch.library.custom_op("gddm::add_noise", mutates_args=())
def add_noise(x0: Tensor, coefs: Tensor, domain: str, exact: bool, noise: Tensor | None, seed: Tensor | None,
              write_noise: bool, backend: str = AUTO) -> tuple[Tensor, Tensor]:
    """(x_t, generated noise or empty): x_t = a D(x0) + s eps, or D(a x0 + s eps) when exact."""
    check_add_noise_args(x0, coefs, domain, exact, noise, seed)
    return select("add_noise", backend, x0).add_noise(_contiguous(x0), _contiguous(coefs), domain, exact,
                                                      _contiguous(noise), seed, write_noise)


@add_noise.register_fake
def _(x0: Tensor, coefs: Tensor, domain: str, exact: bool, noise: Tensor | None, seed: Tensor | None,
      write_noise: bool, backend: str = AUTO) -> tuple[Tensor, Tensor]:
    check_add_noise_args(x0, coefs, domain, exact, noise, seed)
    written = noise_shape(x0.shape, domain, exact) if seed is not None and write_noise else (0,)
    return x0.new_empty(output_shape(x0.shape, domain)), x0.new_empty(written)


def _save_add_noise(ctx, inputs: tuple, output: tuple[Tensor, Tensor]) -> None:
    _, coefs, ctx.domain, _, _, _, _, ctx.backend = inputs
    ctx.save_for_backward(coefs)


def _add_noise_backward(ctx, grad: Tensor, grad_noise: Tensor) -> tuple:
    (coefs,) = ctx.saved_tensors
    if ctx.domain == "gradient":
        back = divergence(grad, -1.0, ctx.backend)
    elif ctx.domain == "laplacian":
        back = laplacian(grad, 1.0, ctx.backend)
    else:
        back = grad
    a = coefs[:, 0].to(back.dtype).reshape(-1, *([1] * (back.dim() - 1)))
    return a * back, None, None, None, None, None, None, None


add_noise.register_autograd(_add_noise_backward, setup_context=_save_add_noise)


@torch.library.custom_op("gddm::diffusion_step", mutates_args=())
def diffusion_step(x: Tensor, m: Tensor, m_uncond: Tensor | None, m2: Tensor | None, m2_uncond: Tensor | None,
                   prev_x0: Tensor | None, coefs: Tensor, guidance: float, clip: float, noise: Tensor | None,
                   seed: Tensor | None, write_x0: bool, backend: str = AUTO) -> tuple[Tensor, Tensor]:
    """(x_prev, x0 or empty): one generic affine step (reference/fused_diffusion.py)."""
    check_step_args(x, m, m_uncond, m2, m2_uncond, prev_x0, coefs, noise, seed)
    return select("diffusion_step", backend, x).diffusion_step(
        *(_contiguous(t) for t in (x, m, m_uncond, m2, m2_uncond, prev_x0, coefs)), guidance, clip, _contiguous(noise),
        seed, write_x0)


@diffusion_step.register_fake
def _(x: Tensor, m: Tensor, m_uncond: Tensor | None, m2: Tensor | None, m2_uncond: Tensor | None,
      prev_x0: Tensor | None, coefs: Tensor, guidance: float, clip: float, noise: Tensor | None,
      seed: Tensor | None, write_x0: bool, backend: str = AUTO) -> tuple[Tensor, Tensor]:
    check_step_args(x, m, m_uncond, m2, m2_uncond, prev_x0, coefs, noise, seed)
    return x.new_empty(x.shape), x.new_empty(x.shape if write_x0 else (0,))

