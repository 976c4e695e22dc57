"""Pure-PyTorch implementations: the executable specification every fast backend is tested
against. They read like ../DESIGN.md and favour clarity over speed."""

from .poisson import poisson_solve, reconstruct
from .stencils import divergence, gradient, laplacian

__all__ = ["gradient", "divergence", "laplacian", "poisson_solve", "reconstruct"]
