"""Small image datasets that need no download, for training and testing diffusion models.

Every loader returns float32 images (N, C, size, size) scaled to [-1, 1]:
    digits(size)        scikit-learn's bundled 8x8 handwritten digits, N = 1797, C = 1
    faces(size)         scikit-image's bundled LFW subset, 200 25x25 faces, C = 1
    image_folder(path)  every image file under a folder (recursive), C = 1 (L) or 3 (RGB)
    load_dataset(name_or_path, size, channels)  one of the above by name or path
`batches` draws reproducible shuffled minibatches from such a tensor, forever.
"""

from collections.abc import Iterator
from pathlib import Path

import torch
from torch import Tensor
from torch.nn import functional as F

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif")
PIL_MODES = {1: "L", 3: "RGB"}  # channels -> the PIL mode images are converted to
DIGITS_MAX = 16.0  # load_digits pixel values are integers 0..16
UINT8_MAX = 255.0
NAMED_DATASETS = ("digits", "faces")


def _check_size(size: object, op: str) -> None:
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"gddm.{op}: argument `size` must be an integer >= 1, got {size!r}")


def _check_channels(channels: object, op: str) -> None:
    if channels not in PIL_MODES:
        raise ValueError(f"gddm.{op}: argument `channels` must be 1 (grayscale) or 3 (RGB), got {channels!r}")


def _to_model_range(images: Tensor, size: int) -> Tensor:
    """Images (N, C, h, w) with values in [0, 1] -> float32 (N, C, size, size) in [-1, 1],
    resized bilinearly (antialiased when shrinking: both are convex combinations of pixels)."""
    images = images.float()
    if images.shape[-2:] != (size, size):
        images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return (2.0 * images - 1.0).clamp(-1.0, 1.0).contiguous()


def digits_with_labels(size: int = 16) -> tuple[Tensor, Tensor]:
    """scikit-learn's handwritten digits: images (1797, 1, size, size) float32 in [-1, 1]
    (8x8 originals, 0..16, upsampled bilinearly) and their labels (1797,) int64 in 0..9."""
    from sklearn.datasets import load_digits

    _check_size(size, "digits")
    bunch = load_digits()
    images = torch.from_numpy(bunch.images)[:, None] / DIGITS_MAX
    return _to_model_range(images, size), torch.from_numpy(bunch.target).long()


def digits(size: int = 16) -> Tensor:
    """scikit-learn's handwritten digits, (1797, 1, size, size) float32 in [-1, 1]."""
    return digits_with_labels(size)[0]


def faces(size: int = 32) -> Tensor:
    """scikit-image's bundled LFW subset: 200 grayscale 25x25 faces (values in [0, 1]) resized
    to (200, 1, size, size) float32 in [-1, 1]."""
    from skimage.data import lfw_subset

    _check_size(size, "faces")
    return _to_model_range(torch.from_numpy(lfw_subset())[:, None], size)


def _load_image(file: Path, size: int, mode: str) -> Tensor:
    """One image file -> (C, size, size) float in [0, 1]: converted to `mode`, centre-cropped
    to the largest square, resized bicubically (PIL clamps to 0..255)."""
    from PIL import Image

    try:
        with Image.open(file) as image:
            image = image.convert(mode)
            width, height = image.size
            side = min(width, height)
            left, top = (width - side) // 2, (height - side) // 2
            image = image.resize((size, size), Image.Resampling.BICUBIC, box=(left, top, left + side, top + side))
    except OSError as error:  # PIL's UnidentifiedImageError is an OSError too
        raise ValueError(f"gddm.image_folder: cannot read image file {str(file)!r}: {error}") from error
    pixels = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8)
    return pixels.view(size, size, len(mode)).permute(2, 0, 1) / UINT8_MAX


def image_folder(path: str | Path, size: int, channels: int = 1) -> Tensor:
    """Every image file under `path` (recursive, in sorted path order, extensions
    IMAGE_EXTENSIONS in any case), as float32 (N, channels, size, size) in [-1, 1].

    Each image is converted to grayscale (channels=1) or RGB (channels=3), centre-cropped to a
    square and resized. Raises FileNotFoundError for a missing folder, ValueError for a folder
    without image files or for a file that cannot be read.
    """
    _check_size(size, "image_folder")
    _check_channels(channels, "image_folder")
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"gddm.image_folder: argument `path` must be an existing folder, got {str(path)!r}")
    files = sorted(f for f in folder.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise ValueError(
            f"gddm.image_folder: no image files under {str(path)!r} (looked for extensions {', '.join(IMAGE_EXTENSIONS)})"
        )
    images = torch.stack([_load_image(f, size, PIL_MODES[channels]) for f in files])
    return _to_model_range(images, size)


def load_dataset(name_or_path: str | Path, size: int, channels: int = 1) -> Tensor:
    """A named dataset (NAMED_DATASETS: "digits", "faces"; the name wins over a folder of that
    name) or a folder of images, as float32 (N, channels, size, size) in [-1, 1]. The grayscale
    named datasets are repeated over the channels when channels=3."""
    _check_channels(channels, "load_dataset")
    if name_or_path in NAMED_DATASETS:
        images = digits(size) if name_or_path == "digits" else faces(size)
        return images.repeat(1, channels, 1, 1)
    if Path(name_or_path).is_dir():
        return image_folder(name_or_path, size, channels)
    raise ValueError(
        f"gddm.load_dataset: argument `name_or_path` must be one of {NAMED_DATASETS} or a path to a folder "
        f"of images, got {str(name_or_path)!r}"
    )


def batches(data: Tensor, batch_size: int, generator: torch.Generator) -> Iterator[Tensor]:
    """Endless shuffled minibatches (batch_size, ...) of `data` (N, ...).

    Indices come from consecutive random permutations of 0..N-1 drawn from `generator` (a CPU
    generator), so every sample appears once per N draws and a seeded generator reproduces
    the stream; a batch may straddle two permutations, so every batch is full.
    """
    if not isinstance(data, Tensor) or data.dim() < 1 or data.shape[0] < 1:
        raise ValueError("gddm.batches: argument `data` must be a tensor with at least one sample (N, ...)")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"gddm.batches: argument `batch_size` must be an integer >= 1, got {batch_size!r}")
    order = torch.empty(0, dtype=torch.long)
    while True:
        while order.numel() < batch_size:
            order = torch.cat([order, torch.randperm(data.shape[0], generator=generator)])
        yield data[order[:batch_size].to(data.device)]
        order = order[batch_size:]
