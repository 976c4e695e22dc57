"""torch.ops.gddm.{gradient, divergence, laplacian}.

Autograd: gradient and divergence are negative adjoints of each other, so
d gradient(x, s) / dx applied to a cotangent c is divergence(c, -s), and vice versa; the
Laplacian is self-adjoint. Every backward is one call of a fused op on the same backend.
"""

import torch
from torch import Tensor

from .._layout import field_shape, image_shape
from .._validation import check_field, check_image
from ..dispatch import AUTO, select


@torch.library.custom_op("gddm::gradient", mutates_args=())
def gradient(x: Tensor, scale: float = 1.0, backend: str = AUTO) -> Tensor:
    """scale * forward differences, Neumann boundary: (..., H, W) -> (..., 2, H, W)."""
    check_image(x, "gradient")
    if x.numel() == 0:
        return x.new_empty(field_shape(x.shape))
    return select("gradient", backend, x).gradient(x, scale)


@gradient.register_fake
def _(x: Tensor, scale: float = 1.0, backend: str = AUTO) -> Tensor:
    check_image(x, "gradient")
    return x.new_empty(field_shape(x.shape))


@torch.library.custom_op("gddm::divergence", mutates_args=())
def divergence(g: Tensor, scale: float = 1.0, backend: str = AUTO) -> Tensor:
    """scale * negative adjoint of gradient: (..., 2, H, W) -> (..., H, W)."""
    check_field(g, "divergence")
    if g.numel() == 0:
        return g.new_empty(image_shape(g.shape))
    return select("divergence", backend, g).divergence(g, scale)


@divergence.register_fake
def _(g: Tensor, scale: float = 1.0, backend: str = AUTO) -> Tensor:
    check_field(g, "divergence")
    return g.new_empty(image_shape(g.shape))


@torch.library.custom_op("gddm::laplacian", mutates_args=())
def laplacian(x: Tensor, scale: float = 1.0, backend: str = AUTO) -> Tensor:
    """scale * the paper's 5-point Laplacian, Neumann boundary: (..., H, W) -> (..., H, W)."""
    check_image(x, "laplacian")
    if x.numel() == 0:
        return x.new_empty(x.shape)
    return select("laplacian", backend, x).laplacian(x, scale)


@laplacian.register_fake
def _(x: Tensor, scale: float = 1.0, backend: str = AUTO) -> Tensor:
    check_image(x, "laplacian")
    return x.new_empty(x.shape)


def _save_scale_and_backend(ctx, inputs: tuple, output: Tensor) -> None:
    _, ctx.scale, ctx.backend = inputs


def _gradient_backward(ctx, grad: Tensor) -> tuple[Tensor, None, None]:
    return divergence(grad, -ctx.scale, ctx.backend), None, None


def _divergence_backward(ctx, grad: Tensor) -> tuple[Tensor, None, None]:
    return gradient(grad, -ctx.scale, ctx.backend), None, None


def _laplacian_backward(ctx, grad: Tensor) -> tuple[Tensor, None, None]:
    return laplacian(grad, ctx.scale, ctx.backend), None, None


gradient.register_autograd(_gradient_backward, setup_context=_save_scale_and_backend)
divergence.register_autograd(_divergence_backward, setup_context=_save_scale_and_backend)
laplacian.register_autograd(_laplacian_backward, setup_context=_save_scale_and_backend)
