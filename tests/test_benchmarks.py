"""The benchmark runner's own code: the overhead suite times every public op through its
layers with the arguments the layer above hands over, and the plots render one figure per
suite from a results JSON."""

import json
import math

import pytest
import torch

import gddm_kernels as gk
from benchmarks import bench_overhead as overhead
from benchmarks.harness import Record

TINY = overhead.SHAPES[0]


def test_overhead_suite_yields_every_op_with_ratios(monkeypatch):
    monkeypatch.setattr(overhead, "SHAPES", (TINY,))
    monkeypatch.setattr(overhead, "MIN_RUN_TIME_S", 1e-3)
    threads = torch.get_num_threads()
    records = overhead.run("cpu", copy_gbps=1.0)

    assert torch.get_num_threads() == threads
    rows = {(r.op, r.impl): r for r in records}
    for op in overhead.public_calls(TINY, "cpu"):
        assert (op, overhead.PUBLIC) in rows, op
        # every public op is one registered op: torch.ops.gddm, or gddm_C's C++ op on the fast path
        assert {(op, overhead.OP_LAYER), (op, overhead.KERNEL)} & rows.keys(), op
    assert all(math.isfinite(r.time_ms) and r.time_ms > 0 for r in records)
    conv = rows[(overhead.CONV2D, overhead.BASELINE)].time_ms
    for r in records:
        if r.op != overhead.CONV2D:
            assert r.time_ratios[overhead.CONV2D] == pytest.approx(r.time_ms / conv)
    if (overhead.DIFFUSERS_STEP, overhead.PEER) in rows:  # diffusers installed
        step = rows[("ddim_step", overhead.PUBLIC)]
        peer = rows[(overhead.DIFFUSERS_STEP, overhead.PEER)]
        assert step.time_ratios[overhead._peer_key(overhead.DIFFUSERS_STEP)] == pytest.approx(
            step.time_ms / peer.time_ms)
    assert "| laplacian | 1x1x8x8 |" in overhead.summary(records)


def test_layer_calls_replay_to_the_public_result():
    x = torch.randn(TINY)
    found, notes = overhead.layer_calls(lambda: gk.laplacian(x))
    assert found, notes
    for call in found.values():
        torch.testing.assert_close(call.replay(), gk.laplacian(x), rtol=0, atol=0)


def test_layer_calls_skip_a_layer_that_computes_only_part_of_the_op():
    x = torch.randn(TINY)
    found, notes = overhead.layer_calls(lambda: gk.laplacian(x) + 1)
    assert found == {}
    assert any("only part of the result" in note for note in notes)


def _record(suite: str, op: str, shape: str, impl: str, ms: float, **extra) -> dict:
    record = Record(suite, op, "forward", shape, "float32", impl, ms, None, None).__dict__
    return record | extra


def test_plot_writes_one_readable_figure_per_suite(tmp_path):
    pytest.importorskip("matplotlib")
    from matplotlib.image import imread

    from benchmarks.plot import plot

    records = []
    for shape, scale in (("1x1x8x8", 1.0), ("8x4x64x64", 20.0)):
        records += [
            _record("stencils", "laplacian", shape, "gddm cpu", 0.1 * scale, speedup_vs_eager=4.0),
            _record("stencils", "laplacian", shape, "reference (eager)", 0.4 * scale, speedup_vs_eager=1.0),
            _record("overhead", overhead.CONV2D, shape, overhead.BASELINE, 0.02 * scale),
            _record("overhead", overhead.DIFFUSERS_STEP, shape, overhead.PEER, 0.3 * scale),
            _record("overhead", "ddim_step", shape, overhead.PUBLIC, 0.5 * scale,
                    time_ratios={overhead.CONV2D: 25.0, f"diffusers {overhead.DIFFUSERS_STEP}": 1.7}),
        ]
    records.append(_record("overhead", "laplacian", "1x1x8x8", overhead.KERNEL, 0.01))  # one size only
    environment = {"device": "cpu", "cpu": "x86_64", "cpu_threads": 2, "date": "2026-01-01T00:00:00"}
    path = tmp_path / "cpu2-2026-01-01.json"
    path.write_text(json.dumps({"environment": environment, "copy_bandwidth_gbps": 10.0, "records": records}))

    written = plot(path)

    assert [p.name for p in written] == ["cpu2-2026-01-01-stencils.png", "cpu2-2026-01-01-overhead.png"]
    for png in written:
        height, width, _ = imread(png).shape
        assert height > 200 and width > 200


def test_compare_puts_the_gddm_rows_of_two_runs_side_by_side(tmp_path):
    from benchmarks import compare

    def run(name: str, gddm_ms: float, eager_ms: float) -> object:
        rows = [dict(suite="stencils", op="laplacian", mode="forward", shape="1x1x8x8", dtype="float32", impl=impl,
                     time_ms=ms) for impl, ms in (("gddm cpu", gddm_ms), ("reference (eager)", eager_ms))]
        rows.append(dict(suite="overhead", op="laplacian", mode="laplacian", shape="1x1x8x8", dtype="float32",
                         impl="public API", time_ms=1.0))
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({"records": rows}))
        return path

    text = compare.compare(run("old", 2.0, 4.0), run("new", 1.0, 5.0))
    assert "(1 rows;" in text and "Median new/old 0.50, eager yardstick median 1.25" in text
    assert "| stencils | laplacian | forward | 1x1x8x8 | float32 | gddm cpu | 2.000 | 1.000 | 0.50 | 1.25 |" in text
    assert "public API" not in text and "reference (eager) |" not in text
