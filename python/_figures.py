"""Shared helpers for the paper-figure experiments (python/exp_*.py): the bundled natural
images, the paper's three domains, JSON output, figure saving and the run's environment
(versions, date, machine). Nothing here downloads."""

import datetime as dt
import json
import math
import os
import platform
import subprocess
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

import gddm_kernels as gk

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# scikit-image's bundled photographs (shipped with the package, no download). Synthetic,
# binary and microscopy images (colorwheel, horse, logo, cell, retina, ...) are left out.
NATURAL_IMAGE_NAMES = ("camera", "astronaut", "coffee", "chelsea", "rocket", "coins", "moon", "text",
                       "page", "clock", "brick", "grass", "gravel")
FACES_NAME = "lfw_faces"  # skimage.data.lfw_subset(): 200 grayscale 25x25 faces, one pooled entry
DOMAINS = ("image", "gradient", "laplacian")
DOMAIN_COLORS = {"image": "tab:blue", "gradient": "tab:orange", "laplacian": "tab:green"}
UINT8_MAX = 255.0
SIGNIFICANT_DIGITS = 6  # floats written to JSON are rounded to this many significant digits
FIGURE_DPI = 110
SOURCE_PATHS = ("gddm_kernels", "csrc", "setup.py")  # what a run's numbers depend on, for git_state


def grayscale(pixels: np.ndarray) -> np.ndarray:
    """An image as float64 grayscale in [0, 1]: uint8 / 255; RGB(A) -> luminance
    (skimage.color.rgb2gray, ITU-R 709 weights); floats are taken as already in [0, 1]."""
    from skimage.color import rgb2gray, rgba2rgb

    if pixels.ndim == 3 and pixels.shape[-1] == 4:
        pixels = rgba2rgb(pixels)
    if pixels.ndim == 3:
        return rgb2gray(pixels).astype(np.float64)
    if pixels.dtype == np.uint8:
        return pixels.astype(np.float64) / UINT8_MAX
    return pixels.astype(np.float64)


def natural_images(names: tuple[str, ...] = NATURAL_IMAGE_NAMES, faces: bool = True) -> dict[str, np.ndarray]:
    """name -> float64 (N, H, W) grayscale images in [0, 1] at native resolution: N = 1 for each
    skimage.data photograph in `names`, N = 200 (25x25) for FACES_NAME when `faces`."""
    from skimage import data

    images = {name: grayscale(getattr(data, name)())[None] for name in names}
    if faces:
        images[FACES_NAME] = data.lfw_subset().astype(np.float64)
    return images


def domain_field(x: Tensor, domain: str) -> Tensor:
    """The field diffusion runs on: x itself, gradient(x) (..., 2, H, W) or laplacian(x)
    (paper kernel), computed with the package's ops."""
    if domain == "gradient":
        return gk.gradient(x)
    if domain == "laplacian":
        return gk.laplacian(x)
    return x


def _rounded(value: object) -> object:
    """`value` with every float rounded to SIGNIFICANT_DIGITS significant digits (recursive)."""
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_rounded(item) for item in value]
    if isinstance(value, float) and math.isfinite(value) and value != 0.0:
        return round(value, SIGNIFICANT_DIGITS - 1 - math.floor(math.log10(abs(value))))
    return value


def write_json(path: Path, payload: dict) -> None:
    """`payload` as indented JSON at `path` (folders created), floats rounded."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_rounded(payload), indent=1) + "\n")


def save_figure(figure: "Figure", path: Path) -> None:
    """Writes `figure` as a PNG at `path` (folders created) and closes it."""
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=FIGURE_DPI, bbox_inches="tight")
    plt.close(figure)


def matplotlib_pyplot() -> ModuleType:
    """matplotlib.pyplot on the non-interactive Agg backend (scripts run headless)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def cpu_name() -> str:
    """The CPU model ("model name" of /proc/cpuinfo on Linux), else platform.processor() or the
    machine type."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def git_state(paths: tuple[str, ...] = SOURCE_PATHS) -> dict:
    """The repository's HEAD commit and whether `paths` (the package's sources) differ from it,
    i.e. whether the run used uncommitted code; None values outside a git checkout."""
    root = Path(__file__).resolve().parents[1]

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    status = git("status", "--porcelain", "--", *paths)
    return {"commit": git("rev-parse", "HEAD"), "uncommitted_source_changes": None if status is None else bool(status)}


def environment() -> dict:
    """Date (UTC), versions and machine of a run, for the JSON beside a timed experiment; the
    load average (1, 5, 15 min) tells whether the timings shared the CPU with other work."""
    import sklearn

    return {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scikit_learn": sklearn.__version__,
        "gddm_kernels": gk.__version__,
        "git": git_state(),
        "compiled_library": "loaded" if gk._extension.LOAD_ERROR is None else gk._extension.LOAD_ERROR,
        "platform": platform.platform(),
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda_device": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "niceness": os.nice(0),
        "load_average": list(os.getloadavg()),
    }


def as_tensor(images: np.ndarray) -> Tensor:
    """float64 numpy (..., H, W) -> a contiguous float64 torch tensor (shared memory)."""
    return torch.from_numpy(np.ascontiguousarray(images, dtype=np.float64))
