"""Fake (meta) kernels of the compiled backends' C++ public ops (csrc/public_ops.cpp:
torch.ops.gddm_C.{gradient, divergence, laplacian, poisson_solve, reconstruct}_nd), so that
they trace under torch.compile and pass opcheck too. Registered only when gddm_kernels._C
loaded (a fake for an op that does not exist would fail at import)."""

import torch
from torch import Tensor

from .. import _extension
from .._layout import field_shape, image_shape
from .._validation import check_field, check_image


def _register() -> None:
    @torch.library.register_fake("gddm_C::gradient_nd")
    def _(x: Tensor, scale: float = 1.0) -> Tensor:
        return check_image(x, "gradient").new_empty(field_shape(x.shape))

    @torch.library.register_fake("gddm_C::divergence_nd")
    def _(g: Tensor, scale: float = 1.0) -> Tensor:
        return check_field(g, "divergence").new_empty(image_shape(g.shape))

    @torch.library.register_fake("gddm_C::laplacian_nd")
    def _(x: Tensor, scale: float = 1.0) -> Tensor:
        return check_image(x, "laplacian").new_empty(x.shape)

    @torch.library.register_fake("gddm_C::poisson_solve_nd")
    def _(f: Tensor, mean: float = 0.0) -> Tensor:
        return check_image(f, "poisson_solve", "f").new_empty(f.shape)

    @torch.library.register_fake("gddm_C::reconstruct_nd")
    def _(g: Tensor, mean: float = 0.0) -> Tensor:
        return check_field(g, "reconstruct").new_empty(image_shape(g.shape))


if _extension.LOAD_ERROR is None:
    _register()
