"""The op layer: torch.ops.gddm.* defined with torch.library.custom_op, each with a fake
(meta) kernel for torch.compile, an autograd formula made of the fused ops themselves, input
checks that run before any kernel, and the backend choice of gddm_kernels.dispatch.

The compiled backends also register their public ops in C++ (csrc/public_ops.cpp), which the
public functions call directly when cpu or cuda is the backend in force; compiled.py gives
those their fake kernels.

Pattern every op follows (one file per op family):
    @torch.library.custom_op("gddm::<op>", mutates_args=())   checks, empty input, select(...)
    @<op>.register_fake                                       checks, output metadata
    <op>.register_autograd(backward, setup_context=...)       backward = other gddm ops
"""

from . import compiled  # noqa: F401  (fake kernels of the C++ public ops)
from .diffusion import add_noise, diffusion_step
from .poisson import multigrid_solve, poisson_solve, reconstruct
from .stencils import divergence, gradient, laplacian

__all__ = ["gradient", "divergence", "laplacian", "poisson_solve", "reconstruct", "multigrid_solve", "add_noise",
           "diffusion_step"]
