"""The geometric multigrid solve of the Neumann Poisson problem: the hierarchy of levels, the
cycles and the solve loop, shared by every backend. A backend supplies the three stages of a
cycle (`Stages`): the reference passes its plain-PyTorch stages (reference/multigrid.py), a
fast backend its fused kernels through `fused_stages`.

`multigrid_solve(f)` returns the `u` with `laplacian(u) == f - mean(f)` and `mean(u) == mean`
(default 0), to a requested relative residual, for images `f` of shape (..., H, W) with any
leading batch dims and any H, W >= 1. `laplacian` is the paper's kernel
[[0, 1/4, 0], [1/4, -1, 1/4], [0, 1/4, 0]] with an edge-replicate (Neumann) boundary. Its null
space is the constants, so the mean of the right-hand side is projected out and the mean of
the answer is set at the end.

Discretisation (cell-centred finite volumes). Pixel (i, j) is a cell of width 1. On every
level the system is written in integrated ("flux") form

    (L u)[c] = sum over the faces of cell c of T_face * (u[neighbour] - u[c]) = b[c],

with no face (no flux) on the image boundary, which is exactly the edge-replicate Neumann
condition. On the finest level T = 1/4 on every face, so L == laplacian and b = f - mean(f).
A coarse level merges pairs of cells along each axis (sizes (ceil(H/2), ceil(W/2)); an axis
of odd size keeps its last cell alone), so each axis has cell widths w (in fine pixels):
2^level everywhere, except that odd sizes leave narrower cells at the far end. The coarse
operator is the same finite-volume rediscretisation on those cells:

    T across the face between rows i, i+1 at column j = 1/4 * w_x[j] / ((w_y[i] + w_y[i+1]) / 2)
    (and likewise across columns),

i.e. face length over centre distance, times the paper's 1/4. Where all widths are equal this
is the paper stencil itself (all T = 1/4) with a right-hand side summed over the four children,
which is the usual "stencil scaled by 1/4 per level for spacing 2h" with averaging restriction,
written without the scale. Odd sizes make the cells at the far end narrower instead of
extending the coarse domain past the image, so every level solves the same Neumann problem on
the same domain and the coarse-grid correction stays accurate for primes and 2^k + 1.

Transfers, separable along the two axes:
* restriction: the coarse right-hand side is the sum of the residual over the (up to 2x2)
  children of a coarse cell. Sums keep the compatibility condition sum(b) == 0 that the
  singular Neumann system needs, level by level.
* prolongation: linear interpolation between coarse cell centres along each axis, held
  constant beyond the outermost centres (the Neumann reflection). On equal widths this is
  bilinear cell-centred interpolation with weights 9/16, 3/16, 3/16, 1/16.
The orders of the two transfers (2 and 1) add up to more than the order 2 of the operator,
which is the condition for a level-independent V-cycle rate.

Smoother: red-black Gauss-Seidel. On this 5-point operator the cells of one colour do not
touch each other, so each colour is updated all at once. It damps high frequencies more
strongly than weighted Jacobi (smoothing factor 1/4 against 3/5 for omega = 4/5). Measured
with V(2,2)-cycles on 1024 x 1024 white noise: the residual falls by 0.017 in the first cycle
and by 0.085 per cycle asymptotically (1e-6 after 5 cycles); weighted Jacobi with twice the
sweeps (as many operator applications as this reference spends) reaches 0.10 per cycle.
Square-ish odd sizes converge at the same rate; images only 1 to ~8 pixels thin behave like
the 1-D problem, at about 0.27 per cycle.

Coarsest level (H <= 2 and W <= 2, at most 4 cells): exact minimum-norm solve with the
float64 pseudo-inverse of the level's matrix.

Stages, each a small function that a fused kernel replaces one-to-one: `smooth`,
`residual_restrict`, `prolong_correct` (specified in reference/multigrid.py). They take the
`Level` they run on.

Precision: the cycles run in float64 for float64 input and in float32 otherwise (float16 and
bfloat16 inputs too); the iterate and its residual are kept in float64 and each cycle solves
the correction equation (defect correction). So float32 cycles reach relative residuals far
below float32's own rounding floor (about eps * ||u|| / ||f||: for a 1024x1024 white-noise
right-hand side, the exact solution rounded to float32 has a relative residual of 6e-6), and
the reported history is that of the float64 iterate; the answer is rounded once to the input
dtype at the end.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import torch
from torch import Tensor

if TYPE_CHECKING:
    from .backends.protocol import MultigridKernels

FACE_WEIGHT = 0.25  # the paper stencil's weight per face at pixel spacing 1
COARSEST_SIZE = 2  # a level with H <= COARSEST_SIZE and W <= COARSEST_SIZE is solved exactly


@dataclass(frozen=True)
class AxisTransfer:
    """Linear interpolation from a coarse axis of Nc cells to a fine axis of N cells:
    fine[n] = (1 - weight_hi[n]) * coarse[lo[n]] + weight_hi[n] * coarse[hi[n]]."""

    lo: Tensor  # (N,) int64
    hi: Tensor  # (N,) int64
    weight_hi: Tensor  # (N,) working dtype


@dataclass(frozen=True)
class Level:
    """One grid of the hierarchy, with what its stages need.

    Shapes: face_y (H-1, W) coefficients T of the faces between rows i and i+1; face_x (H, W-1)
    those between columns j and j+1; red_step / black_step (H, W) hold 1 / diag(-L) on the
    cells of one colour ((i + j) even = red) and 0 elsewhere. `coarse` is the next coarser
    level and `transfer_y` / `transfer_x` interpolate from it to this one; on the coarsest
    level they are None and `pinv` (H*W, H*W), float64, is the pseudo-inverse of L.
    """

    shape: tuple[int, int]
    widths_y: Tensor  # (H,) cell heights, working dtype (what the fused kernels read)
    widths_x: Tensor  # (W,) cell widths
    face_y: Tensor
    face_x: Tensor
    red_step: Tensor
    black_step: Tensor
    coarse: Level | None
    transfer_y: AxisTransfer | None
    transfer_x: AxisTransfer | None
    pinv: Tensor | None


# ----------------------------------------------------------------------------- hierarchy


def coarse_shape(H: int, W: int) -> tuple[int, int]:
    """Shape of the next coarser level: pairs of cells merge along each axis, (ceil(H/2),
    ceil(W/2)); an axis of size 1 stays 1."""
    return (H + 1) // 2, (W + 1) // 2


def _is_coarsest(H: int, W: int) -> bool:
    return H <= COARSEST_SIZE and W <= COARSEST_SIZE


def _pair_sums(widths: Tensor) -> Tensor:
    """(N,) -> (ceil(N/2),): sums of the pairs (0, 1), (2, 3), ...; an odd last entry alone."""
    padded = torch.nn.functional.pad(widths, (0, widths.numel() % 2))
    return padded.reshape(-1, 2).sum(-1)


def _centres(widths: Tensor) -> Tensor:
    """Cell centres along an axis of cells of the given widths, starting at 0."""
    return torch.cumsum(widths, 0) - 0.5 * widths


def _axis_transfer(fine_widths: Tensor, coarse_widths: Tensor, dtype: torch.dtype) -> AxisTransfer:
    """Linear interpolation between coarse cell centres, evaluated at the fine cell centres,
    constant beyond the first and last coarse centre (Neumann)."""
    fine, coarse = _centres(fine_widths), _centres(coarse_widths)
    last = coarse.numel() - 1
    hi = torch.searchsorted(coarse, fine).clamp(max=last)
    lo = (hi - 1).clamp(min=0)
    span = coarse[hi] - coarse[lo]  # 0 only where lo == hi, and then the weight does not matter
    weight_hi = ((fine - coarse[lo]) / torch.where(span > 0, span, 1.0)).clamp(0.0, 1.0)
    return AxisTransfer(lo, hi, weight_hi.to(dtype))


def apply_operator(u: Tensor, level: Level) -> Tensor:
    """(L u)[c] = sum over faces of T_face * (u[neighbour] - u[c]): (..., H, W) -> (..., H, W).
    On the finest level this equals `laplacian(u)` up to rounding."""
    out = torch.zeros_like(u)
    flux_y = level.face_y * (u[..., 1:, :] - u[..., :-1, :])
    out[..., :-1, :] += flux_y
    out[..., 1:, :] -= flux_y
    flux_x = level.face_x * (u[..., :, 1:] - u[..., :, :-1])
    out[..., :, :-1] += flux_x
    out[..., :, 1:] -= flux_x
    return out


def _operator_matrix(level: Level) -> Tensor:
    """The level's L as a dense (H*W, H*W) float64 matrix (for the coarsest level only)."""
    H, W = level.shape
    n = H * W
    basis = torch.eye(n, dtype=level.face_y.dtype, device=level.face_y.device).reshape(n, H, W)
    return apply_operator(basis, level).reshape(n, n).T.double()


def _build_level(widths_y: Tensor, widths_x: Tensor, dtype: torch.dtype) -> Level:
    """The level on cells of the given float64 widths (H,), (W,), and recursively its coarser
    levels."""
    H, W = widths_y.numel(), widths_x.numel()
    device = widths_y.device
    inv_distance_y = 2.0 / (widths_y[:-1] + widths_y[1:])  # (H-1,)
    inv_distance_x = 2.0 / (widths_x[:-1] + widths_x[1:])  # (W-1,)
    face_y = FACE_WEIGHT * torch.outer(inv_distance_y, widths_x)  # (H-1, W)
    face_x = FACE_WEIGHT * torch.outer(widths_y, inv_distance_x)  # (H, W-1)

    diagonal = torch.zeros(H, W, dtype=torch.float64, device=device)
    diagonal[:-1, :] += face_y
    diagonal[1:, :] += face_y
    diagonal[:, :-1] += face_x
    diagonal[:, 1:] += face_x
    has_faces = diagonal > 0  # False only on a 1x1 level
    inv_diagonal = torch.where(has_faces, 1.0 / torch.where(has_faces, diagonal, 1.0), 0.0)
    rows = torch.arange(H, device=device)[:, None]
    cols = torch.arange(W, device=device)[None, :]
    red = (rows + cols) % 2 == 0

    fields = dict(
        shape=(H, W),
        widths_y=widths_y.to(dtype),
        widths_x=widths_x.to(dtype),
        face_y=face_y.to(dtype),
        face_x=face_x.to(dtype),
        red_step=torch.where(red, inv_diagonal, 0.0).to(dtype),
        black_step=torch.where(red, 0.0, inv_diagonal).to(dtype),
    )
    if _is_coarsest(H, W):
        level = Level(**fields, coarse=None, transfer_y=None, transfer_x=None, pinv=None)
        return replace(level, pinv=torch.linalg.pinv(_operator_matrix(level), hermitian=True))
    coarse_y, coarse_x = _pair_sums(widths_y), _pair_sums(widths_x)
    return Level(
        **fields,
        coarse=_build_level(coarse_y, coarse_x, dtype),
        transfer_y=_axis_transfer(widths_y, coarse_y, dtype),
        transfer_x=_axis_transfer(widths_x, coarse_x, dtype),
        pinv=None,
    )


@functools.lru_cache(maxsize=16)
def build_hierarchy(H: int, W: int, dtype: torch.dtype = torch.float64,
                    device: torch.device | str = "cpu") -> Level:
    """The finest level of an H x W image (unit cell widths) with all its coarser levels,
    coefficients in `dtype` on `device`. Cached: its tensors are read-only."""
    unit = dict(dtype=torch.float64, device=device)
    return _build_level(torch.ones(H, **unit), torch.ones(W, **unit), dtype)


# ----------------------------------------------------------------------------- cycles


@dataclass(frozen=True)
class Stages:
    """The stages a cycle is made of: the reference's (reference/multigrid.py) or a fast
    backend's fused kernels with the same signatures and maths (they may update `u` in place
    and return it). `laplacian` measures the finest-level residual in float64."""

    smooth: Callable[[Tensor, Tensor, int, Level], Tensor]
    residual_restrict: Callable[[Tensor, Tensor, Level], Tensor]
    prolong_correct: Callable[[Tensor, Tensor, Level], Tensor]
    laplacian: Callable[[Tensor], Tensor]


RED, BLACK = 0, 1


def fused_stages(kernels: "MultigridKernels", laplacian: Callable[[Tensor], Tensor]) -> Stages:
    """The stages of a fast backend: its fused kernels (one pass each, on contiguous grids)

        mg_smooth_              a red or a black Gauss-Seidel half sweep, in place
        mg_residual_restrict    f - L u summed over 2x2 children, writing the coarse grid
        mg_prolong_correct_     u += bilinear interpolation of the coarse correction, in place

    and `laplacian`, a float64 Laplacian for the finest-level residual."""

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


def finest_operator64(u: Tensor) -> Tensor:
    """laplacian(u) for float64 u, as the finest level's operator (all faces 1/4): the residual
    measure of a backend whose own Laplacian has no float64 kernel."""
    return apply_operator(u, build_hierarchy(u.shape[-2], u.shape[-1], torch.float64, u.device))


def coarsest_correct(u: Tensor, f: Tensor, level: Level) -> Tensor:
    """u + the minimum-norm solution e of L e = f - L u (exact on the coarsest level)."""
    r = (f - apply_operator(u, level)).flatten(-2).double()
    return u + (r @ level.pinv).to(u.dtype).reshape(u.shape)


def v_cycle(u: Tensor, f: Tensor, level: Level, stages: Stages, *, pre_smooth: int = 2,
            post_smooth: int = 2) -> Tensor:
    """One V(pre_smooth, post_smooth)-cycle on L u = f: (..., H, W) -> (..., H, W).

    Smooth, restrict the residual, solve the coarse correction equation L_c e = r_c by one
    V-cycle from zero (exactly on the coarsest level), add its interpolation, smooth again.
    """
    if level.coarse is None:
        return coarsest_correct(u, f, level)
    u = stages.smooth(u, f, pre_smooth, level)
    f_coarse = stages.residual_restrict(u, f, level)
    e_coarse = v_cycle(torch.zeros_like(f_coarse), f_coarse, level.coarse, stages,
                       pre_smooth=pre_smooth, post_smooth=post_smooth)
    u = stages.prolong_correct(u, e_coarse, level)
    return stages.smooth(u, f, post_smooth, level)


def fmg_cycle(u: Tensor, f: Tensor, level: Level, stages: Stages, *, pre_smooth: int = 2,
              post_smooth: int = 2) -> Tensor:
    """One full-multigrid cycle on L u = f: (..., H, W) -> (..., H, W).

    The coarse correction equation L_c e = r_c is solved by a full-multigrid cycle from zero
    (exactly on the coarsest level), its interpolation is added to u, and one V-cycle follows.
    Unrolled from the coarsest level up: every level starts from the interpolated solution of
    the level below it and does one V-cycle.
    """
    if level.coarse is None:
        return coarsest_correct(u, f, level)
    f_coarse = stages.residual_restrict(u, f, level)
    e_coarse = fmg_cycle(torch.zeros_like(f_coarse), f_coarse, level.coarse, stages,
                         pre_smooth=pre_smooth, post_smooth=post_smooth)
    return v_cycle(stages.prolong_correct(u, e_coarse, level), f, level, stages,
                   pre_smooth=pre_smooth, post_smooth=post_smooth)


# ----------------------------------------------------------------------------- solver


def _zero_mean(x: Tensor) -> Tensor:
    return x - x.mean(dim=(-2, -1), keepdim=True)


def relative_residuals(r: Tensor, b_norm: Tensor) -> float:
    """max over the batch of ||r|| / ||b|| per image (the absolute residual norm for an image
    whose b is 0)."""
    r_norm = torch.linalg.vector_norm(r, dim=(-2, -1))
    ratio = r_norm / torch.where(b_norm > 0, b_norm, 1.0)
    return float(ratio.max()) if ratio.numel() else 0.0


def solve(f: Tensor, stages: Stages, *, tol: float, max_cycles: int, x0: Tensor | None = None, cycle: str = "V",
          pre_smooth: int = 2, post_smooth: int = 2, mean: float = 0.0) -> tuple[Tensor, Tensor]:
    """Solve laplacian(u) == f - mean(f) with mean(u) == `mean` by geometric multigrid (the
    arguments are checked by the caller: the op layer or the reference's multigrid_solve).

    Args:
        f: right-hand sides (..., H, W), any leading batch dims, H, W >= 1; float16, bfloat16
            (solved in float32), float32 or float64. Each image is independent.
        stages: the cycle's stages (the reference's, or a fast backend's `fused_stages`).
        tol: stop once the relative residual ||f - mean(f) - laplacian(u)|| / ||f - mean(f)||,
            per image and maximised over the batch, is <= tol.
        max_cycles: at most this many cycles.
        x0: initial guess of f's shape (default zeros).
        cycle: "V" for V-cycles, "FMG" for a full-multigrid first cycle followed by V-cycles.
        pre_smooth, post_smooth: Gauss-Seidel sweeps before / after each coarse correction.
        mean: the mean of the returned u.
    Returns:
        u of f's shape and dtype, and the residual history: the relative residual before the
        first cycle and after each cycle run, (cycles run + 1,) float64 on f's device.
    """
    # Defect correction: the iterate and its residual are kept in float64, each cycle solves
    # the correction equation L e = r in the working dtype. Float32 cycles then still reach
    # residuals far below float32's own floor (~eps * ||u|| / ||f||), at the cost of one
    # float64 residual pass per cycle.
    work = torch.float64 if f.dtype == torch.float64 else torch.float32
    b = _zero_mean(f.double())
    u = torch.zeros_like(b) if x0 is None else _zero_mean(x0.double())
    b_norm = torch.linalg.vector_norm(b, dim=(-2, -1))
    r = b - stages.laplacian(u)
    history = [relative_residuals(r, b_norm)]
    level = build_hierarchy(f.shape[-2], f.shape[-1], work, f.device)
    for n in range(max_cycles):
        if history[-1] <= tol:
            break
        step = fmg_cycle if cycle == "FMG" and n == 0 else v_cycle
        rw = r.to(work)
        e = step(torch.zeros_like(rw), rw, level, stages, pre_smooth=pre_smooth, post_smooth=post_smooth)
        u = _zero_mean(u + e.double())
        r = b - stages.laplacian(u)
        history.append(relative_residuals(r, b_norm))
    return (u + mean).to(f.dtype), torch.tensor(history, dtype=torch.float64, device=f.device)
