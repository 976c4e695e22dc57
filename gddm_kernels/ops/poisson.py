"""torch.ops.gddm.{poisson_solve, reconstruct}: the cosine-transform (DCT) solve, and
torch.ops.gddm.multigrid_solve: the geometric multigrid solve of the same system.

Autograd: P(f) = L^+ (f - mean f) + mean is linear in f with a symmetric L^+ (the Neumann
Laplacian is symmetric and P annihilates constants), so the backward of a solve is a solve
with mean 0. reconstruct(g) = P(1/4 div g), whose adjoint is -1/4 gradient(P(.)).
Non-finite input propagates: the solve is global, so one NaN/Inf makes its whole image NaN.
"""

import torch
from torch import Tensor

from .._layout import image_shape
from .._validation import check_field, check_image, check_multigrid_args
from ..dispatch import AUTO, select
from .stencils import gradient

RECONSTRUCT_ADJOINT_SCALE = -0.25


@torch.library.custom_op("gddm::poisson_solve", mutates_args=())
def poisson_solve(f: Tensor, mean: float = 0.0, backend: str = AUTO) -> Tensor:
    """u with laplacian(u) == f - mean(f) and mean(u) == mean: (..., H, W) -> (..., H, W)."""
    check_image(f, "poisson_solve", "f")
    if f.numel() == 0:
        return f.new_empty(f.shape)
    return select("poisson_solve", backend, f).poisson_solve(f, mean)


@poisson_solve.register_fake
def _(f: Tensor, mean: float = 0.0, backend: str = AUTO) -> Tensor:
    check_image(f, "poisson_solve", "f")
    return f.new_empty(f.shape)


@torch.library.custom_op("gddm::reconstruct", mutates_args=())
def reconstruct(g: Tensor, mean: float = 0.0, backend: str = AUTO) -> Tensor:
    """Least-squares image of a gradient field: (..., 2, H, W) -> (..., H, W)."""
    check_field(g, "reconstruct")
    if g.numel() == 0:
        return g.new_empty(image_shape(g.shape))
    return select("reconstruct", backend, g).reconstruct(g, mean)


@reconstruct.register_fake
def _(g: Tensor, mean: float = 0.0, backend: str = AUTO) -> Tensor:
    check_field(g, "reconstruct")
    return g.new_empty(image_shape(g.shape))


def _save_backend(ctx, inputs: tuple, output: Tensor) -> None:
    ctx.backend = inputs[2]


def _poisson_solve_backward(ctx, grad: Tensor) -> tuple[Tensor, None, None]:
    return poisson_solve(grad, 0.0, ctx.backend), None, None


def _reconstruct_backward(ctx, grad: Tensor) -> tuple[Tensor, None, None]:
    return gradient(poisson_solve(grad, 0.0, ctx.backend), RECONSTRUCT_ADJOINT_SCALE, ctx.backend), None, None


poisson_solve.register_autograd(_poisson_solve_backward, setup_context=_save_backend)
reconstruct.register_autograd(_reconstruct_backward, setup_context=_save_backend)


@torch.library.custom_op("gddm::multigrid_solve", mutates_args=())
def multigrid_solve(f: Tensor, x0: Tensor | None = None, tol: float = 1e-6, max_cycles: int = 10,
                    cycle: str = "V", mean: float = 0.0, backend: str = AUTO) -> tuple[Tensor, Tensor]:
    """Geometric multigrid: u with laplacian(u) == f - mean(f) to relative residual `tol`, and
    the residual history (max_cycles + 1,) float64 on f's device, NaN after the last cycle run
    (a fixed shape keeps the op traceable)."""
    check_multigrid_args(f, x0, tol, max_cycles, cycle)
    if f.numel() == 0:
        return f.new_empty(f.shape), _history_like(f, max_cycles)
    u, history = select("multigrid_solve", backend, f).multigrid_solve(f, x0, tol, max_cycles, cycle, mean)
    return u, torch.nn.functional.pad(history, (0, max_cycles + 1 - history.numel()), value=float("nan"))


@multigrid_solve.register_fake
def _(f: Tensor, x0: Tensor | None = None, tol: float = 1e-6, max_cycles: int = 10, cycle: str = "V",
      mean: float = 0.0, backend: str = AUTO) -> tuple[Tensor, Tensor]:
    check_multigrid_args(f, x0, tol, max_cycles, cycle)
    return f.new_empty(f.shape), _history_like(f, max_cycles)


def _history_like(f: Tensor, max_cycles: int) -> Tensor:
    return f.new_full((max_cycles + 1,), float("nan"), dtype=torch.float64)


def _save_multigrid_args(ctx, inputs: tuple, output: tuple[Tensor, Tensor]) -> None:
    _, _, ctx.tol, ctx.max_cycles, ctx.cycle, _, ctx.backend = inputs


def _multigrid_backward(ctx, grad_u: Tensor, grad_history: Tensor) -> tuple:
    """The solve is self-adjoint: the cotangent of f is the solve of grad_u (same tolerance)."""
    grad_f, _ = multigrid_solve(grad_u, None, ctx.tol, ctx.max_cycles, ctx.cycle, 0.0, ctx.backend)
    return grad_f, None, None, None, None, None, None


multigrid_solve.register_autograd(_multigrid_backward, setup_context=_save_multigrid_args)
