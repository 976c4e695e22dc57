"""Timing, bandwidth and reporting shared by the benchmark suites.

Times are medians: triton.testing.do_bench (CUDA events, L2 flushed) on a GPU,
torch.utils.benchmark.Timer.blocked_autorange on a CPU. Memory-bound ops are reported in
achieved GB/s = (bytes the op must move at least) / time, and as a fraction of the measured
copy bandwidth of the device (a same-size tensor copy), the physical limit for such ops.
"""

import datetime as dt
import json
import os
import platform
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.utils.benchmark as tbench

RESULTS_DIR = Path(__file__).parent / "results"
CPU_MIN_RUN_TIME_S = 0.2  # keeps `bash scripts/main.sh` under 10 min on a 2-core CPU
GPU_REP_MS = 100
COPY_BENCH_BYTES = {"cuda": 1 << 30, "cpu": 1 << 27}
EAGER_REFERENCE = "reference (eager)"  # the implementation speed-ups are measured against


@dataclass
class Record:
    suite: str
    op: str
    mode: str  # "forward", "forward+backward", ...
    shape: str
    dtype: str
    impl: str
    time_ms: float
    gbps: float | None
    copy_fraction: float | None
    speedup_vs_eager: float | None = None
    time_ratios: dict[str, float] | None = None  # time / a baseline's time, keyed by the baseline


def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def time_ms(fn: Callable[[], object], device: str) -> float:
    """Median wall time of fn() in milliseconds."""
    fn()  # warm-up (compilation, autotuning, allocator)
    synchronize(device)
    if device == "cuda":
        import triton.testing

        return float(triton.testing.do_bench(fn, rep=GPU_REP_MS, return_mode="median"))
    timer = tbench.Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
    return timer.blocked_autorange(min_run_time=CPU_MIN_RUN_TIME_S).median * 1e3


def copy_bandwidth_gbps(device: str) -> float:
    """Measured device copy bandwidth: bytes read + written by dst.copy_(src), per second."""
    n = COPY_BENCH_BYTES[device] // 4
    src = torch.empty(n, device=device, dtype=torch.float32).normal_()
    dst = torch.empty_like(src)
    ms = time_ms(lambda: dst.copy_(src), device)
    return 2 * n * 4 / ms / 1e6


def environment(device: str) -> dict:
    """Device, versions and date, written beside every result."""
    info = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "device": device,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "cpu_threads": torch.get_num_threads(),
    }
    try:
        import triton

        info["triton"] = triton.__version__
    except ImportError:
        info["triton"] = None
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        info["gpu"] = props.name
        info["cuda"] = torch.version.cuda
        info["driver"] = _nvidia_driver()
    return info


def _nvidia_driver() -> str | None:
    try:
        import subprocess

        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def add_speedups(records: list[Record], baseline_impl: str = EAGER_REFERENCE) -> None:
    """Fill speedup_vs_eager: baseline time / time, per (op, mode, shape, dtype)."""
    base = {(r.op, r.mode, r.shape, r.dtype): r.time_ms for r in records if r.impl == baseline_impl}
    for r in records:
        ref = base.get((r.op, r.mode, r.shape, r.dtype))
        r.speedup_vs_eager = ref / r.time_ms if ref else None


def table(records: list[Record]) -> str:
    """A Markdown table of the records."""
    head = "| op | mode | shape | dtype | impl | time (ms) | GB/s | % of copy BW | speed-up vs eager |"
    rows = [head, "|" + "---|" * 9]
    for r in records:
        gbps = f"{r.gbps:.1f}" if r.gbps is not None else "-"
        frac = f"{100 * r.copy_fraction:.0f}%" if r.copy_fraction is not None else "-"
        speed = f"{r.speedup_vs_eager:.2f}x" if r.speedup_vs_eager is not None else "-"
        rows.append(f"| {r.op} | {r.mode} | {r.shape} | {r.dtype} | {r.impl} | {r.time_ms:.3f} | "
                    f"{gbps} | {frac} | {speed} |")
    return "\n".join(rows)


def write_results(name: str, env: dict, copy_gbps: float, records: list[Record],
                  summaries: Sequence[str] = ()) -> Path:
    """Writes results/<name>.json and results/<name>.md (the table, then each summary table);
    returns the JSON path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    payload = {"environment": env, "copy_bandwidth_gbps": copy_gbps,
               "records": [asdict(r) for r in records]}
    json_path = RESULTS_DIR / f"{name}.json"
    json_path.write_text(json.dumps(payload, indent=1))
    header = "\n".join(f"- {k}: {v}" for k, v in env.items())
    (RESULTS_DIR / f"{name}.md").write_text(
        f"# {name}\n\n{header}\n- measured copy bandwidth: {copy_gbps:.1f} GB/s\n\n{table(records)}\n"
        + "".join(f"\n{summary}\n" for summary in summaries))
    return json_path


def result_name(device: str) -> str:
    label = torch.cuda.get_device_name(0) if device == "cuda" else f"cpu{os.cpu_count()}"
    return f"{label.replace(' ', '_')}-{dt.date.today().isoformat()}"
