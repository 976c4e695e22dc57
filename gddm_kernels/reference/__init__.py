"""Pure-PyTorch implementations: the executable specification every fast backend is tested
against, written to read like the maths (docs/design.md) rather than to be fast. Nothing in
the package runs on them except the `reference` backend, which is this module
(backends/protocol.py's OpImplementation).

    stencils.py         gradient, divergence, laplacian
    poisson.py          the DCT solve by explicit cosine matrices
    multigrid.py        the multigrid stages (the cycles: gddm_kernels/_multigrid.py)
    diffusion.py        forward processes and samplers (DDPM, DDIM, DPM-Solver++(2M), attenuation)
    fused_diffusion.py  the generic noise-add and affine step the samplers reduce to
    random.py           the counter-based Philox normals of the fused kernels
"""

from torch import Tensor

from . import multigrid
from .fused_diffusion import add_noise, diffusion_step
from .poisson import poisson_solve, reconstruct
from .stencils import divergence, gradient, laplacian

__all__ = ["gradient", "divergence", "laplacian", "poisson_solve", "reconstruct", "multigrid_solve", "add_noise",
           "diffusion_step"]


def multigrid_solve(f: Tensor, x0: Tensor | None, tol: float, max_cycles: int, cycle: str,
                    mean: float) -> tuple[Tensor, Tensor]:
    """The reference multigrid solve with the op layer's signature: (u, residual history)."""
    return multigrid.multigrid_solve(f, tol=tol, max_cycles=max_cycles, x0=x0, cycle=cycle, mean=mean,
                                     return_history=True)
