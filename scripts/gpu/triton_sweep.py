"""Block-size sweep of the memory-bound Triton kernels, for scripts/gpu_check.sh: times the
Triton backend's stencils (tiles of BLOCK_H x BLOCK_W, NUM_WARPS warps) and its diffusion step
(STEP_BLOCK elements a program) at each candidate setting, without editing the library: the
module constants the launchers read at call time are set, the op is checked against the
default setting's output, then timed (triton.testing.do_bench, median).

    python scripts/gpu/triton_sweep.py --out sweep.json [--budget-s 40]
    python scripts/gpu/triton_sweep.py --out sweep.json --dry   # the plan only (no GPU needed)

The JSON holds, per kernel, every setting's time and GB/s (bytes the op must move / time),
the fastest one and the default's; a constant missing from the library is reported, not guessed.
"""

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # this checkout's gddm_kernels

STENCIL_SHAPE = (16, 3, 1024, 1024)
# (BLOCK_H, BLOCK_W): tiles of 512 .. 4096 elements, rows of at least 64 (coalesced).
TILES = ((1, 512), (1, 1024), (2, 256), (2, 512), (4, 128), (4, 256), (8, 64), (8, 128), (8, 256),
         (16, 64), (16, 128), (32, 64))
WARPS = (4, 8)
STEP_BLOCKS = (256, 512, 1024, 2048, 4096)
DTYPES = (torch.float32, torch.bfloat16)
# Tensors of the image's size read + written by each timed op.
TRAFFIC = {"gradient": 3, "laplacian": 2, "ddim_step": 3}
REP_MS = 25


def _modules():
    from gddm_kernels.triton import diffusion, stencils

    return stencils, diffusion


def _set(modules, name: str, value: int) -> None:
    for module in modules:
        if hasattr(module, name):
            setattr(module, name, value)


def settings(kernel: str) -> list[dict[str, int]]:
    if kernel == "ddim_step":
        return [{"STEP_BLOCK": b, "NUM_WARPS": w} for b in STEP_BLOCKS for w in WARPS]
    return [{"BLOCK_H": h, "BLOCK_W": w, "NUM_WARPS": n} for h, w in TILES for n in WARPS]


def workload(kernel: str, dtype: torch.dtype) -> Callable[[], torch.Tensor]:
    import gddm_kernels as gk
    from gddm_kernels import diffusion
    from gddm_kernels.schedules import linear_schedule

    x = torch.randn(STENCIL_SHAPE, device="cuda", dtype=dtype)
    if kernel != "ddim_step":
        op = getattr(gk, kernel)
        return lambda: op(x, backend="triton")
    m = torch.randn_like(x)
    schedule = linear_schedule().to("cuda")
    t, t_prev = (torch.full((x.shape[0],), v, device="cuda") for v in (500, 480))
    return lambda: diffusion.ddim_step(x, m, t, t_prev, schedule, backend="triton")


def sweep(kernel: str, dtype: torch.dtype, deadline: float) -> dict:
    import triton.testing

    modules = _modules()
    names = sorted(settings(kernel)[0])
    missing = [n for n in names if not any(hasattr(m, n) for m in modules)]
    if missing:
        return {"error": f"constants not in gddm_kernels.triton: {', '.join(missing)}"}
    default = {n: next(getattr(m, n) for m in modules if hasattr(m, n)) for n in names}
    fn = workload(kernel, dtype)
    expected = fn().float()
    numel = STENCIL_SHAPE[0] * STENCIL_SHAPE[1] * STENCIL_SHAPE[2] * STENCIL_SHAPE[3]
    moved = TRAFFIC[kernel] * numel * torch.finfo(dtype).bits // 8
    rows = []
    candidates = sorted(settings(kernel), key=lambda s: s != default)  # the default first
    try:
        for setting in candidates:
            if time.monotonic() > deadline:
                break
            for name, value in setting.items():
                _set(modules, name, value)
            try:
                got = fn().float()
                ok = bool(torch.equal(got, expected))
                ms = float(triton.testing.do_bench(fn, rep=REP_MS, return_mode="median"))
                rows.append({**setting, "ms": ms, "gbps": moved / ms / 1e6, "same_output": ok})
            except Exception as exc:  # a setting Triton rejects (registers, shared memory)
                rows.append({**setting, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0]}"})
    finally:
        for name, value in default.items():
            _set(modules, name, value)
    timed = [r for r in rows if "ms" in r and r["same_output"]]
    best = min(timed, key=lambda r: r["ms"]) if timed else None
    base = next((r for r in timed if all(r[n] == default[n] for n in names)), None)
    return {"default": default, "best": best, "default_ms": base["ms"] if base else None,
            "tried": len(rows), "of": len(settings(kernel)), "rows": rows}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="the JSON file to write")
    parser.add_argument("--budget-s", type=float, default=40.0, help="no new setting starts after this")
    parser.add_argument("--dry", action="store_true", help="print the plan and write it, time nothing")
    args = parser.parse_args()
    plan = {k: len(settings(k)) for k in TRAFFIC}
    if args.dry:
        stencils, diffusion = _modules()
        names = sorted({n for k in TRAFFIC for n in settings(k)[0]})
        found = {n: any(hasattr(m, n) for m in (stencils, diffusion)) for n in names}
        args.out.write_text(json.dumps({"dry": True, "plan": plan, "constants_found": found}, indent=1))
        print(f"triton_sweep (dry): settings per kernel {plan}; constants found {found}")
        return 0 if all(found.values()) else 1
    if not torch.cuda.is_available():
        print("triton_sweep: no CUDA GPU visible", file=sys.stderr)
        return 2
    start = time.monotonic()
    cases = [(kernel, dtype) for kernel in TRAFFIC for dtype in DTYPES]
    results = {}
    for i, (kernel, dtype) in enumerate(cases):
        deadline = start + args.budget_s * (i + 1) / len(cases)  # an equal share of the budget each
        key = f"{kernel} {str(dtype).split('.')[-1]} {'x'.join(map(str, STENCIL_SHAPE))}"
        results[key] = sweep(kernel, dtype, deadline)
        best = results[key].get("best")
        print(f"triton_sweep: {key}: tried {results[key].get('tried', 0)}, default "
              f"{results[key].get('default')} {results[key].get('default_ms')} ms, best {best}")
        args.out.write_text(json.dumps({"plan": plan, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
