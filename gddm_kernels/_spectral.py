"""The cosine-transform (DCT) Poisson solve: the driver every fast backend shares.

The DCT-II  X = C_H f C_W^T,  C_N[k, n] = cos(pi k (2n + 1) / 2N),  diagonalises the Neumann
`laplacian`: laplacian(u) <-> lambda[p, q] X_u[p, q] with
lambda[p, q] = 0.25 (2 cos(pi p / H) - 2 + 2 cos(pi q / W) - 2). The zero eigenvalue (p = q = 0)
belongs to the constants; the solve sets that coefficient from the requested mean instead.

The backend's `dct_solve` kernel: three fused passes around the FFTs (the maths of the passes:
csrc/poisson.h):

    v = reorder(x)            scale * x, or 0.25 * divergence(x) for a gradient field,
                              in Makhoul's order, float32 (float64 for float64)   1 pass
    V = rfft2(v)                                                                  FFT
    solve_(V)                 DCT twiddles, division by the Laplacian's
                              eigenvalues, inverse twiddles, in place             1 pass
    u = unreorder(irfft2(V))  natural order, input dtype                          FFT + 1 pass

(one C++ op, gddm_C::dct_solve, on the cpu and cuda backends; triton/poisson.py in Python).
On CPU tensors, gddm_C::dct_solve takes small batches of small images (images * H * W * (H + W)
<= gddm_kernels._C.DCT_DIRECT_MAX_WORK, the measured crossover) by direct cosine sums instead,
in float64:
u = Ci_H ((C_H f C_W^T) / lambda) Ci_W^T with the matrices below, the inverses
Ci_N = C_N^{-1}, lambda's zero replaced by the requested mean's coefficient.
"""

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


def dct_solve(kernels: Kernels, x: Tensor, field: bool, mean: float) -> Tensor:
    """poisson_solve(x) (or reconstruct(x) when `field`) with a backend's kernels: (..., H, W)
    or (..., 2, H, W) -> (..., H, W), contiguous, x's dtype."""
    H, W = x.shape[-2:]
    inner = 3 if field else 2
    u = kernels.dct_solve(fold_batch(x, inner), field, RECONSTRUCT_SCALE if field else 1.0, mean)
    return u.view(*x.shape[: x.dim() - inner], H, W)
