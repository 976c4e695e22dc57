"""The compiled kernels (torch.ops.gddm_C.*, C++ on CPU tensors and CUDA on CUDA tensors)
behind the same signatures as gddm_kernels.reference: the leading dims are folded into the
kernels' fixed (B0, B1) batch layout without a copy, and unfolded on the way out."""

import torch
from torch import Tensor

from ._layout import field_shape, fold_batch
from ._spectral import dct_solve


def gradient(x: Tensor, scale: float = 1.0) -> Tensor:
    """scale * forward differences: (..., H, W) -> contiguous (..., 2, H, W)."""
    return torch.ops.gddm_C.gradient(fold_batch(x, 2), scale).view(field_shape(x.shape))


def divergence(g: Tensor, scale: float = 1.0) -> Tensor:
    """scale * negative adjoint of `gradient`: (..., 2, H, W) -> contiguous (..., H, W)."""
    return torch.ops.gddm_C.divergence(fold_batch(g, 3), scale).view(g.shape[:-3] + g.shape[-2:])


def laplacian(x: Tensor, scale: float = 1.0) -> Tensor:
    """scale * the paper's 5-point Laplacian, edge-replicated: (..., H, W) -> contiguous."""
    return torch.ops.gddm_C.laplacian(fold_batch(x, 2), scale).view(x.shape)


def poisson_solve(f: Tensor, mean: float = 0.0) -> Tensor:
    """u with laplacian(u) == f - mean(f), mean(u) == mean, by the fused DCT solve: (..., H, W)."""
    return dct_solve(f, False, mean, torch.ops.gddm_C)


def reconstruct(g: Tensor, mean: float = 0.0) -> Tensor:
    """Least-squares image of a gradient field, divergence fused in: (..., 2, H, W) -> (..., H, W)."""
    return dct_solve(g, True, mean, torch.ops.gddm_C)

