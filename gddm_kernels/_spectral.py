"""The cosine-transform (DCT) Poisson solve: the driver every fast backend shares.

The DCT-II  X = C_H f C_W^T,  C_N[k, n] = cos(pi k (2n + 1) / 2N),  diagonalises the Neumann
`laplacian`: laplacian(u) <-> lambda[p, q] X_u[p, q] with
lambda[p, q] = 0.25 (2 cos(pi p / H) - 2 + 2 cos(pi q / W) - 2). The zero eigenvalue (p = q = 0)
belongs to the constants; the solve sets that coefficient from the requested mean instead.

Small images (max(H, W) <= the backend's measured crossover): the DCT as batched products with
the cosine matrices, u = Ci_H ((C_H f C_W^T) / lambda) Ci_W^T, in float64 (float32 products
lose ~1e-4 at 256^2, float64 ones are exact to ~1e-8 and, at these sizes, still cheap).

Large images: the backend's `dct_solve` kernel, three fused passes around the FFTs (the maths
of the passes: csrc/poisson.h):

    v = reorder(x)            scale * x, or 0.25 * divergence(x) for a gradient field,
                              in Makhoul's order, float32 (float64 for float64)   1 pass
    V = rfft2(v)                                                                  FFT
    solve_(V)                 DCT twiddles, division by the Laplacian's
                              eigenvalues, inverse twiddles, in place             1 pass
    u = unreorder(irfft2(V))  natural order, input dtype                          FFT + 1 pass

(one C++ op, gddm_C::dct_solve, on the cpu and cuda backends; triton/poisson.py in Python).
"""

import functools
import math

import torch
from torch import Tensor

from ._layout import fold_batch
from .backends.protocol import Kernels

RECONSTRUCT_SCALE = 0.25  # reconstruct(g) = poisson_solve(0.25 * divergence(g))


def cosine_matrix(n: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """The DCT-II matrix C_N[k, m] = cos(pi k (2m + 1) / 2N), (N, N)."""
    k = torch.arange(n, dtype=dtype, device=device)[:, None]
    m = torch.arange(n, dtype=dtype, device=device)[None, :]
    return torch.cos(math.pi * k * (2 * m + 1) / (2 * n))


def inverse_cosine_matrix(n: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """C_N^{-1} = C_N^T diag(1, 2, ..., 2) / N (the DCT-III), (N, N)."""
    weights = torch.full((n,), 2.0 / n, dtype=dtype, device=device)
    weights[0] = 1.0 / n
    return cosine_matrix(n, dtype, device).T * weights


def laplacian_eigenvalues(H: int, W: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """lambda[p, q] = 0.25 (2 cos(pi p / H) - 2 + 2 cos(pi q / W) - 2), (H, W)."""
    p = torch.arange(H, dtype=dtype, device=device)[:, None]
    q = torch.arange(W, dtype=dtype, device=device)[None, :]
    return 0.25 * (2 * torch.cos(math.pi * p / H) - 2 + 2 * torch.cos(math.pi * q / W) - 2)


def dct_solve(kernels: Kernels, x: Tensor, field: bool, mean: float, matmul_max_size: int) -> Tensor:
    """poisson_solve(x) (or reconstruct(x) when `field`) with a backend's kernels: (..., H, W)
    or (..., 2, H, W) -> (..., H, W), contiguous, x's dtype. Images with max(H, W) <=
    `matmul_max_size` take the cosine-matrix products (the divergence by the backend's kernel)."""
    H, W = x.shape[-2:]
    if max(H, W) <= matmul_max_size:
        wide = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x  # round once, at the end
        f = kernels.divergence(wide, RECONSTRUCT_SCALE) if field else wide
        return matmul_solve(f, mean).to(x.dtype)
    inner = 3 if field else 2
    u = kernels.dct_solve(fold_batch(x, inner), field, RECONSTRUCT_SCALE if field else 1.0, mean)
    return u.view(*x.shape[: x.dim() - inner], H, W)


@functools.lru_cache(maxsize=64)
def _solve_matrices(H: int, W: int, device: torch.device) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """C_H, C_W^T, C_H^{-1}, C_W^{-T} and 1 / lambda (0 for the constants), float64."""
    f64 = torch.float64
    inv_lam = 1.0 / laplacian_eigenvalues(H, W, f64, device)
    inv_lam[0, 0] = 0.0
    return (cosine_matrix(H, f64, device), cosine_matrix(W, f64, device).T, inverse_cosine_matrix(H, f64, device),
            inverse_cosine_matrix(W, f64, device).T, inv_lam)


def matmul_solve(f: Tensor, mean: float) -> Tensor:
    """poisson_solve by cosine-matrix products in float64: (..., H, W) -> contiguous, f's dtype."""
    H, W = f.shape[-2:]
    c_h, c_w_t, ci_h, ci_w_t, inv_lam = _solve_matrices(H, W, f.device)
    spectrum = (c_h @ f.double() @ c_w_t) * inv_lam
    # The constants' coefficient: 0 * sum(f) + H W mean. For a finite f that is H W mean; a NaN
    # or Inf in f makes it NaN, and the inverse transform spreads it over the whole image.
    spectrum[..., 0, 0] += mean * H * W
    return (ci_h @ spectrum @ ci_w_t).to(f.dtype).contiguous()
