"""Reference Poisson solve and reconstruction (DESIGN.md section 2), written with explicit
cosine-transform matrices: slow (O(H^3 + W^3) per image) but obviously correct.

The DCT-II  X = C_H f C_W^T,  C_N[k, n] = cos(pi k (2n + 1) / 2N),  diagonalises the Neumann
`laplacian`: laplacian(u) <-> lambda[p, q] * X_u[p, q] with
lambda[p, q] = 0.25 (2 cos(pi p / H) - 2 + 2 cos(pi q / W) - 2). The zero eigenvalue (p = q = 0)
belongs to the constants; the solve sets that coefficient from the requested mean instead.
"""

import math

import torch
from torch import Tensor

from .stencils import _opmath, divergence


def _dct_matrix(n: int, like: Tensor) -> Tensor:
    """C_N[k, m] = cos(pi k (2m + 1) / 2N), (N, N)."""
    k = torch.arange(n, dtype=like.dtype, device=like.device)[:, None]
    m = torch.arange(n, dtype=like.dtype, device=like.device)[None, :]
    return torch.cos(math.pi * k * (2 * m + 1) / (2 * n))


def _inverse_dct_matrix(n: int, like: Tensor) -> Tensor:
    """C_N^{-1} = C_N^T diag(1, 2, ..., 2) / N (the DCT-III)."""
    weights = torch.full((n,), 2.0 / n, dtype=like.dtype, device=like.device)
    weights[0] = 1.0 / n
    return _dct_matrix(n, like).T * weights


def laplacian_eigenvalues(H: int, W: int, like: Tensor) -> Tensor:
    """lambda[p, q] = 0.25 (2 cos(pi p / H) - 2 + 2 cos(pi q / W) - 2), (H, W)."""
    p = torch.arange(H, dtype=like.dtype, device=like.device)[:, None]
    q = torch.arange(W, dtype=like.dtype, device=like.device)[None, :]
    return 0.25 * (2 * torch.cos(math.pi * p / H) - 2 + 2 * torch.cos(math.pi * q / W) - 2)


def poisson_solve(f: Tensor, mean: float = 0.0) -> Tensor:
    """The u with laplacian(u) == f - mean(f) and mean(u) == `mean`, per image: (..., H, W).

    Computed in float32 for half types, float64 for float64; returned in f's dtype.
    """
    fa = _opmath(f)
    H, W = f.shape[-2:]
    X = _dct_matrix(H, fa) @ fa @ _dct_matrix(W, fa).T
    lam = laplacian_eigenvalues(H, W, fa)
    lam[0, 0] = 1.0  # the constants' coefficient is set below, not divided
    Y = X / lam
    Y[..., 0, 0] = mean * H * W  # X[0, 0] = sum(u) = H W mean(u)
    u = _inverse_dct_matrix(H, fa) @ Y @ _inverse_dct_matrix(W, fa).T
    return u.to(f.dtype).contiguous()


def reconstruct(g: Tensor, mean: float = 0.0) -> Tensor:
    """The least-squares image of a gradient field (paper eq. 8): (..., 2, H, W) -> (..., H, W),
    argmin_u ||gradient(u) - g||^2 with mean(u) == `mean`, i.e. poisson_solve(0.25 divergence(g))."""
    return poisson_solve(divergence(_opmath(g), 0.25), mean).to(g.dtype)
