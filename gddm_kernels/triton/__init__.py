"""The `triton` backend's kernels (backends/protocol.py's `Kernels`). They run on CUDA tensors,
and on CPU tensors under TRITON_INTERPRET=1 (set before triton is first imported), which is
how the test suite checks them without a GPU."""

from .diffusion import add_noise, diffusion_step
from .multigrid import mg_prolong_correct_, mg_residual_restrict, mg_smooth_
from .poisson import dct_solve
from .stencils import divergence, gradient, laplacian

__all__ = ["gradient", "divergence", "laplacian", "dct_solve", "mg_smooth_", "mg_residual_restrict",
           "mg_prolong_correct_", "add_noise", "diffusion_step"]
