"""The fast cosine-transform Poisson solve, shared by the compiled and Triton backends:
three fused kernels around torch.fft (cuFFT on GPUs, pocketfft on CPUs).

    v = reorder(x)            scale * x, or 0.25 * divergence(x) for a gradient field,
                              in Makhoul's order, float32 (float64 for float64)   1 pass
    V = rfft2(v)                                                                  torch.fft
    solve_(V)                 DCT twiddles, division by the Laplacian's
                              eigenvalues, inverse twiddles, in place             1 pass
    u = unreorder(irfft2(V))  natural order, input dtype                          torch.fft + 1 pass

The maths is in csrc/poisson.h.
"""

import torch
from torch import Tensor

from ._layout import fold_batch

RECONSTRUCT_SCALE = 0.25  # reconstruct(g) = poisson_solve(0.25 * divergence(g))


def dct_solve(x: Tensor, field: bool, mean: float, kernels: object) -> Tensor:
    """poisson_solve(x) (or reconstruct(x) when `field`): (..., H, W).

    `kernels` has the three kernels with the signatures of torch.ops.gddm_C:
    dct_reorder(x, field, scale), spectral_solve_(spectrum, H, W, mean), dct_unreorder(v, dtype).
    """
    H, W = x.shape[-2:]
    inner = 3 if field else 2
    v = kernels.dct_reorder(fold_batch(x, inner), field, RECONSTRUCT_SCALE if field else 1.0)
    spectrum = torch.fft.rfft2(v)
    kernels.spectral_solve_(spectrum, H, W, mean)
    u = kernels.dct_unreorder(torch.fft.irfft2(spectrum, s=(H, W)), x.dtype)
    return u.view(*x.shape[: x.dim() - inner], H, W)
