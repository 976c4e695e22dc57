"""The kernels of the `cpu` and `cuda` backends: the ops of gddm_kernels._C (torch.ops.gddm_C.*)
behind the `Kernels` signatures. Each op has a C++ kernel for CPU tensors and a CUDA kernel for
CUDA tensors, and the dispatcher picks by the tensor's device. The leading dims are folded into
the kernels' fixed (B0, B1) batch layout without a copy, and unfolded on the way out.

The DCT solve is one op on both: on CPU tensors (csrc/cpu/poisson_cpu.cpp) the FFTs are called
from C++ over cache-sized chunks of the batch, in the layout the CPU FFT (MKL) leaves a
transform along dim -2 in, whose c2r transform is 2.5x slower than on rows, so the inverse is a
column ifft, one strip transposition and a row irfft (measured at 512x512, one thread: irfft2
alone 0.8-1.8 ms, the column inverse 0.45 ms); on CUDA tensors (csrc/cuda/poisson_cuda.cpp)
three fused passes around cuFFT's rfft2 / irfft2."""

import torch
from torch import Tensor

from .._diffusion_contract import DOMAIN_CODES
from .._layout import field_shape, fold_batch, image_shape


def gradient(x: Tensor, scale: float) -> Tensor:
    return torch.ops.gddm_C.gradient(fold_batch(x, 2), scale).view(field_shape(x.shape))


def divergence(g: Tensor, scale: float) -> Tensor:
    return torch.ops.gddm_C.divergence(fold_batch(g, 3), scale).view(image_shape(g.shape))


def laplacian(x: Tensor, scale: float) -> Tensor:
    return torch.ops.gddm_C.laplacian(fold_batch(x, 2), scale).view(x.shape)


def dct_solve(x: Tensor, field: bool, scale: float, mean: float) -> Tensor:
    return torch.ops.gddm_C.dct_solve(x, field, scale, mean)


def mg_smooth_(u: Tensor, f: Tensor, widths_y: Tensor, widths_x: Tensor, color: int) -> None:
    torch.ops.gddm_C.mg_smooth_(u, f, widths_y, widths_x, color)


def mg_residual_restrict(u: Tensor, f: Tensor, widths_y: Tensor, widths_x: Tensor) -> Tensor:
    return torch.ops.gddm_C.mg_residual_restrict(u, f, widths_y, widths_x)


def mg_prolong_correct_(u: Tensor, e: Tensor, lo_y: Tensor, hi_y: Tensor, weight_y: Tensor, lo_x: Tensor,
                        hi_x: Tensor, weight_x: Tensor) -> None:
    torch.ops.gddm_C.mg_prolong_correct_(u, e, lo_y, hi_y, weight_y, lo_x, hi_x, weight_x)


def add_noise(x0: Tensor, coefs: Tensor, domain: str, exact: bool, noise: Tensor | None, seed: Tensor | None,
              write_noise: bool) -> tuple[Tensor, Tensor]:
    return torch.ops.gddm_C.add_noise(x0, coefs, DOMAIN_CODES[domain], exact, noise, seed, write_noise)


def diffusion_step(x: Tensor, m: Tensor, m_uncond: Tensor | None, m2: Tensor | None, m2_uncond: Tensor | None,
                   prev_x0: Tensor | None, coefs: Tensor, guidance: float, clip: float, noise: Tensor | None,
                   seed: Tensor | None, write_x0: bool) -> tuple[Tensor, Tensor]:
    return torch.ops.gddm_C.diffusion_step(x, m, m_uncond, m2, m2_uncond, prev_x0, coefs, guidance, clip, noise,
                                           seed, write_x0)
