"""The benchmark suite of benchmarks/run.py, one suite after another within a time budget, for
scripts/gpu_check.sh: after each suite the results so far are written, so a phase cut short by
its budget still leaves every finished suite's numbers.

    python scripts/gpu/bench_gpu.py --out DIR [--device cuda] [--budget-s 150] [--suites ...] [--full]
    python scripts/gpu/bench_gpu.py --out DIR --dry   # no timing: the plan and an empty result

Without --full, the stencil and diffusion suites run at the GPU targets' shapes only (each
further shape costs a torch.compile of the reference per case), and each GPU timing takes
REP_MS of repetitions instead of benchmarks/harness.py's GPU_REP_MS.

Writes DIR/<device>-<date>.{json,md,png} in benchmarks/run.py's format (ready for
benchmarks/results/), with two more keys: "missing_peers" (peer -> the rows it would have
given) and "notes" (suites skipped for lack of time, failed CUDA-graph captures).
"""

import argparse
import importlib
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from benchmarks import harness  # noqa: E402
from benchmarks.run import SUITES  # noqa: E402

# Run first what the GPU targets are about; any suite added to benchmarks/run.py runs last.
PRIORITY = ("stencils", "diffusion", "poisson", "sampler", "multigrid")
# Peer packages the suites use when they import, and what they give.
PEERS = {"kornia": "stencils: kornia gradient / laplacian rows",
         "diffusers": "diffusion: diffusers scheduler rows",
         "torch_dct": "poisson: torch-dct solve rows",
         "pyamg": "multigrid: pyamg setup / solve rows",
         "cupy": "poisson: cupyx dctn solve rows"}


# The shapes the GPU targets name (the largest of each suite's GPU sizes).
TARGET_SHAPES = {"stencils": [(16, 3, 1024, 1024)], "diffusion": [(64, 3, 256, 256)]}
REP_MS = 40


def target_sizes_only() -> None:
    from benchmarks import bench_diffusion, bench_stencils

    bench_stencils.SHAPES["cuda"] = TARGET_SHAPES["stencils"]
    bench_diffusion.SHAPES["cuda"] = TARGET_SHAPES["diffusion"]
    harness.GPU_REP_MS = REP_MS


def missing_peers() -> dict[str, str]:
    """peer -> the rows it would give and why it does not import (not installed, or its own
    needs missing or too old there)."""
    missing = {}
    for name, rows in PEERS.items():
        try:
            importlib.import_module(name)
        except Exception as exc:  # ImportError, or a version check of the peer's own
            missing[name] = f"no {rows} ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
    return missing


def ordered(suites: list[str]) -> list[str]:
    return [s for s in PRIORITY if s in suites] + [s for s in suites if s not in PRIORITY]


def write(out: Path, name: str, env: dict, copy_gbps: float, records: list, extra: dict) -> Path:
    """Writes out/<name>.json (+ .md) like harness.write_results, plus the extra keys."""
    saved = harness.RESULTS_DIR
    harness.RESULTS_DIR = out
    try:
        path = harness.write_results(name, env, copy_gbps, records)
    finally:
        harness.RESULTS_DIR = saved
    payload = json.loads(path.read_text())
    payload.update(extra)
    path.write_text(json.dumps(payload, indent=1))
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="folder for the result files")
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--budget-s", type=float, default=150.0,
                        help="no suite starts after this many seconds (a running one finishes)")
    parser.add_argument("--suites", nargs="+", choices=list(SUITES), default=list(SUITES))
    parser.add_argument("--dry", action="store_true", help="print the plan, write an empty result, time nothing")
    parser.add_argument("--full", action="store_true", help="every GPU shape of benchmarks/, the harness's repetitions")
    args = parser.parse_args()
    if not args.full:
        target_sizes_only()
    if args.device == "cuda" and not args.dry and not torch.cuda.is_available():
        print("bench_gpu: no CUDA GPU visible", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    suites = ordered(args.suites)
    missing = missing_peers()
    for peer, rows in missing.items():
        print(f"bench_gpu: peer {peer} is missing: {rows}")
    env = harness.environment(args.device) if not args.dry else {"device": args.device, "dry": True}
    name = harness.result_name(args.device) if not args.dry else f"{args.device}-dry"
    if args.dry:
        for suite in suites:
            print(f"bench_gpu (dry): would run {suite}")
        path = write(args.out, name, env, 0.0, [], {"missing_peers": missing, "notes": ["dry run: nothing timed"]})
        print(f"bench_gpu (dry): wrote {path}")
        return 0

    copy_gbps = harness.copy_bandwidth_gbps(args.device)
    print(f"bench_gpu: measured copy bandwidth {copy_gbps:.1f} GB/s")
    records, notes = [], []
    path = None
    for suite in suites:
        elapsed = time.monotonic() - start
        if elapsed > args.budget_s:
            notes.append(f"suite {suite} not run: budget of {args.budget_s:.0f} s spent")
            print(f"bench_gpu: {notes[-1]}")
            continue
        t0 = time.monotonic()
        try:
            records += SUITES[suite].run(args.device, copy_gbps)
        except Exception as exc:  # a broken suite must not lose the others' numbers
            notes.append(f"suite {suite} failed: {type(exc).__name__}: {exc}")
            print(f"bench_gpu: {notes[-1]}")
        notes += getattr(SUITES[suite], "NOTES", [])
        print(f"bench_gpu: {suite} done in {time.monotonic() - t0:.0f} s")
        harness.add_speedups(records)
        path = write(args.out, name, env, copy_gbps, records, {"missing_peers": missing, "notes": notes})
    if path is None:
        path = write(args.out, name, env, copy_gbps, records, {"missing_peers": missing, "notes": notes})
    print(harness.table(records))
    try:
        from benchmarks.plot import plot

        print(f"bench_gpu: wrote {path}, {path.with_suffix('.md')} and {plot(path)}")
    except Exception as exc:  # matplotlib missing or no records: the numbers are written already
        print(f"bench_gpu: wrote {path} and {path.with_suffix('.md')}; no plot ({type(exc).__name__}: {exc})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
