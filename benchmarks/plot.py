"""Plots a results JSON of benchmarks/run.py: one figure per suite, written beside the JSON as
<name>-<suite>.png.

Each figure is small multiples: one panel per case (op, mode, dtype; per sampler; per batch
of the DCT crossover; ...), the input sizes along the x axis, one line per implementation
(the same colour in every panel of the figure) and one legend. The y axis is what the suite is
about:

  stencils, diffusion   speed-up over the eager reference on a CPU; fraction of the measured
                        copy bandwidth on a GPU (memory-bound ops: 100% is the limit)
  sampler               speed-up over the eager loop
  poisson, multigrid, dct-crossover   time per solve (log), so peers timed only at some sizes
                        and the crossover of two paths show
  overhead              per-call time in microseconds (log), with the baselines measured on the
                        same input (F.conv2d, torch.add, the diffusers peer) as grey lines

    python -m benchmarks.plot benchmarks/results/<name>.json
"""

import argparse
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # noqa: E402

from .bench_overhead import BASELINE, PEER  # noqa: E402
from .harness import EAGER_REFERENCE  # noqa: E402

PANEL_WIDTH_IN, PANEL_HEIGHT_IN, LEGEND_HEIGHT_IN, TITLE_HEIGHT_IN = 4.0, 3.0, 0.6, 0.6
MIN_FIGURE_WIDTH_IN = 10.0
MAX_COLUMNS = 4
DPI = 110
TICK_SUBS = (1.0, 2.0, 5.0)  # log-axis ticks at 1, 2, 5 x 10^k
BASELINE_STYLES = ("--", ":")  # grey; the diffusers peer: black, PEER_STYLE
PEER_STYLE = "-."
CYCLES_SUFFIX = re.compile(r" \((\d+ cycles)\)$")  # multigrid labels carry their cycle count


@dataclass(frozen=True)
class Metric:
    label: str
    value: Callable[[dict], float | None]
    log: bool
    unit: str  # appended to tick labels
    reference: float | None = None  # drawn as a black line
    reference_label: str | None = None


SPEEDUP = Metric("speed-up over the eager reference", lambda r: r["speedup_vs_eager"], True, "x",
                 1.0, f"{EAGER_REFERENCE} = 1x")
COPY_FRACTION = Metric("% of copy bandwidth",
                       lambda r: None if r["copy_fraction"] is None else 100 * r["copy_fraction"], False, "%",
                       100.0, "measured copy bandwidth = 100%")
TIME_MS = Metric("time (ms, log)", lambda r: r["time_ms"], True, "")
TIME_US = Metric("per-call time (us, log)", lambda r: 1e3 * r["time_ms"], True, "")


def _case(r: dict) -> str:
    return f"{r['op']}\n{r['mode']}, {r['dtype']}"


def _batch(r: dict) -> str:
    return f"{r['op']} ({r['mode']}), batch {r['shape'].split('x')[0]}"


def _image_size(r: dict) -> str:
    return "x".join(r["shape"].split("x")[-2:])


@dataclass(frozen=True)
class Layout:
    panel: Callable[[dict], str]
    x: Callable[[dict], str]
    metric: Metric
    gpu_metric: Metric | None = None  # replaces `metric` for results measured on a GPU
    single_thread: bool = False  # the suite sets one CPU thread whatever the run's setting


LAYOUTS = {
    "stencils": Layout(_case, lambda r: r["shape"], SPEEDUP, COPY_FRACTION),
    "diffusion": Layout(_case, lambda r: r["shape"], SPEEDUP, COPY_FRACTION),
    "sampler": Layout(lambda r: f"{r['op']}\n{r['mode']}", lambda r: r["shape"], SPEEDUP),
    "poisson": Layout(_case, lambda r: r["shape"], TIME_MS),
    "multigrid": Layout(_case, lambda r: r["shape"], TIME_MS),
    "dct-crossover": Layout(_batch, _image_size, TIME_MS),
    "overhead": Layout(lambda r: r["op"], lambda r: r["shape"], TIME_US, single_thread=True),
}
DEFAULT_LAYOUT = Layout(_case, lambda r: r["shape"], TIME_MS)


def _impl(r: dict) -> str:
    return CYCLES_SUFFIX.sub("", r["impl"])


def _is_overlay(r: dict) -> bool:
    """A baseline drawn in every panel of the overhead figure rather than in a panel of its own."""
    return r["suite"] == "overhead" and r["impl"] in (BASELINE, PEER)


def _overlay_label(r: dict) -> str:
    return f"diffusers {r['op']}" if r["impl"] == PEER else r["op"]


def _format_axis(ax, metric: Metric, values: list[float]) -> None:
    if metric.log:
        ax.set_yscale("log")
        low, high = min(values), max(values)
        if metric.reference is not None:
            low, high = min(low, metric.reference), max(high, metric.reference)
        subs = TICK_SUBS if high / low < 1e3 else (1.0,)
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=subs))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_ylim(low / 1.5, high * 2)
    else:
        ax.set_ylim(bottom=0, top=1.1 * max(max(values), metric.reference or 0))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}{metric.unit}"))
    if metric.reference is not None:
        ax.axhline(metric.reference, color="black", linewidth=0.8, label=metric.reference_label)
    ax.grid(True, which="major", axis="y", alpha=0.3)


@dataclass
class _Lines:
    """What the panels of one figure draw: the implementations (a colour each) and the overlaid
    baselines of the overhead suite (grey, one line style each; the diffusers peer black)."""

    impls: list[str]
    colors: dict[str, object]
    overlays: list[dict]
    styles: dict[str, tuple[str, str]]

    @classmethod
    def of(cls, records: list[dict], overlays: list[dict]) -> "_Lines":
        impls = list(dict.fromkeys(_impl(r) for r in records))
        baselines = list(dict.fromkeys(_overlay_label(r) for r in overlays if r["impl"] == BASELINE))
        styles = {name: ("grey", BASELINE_STYLES[i % len(BASELINE_STYLES)]) for i, name in enumerate(baselines)}
        styles |= {_overlay_label(r): ("black", PEER_STYLE) for r in overlays if r["impl"] == PEER}
        return cls(impls, {impl: plt.cm.tab10(i % 10) for i, impl in enumerate(impls)}, overlays, styles)


def _draw_panel(ax, title: str, records: list[dict], layout: Layout, metric: Metric, lines: _Lines) -> None:
    """One panel: the records' sizes along x, a line per implementation, the overlays."""
    xs = list(dict.fromkeys(layout.x(r) for r in records))
    values = []
    for impl in lines.impls:
        drawn = [r for r in records if _impl(r) == impl]
        points = [(xs.index(layout.x(r)), metric.value(r)) for r in drawn]
        if points:
            ax.plot(*zip(*points), marker="o", color=lines.colors[impl], label=impl)
            values += [v for _, v in points]
        for r, point in zip(drawn, points):
            if cycles := CYCLES_SUFFIX.search(r["impl"]):
                ax.annotate(cycles.group(1), point, textcoords="offset points", xytext=(0, 6), ha="center",
                            fontsize=7, color=lines.colors[impl])
    # overhead: the baselines on the same inputs, and the diffusers peer these ops are compared with
    peers = {key for r in records for key in (r.get("time_ratios") or {})}
    for name, (color, style) in lines.styles.items():
        points = [(xs.index(layout.x(r)), metric.value(r)) for r in lines.overlays
                  if _overlay_label(r) == name and layout.x(r) in xs and (r["impl"] == BASELINE or name in peers)]
        if points:
            ax.plot(*zip(*points), linestyle=style, marker=".", color=color, label=name)
            values += [v for _, v in points]
    crowded = len(xs) > 3
    ax.set_title(title, fontsize=9)
    ax.set_xticks(range(len(xs)))
    ax.set_xticklabels(xs, fontsize=8, rotation=25 if crowded else 0, ha="right" if crowded else "center")
    ax.set_xlim(-0.3, len(xs) - 0.7)
    ax.tick_params(axis="y", labelsize=8)
    _format_axis(ax, metric, values)


def _suite_figure(suite: str, records: list[dict], environment: dict, copy_gbps: float) -> plt.Figure | None:
    """The suite's small multiples (module notes); None when it has nothing to draw."""
    layout = LAYOUTS.get(suite, DEFAULT_LAYOUT)
    metric = layout.gpu_metric if environment["device"] == "cuda" and layout.gpu_metric else layout.metric
    overlays = [r for r in records if _is_overlay(r)]
    # (the eager reference is the black line of a speed-up axis)
    records = [r for r in records if not _is_overlay(r) and metric.value(r) is not None
               and not (metric is SPEEDUP and r["impl"] == EAGER_REFERENCE)]
    panels = list(dict.fromkeys(layout.panel(r) for r in records))
    if not panels:
        return None
    lines = _Lines.of(records, overlays)
    columns = min(MAX_COLUMNS, len(panels))
    rows = math.ceil(len(panels) / columns)
    height = PANEL_HEIGHT_IN * rows + LEGEND_HEIGHT_IN + TITLE_HEIGHT_IN
    fig, axes = plt.subplots(rows, columns, squeeze=False,
                             figsize=(max(PANEL_WIDTH_IN * columns, MIN_FIGURE_WIDTH_IN), height))
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax, panel in zip(axes.flat, panels):
        _draw_panel(ax, panel, [r for r in records if layout.panel(r) == panel], layout, metric, lines)
    for ax in axes[:, 0]:
        ax.set_ylabel(metric.label, fontsize=8)

    handles = {}
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    threads = 1 if layout.single_thread else environment["cpu_threads"]
    device = environment.get("gpu") or f"{environment['cpu']}, {threads} thread{'s' if threads > 1 else ''}"
    bandwidth = f", copy bandwidth {copy_gbps:.1f} GB/s" if metric is COPY_FRACTION else ""
    fig.suptitle(f"{suite}: {metric.label}\n{device}{bandwidth}, {environment['date'][:10]}", fontsize=11)
    fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=min(len(handles), 4), fontsize=9,
               frameon=False)
    fig.tight_layout(rect=(0, LEGEND_HEIGHT_IN / height, 1, 1))
    return fig


def plot(json_path: Path) -> list[Path]:
    """Writes <json stem>-<suite>.png beside the JSON for every suite with something to draw;
    returns the paths."""
    payload = json.loads(json_path.read_text())
    suites: dict[str, list[dict]] = {}
    for record in payload["records"]:
        suites.setdefault(record["suite"], []).append(record)
    written = []
    for suite, records in suites.items():
        fig = _suite_figure(suite, records, payload["environment"], payload["copy_bandwidth_gbps"])
        if fig is None:
            continue
        out = json_path.with_name(f"{json_path.stem}-{suite}.png")
        fig.savefig(out, dpi=DPI)
        plt.close(fig)
        written.append(out)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("json", type=Path, help="a results JSON written by benchmarks/run.py")
    for path in plot(parser.parse_args().json):
        print(f"plot written to {path}")


if __name__ == "__main__":
    main()
