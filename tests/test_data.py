"""Embedded datasets, the image-folder loader and the minibatch iterator."""

import pytest
import torch
from PIL import Image

from gddm_kernels.app import data


def check_images(images: torch.Tensor, n: int, channels: int, size: int) -> None:
    assert images.shape == (n, channels, size, size)
    assert images.dtype == torch.float32
    assert images.min() >= -1.0 and images.max() <= 1.0


@pytest.mark.parametrize("size", [8, 16, 28])
def test_digits(size: int) -> None:
    images, labels = data.digits_with_labels(size)
    check_images(images, 1797, 1, size)
    assert images.min() == -1.0 and images.max() == 1.0  # blank background, full-intensity strokes
    assert labels.shape == (1797,) and labels.dtype == torch.int64
    assert set(labels.tolist()) == set(range(10))
    torch.testing.assert_close(data.digits(size), images)


def test_digits_native_size_is_exact() -> None:
    from sklearn.datasets import load_digits

    expected = torch.from_numpy(load_digits().images).float()[:, None] / 8.0 - 1.0
    torch.testing.assert_close(data.digits(8), expected)


@pytest.mark.parametrize("size", [25, 32])
def test_faces(size: int) -> None:
    images = data.faces(size)
    check_images(images, 200, 1, size)
    assert images.std() > 0.1


def test_load_dataset_names_and_channels() -> None:
    torch.testing.assert_close(data.load_dataset("digits", 12), data.digits(12))
    rgb = data.load_dataset("faces", 16, channels=3)
    check_images(rgb, 200, 3, 16)
    torch.testing.assert_close(rgb[:, 0], rgb[:, 2])


def test_load_dataset_unknown_name(tmp_path) -> None:
    with pytest.raises(ValueError, match=r"'digits', 'faces'.*folder.*no_such_set"):
        data.load_dataset("no_such_set", 16)
    with pytest.raises(ValueError, match="channels"):
        data.load_dataset("digits", 16, channels=2)


@pytest.fixture
def folder(tmp_path):
    """Three images of different sizes, modes and formats, one in a subfolder, plus a non-image."""
    Image.new("L", (40, 20), color=255).save(tmp_path / "white_wide.png")
    rgb = Image.new("RGB", (10, 30), color=(255, 0, 0))
    rgb.save(tmp_path / "red_tall.BMP")
    (tmp_path / "sub").mkdir()
    gradient = Image.frombytes("L", (8, 8), bytes(range(0, 256, 4)))
    gradient.save(tmp_path / "sub" / "ramp.tiff")
    (tmp_path / "notes.txt").write_text("not an image")
    return tmp_path


def test_image_folder_grayscale(folder) -> None:
    images = data.image_folder(folder, 8)
    check_images(images, 3, 1, 8)
    # sorted order: red_tall.BMP, sub/ramp.tiff, white_wide.png
    torch.testing.assert_close(images[2], torch.ones(1, 8, 8))
    red_luma = 2 * round(255 * 299 / 1000) / 255 - 1  # PIL's ITU-R 601 luma of pure red
    torch.testing.assert_close(images[0], torch.full((1, 8, 8), red_luma))
    ramp = torch.arange(0, 256, 4, dtype=torch.float32).view(1, 8, 8) / 255 * 2 - 1
    torch.testing.assert_close(images[1], ramp)


def test_image_folder_rgb(folder) -> None:
    images = data.image_folder(str(folder), 4, channels=3)
    check_images(images, 3, 3, 4)
    torch.testing.assert_close(images[0], torch.tensor([1.0, -1.0, -1.0])[:, None, None].expand(3, 4, 4))
    torch.testing.assert_close(data.load_dataset(str(folder), 4, channels=3), images)


def test_image_folder_errors(tmp_path) -> None:
    missing = tmp_path / "missing"
    with pytest.raises(FileNotFoundError, match="missing"):
        data.image_folder(missing, 8)
    with pytest.raises(ValueError, match=r"no image files.*\.png"):
        data.image_folder(tmp_path, 8)
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="broken.png"):
        data.image_folder(tmp_path, 8)
    with pytest.raises(ValueError, match="size"):
        data.image_folder(tmp_path, 0)


def test_batches_are_reproducible_and_cover_every_sample() -> None:
    dataset = torch.arange(10).view(10, 1) * 1.0

    def draw(seed: int, count: int) -> list[torch.Tensor]:
        stream = data.batches(dataset, 4, torch.Generator().manual_seed(seed))
        return [next(stream) for _ in range(count)]

    first = draw(0, 5)
    assert all(batch.shape == (4, 1) for batch in first)
    assert all(torch.equal(a, b) for a, b in zip(first, draw(0, 5)))
    assert not all(torch.equal(a, b) for a, b in zip(first, draw(1, 5)))
    seen = torch.cat(first).flatten()  # 20 draws = two full permutations
    assert sorted(seen.tolist()) == sorted(list(range(10)) * 2)


def test_batches_larger_than_dataset_and_errors() -> None:
    stream = data.batches(torch.arange(3), 7, torch.Generator().manual_seed(0))
    assert next(stream).shape == (7,)
    with pytest.raises(ValueError, match="batch_size"):
        next(data.batches(torch.arange(3), 0, torch.Generator()))
    with pytest.raises(ValueError, match="data"):
        next(data.batches(torch.empty(0), 1, torch.Generator()))
