"""The fast cosine-transform Poisson solve, shared by the compiled and Triton backends.

Large images: three fused kernels around the FFTs of torch.fft (cuFFT on GPUs, MKL or
pocketfft on CPUs).

    v = reorder(x)            scale * x, or 0.25 * divergence(x) for a gradient field,
                              in Makhoul's order, float32 (float64 for float64)   1 pass
    V = rfft2(v)                                                                  torch.fft
    solve_(V)                 DCT twiddles, division by the Laplacian's
                              eigenvalues, inverse twiddles, in place             1 pass
    u = unreorder(irfft2(V))  natural order, input dtype                          torch.fft + 1 pass

The maths is in csrc/poisson.h. On the GPU the FFTs are rfft2 and irfft2 (`row_fft_solve`).
On the CPU the whole solve is one op, gddm_C::dct_solve (csrc/cpu/poisson_cpu.cpp), which
calls the FFTs from C++ over cache-sized chunks of the batch and works in the layout the CPU
FFT (MKL) leaves a transform along dim -2 in (transform dim fastest): its c2r transform is 2.5x
slower on such input, so irfft2 is replaced by ifft along columns, one strip transposition back
to rows and irfft along rows. Measured at 512x512, one thread: irfft2 alone 0.8-1.8 ms, the
column inverse 0.45 ms.

Small images: the DCT as batched products with precomputed cosine matrices,
u = Ci_H ((C_H f C_W^T) / lambda) Ci_W^T, in float64 (float32 products lose ~1e-4 at 256^2,
float64 ones are exact to ~1e-8 and, at these sizes, still cheap). Which path wins depends on
size and device: MATMUL_MAX_SIZE holds the crossover measured by benchmarks/bench_poisson.py.
"""

import functools
import math

import torch
from torch import Tensor

from ._layout import fold_batch

RECONSTRUCT_SCALE = 0.25  # reconstruct(g) = poisson_solve(0.25 * divergence(g))
# Largest max(H, W) solved by matrix products, per device type (CPU: the matmul path wins up to
# 48x48 on 2 cores, single images and batches of 48, benchmarks/bench_multigrid.py; GPU:
# FFT path everywhere until measured on the H100).
MATMUL_MAX_SIZE = {"cpu": 48, "cuda": 0}


def dct_solve(x: Tensor, field: bool, mean: float, kernels: object) -> Tensor:
    """poisson_solve(x) (or reconstruct(x) when `field`): (..., H, W).

    `kernels` has fft_solve(x, field, scale, mean) for x in the kernels' (B0, B1, [2,] H, W)
    layout (`row_fft_solve` with the backend's kernels, or the CPU op gddm_C::dct_solve) and
    divergence(g, scale) of the backend (for the small-image path).
    """
    H, W = x.shape[-2:]
    if max(H, W) <= MATMUL_MAX_SIZE.get(x.device.type, 0):
        wide = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x  # round once, at the end
        f = kernels.divergence(wide, RECONSTRUCT_SCALE) if field else wide
        return matmul_solve(f, mean).to(x.dtype)
    inner = 3 if field else 2
    u = kernels.fft_solve(fold_batch(x, inner), field, RECONSTRUCT_SCALE if field else 1.0, mean)
    return u.view(*x.shape[: x.dim() - inner], H, W)


def row_fft_solve(x: Tensor, field: bool, scale: float, mean: float, kernels: object) -> Tensor:
    """The solve around rfft2/irfft2 with `kernels`' dct_reorder, spectral_solve_ and
    dct_unreorder (signatures of torch.ops.gddm_C): (B0, B1, [2,] H, W) -> (B0, B1, H, W)."""
    H, W = x.shape[-2:]
    spectrum = torch.fft.rfft2(kernels.dct_reorder(x, field, scale))
    kernels.spectral_solve_(spectrum, H, W, mean)
    return kernels.dct_unreorder(torch.fft.irfft2(spectrum, s=(H, W)), x.dtype)


def _cosine_matrix(n: int, device: torch.device) -> Tensor:
    """C_N[k, m] = cos(pi k (2m + 1) / 2N), float64."""
    k = torch.arange(n, dtype=torch.float64, device=device)[:, None]
    m = torch.arange(n, dtype=torch.float64, device=device)[None, :]
    return torch.cos(math.pi * k * (2 * m + 1) / (2 * n))


@functools.lru_cache(maxsize=64)
def _solve_matrices(H: int, W: int, device: torch.device) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """C_H, C_W^T, C_H^{-1}, C_W^{-T} and 1 / lambda (0 for the constants), float64."""
    def inverse(n: int) -> Tensor:
        weights = torch.full((n,), 2.0 / n, dtype=torch.float64, device=device)
        weights[0] = 1.0 / n
        return _cosine_matrix(n, device).T * weights

    p = torch.arange(H, dtype=torch.float64, device=device)[:, None]
    q = torch.arange(W, dtype=torch.float64, device=device)[None, :]
    lam = 0.25 * (2 * torch.cos(math.pi * p / H) - 2 + 2 * torch.cos(math.pi * q / W) - 2)
    lam[0, 0] = math.inf
    return _cosine_matrix(H, device), _cosine_matrix(W, device).T, inverse(H), inverse(W).T, 1.0 / lam


def matmul_solve(f: Tensor, mean: float) -> Tensor:
    """poisson_solve by cosine-matrix products in float64: (..., H, W) -> contiguous, f's dtype."""
    H, W = f.shape[-2:]
    c_h, c_w_t, ci_h, ci_w_t, inv_lam = _solve_matrices(H, W, f.device)
    spectrum = (c_h @ f.double() @ c_w_t) * inv_lam
    spectrum[..., 0, 0] = mean * H * W
    return (ci_h @ spectrum @ ci_w_t).to(f.dtype).contiguous()
