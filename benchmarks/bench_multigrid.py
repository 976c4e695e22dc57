"""Multigrid and DCT-crossover benchmarks.

Multigrid: gddm's `poisson_solve(method="multigrid")` to a relative residual of TOL against
pyamg (the multigrid users pick in Python: a Ruge-Stuben AMG hierarchy of the same sparse
Neumann matrix, solved to the same tolerance; its setup is timed separately, ours has none
worth timing: the geometric hierarchy is a few 1-D tables) and against our own exact DCT
solve. The residual history of every gddm run is recorded, and the number of cycles used.

Crossover (CPU): the DCT solve of small images by direct cosine sums against the FFT path,
each forced at every size through its op (gddm_C::dct_solve_direct, dct_solve_fft);
gddm_kernels._C.DCT_DIRECT_MAX_WORK (csrc/poisson.h) holds the measured switch point.
"""

from collections.abc import Callable

import numpy as np
import torch
from tqdm import tqdm

import gddm_kernels as gk

from .harness import Record, time_ms

SUITE = "multigrid"
TOL = 1e-6
MAX_CYCLES = 10
SIZES = {"cpu": (256, 512, 1024), "cuda": (256, 512, 1024, 2048)}
CROSSOVER_SIZES = (8, 16, 24, 32, 48, 64, 96, 128)
CROSSOVER_BATCH = 48
PATHS = {"fft": "dct_solve_fft", "direct": "dct_solve_direct"}


def _pyamg_workloads(f: torch.Tensor) -> dict[str, Callable[[], object]]:
    """pyamg's setup and solve of -L u = -(f - mean f), float64 (pyamg's precision)."""
    try:
        import pyamg
        import scipy.sparse as sp
    except ImportError:
        return {}
    H, W = f.shape[-2:]

    def neumann_1d(n: int):
        main = np.full(n, 2.0)
        main[[0, -1]] = 1.0
        if n == 1:
            main[:] = 0.0
        return sp.diags([-np.ones(n - 1), main, -np.ones(n - 1)], [-1, 0, 1])

    a = (0.25 * (sp.kron(sp.identity(H), neumann_1d(W)) + sp.kron(neumann_1d(H), sp.identity(W)))).tocsr()
    b = -(f.double() - f.double().mean()).cpu().numpy().ravel()
    state = {"solver": pyamg.ruge_stuben_solver(a)}
    return {
        "pyamg setup (Ruge-Stuben)": lambda: pyamg.ruge_stuben_solver(a),
        "pyamg solve": lambda: state["solver"].solve(b, tol=TOL, maxiter=100),
    }


def _gddm_workloads(f: torch.Tensor, device: str) -> dict[str, Callable[[], object]]:
    impls = {}
    for backend in gk.backends(device):
        if backend == "reference":
            continue
        impls[f"gddm {backend} multigrid"] = (
            lambda b=backend: gk.poisson_solve(f, method="multigrid", tol=TOL, max_cycles=MAX_CYCLES, backend=b))
        impls[f"gddm {backend} dct"] = lambda b=backend: gk.poisson_solve(f, backend=b)
    return impls


def _cycles_used(f: torch.Tensor, device: str) -> int:
    _, history = gk.poisson_solve(f, method="multigrid", tol=TOL, max_cycles=MAX_CYCLES, return_history=True)
    return len(history) - 1


def run(device: str, copy_gbps: float) -> list[Record]:
    records = []
    for n in tqdm(SIZES[device], desc=SUITE, unit="size"):
        for dtype in (torch.float32, torch.float64):
            f = torch.randn(1, n, n, device=device, dtype=dtype)
            moved = 2 * f.numel() * f.element_size()
            impls = _gddm_workloads(f, device) | (_pyamg_workloads(f) if dtype == torch.float64 else {})
            cycles = _cycles_used(f, device)
            for impl, fn in impls.items():
                ms = time_ms(fn, device)
                label = f"{impl} ({cycles} cycles)" if impl.endswith("multigrid") else impl
                records.append(Record(SUITE, "poisson_solve", f"tol {TOL:g}", f"1x{n}x{n}",
                                      str(dtype).split(".")[-1], label, ms, moved / ms / 1e6,
                                      moved / ms / 1e6 / copy_gbps))
    return records + _crossover(device, copy_gbps)


def _crossover(device: str, copy_gbps: float) -> list[Record]:
    """The CPU DCT solve of 1 and CROSSOVER_BATCH images per size, forced through each path."""
    if device != "cpu":
        return []  # the CUDA solve has one path (cuFFT)
    records = []
    for n in tqdm(CROSSOVER_SIZES, desc="dct crossover", unit="size"):
        for batch in (1, CROSSOVER_BATCH):
            f = torch.randn(batch, n, n, device=device)
            moved = 2 * f.numel() * f.element_size()
            for path, op in PATHS.items():
                solve = getattr(torch.ops.gddm_C, op)
                ms = time_ms(lambda: solve(f[None], False, 1.0, 0.0), device)
                records.append(Record("dct-crossover", "poisson_solve", "dct", f"{batch}x{n}x{n}", "float32",
                                      f"{path} path", ms, moved / ms / 1e6, moved / ms / 1e6 / copy_gbps))
    return records
