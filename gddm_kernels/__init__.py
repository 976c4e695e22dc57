"""gddm_kernels: fused kernels for gradient-domain diffusion models (arXiv 2309.01875).

Public API (all differentiable, torch.compile-able, on CPU and CUDA tensors):
    gradient(x)     (..., H, W)    -> (..., 2, H, W)  forward differences, Neumann boundary
    divergence(g)   (..., 2, H, W) -> (..., H, W)     negative adjoint of gradient
    laplacian(x)    (..., H, W)    -> (..., H, W)     paper kernel [[0,1/4,0],[1/4,-1,1/4],[0,1/4,0]]
    poisson_solve(f)  (..., H, W)  -> (..., H, W)     u with laplacian(u) == f - mean(f), mean(u) = 0
    reconstruct(g)  (..., 2, H, W) -> (..., H, W)     least-squares image of a gradient field
The same ops are torch.ops.gddm.<name>.

Backends: backends() lists what is usable here; choose one per call (backend="cuda"), per
block (with use_backend("triton"): ...) or per process (GDDM_BACKEND=cpu). The default picks
the fastest backend available for the input's device. `python -m gddm_kernels.info` prints a
summary.
"""

from . import _extension  # noqa: F401  (loads the compiled kernels, warns once if missing)
from .dispatch import backends, use_backend
from .poisson import poisson_solve, reconstruct
from .stencils import divergence, gradient, laplacian

__version__ = "0.1.0"
__all__ = ["gradient", "divergence", "laplacian", "poisson_solve", "reconstruct", "backends", "use_backend"]
