"""Public stencil API: gradient, divergence and laplacian. A call on the compiled backend of
the input's device goes straight to its C++ op (torch.ops.gddm_C.*_nd); any other backend, and
torch.compile, through the op layer torch.ops.gddm.* (docs/design.md, "The path of one call")."""

import torch
from torch import Tensor

from . import ops
from ._validation import check_field, check_image
from .dispatch import AUTO, compiled_fast_path


def gradient(x: Tensor, *, scale: float = 1.0, backend: str | None = None) -> Tensor:
    """Discrete gradient: forward differences with a Neumann (zero-flux) boundary.

        out[..., 0, i, j] = scale * (x[..., i+1, j] - x[..., i, j])   (0 on the last row)
        out[..., 1, i, j] = scale * (x[..., i, j+1] - x[..., i, j])   (0 on the last column)

    Args:
        x: images (..., H, W), any leading dims and strides; float16/bfloat16/float32/float64
            (half types are computed in float32).
        scale: a factor applied to the result inside the kernel.
        backend: "reference", "cpu", "cuda", "triton" or None (context, GDDM_BACKEND, auto).
    Returns:
        contiguous (..., 2, H, W) in x's dtype. Backward: divergence(grad, scale=-scale).
    """
    x = check_image(x, "gradient")
    if compiled_fast_path(backend, x):
        return torch.ops.gddm_C.gradient_nd(x, scale)
    return ops.gradient(x, scale, backend or AUTO)


def divergence(g: Tensor, *, scale: float = 1.0, backend: str | None = None) -> Tensor:
    """Discrete divergence, the exact negative adjoint of `gradient`:
    <gradient(x), g> == -<x, divergence(g)> for all x, g.

        out[i, j] = scale * (g0[i, j] [i<H-1] - g0[i-1, j] [i>0] + g1[i, j] [j<W-1] - g1[i, j-1] [j>0])

    Args:
        g: gradient fields (..., 2, H, W); component 0 vertical, 1 horizontal.
        scale, backend: as in `gradient`.
    Returns:
        contiguous (..., H, W) in g's dtype. Backward: gradient(grad, scale=-scale).
    """
    g = check_field(g, "divergence")
    if compiled_fast_path(backend, g):
        return torch.ops.gddm_C.divergence_nd(g, scale)
    return ops.divergence(g, scale, backend or AUTO)


def laplacian(x: Tensor, *, scale: float = 1.0, backend: str | None = None) -> Tensor:
    """The paper's finite-element Laplacian with an edge-replicate (Neumann) boundary:

        out[i, j] = scale * (1/4 (x[i-1, j] + x[i+1, j] + x[i, j-1] + x[i, j+1]) - x[i, j])

    i.e. the kernel [[0, 1/4, 0], [1/4, -1, 1/4], [0, 1/4, 0]]; equal to
    0.25 * divergence(gradient(x)). `scale=4` gives the five-point Laplacian (centre -4).

    Args:
        x: images (..., H, W); scale, backend: as in `gradient`.
    Returns:
        contiguous (..., H, W) in x's dtype. Self-adjoint: backward is laplacian(grad, scale).
    """
    x = check_image(x, "laplacian")
    if compiled_fast_path(backend, x):
        return torch.ops.gddm_C.laplacian_nd(x, scale)
    return ops.laplacian(x, scale, backend or AUTO)
