"""Reference Poisson solve and reconstruction (docs/design.md, "Poisson solve"), written with explicit
cosine-transform matrices: slow (O(H^3 + W^3) per image) but obviously correct.

The DCT-II  X = C_H f C_W^T,  C_N[k, n] = cos(pi k (2n + 1) / 2N),  diagonalises the Neumann
`laplacian`: laplacian(u) <-> lambda[p, q] * X_u[p, q] with
lambda[p, q] = 0.25 (2 cos(pi p / H) - 2 + 2 cos(pi q / W) - 2). The zero eigenvalue (p = q = 0)
belongs to the constants; the solve sets that coefficient from the requested mean instead.
"""

import torch
from torch import Tensor

from .._spectral import cosine_matrix, inverse_cosine_matrix, laplacian_eigenvalues
from .stencils import _opmath, divergence


def poisson_solve(f: Tensor, mean: float = 0.0) -> Tensor:
    """The u with laplacian(u) == f - mean(f) and mean(u) == `mean`, per image: (..., H, W).

    Computed in float32 for half types, float64 for float64; returned in f's dtype. An image
    holding a NaN or Inf gives an all-NaN u.
    """
    fa = _opmath(f)
    H, W = f.shape[-2:]
    X = cosine_matrix(H, fa.dtype, fa.device) @ fa @ cosine_matrix(W, fa.dtype, fa.device).T
    lam = laplacian_eigenvalues(H, W, fa.dtype, fa.device)
    lam[0, 0] = 1.0  # the constants' coefficient is set below, not divided
    Y = X / lam
    Y[..., 0, 0] = mean * H * W  # X[0, 0] = sum(u) = H W mean(u)
    u = inverse_cosine_matrix(H, fa.dtype, fa.device) @ Y @ inverse_cosine_matrix(W, fa.dtype, fa.device).T
    finite = fa.isfinite().all(dim=-1, keepdim=True).all(dim=-2, keepdim=True)
    u = torch.where(finite, u, torch.nan)  # the solve is global: a NaN or Inf makes its whole image NaN
    return u.to(f.dtype).contiguous()


def reconstruct(g: Tensor, mean: float = 0.0) -> Tensor:
    """The least-squares image of a gradient field (paper eq. 8): (..., 2, H, W) -> (..., H, W),
    argmin_u ||gradient(u) - g||^2 with mean(u) == `mean`, i.e. poisson_solve(0.25 divergence(g))."""
    return poisson_solve(divergence(_opmath(g), 0.25), mean).to(g.dtype)
