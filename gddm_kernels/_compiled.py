"""The compiled kernels (torch.ops.gddm_C.*, C++ on CPU tensors and CUDA on CUDA tensors)
behind the same signatures as gddm_kernels.reference: the leading dims are folded into the
kernels' fixed (B0, B1) batch layout without a copy, and unfolded on the way out."""

from types import SimpleNamespace

import torch
from torch import Tensor

from . import _multigrid as multigrid
from ._layout import field_shape, fold_batch, image_shape
from ._multigrid import fused_stages
from ._spectral import dct_solve, row_fft_solve
from .reference.diffusion_kernels import DOMAINS

DOMAIN_CODES = {name: code for code, name in enumerate(DOMAINS)}  # csrc/diffusion.h's Domain


def gradient(x: Tensor, scale: float = 1.0) -> Tensor:
    """scale * forward differences: (..., H, W) -> contiguous (..., 2, H, W)."""
    return torch.ops.gddm_C.gradient(fold_batch(x, 2), scale).view(field_shape(x.shape))


def divergence(g: Tensor, scale: float = 1.0) -> Tensor:
    """scale * negative adjoint of `gradient`: (..., 2, H, W) -> contiguous (..., H, W)."""
    return torch.ops.gddm_C.divergence(fold_batch(g, 3), scale).view(image_shape(g.shape))


def laplacian(x: Tensor, scale: float = 1.0) -> Tensor:
    """scale * the paper's 5-point Laplacian, edge-replicated: (..., H, W) -> contiguous."""
    return torch.ops.gddm_C.laplacian(fold_batch(x, 2), scale).view(x.shape)


def poisson_solve(f: Tensor, mean: float = 0.0) -> Tensor:
    """u with laplacian(u) == f - mean(f), mean(u) == mean, by the fused DCT solve: (..., H, W)."""
    return dct_solve(f, False, mean, _KERNELS)


def reconstruct(g: Tensor, mean: float = 0.0) -> Tensor:
    """Least-squares image of a gradient field, divergence fused in: (..., 2, H, W) -> (..., H, W)."""
    return dct_solve(g, True, mean, _KERNELS)


def _fft_solve(x: Tensor, field: bool, scale: float, mean: float) -> Tensor:
    """The large-image DCT solve: one fused op on CPU tensors, rfft2/irfft2 around the kernels on
    CUDA ones (_spectral.py)."""
    if x.device.type == "cpu":
        return torch.ops.gddm_C.dct_solve(x, field, scale, mean)
    return row_fft_solve(x, field, scale, mean, _ROW_KERNELS)


# The compiled kernels, looked up at call time (torch.ops.gddm_C.* exist only once _C loaded).
_ROW_KERNELS = SimpleNamespace(
    dct_reorder=lambda *args: torch.ops.gddm_C.dct_reorder(*args),
    spectral_solve_=lambda *args: torch.ops.gddm_C.spectral_solve_(*args),
    dct_unreorder=lambda *args: torch.ops.gddm_C.dct_unreorder(*args),
)
_KERNELS = SimpleNamespace(fft_solve=_fft_solve, divergence=divergence)


_MULTIGRID_STAGES = fused_stages(
    SimpleNamespace(
        mg_smooth_=lambda *args: torch.ops.gddm_C.mg_smooth_(*args),
        mg_residual_restrict=lambda *args: torch.ops.gddm_C.mg_residual_restrict(*args),
        mg_prolong_correct_=lambda *args: torch.ops.gddm_C.mg_prolong_correct_(*args),
    ),
    laplacian,
)


def multigrid_solve(f: Tensor, x0: Tensor | None, tol: float, max_cycles: int, cycle: str,
                    mean: float) -> tuple[Tensor, Tensor]:
    """Geometric multigrid with the fused stages: (u, residual history)."""
    return multigrid.solve(f, x0, tol, max_cycles, cycle, mean, _MULTIGRID_STAGES)


def add_noise_kernel(x0: Tensor, coefs: Tensor, domain: str, exact: bool, noise: Tensor | None,
                     seed: Tensor | None, write_noise: bool) -> tuple[Tensor, Tensor]:
    """The fused noise-add (contract: reference.diffusion_kernels.add_noise_kernel)."""
    return torch.ops.gddm_C.add_noise(x0, coefs, DOMAIN_CODES[domain], exact, noise, seed, write_noise)


def diffusion_step(x: Tensor, m: Tensor, m_uncond: Tensor | None, m2: Tensor | None, m2_uncond: Tensor | None,
                   prev_x0: Tensor | None, coefs: Tensor, guidance: float, clip: float, noise: Tensor | None,
                   seed: Tensor | None, write_x0: bool) -> tuple[Tensor, Tensor]:
    """The fused generic step (contract: reference.diffusion_kernels.diffusion_step)."""
    return torch.ops.gddm_C.diffusion_step(x, m, m_uncond, m2, m2_uncond, prev_x0, coefs, guidance, clip, noise,
                                           seed, write_x0)
