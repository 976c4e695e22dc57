"""Reference stages of the geometric multigrid solve (algorithm: gddm_kernels/_multigrid.py):
the three per-level operations a cycle is made of, in plain PyTorch on a `Level`'s
coefficients. The fused kernels of every fast backend are tested against them stage by stage.

    smooth             red-black Gauss-Seidel sweeps on L u = f
    residual_restrict  the residual f - L u summed over the 2x2 children of each coarse cell
    prolong_correct    u + the separable linear interpolation of a coarse correction

(L: the level's finite-volume operator, `apply_operator`; on the finest level L == laplacian.)
`multigrid_solve` is the solve with these stages.
"""

import torch
from torch import Tensor

from .._multigrid import Level, Stages, apply_operator, build_hierarchy, coarse_shape, solve
from .._validation import MULTIGRID_CYCLES, check_image
from .stencils import laplacian

OP_NAME = "multigrid_solve"


def _finest_level(u: Tensor) -> Level:
    return build_hierarchy(u.shape[-2], u.shape[-1], u.dtype, u.device)


def smooth(u: Tensor, f: Tensor, sweeps: int, level: Level | None = None) -> Tensor:
    """`sweeps` red-black Gauss-Seidel sweeps on L u = f: (..., H, W) -> (..., H, W).

    Each half sweep gives the cells of one colour the value that zeroes their residual:
    u[c] -= (f - L u)[c] / d[c], where -d is the (negative) diagonal of L. Cells of one colour
    do not touch each other, so updating them all at once is exact Gauss-Seidel.
    """
    level = level or _finest_level(u)
    for _ in range(sweeps):
        for step in (level.red_step, level.black_step):
            u = u - step * (f - apply_operator(u, level))
    return u


def residual_restrict(u: Tensor, f: Tensor, level: Level | None = None) -> Tensor:
    """Coarse right-hand side: the residual r = f - L u summed over the (up to 2x2) children
    of each coarse cell: (..., H, W) -> (..., ceil(H/2), ceil(W/2)).

    An odd axis is padded with one zero row/column, so its last coarse cell has one child.
    Sums preserve sum(r), hence the compatibility sum == 0 of the singular Neumann system.
    """
    level = level or _finest_level(u)
    H, W = level.shape
    Hc, Wc = coarse_shape(H, W)
    r = torch.nn.functional.pad(f - apply_operator(u, level), (0, W % 2, 0, H % 2))
    return r.reshape(*r.shape[:-2], Hc, 2, Wc, 2).sum(dim=(-3, -1))


def prolong_correct(u: Tensor, e_coarse: Tensor, level: Level | None = None) -> Tensor:
    """u + P e_coarse, with P the separable linear interpolation between cell centres
    (bilinear 9/16, 3/16, 3/16, 1/16 on equal widths, constant towards the boundary):
    (..., H, W), (..., ceil(H/2), ceil(W/2)) -> (..., H, W)."""
    level = level or _finest_level(u)
    ty, tx = level.transfer_y, level.transfer_x
    wy, wx = ty.weight_hi[:, None], tx.weight_hi
    e = (1 - wy) * e_coarse[..., ty.lo, :] + wy * e_coarse[..., ty.hi, :]
    return u + (1 - wx) * e[..., tx.lo] + wx * e[..., tx.hi]


REFERENCE_STAGES = Stages(smooth, residual_restrict, prolong_correct, laplacian)


def multigrid_solve(f: Tensor, *, tol: float = 1e-6, max_cycles: int = 10, x0: Tensor | None = None,
                    cycle: str = "V", pre_smooth: int = 2, post_smooth: int = 2, mean: float = 0.0,
                    return_history: bool = False) -> Tensor | tuple[Tensor, Tensor]:
    """laplacian(u) == f - mean(f), mean(u) == `mean`, by geometric multigrid with the stages
    above (gddm_kernels._multigrid.solve; its arguments there). Here tol >= 0 and max_cycles >= 0
    (0 cycles: u = x0 or zeros). Returns u, or (u, history) with `return_history`."""
    check_image(f, OP_NAME, "f")
    if cycle not in MULTIGRID_CYCLES:
        raise ValueError(f"gddm.{OP_NAME}: argument `cycle` must be one of {MULTIGRID_CYCLES}, got {cycle!r}")
    if x0 is not None and check_image(x0, OP_NAME, "x0").shape != f.shape:
        raise ValueError(f"gddm.{OP_NAME}: argument `x0` must have f's shape {tuple(f.shape)}, got {tuple(x0.shape)}")
    if f.shape[-2] == 0 or f.shape[-1] == 0:
        raise ValueError(f"gddm.{OP_NAME}: images must have H, W >= 1, got shape {tuple(f.shape)}")
    if tol < 0 or max_cycles < 0 or pre_smooth < 0 or post_smooth < 0:
        raise ValueError(f"gddm.{OP_NAME}: tol, max_cycles, pre_smooth and post_smooth must be >= 0")
    u, history = solve(f, REFERENCE_STAGES, tol=tol, max_cycles=max_cycles, x0=x0, cycle=cycle,
                       pre_smooth=pre_smooth, post_smooth=post_smooth, mean=mean)
    return (u, history) if return_history else u
