"""The one-screen summary of scripts/gpu_check.sh: every phase's outcome and every GPU target
met or missed, with the measured numbers; also written as summary.md and summary.json.

    python scripts/gpu/summary.py OUT_DIR PHASES_TSV [JUNIT_XML]

OUT_DIR holds the benchmark JSON (bench_gpu.py) and sweep.json (triton_sweep.py); PHASES_TSV
has one line per phase: name, status (ok / failed / timeout / skipped), seconds, detail. Files
that are missing or empty give "not measured", never a guess.
"""

import json
import math
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

STENCIL_SHAPE = "16x3x1024x1024"
STENCIL_COPY_FRACTION = 0.85
STENCIL_VS_COMPILE = 1.3
STEP_COPY_FRACTION = 0.80
STEP_VS_DIFFUSERS = 5.0
DCT_VS_FLOOR = 1.5
DCT_VS_TORCH_DCT = 3.0
DCT_MIN_SIDE = 256  # smaller solves are launch-bound: the floor ratio is judged from here up
MULTIGRID_VS_DCT = 4.0
GDDM = "gddm "
COMPILED, KORNIA, DIFFUSERS = "reference (torch.compile)", "kornia", "diffusers"
FLOOR, TORCH_DCT = "rfft2+irfft2 (floor)", "torch-dct solve"
GRAPH, FUSED = "gddm (fused ops, CUDA graph)", "gddm (fused ops)"
NOT_MEASURED = "not measured"


def _cases(records: list[dict], suite: str) -> dict[tuple, dict[str, dict]]:
    """(op, mode, shape, dtype) -> impl -> record, for one suite."""
    cases: dict[tuple, dict[str, dict]] = {}
    for r in records:
        if r["suite"] == suite:
            cases.setdefault((r["op"], r["mode"], r["shape"], r["dtype"]), {})[r["impl"]] = r
    return cases


def _best_gddm(impls: dict[str, dict]) -> dict | None:
    gddm = [r for name, r in impls.items() if name.startswith(GDDM) and name != GRAPH]
    return min(gddm, key=lambda r: r["time_ms"]) if gddm else None


def _target(name: str, checks: list[tuple[float, str]], ok, unit: str) -> dict:
    """checks: (value, case label); ok(value) -> bool. Reports the worst case."""
    if not checks:
        return {"target": name, "status": NOT_MEASURED, "worst": None, "cases": 0}
    failed = [(v, c) for v, c in checks if not ok(v)]
    worst = min(checks, key=lambda vc: (ok(vc[0]), vc[0] if unit != "x_max" else -vc[0]))
    return {"target": name, "status": "met" if not failed else "missed",
            "worst": f"{worst[0]:.2f} ({worst[1]})", "cases": len(checks), "failed": len(failed)}


def stencil_targets(records: list[dict]) -> list[dict]:
    bw, vs_compile, vs_kornia = [], [], []
    for (op, mode, shape, dtype), impls in _cases(records, "stencils").items():
        best = _best_gddm(impls)
        if shape != STENCIL_SHAPE or best is None:
            continue
        label = f"{op} {mode} {dtype} {best['impl']}"
        bw.append((best["copy_fraction"], label))
        if COMPILED in impls:
            vs_compile.append((impls[COMPILED]["time_ms"] / best["time_ms"], label))
        if KORNIA in impls:
            vs_kornia.append((impls[KORNIA]["time_ms"] / best["time_ms"], label))
    return [
        _target(f"stencils {STENCIL_SHAPE} >= {STENCIL_COPY_FRACTION:.0%} of copy BW (fraction)", bw,
                lambda v: v >= STENCIL_COPY_FRACTION, "min"),
        _target(f"stencils >= {STENCIL_VS_COMPILE}x torch.compile'd reference", vs_compile,
                lambda v: v >= STENCIL_VS_COMPILE, "min"),
        _target("stencils faster than kornia", vs_kornia, lambda v: v > 1.0, "min"),
    ]


def diffusion_targets(records: list[dict]) -> list[dict]:
    cases = _cases(records, "diffusion")
    if not cases:
        return [_target("noise-add / steps >= 80% of copy BW", [], None, "min"),
                _target(f"noise-add / steps >= {STEP_VS_DIFFUSERS:g}x diffusers", [], None, "min")]
    numel = {shape: math.prod(map(int, shape.split("x"))) for (_, _, shape, _) in cases}
    largest = max(numel, key=numel.get)
    bw, vs_diffusers = [], []
    for (op, mode, shape, dtype), impls in cases.items():
        best = _best_gddm(impls)
        if shape != largest or best is None:
            continue
        label = f"{op} {dtype} {shape} {best['impl']}"
        bw.append((best["copy_fraction"], label))
        if DIFFUSERS in impls:
            vs_diffusers.append((impls[DIFFUSERS]["time_ms"] / best["time_ms"], label))
    return [_target(f"noise-add / steps >= {STEP_COPY_FRACTION:.0%} of copy BW (fraction)", bw,
                    lambda v: v >= STEP_COPY_FRACTION, "min"),
            _target(f"noise-add / steps >= {STEP_VS_DIFFUSERS:g}x diffusers", vs_diffusers,
                    lambda v: v >= STEP_VS_DIFFUSERS, "min")]


def poisson_targets(records: list[dict]) -> list[dict]:
    vs_floor, vs_torch_dct = [], []
    for (op, mode, shape, dtype), impls in _cases(records, "poisson").items():
        best = _best_gddm(impls)
        if best is None:
            continue
        label = f"{shape} {best['impl']}"
        if FLOOR in impls and min(map(int, shape.split("x")[-2:])) >= DCT_MIN_SIDE:
            vs_floor.append((best["time_ms"] / impls[FLOOR]["time_ms"], label))
        if TORCH_DCT in impls:
            vs_torch_dct.append((impls[TORCH_DCT]["time_ms"] / best["time_ms"], label))
    return [_target(f"DCT solve <= {DCT_VS_FLOOR}x rfft2+irfft2 (from {DCT_MIN_SIDE}^2; ratio)", vs_floor,
                    lambda v: v <= DCT_VS_FLOOR, "x_max"),
            _target(f"DCT solve >= {DCT_VS_TORCH_DCT:g}x torch-dct", vs_torch_dct,
                    lambda v: v >= DCT_VS_TORCH_DCT, "min")]


def multigrid_targets(records: list[dict]) -> list[dict]:
    ratios = []
    by_shape: dict[str, dict[str, float]] = {}
    for r in records:
        if r["suite"] == "multigrid" and r["dtype"] == "float32" and r["impl"].startswith(GDDM):
            kind = "multigrid" if "multigrid" in r["impl"] else "dct"
            times = by_shape.setdefault(r["shape"], {})
            times[kind] = min(times.get(kind, float("inf")), r["time_ms"])
    for shape, t in by_shape.items():
        if "multigrid" in t and "dct" in t:
            ratios.append((t["multigrid"] / t["dct"], shape))
    return [_target(f"multigrid to 1e-6 <= {MULTIGRID_VS_DCT:g}x the DCT solve (ratio)", ratios,
                    lambda v: v <= MULTIGRID_VS_DCT, "x_max")]


def sampler_targets(records: list[dict], notes: list[str]) -> list[dict]:
    fused = {(r["op"], r["shape"]) for r in records if r["suite"] == "sampler" and r["impl"] == FUSED}
    graphs = {(r["op"], r["shape"]): r["time_ms"] for r in records if r["suite"] == "sampler" and r["impl"] == GRAPH}
    failures = [n for n in notes if "CUDA graph capture failed" in n]
    row = {"target": "50-step sampler loop in a CUDA graph (no host sync)", "cases": len(fused)}
    if not fused:
        return [{**row, "status": NOT_MEASURED, "worst": None}]
    worst = max(graphs.values()) if graphs else None
    ok = not failures and len(graphs) == len(fused)
    return [{**row, "status": "met" if ok else "missed", "failed": len(fused) - len(graphs),
             "worst": f"captured {len(graphs)}/{len(fused)}, slowest replay {worst:.3f} ms" if worst
             else f"captured 0/{len(fused)}: {failures[0] if failures else 'no graph rows'}"}]


def _bench(out: Path) -> dict:
    skip = {"summary.json", "sweep.json"}
    paths = [p for p in sorted(out.glob("*.json")) if p.name not in skip]
    return json.loads(paths[-1].read_text()) if paths else {}


def _phases(tsv: Path) -> list[dict]:
    rows = []
    if tsv.exists():
        for line in tsv.read_text().splitlines():
            name, status, seconds, detail = (line.split("\t") + ["", "", ""])[:4]
            rows.append({"phase": name, "status": status, "seconds": seconds, "detail": detail})
    return rows


def _tests(junit: Path | None) -> dict | None:
    if junit is None or not junit.exists():
        return None
    root = ET.parse(junit).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    counts = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
    counts["failed_names"] = [f"{c.get('classname')}::{c.get('name')}" for c in suite.iter("testcase")
                              if c.find("failure") is not None or c.find("error") is not None][:10]
    return counts


def _sweep(out: Path) -> list[str]:
    path = out / "sweep.json"
    if not path.exists():
        return []
    lines = []
    for key, res in json.loads(path.read_text()).get("results", {}).items():
        best = res.get("best")
        if res.get("error") or best is None:
            lines.append(f"{key}: {res.get('error', 'no setting timed')}")
            continue
        setting = {k: v for k, v in best.items() if k.isupper()}
        default_ms = res.get("default_ms")
        gain = f", {default_ms / best['ms']:.2f}x the default {res['default']}" if default_ms else ""
        lines.append(f"{key}: best {setting} {best['ms']:.3f} ms {best['gbps']:.0f} GB/s{gain} "
                     f"({res['tried']}/{res['of']} tried)")
    return lines


def summarize(out: Path, tsv: Path, junit: Path | None) -> tuple[dict, str]:
    bench = _bench(out)
    records, notes = bench.get("records", []), bench.get("notes", [])
    targets = (stencil_targets(records) + diffusion_targets(records) + poisson_targets(records)
               + multigrid_targets(records) + sampler_targets(records, notes))
    summary = {"environment": bench.get("environment", {}), "copy_bandwidth_gbps": bench.get("copy_bandwidth_gbps"),
               "phases": _phases(tsv), "tests": _tests(junit), "targets": targets,
               "missing_peers": bench.get("missing_peers", {}), "notes": notes, "sweep": _sweep(out)}
    env = summary["environment"]
    copy = summary["copy_bandwidth_gbps"]
    lines = ["# GPU check",
             f"device {env.get('gpu', env.get('device', '?'))}, driver {env.get('driver')}, torch {env.get('torch')}, "
             f"triton {env.get('triton')}, copy bandwidth "
             + (f"{copy:.0f} GB/s" if copy else NOT_MEASURED), "", "## Phases"]
    lines += [f"- {p['phase']}: {p['status']} ({p['seconds']} s) {p['detail']}" for p in summary["phases"]]
    tests = summary["tests"]
    if tests:
        lines.append(f"- tests: {tests['tests']} run, {tests['failures'] + tests['errors']} failed, "
                     f"{tests['skipped']} skipped" + (f"; first failures: {', '.join(tests['failed_names'])}"
                                                      if tests["failed_names"] else ""))
    lines += ["", "## Targets"]
    lines += [f"- [{t['status']}] {t['target']}: worst {t['worst']} over {t['cases']} cases" for t in targets]
    if summary["missing_peers"]:
        lines += ["", "## Peers missing (their rows are left out)"]
        lines += [f"- {k}: {v}" for k, v in summary["missing_peers"].items()]
    if summary["sweep"]:
        lines += ["", "## Triton block sizes"] + [f"- {s}" for s in summary["sweep"]]
    if notes:
        lines += ["", "## Notes"] + [f"- {n}" for n in notes[:8]]
    return summary, "\n".join(lines) + "\n"


def main() -> int:
    if len(sys.argv) not in (3, 4):
        print(__doc__, file=sys.stderr)
        return 2
    out, tsv = Path(sys.argv[1]), Path(sys.argv[2])
    junit = Path(sys.argv[3]) if len(sys.argv) == 4 else None
    summary, text = summarize(out, tsv, junit)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    (out / "summary.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
