"""Public Poisson API: poisson_solve and reconstruct (torch.ops.gddm.* underneath)."""

from torch import Tensor

from . import ops
from ._validation import check_field, check_image
from .dispatch import AUTO

METHODS = ("dct",)


def _check_method(method: str, op: str) -> None:
    if method not in METHODS:
        raise ValueError(f"gddm.{op}: argument `method` must be one of {METHODS}, got {method!r}")


def poisson_solve(f: Tensor, *, method: str = "dct", mean: float = 0.0, backend: str | None = None) -> Tensor:
    """Solves the Neumann Poisson problem exactly inverted by `laplacian`:

        laplacian(u) == f - mean(f),   mean(u) == mean      (per image)

    method "dct": the DCT-II diagonalises the operator, u = IDCT(DCT(f) / lambda) with
    lambda[p, q] = 0.25 (2 cos(pi p/H) - 2 + 2 cos(pi q/W) - 2), computed by one rfft2/irfft2
    pair and three fused passes. poisson_solve(laplacian(x)) == x - mean(x) to rounding.

    Args:
        f: right-hand sides (..., H, W), any H, W >= 1; float32/float64 arithmetic (half types
            are computed in float32 and returned in their dtype).
        mean: the mean of the returned solution.
        backend: "reference", "cpu", "cuda", "triton" or None (context, GDDM_BACKEND, auto).
    Returns:
        u (..., H, W), contiguous, f's dtype. Differentiable (the backward is a solve).
    Non-finite values propagate: a NaN or Inf makes its whole image NaN.
    """
    _check_method(method, "poisson_solve")
    return ops.poisson_solve(check_image(f, "poisson_solve", "f"), float(mean), backend or AUTO)


def reconstruct(g: Tensor, *, method: str = "dct", mean: float = 0.0, backend: str | None = None) -> Tensor:
    """The least-squares image of a gradient field (paper eq. 8):

        u = argmin ||gradient(u) - g||^2, mean(u) == mean,  i.e.  poisson_solve(0.25 divergence(g))

    with the divergence fused into the solver's first pass. reconstruct(gradient(x)) ==
    x - mean(x); a non-integrable g (as diffusion produces) gets its unique least-squares answer.

    Args:
        g: gradient fields (..., 2, H, W); method, mean, backend: as in `poisson_solve`.
    Returns:
        u (..., H, W), contiguous, g's dtype. Differentiable.
    """
    _check_method(method, "reconstruct")
    return ops.reconstruct(check_field(g, "reconstruct"), float(mean), backend or AUTO)
