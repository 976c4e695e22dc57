"""What a backend provides, written down.

`Kernels` is what a fast backend module (backends/cpu.py, backends/cuda.py, gddm_kernels.triton)
offers: one fused kernel per stage, the drivers in gddm_kernels/_spectral.py (DCT solve) and
gddm_kernels/_multigrid.py (multigrid) call them by name. `OpImplementation` is what the op
layer calls: the reference module offers it directly, a fast backend through
backends/fast.py's `FastBackend`, which composes its `Kernels` with the drivers.
tests/test_architecture.py checks every backend against these signatures.

Layouts: stencil kernels take any (..., H, W) / (..., 2, H, W) view and return contiguous
output; `dct_solve` takes the folded batch layout (B0, B1, [2,] H, W) of
gddm_kernels._layout.fold_batch; multigrid kernels take contiguous grids (..., H, W) of
float32/float64 and update `u` in place where the name ends in `_`.
"""

from typing import Protocol

from torch import Tensor


class Kernels(Protocol):
    """The fused kernels of a fast backend."""

    def gradient(self, x: Tensor, scale: float) -> Tensor:
        """scale * forward differences: (..., H, W) -> (..., 2, H, W)."""

    def divergence(self, g: Tensor, scale: float) -> Tensor:
        """scale * negative adjoint of `gradient`: (..., 2, H, W) -> (..., H, W)."""

    def laplacian(self, x: Tensor, scale: float) -> Tensor:
        """scale * the paper's 5-point Laplacian, edge-replicate: (..., H, W) -> (..., H, W)."""

    def dct_solve(self, x: Tensor, field: bool, scale: float, mean: float) -> Tensor:
        """The DCT Poisson solve of images (B0, B1, H, W), or with `field` of 0.25 * the
        divergence of fields (B0, B1, 2, H, W), the right-hand side times `scale`:
        -> (B0, B1, H, W) in x's dtype, with the given mean."""

    def mg_smooth_(self, u: Tensor, f: Tensor, widths_y: Tensor, widths_x: Tensor, color: int) -> None:
        """One red (0) or black (1) Gauss-Seidel half sweep of L u = f on cells of the given
        widths, in place."""

    def mg_residual_restrict(self, u: Tensor, f: Tensor, widths_y: Tensor, widths_x: Tensor) -> Tensor:
        """f - L u summed over 2x2 children: (..., H, W) -> (..., ceil(H/2), ceil(W/2))."""

    def mg_prolong_correct_(self, u: Tensor, e: Tensor, lo_y: Tensor, hi_y: Tensor, weight_y: Tensor,
                            lo_x: Tensor, hi_x: Tensor, weight_x: Tensor) -> None:
        """u += the separable linear interpolation of the coarse correction e, in place."""

    def add_noise(self, x0: Tensor, coefs: Tensor, domain: str, exact: bool, noise: Tensor | None,
                  seed: Tensor | None, write_noise: bool) -> tuple[Tensor, Tensor]:
        """The generic noise-add (specification: reference/fused_diffusion.py)."""

    def diffusion_step(self, x: Tensor, m: Tensor, m_uncond: Tensor | None, m2: Tensor | None,
                       m2_uncond: Tensor | None, prev_x0: Tensor | None, coefs: Tensor, guidance: float, clip: float,
                       noise: Tensor | None, seed: Tensor | None, write_x0: bool) -> tuple[Tensor, Tensor]:
        """The generic affine step (specification: reference/fused_diffusion.py)."""


class OpImplementation(Protocol):
    """What the op layer (gddm_kernels/ops) calls on the selected backend, with the op's
    arguments after its checks (non-empty inputs)."""

    def gradient(self, x: Tensor, scale: float) -> Tensor: ...

    def divergence(self, g: Tensor, scale: float) -> Tensor: ...

    def laplacian(self, x: Tensor, scale: float) -> Tensor: ...

    def poisson_solve(self, f: Tensor, mean: float) -> Tensor: ...

    def reconstruct(self, g: Tensor, mean: float) -> Tensor: ...

    def multigrid_solve(self, f: Tensor, x0: Tensor | None, tol: float, max_cycles: int, cycle: str,
                        mean: float) -> tuple[Tensor, Tensor]: ...

    def add_noise(self, x0: Tensor, coefs: Tensor, domain: str, exact: bool, noise: Tensor | None,
                  seed: Tensor | None, write_noise: bool) -> tuple[Tensor, Tensor]: ...

    def diffusion_step(self, x: Tensor, m: Tensor, m_uncond: Tensor | None, m2: Tensor | None,
                       m2_uncond: Tensor | None, prev_x0: Tensor | None, coefs: Tensor, guidance: float, clip: float,
                       noise: Tensor | None, seed: Tensor | None, write_x0: bool) -> tuple[Tensor, Tensor]: ...
