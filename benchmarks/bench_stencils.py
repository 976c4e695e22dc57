"""Stencil benchmarks: gddm's fused gradient / divergence / laplacian against the eager
reference, the reference under torch.compile, and kornia (the peer users pick today).

kornia's `spatial_gradient(mode="diff")` is a central difference with a replicate border and
its `laplacian` an 8-neighbour 3x3 kernel with a reflect border: a different operator, so only
the speed is comparable. kornia has no divergence.
"""

from collections.abc import Callable, Iterator

import torch
from tqdm import tqdm

import gddm_kernels as gk
from gddm_kernels import reference

from .harness import Record, time_ms

OPS = ("gradient", "divergence", "laplacian")
SHAPES = {"cpu": [(1, 3, 256, 256), (8, 3, 512, 512)],
          "cuda": [(1, 3, 256, 256), (8, 3, 512, 512), (16, 3, 1024, 1024)]}
DTYPES = (torch.float32, torch.bfloat16)
MODES = ("forward", "forward+backward")
# Elements moved per image element: (read, write) of the forward op. Its backward is another
# stencil of the family: gradient <-> divergence, laplacian <-> laplacian.
TRAFFIC = {"gradient": (1, 2), "divergence": (2, 1), "laplacian": (1, 1)}
BACKWARD_OF = {"gradient": "divergence", "divergence": "gradient", "laplacian": "laplacian"}


def _kornia_impls() -> dict[str, Callable]:
    try:
        import kornia.filters as kf
    except ImportError:
        return {}
    return {
        "gradient": lambda x: kf.spatial_gradient(x, mode="diff", order=1),
        "laplacian": lambda x: kf.laplacian(x, kernel_size=3),
    }


def implementations(op: str, device: str) -> dict[str, Callable]:
    """name -> fn(input) for every implementation of `op` benchmarked on `device`."""
    ref = getattr(reference, op)
    impls = {f"gddm {b}": (lambda x, b=b: getattr(gk, op)(x, backend=b))
             for b in gk.backends(device) if b != "reference"}
    impls["reference (eager)"] = ref
    impls["reference (torch.compile)"] = torch.compile(ref, dynamic=False)
    kornia_op = _kornia_impls().get(op)
    if kornia_op is not None:
        impls["kornia"] = kornia_op
    return impls


def _bytes_moved(op: str, mode: str, numel: int, itemsize: int) -> int:
    read, write = TRAFFIC[op]
    elements = read + write
    if mode == "forward+backward":
        back_read, back_write = TRAFFIC[BACKWARD_OF[op]]
        elements += back_read + back_write
    return elements * numel * itemsize


def _workload(fn: Callable, x: torch.Tensor, mode: str) -> Callable[[], object]:
    if mode == "forward":
        return lambda: fn(x)
    xg = x.detach().requires_grad_()
    cotangent = torch.randn_like(fn(xg))
    return lambda: torch.autograd.grad(fn(xg), xg, cotangent)


def cases(device: str) -> Iterator[tuple[str, str, tuple, torch.dtype]]:
    for op in OPS:
        for mode in MODES:
            for shape in SHAPES[device]:
                for dtype in DTYPES:
                    yield op, mode, shape, dtype


def run(device: str, copy_gbps: float) -> list[Record]:
    records = []
    for op, mode, shape, dtype in tqdm(list(cases(device)), desc="stencils", unit="case"):
        x = torch.randn(*shape, device=device, dtype=dtype)
        if op == "divergence":
            x = torch.randn(*shape[:-2], 2, *shape[-2:], device=device, dtype=dtype)
        image_numel = x.numel() // (2 if op == "divergence" else 1)
        moved = _bytes_moved(op, mode, image_numel, x.element_size())
        for impl, fn in implementations(op, device).items():
            if impl == "kornia" and op == "divergence":
                continue
            ms = time_ms(_workload(fn, x, mode), device)
            gbps = moved / ms / 1e6
            records.append(Record("stencils", op, mode, "x".join(map(str, shape)), str(dtype).split(".")[-1],
                                  impl, ms, gbps, gbps / copy_gbps))
    return records
