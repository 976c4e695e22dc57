"""The multigrid solve of the fast backends: the reference's cycles
(gddm_kernels.reference.multigrid) with its stages replaced by fused kernels, one pass each:

    smooth             a red and a black Gauss-Seidel half sweep per sweep, in place
    residual_restrict  f - L u and its sum over 2x2 children, one pass writing the coarse grid
    prolong_correct    u += bilinear interpolation of the coarse correction, in place

`kernels` has the signatures of torch.ops.gddm_C.mg_* (see csrc/ops.cpp).
"""

import torch
from torch import Tensor

from .reference.multigrid import Level, Stages, multigrid_solve

RED, BLACK = 0, 1


def fused_stages(kernels: object, laplacian) -> Stages:
    """Stages running `kernels` on contiguous float32/float64 grids; `laplacian` measures the
    finest-level residual."""

    def smooth(u: Tensor, f: Tensor, sweeps: int, level: Level) -> Tensor:
        for _ in range(sweeps):
            for color in (RED, BLACK):
                kernels.mg_smooth_(u, f, level.widths_y, level.widths_x, color)
        return u

    def residual_restrict(u: Tensor, f: Tensor, level: Level) -> Tensor:
        return kernels.mg_residual_restrict(u, f, level.widths_y, level.widths_x)

    def prolong_correct(u: Tensor, e_coarse: Tensor, level: Level) -> Tensor:
        ty, tx = level.transfer_y, level.transfer_x
        kernels.mg_prolong_correct_(u, e_coarse.contiguous(), ty.lo, ty.hi, ty.weight_hi, tx.lo, tx.hi, tx.weight_hi)
        return u

    return Stages(smooth, residual_restrict, prolong_correct, laplacian)


def solve(f: Tensor, x0: Tensor | None, tol: float, max_cycles: int, cycle: str, mean: float,
          stages: Stages) -> tuple[Tensor, Tensor]:
    """multigrid_solve with `stages` on contiguous copies of the inputs: (u, history)."""
    x0 = None if x0 is None else x0.contiguous()
    return multigrid_solve(f.contiguous(), tol=tol, max_cycles=max_cycles, x0=x0, cycle=cycle, mean=mean,
                           return_history=True, stages=stages)


def padded_history(history: Tensor, max_cycles: int) -> Tensor:
    """The residual history as a fixed-length (max_cycles + 1,) float64 tensor, NaN after the
    last cycle run (a fixed shape keeps the op traceable)."""
    out = torch.full((max_cycles + 1,), float("nan"), dtype=torch.float64)
    out[: history.numel()] = history
    return out
