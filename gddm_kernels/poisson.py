"""Public Poisson API: poisson_solve and reconstruct (torch.ops.gddm.* underneath)."""

import torch
from torch import Tensor

from . import ops
from ._spectral import RECONSTRUCT_SCALE
from ._validation import check_field, check_image
from .dispatch import AUTO, compiled_fast_path

METHODS = ("dct", "multigrid")
DEFAULT_TOL = 1e-6
DEFAULT_MAX_CYCLES = 10


def poisson_solve(f: Tensor, *, method: str = "dct", mean: float = 0.0, tol: float | None = None,
                  max_cycles: int | None = None, x0: Tensor | None = None, cycle: str = "V",
                  return_history: bool = False, backend: str | None = None) -> Tensor | tuple[Tensor, Tensor]:
    """Solves the Neumann Poisson problem exactly inverted by `laplacian`:

        laplacian(u) == f - mean(f),   mean(u) == mean      (per image)

    method "dct" (exact, default): the DCT-II diagonalises the operator,
    u = IDCT(DCT(f) / lambda) with lambda[p, q] = 0.25 (2 cos(pi p/H) - 2 + 2 cos(pi q/W) - 2);
    one rfft2/irfft2 pair and three fused passes (cosine-matrix products for small images).
    poisson_solve(laplacian(x)) == x - mean(x) to rounding.

    method "multigrid" (iterative): geometric multigrid (red-black Gauss-Seidel, residual fused
    with restriction, prolongation fused with correction; V- or full-multigrid cycles) until
    the relative residual ||f - mean f - laplacian(u)|| / ||f - mean f|| (max over the batch)
    is <= tol, or max_cycles cycles ran. Float32 cycles with a float64 defect correction, so
    even float32 input reaches residuals below float32's own rounding floor.

    Args:
        f: right-hand sides (..., H, W), any H, W >= 1; float32/float64 arithmetic (half types
            are computed in float32 and returned in their dtype).
        mean: the mean of the returned solution.
        tol, max_cycles, x0, cycle, return_history: multigrid only. tol > 0 (default 1e-6),
            max_cycles >= 1 (default 10), x0 an initial guess of f's shape, cycle "V" or
            "FMG", return_history: also return the relative residual before the first cycle
            and after each cycle (float64, on f's device; needs one host sync per cycle anyway).
        backend: "reference", "cpu", "cuda", "triton" or None (context, GDDM_BACKEND, auto).
    Returns:
        u (..., H, W), contiguous, f's dtype (and the history). Differentiable: the solve is
        self-adjoint, so its backward is a solve (multigrid: to the same tolerance).
    Non-finite values propagate: a NaN or Inf makes its whole image NaN.
    """
    check_image(f, "poisson_solve", "f")
    if method == "dct":
        _reject_multigrid_args(tol, max_cycles, x0, cycle, return_history)
        if compiled_fast_path(backend, f):
            return torch.ops.gddm_C.poisson_solve_nd(f, float(mean))
        return ops.poisson_solve(f, float(mean), backend or AUTO)
    if method == "multigrid":
        u, history = ops.multigrid_solve(
            f, x0, DEFAULT_TOL if tol is None else tol, DEFAULT_MAX_CYCLES if max_cycles is None else max_cycles,
            cycle, float(mean), backend or AUTO)
        return (u, history[~history.isnan()]) if return_history else u
    raise ValueError(f"gddm.poisson_solve: argument `method` must be one of {METHODS}, got {method!r}")


def reconstruct(g: Tensor, *, method: str = "dct", mean: float = 0.0, backend: str | None = None,
                **multigrid_args) -> Tensor | tuple[Tensor, Tensor]:
    """The least-squares image of a gradient field (paper eq. 8):

        u = argmin ||gradient(u) - g||^2, mean(u) == mean,  i.e.  poisson_solve(0.25 divergence(g))

    method "dct" fuses the divergence into the solver's first pass; "multigrid" solves the
    same system iteratively (`multigrid_args`: tol, max_cycles, x0, cycle, return_history as
    in `poisson_solve`). reconstruct(gradient(x)) == x - mean(x); a non-integrable g (as
    diffusion produces) gets its unique least-squares answer.

    Args:
        g: gradient fields (..., 2, H, W); method, mean, backend: as in `poisson_solve`.
    Returns:
        u (..., H, W), contiguous, g's dtype. Differentiable.
    """
    check_field(g, "reconstruct")
    if method == "dct":
        _reject_multigrid_args(**multigrid_args)
        if compiled_fast_path(backend, g):
            return torch.ops.gddm_C.reconstruct_nd(g, float(mean))
        return ops.reconstruct(g, float(mean), backend or AUTO)
    if method == "multigrid":
        rhs = ops.divergence(g, RECONSTRUCT_SCALE, backend or AUTO)
        return poisson_solve(rhs, method="multigrid", mean=mean, backend=backend, **multigrid_args)
    raise ValueError(f"gddm.reconstruct: argument `method` must be one of {METHODS}, got {method!r}")


def _reject_multigrid_args(tol: float | None = None, max_cycles: int | None = None, x0: Tensor | None = None,
                           cycle: str = "V", return_history: bool = False) -> None:
    given = [name for name, is_set in (("tol", tol is not None), ("max_cycles", max_cycles is not None),
                                       ("x0", x0 is not None), ("cycle", cycle != "V"),
                                       ("return_history", return_history)) if is_set]
    if given:
        raise ValueError(f"gddm.poisson_solve: {', '.join(given)} only apply to method='multigrid' "
                         "(the DCT solve is exact)")
