"""Two benchmark runs side by side: every gddm row both runs hold (same suite, op, mode, shape,
dtype and impl), its time in each, new/old, and the eager reference's new/old on the same key,
the yardstick of how fast the machine was each day (the reference code did not change). Writes
Markdown.

    python -m benchmarks.compare benchmarks/results/OLD.json benchmarks/results/NEW.json [--out FILE.md]
"""

import argparse
import json
import statistics
from pathlib import Path

GDDM_IMPL_PREFIX = "gddm"  # the impl names of our own rows: "gddm cpu", "gddm (fused ops)", ...
EAGER = "reference (eager)"


def _rows(path: Path) -> dict[tuple[str, ...], float]:
    records = json.loads(path.read_text())["records"]
    return {(r["suite"], r["op"], r["mode"], r["shape"], r["dtype"], r["impl"]): r["time_ms"] for r in records}


def compare(old_path: Path, new_path: Path) -> str:
    old, new = _rows(old_path), _rows(new_path)
    keys = [k for k in new if k in old and k[-1].startswith(GDDM_IMPL_PREFIX)]
    lines, ratios, yardsticks = [], [], []
    for key in keys:
        ratio = new[key] / old[key]
        eager = (*key[:-1], EAGER)
        yardstick = new[eager] / old[eager] if eager in new and eager in old else None
        ratios.append(ratio)
        if yardstick is not None:
            yardsticks.append(yardstick)
        lines.append(f"| {' | '.join(key)} | {old[key]:.3f} | {new[key]:.3f} | {ratio:.2f} | "
                     f"{'-' if yardstick is None else f'{yardstick:.2f}'} |")
    old_name, new_name = old_path.stem, new_path.stem
    head = [
        f"# {new_name} beside {old_name}",
        "",
        f"Every gddm row both runs hold ({len(keys)} rows; same suite, op, mode, shape, dtype, impl), time in "
        "ms, new/old, and the unchanged eager reference's new/old on the same key as the yardstick of the "
        f"machine's speed (- where the suite has no eager row). Median new/old "
        f"{statistics.median(ratios):.2f}, eager yardstick median "
        f"{statistics.median(yardsticks) if yardsticks else float('nan'):.2f}.",
        "",
        f"| suite | op | mode | shape | dtype | impl | {old_name} (ms) | {new_name} (ms) | new/old | "
        "eager ref new/old |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    return "\n".join(head + lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("old", type=Path, help="the earlier run's JSON")
    parser.add_argument("new", type=Path, help="the later run's JSON")
    parser.add_argument("--out", type=Path, help="write the Markdown here (default: print it)")
    args = parser.parse_args()
    text = compare(args.old, args.new)
    if args.out:
        args.out.write_text(text)
    else:
        print(text, end="")


if __name__ == "__main__":
    main()
