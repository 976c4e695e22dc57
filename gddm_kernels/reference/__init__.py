"""Pure-PyTorch implementations: the executable specification every fast backend is tested
against. They read like ../DESIGN.md and favour clarity over speed."""

from torch import Tensor

from . import multigrid
from .diffusion_kernels import add_noise_kernel, diffusion_step
from .poisson import poisson_solve, reconstruct
from .stencils import divergence, gradient, laplacian

__all__ = ["gradient", "divergence", "laplacian", "poisson_solve", "reconstruct", "multigrid_solve",
           "add_noise_kernel", "diffusion_step"]


def multigrid_solve(f: Tensor, x0: Tensor | None, tol: float, max_cycles: int, cycle: str,
                    mean: float) -> tuple[Tensor, Tensor]:
    """The reference multigrid solve with the backend signature: (u, residual history)."""
    return multigrid.multigrid_solve(f, tol=tol, max_cycles=max_cycles, x0=x0, cycle=cycle, mean=mean,
                                     return_history=True)
