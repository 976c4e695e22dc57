"""The op-level implementation of a fast backend: its `Kernels` (protocol.py) composed with
the drivers, the same way for every fast backend.

    gradient, divergence, laplacian, add_noise, diffusion_step   one kernel each
    poisson_solve, reconstruct    _spectral.dct_solve: the backend's dct_solve
    multigrid_solve               _multigrid.solve with the backend's fused stages
"""

from torch import Tensor

from .. import _multigrid, _spectral
from .protocol import Kernels


class FastBackend:
    """A fast backend's op implementation (protocol.OpImplementation).

    Args:
        kernels: the backend's kernel module.
        float64: whether its kernels run in float64 (the multigrid's float64 residual then
            uses its Laplacian; otherwise the driver's own float64 operator).
    """

    def __init__(self, kernels: Kernels, *, float64: bool) -> None:
        self.kernels = kernels
        residual_operator = self._kernel_laplacian if float64 else _multigrid.finest_operator64
        self.multigrid_stages = _multigrid.fused_stages(kernels, residual_operator)

    def _kernel_laplacian(self, u: Tensor) -> Tensor:
        return self.kernels.laplacian(u, 1.0)

    def gradient(self, x: Tensor, scale: float) -> Tensor:
        return self.kernels.gradient(x, scale)

    def divergence(self, g: Tensor, scale: float) -> Tensor:
        return self.kernels.divergence(g, scale)

    def laplacian(self, x: Tensor, scale: float) -> Tensor:
        return self.kernels.laplacian(x, scale)

    def poisson_solve(self, f: Tensor, mean: float) -> Tensor:
        return _spectral.dct_solve(self.kernels, f, False, mean)

    def reconstruct(self, g: Tensor, mean: float) -> Tensor:
        return _spectral.dct_solve(self.kernels, g, True, mean)

    def multigrid_solve(self, f: Tensor, x0: Tensor | None, tol: float, max_cycles: int, cycle: str,
                        mean: float) -> tuple[Tensor, Tensor]:
        x0 = None if x0 is None else x0.contiguous()
        return _multigrid.solve(f.contiguous(), self.multigrid_stages, tol=tol, max_cycles=max_cycles, x0=x0,
                                cycle=cycle, mean=mean)

    def add_noise(self, x0: Tensor, coefs: Tensor, domain: str, exact: bool, noise: Tensor | None,
                  seed: Tensor | None, write_noise: bool) -> tuple[Tensor, Tensor]:
        return self.kernels.add_noise(x0, coefs, domain, exact, noise, seed, write_noise)

    def diffusion_step(self, x: Tensor, m: Tensor, m_uncond: Tensor | None, m2: Tensor | None,
                       m2_uncond: Tensor | None, prev_x0: Tensor | None, coefs: Tensor, guidance: float, clip: float,
                       noise: Tensor | None, seed: Tensor | None, write_x0: bool) -> tuple[Tensor, Tensor]:
        return self.kernels.diffusion_step(x, m, m_uncond, m2, m2_uncond, prev_x0, coefs, guidance, clip, noise,
                                           seed, write_x0)
