"""Pure-PyTorch implementations: the executable specification every fast backend is tested
against. They read like ../DESIGN.md and favour clarity over speed."""

from .stencils import divergence, gradient, laplacian

__all__ = ["gradient", "divergence", "laplacian"]
