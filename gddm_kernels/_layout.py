"""Folding the leading (batch) dims of a tensor into two, so that every fast backend sees a
fixed-rank input (B0, B1, *inner) with arbitrary strides and no copy for common layouts
(contiguous, channels-last, slices, expanded dims)."""

import torch
from torch import Tensor

FOLDED_BATCH_DIMS = 2


def fold_batch(x: Tensor, inner_dims: int) -> Tensor:
    """Views `x` of shape (*lead, *inner) as (B0, B1, *inner), B0 * B1 = prod(lead).

    Adjacent leading dims merge when their strides allow (stride[i] == stride[i+1] * size[i+1]),
    size-1 dims drop out, and the row-major order of the leading index is kept, so batch index
    b0 * B1 + b1 is the flat index of the leading dims. Only when more than two leading dims
    stay unmergeable (rare) is `x` copied to contiguous memory.
    """
    lead = x.dim() - inner_dims
    sizes, strides = [], []
    for size, stride in zip(x.shape[:lead], x.stride()[:lead]):
        if size == 1:
            continue
        if sizes and strides[-1] == stride * size:
            sizes[-1] *= size
            strides[-1] = stride
        else:
            sizes.append(size)
            strides.append(stride)
    if len(sizes) > FOLDED_BATCH_DIMS:
        x = x.contiguous()
        return x.view(-1, *x.shape[lead:]).unsqueeze(0)
    pad = FOLDED_BATCH_DIMS - len(sizes)
    sizes = [1] * pad + sizes
    strides = [0] * pad + strides
    inner = x.shape[lead:]
    return x.as_strided((*sizes, *inner), (*strides, *x.stride()[lead:]), x.storage_offset())


def field_shape(image_shape: torch.Size) -> tuple[int, ...]:
    """Shape of the gradient field of images of shape (..., H, W): (..., 2, H, W)."""
    return (*image_shape[:-2], 2, *image_shape[-2:])


def image_shape(field_shape: torch.Size) -> tuple[int, ...]:
    """Shape of the images of a gradient field of shape (..., 2, H, W): (..., H, W)."""
    return (*field_shape[:-3], *field_shape[-2:])
