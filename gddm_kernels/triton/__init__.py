"""Triton kernels. They run on CUDA tensors, and on CPU tensors under TRITON_INTERPRET=1
(set before triton is first imported), which is how the test suite checks them without a GPU."""

from .diffusion import add_noise_kernel, diffusion_step
from .multigrid import multigrid_solve
from .poisson import poisson_solve, reconstruct
from .stencils import divergence, gradient, laplacian

__all__ = ["gradient", "divergence", "laplacian", "poisson_solve", "reconstruct", "multigrid_solve",
           "add_noise_kernel", "diffusion_step"]
