"""Poisson benchmarks: gddm's DCT solve (`poisson_solve(method="dct")`, float32) against

* the package's eager reference and the reference under torch.compile. The reference builds
  explicit cosine matrices, O(N^3) per image, so it is timed only for sizes up to
  MAX_REFERENCE_SIZE (512);
* the solves a user would otherwise write: DCT-II, divide by the Laplacian's eigenvalues,
  inverse DCT, with the `torch-dct` package, with `scipy.fft.dctn`/`idctn` (CPU only) and with
  `cupyx.scipy.fft.dctn`/`idctn` (CUDA only, where CuPy imports);
* one `torch.fft.rfft2` + `irfft2` pair of the same size: the practical floor that the GPU
  target compares the solve to (within 1.5x of it).

Every implementation solves the same right-hand side, in one process. The peers divide by
the eigenvalues lambda[p, q] = 0.25 (2 cos(pi p/H) - 2 + 2 cos(pi q/W) - 2) of the
unnormalised DCT-II and zero the constant coefficient (a zero-mean solution). torch-dct's and
scipy's unnormalised DCT-II are 2x ours per dimension, a scale their inverse transforms undo,
so the same division gives the same u. The eigenvalue table and the NumPy/CuPy inputs are
prepared outside the timed region.

Effective bandwidth: the solve must at least read f and write u, 2 * numel * 4 bytes; the
transforms between make it compute- and cache-bound, so the GB/s and the fraction of copy
bandwidth say how far each solve is from a single memory pass, not from a roofline.
`summary` adds a second table per shape: gddm's best backend against the floor and its
speed-ups over the peers.
"""

import math
from collections.abc import Callable

import torch
from torch import Tensor
from tqdm import tqdm

import gddm_kernels as gk
from gddm_kernels import reference

from .harness import Record, time_ms

SUITE = "poisson"
OP = "poisson_solve"
MODE = "dct"
DTYPE = torch.float32
SQUARE_SIZES = {"cpu": (64, 128, 256, 512, 1024, 2048), "cuda": (64, 128, 256, 512, 1024, 2048)}
BATCHED_SHAPES = {"cpu": [(16, 3, 256, 256)], "cuda": [(16, 3, 256, 256), (16, 3, 1024, 1024)]}
MAX_REFERENCE_SIZE = 512
IMAGE_DIMS = (-2, -1)
TRANSFERS_PER_ELEMENT = 2  # read f, write u

REFERENCE_EAGER = "reference (eager)"
REFERENCE_COMPILED = "reference (torch.compile)"
TORCH_DCT = "torch-dct solve"
SCIPY = "scipy dctn+idctn solve"
CUPYX = "cupyx dctn solve"
FLOOR = "rfft2+irfft2 (floor)"
GDDM_PREFIX = "gddm "
PEERS = (TORCH_DCT, SCIPY, CUPYX)


def shapes(device: str) -> list[tuple[int, int, int, int]]:
    """(B, C, H, W) of every case on `device`: single square images, then the batches."""
    return [(1, 1, n, n) for n in SQUARE_SIZES[device]] + BATCHED_SHAPES[device]


def inverse_eigenvalues(H: int, W: int, device: str) -> Tensor:
    """1 / lambda[p, q] of the unnormalised DCT-II, with 0 for the constants (p = q = 0), (H, W)."""
    p = torch.arange(H, dtype=torch.float64)[:, None]
    q = torch.arange(W, dtype=torch.float64)[None, :]
    lam = 0.25 * (2 * torch.cos(math.pi * p / H) - 2 + 2 * torch.cos(math.pi * q / W) - 2)
    lam[0, 0] = math.inf
    return (1 / lam).to(device=device, dtype=DTYPE)


def _gddm_workloads(f: Tensor, device: str) -> dict[str, Callable[[], object]]:
    return {f"{GDDM_PREFIX}{b}": (lambda b=b: gk.poisson_solve(f, method=MODE, backend=b))
            for b in gk.backends(device) if b != "reference"}


def _reference_workloads(f: Tensor) -> dict[str, Callable[[], object]]:
    if max(f.shape[-2:]) > MAX_REFERENCE_SIZE:
        return {}
    compiled = torch.compile(reference.poisson_solve, dynamic=False)
    return {REFERENCE_EAGER: lambda: reference.poisson_solve(f),
            REFERENCE_COMPILED: lambda: compiled(f)}


def _torch_dct_workload(f: Tensor, inv_lam: Tensor) -> Callable[[], Tensor] | None:
    try:
        import torch_dct
    except ImportError:  # an optional peer: its rows are left out
        return None

    return lambda: torch_dct.idct_2d(torch_dct.dct_2d(f) * inv_lam)


def _scipy_workload(f: Tensor, inv_lam: Tensor) -> Callable[[], object]:
    import scipy.fft

    f_np, inv_lam_np = f.numpy(), inv_lam.numpy()
    workers = torch.get_num_threads()
    return lambda: scipy.fft.idctn(scipy.fft.dctn(f_np, axes=IMAGE_DIMS, workers=workers) * inv_lam_np,
                                   axes=IMAGE_DIMS, workers=workers)


def _cupyx_workload(f: Tensor, inv_lam: Tensor) -> Callable[[], object] | None:
    try:
        import cupy
        import cupyx.scipy.fft as cufft
    except ImportError:
        return None
    f_cp, inv_lam_cp = cupy.from_dlpack(f), cupy.from_dlpack(inv_lam)
    return lambda: cufft.idctn(cufft.dctn(f_cp, axes=IMAGE_DIMS) * inv_lam_cp, axes=IMAGE_DIMS)


def _peer_workloads(f: Tensor, device: str) -> dict[str, Callable[[], object]]:
    inv_lam = inverse_eigenvalues(*f.shape[-2:], device)
    peers = {}
    if (torch_dct := _torch_dct_workload(f, inv_lam)) is not None:
        peers[TORCH_DCT] = torch_dct
    if device == "cpu":
        peers[SCIPY] = _scipy_workload(f, inv_lam)
    elif device == "cuda" and (cupyx := _cupyx_workload(f, inv_lam)) is not None:
        peers[CUPYX] = cupyx
    return peers


def workloads(f: Tensor, device: str) -> dict[str, Callable[[], object]]:
    """name -> fn() solving the right-hand side `f` (each input prepared outside fn)."""
    floor = {FLOOR: lambda: torch.fft.irfft2(torch.fft.rfft2(f), s=f.shape[-2:])}
    return _gddm_workloads(f, device) | _reference_workloads(f) | _peer_workloads(f, device) | floor


def run(device: str, copy_gbps: float) -> list[Record]:
    records = []
    for shape in tqdm(shapes(device), desc=SUITE, unit="case"):
        f = torch.randn(*shape, device=device, dtype=DTYPE)
        moved = TRANSFERS_PER_ELEMENT * f.numel() * f.element_size()
        for impl, fn in workloads(f, device).items():
            ms = time_ms(fn, device)
            gbps = moved / ms / 1e6
            records.append(Record(SUITE, OP, MODE, "x".join(map(str, shape)), str(DTYPE).split(".")[-1],
                                  impl, ms, gbps, gbps / copy_gbps))
    return records


def _speedup(times: dict[str, float], peer: str, gddm_ms: float) -> str:
    return f"{times[peer] / gddm_ms:.2f}x" if peer in times else "-"


def summary(records: list[Record]) -> str:
    """Markdown, one row per shape: gddm's best backend, its time over the rfft2+irfft2 floor's
    (1.0 = as fast as the floor), and its speed-up over each peer solve (peer time / gddm time)."""
    times: dict[str, dict[str, float]] = {}
    for r in records:
        if r.suite == SUITE:
            times.setdefault(r.shape, {})[r.impl] = r.time_ms
    peers = [p for p in PEERS if any(p in t for t in times.values())]
    head = ("| shape | gddm best | gddm (ms) | floor (ms) | gddm / floor | "
            + " | ".join(f"vs {p}" for p in peers) + " |")
    rows = [head, "|" + "---|" * (5 + len(peers))]
    for shape, t in times.items():
        best = min((impl for impl in t if impl.startswith(GDDM_PREFIX)), key=t.get)
        gddm_ms = t[best]
        floor = f"{t[FLOOR]:.3f} | {gddm_ms / t[FLOOR]:.2f}" if FLOOR in t else "- | -"
        speedups = " | ".join(_speedup(t, p, gddm_ms) for p in peers)
        rows.append(f"| {shape} | {best.removeprefix(GDDM_PREFIX)} | {gddm_ms:.3f} | {floor} | {speedups} |")
    return "\n".join(rows)
