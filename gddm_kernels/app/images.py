"""Writing image batches as one PNG grid (PIL).

Layout: `nrow` images per row, `padding` pixels of PAD_VALUE between and around them, the whole
grid then enlarged `scale` times by pixel repetition (nearest neighbour, so small images stay
crisp). For N images of size (H, W), with rows = ceil(N / nrow):

    width  = scale * (nrow * (W + padding) + padding)
    height = scale * (rows * (H + padding) + padding)
"""

import math
import os
from pathlib import Path

import torch
from torch import Tensor

PAD_VALUE = 1.0  # padding colour in image units ([-1, 1]): white
GRAY_CHANNELS, RGB_CHANNELS = 1, 3


def grid_size(num_images: int, height: int, width: int, nrow: int, padding: int = 2, scale: int = 1) -> tuple[int, int]:
    """(width, height) in pixels of the PNG that `save_grid` writes (see the module notes)."""
    rows = math.ceil(num_images / nrow)
    return scale * (nrow * (width + padding) + padding), scale * (rows * (height + padding) + padding)


def make_grid(images: Tensor, nrow: int = 8, padding: int = 2, scale: int = 1) -> Tensor:
    """Tiles images (N, C, H, W) with values in [-1, 1] (clamped) into one uint8 array of shape
    (height, width, C) (see the module notes); C is 1 (grey) or 3 (RGB)."""
    if images.dim() != 4 or images.shape[1] not in (GRAY_CHANNELS, RGB_CHANNELS) or images.shape[0] < 1:
        raise ValueError(f"gddm.save_grid: argument `images` must have shape (N, C, H, W) with N >= 1 and "
                         f"C in (1, 3), got shape {tuple(images.shape)}")
    for name, value, low in (("nrow", nrow, 1), ("padding", padding, 0), ("scale", scale, 1)):
        if not isinstance(value, int) or value < low:
            raise ValueError(f"gddm.save_grid: argument `{name}` must be an int >= {low}, got {value!r}")
    n, c, h, w = images.shape
    nrow = min(nrow, n)
    width, height = grid_size(n, h, w, nrow, padding)
    canvas = torch.full((c, height, width), PAD_VALUE)
    pixels = images.detach().float().cpu().clamp(-1.0, 1.0)
    for i in range(n):
        top = padding + (i // nrow) * (h + padding)
        left = padding + (i % nrow) * (w + padding)
        canvas[:, top:top + h, left:left + w] = pixels[i]
    canvas = canvas.repeat_interleave(scale, dim=1).repeat_interleave(scale, dim=2)
    return ((canvas + 1.0) * 127.5).round().to(torch.uint8).permute(1, 2, 0).contiguous()


def save_grid(images: Tensor, path: str | os.PathLike, nrow: int = 8, padding: int = 2, scale: int = 1) -> Path:
    """Writes images (N, C, H, W) in [-1, 1] as one PNG grid at `path` (parent folders are
    created); returns the path. Size: `grid_size(N, H, W, min(nrow, N), padding, scale)`."""
    from PIL import Image

    array = make_grid(images, nrow, padding, scale).numpy()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array[..., 0] if array.shape[-1] == GRAY_CHANNELS else array).save(path)
    return path
