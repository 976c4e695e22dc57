"""Plots a results JSON of benchmarks/run.py: per suite, the speed-up of every implementation
over the eager reference (log scale), one bar group per (op, mode, shape, dtype) case.

    python -m benchmarks.plot benchmarks/results/<name>.json   # writes <name>.png beside it
"""

import argparse
import json
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

BAR_GROUP_WIDTH = 0.8


def plot(json_path: Path) -> Path:
    """Writes the PNG next to the JSON and returns its path."""
    payload = json.loads(json_path.read_text())
    by_suite: dict[str, list[dict]] = defaultdict(list)
    for record in payload["records"]:
        if record["speedup_vs_eager"] is not None:
            by_suite[record["suite"]].append(record)
    fig, axes = plt.subplots(len(by_suite), 1, figsize=(14, 4 * len(by_suite)), squeeze=False)
    for ax, (suite, records) in zip(axes[:, 0], by_suite.items()):
        cases = list(dict.fromkeys((r["op"], r["mode"], r["shape"], r["dtype"]) for r in records))
        impls = list(dict.fromkeys(r["impl"] for r in records))
        width = BAR_GROUP_WIDTH / len(impls)
        speed = {(r["op"], r["mode"], r["shape"], r["dtype"], r["impl"]): r["speedup_vs_eager"] for r in records}
        for k, impl in enumerate(impls):
            xs = [i + k * width for i, case in enumerate(cases) if (*case, impl) in speed]
            ys = [speed[(*case, impl)] for case in cases if (*case, impl) in speed]
            ax.bar(xs, ys, width, label=impl)
        ax.set_yscale("log")
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_xticks([i + BAR_GROUP_WIDTH / 2 - width / 2 for i in range(len(cases))])
        ax.set_xticklabels(["\n".join((c[0], c[1], c[2], c[3])) for c in cases], fontsize=6)
        ax.set_ylabel("speed-up vs eager reference")
        ax.set_title(f"{suite} — {payload['environment'].get('gpu', payload['environment']['cpu'])}, "
                     f"copy bandwidth {payload['copy_bandwidth_gbps']:.1f} GB/s")
        ax.legend(fontsize=7, ncol=3)
    fig.tight_layout()
    out = json_path.with_suffix(".png")
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("json", type=Path, help="a results JSON written by benchmarks/run.py")
    print(f"plot written to {plot(parser.parse_args().json)}")


if __name__ == "__main__":
    main()
