"""The static Hopper report (benchmarks/static_report.py): its occupancy and SASS parsing on
hand-checked inputs, and the generator end to end on one kernel (the full report takes minutes
and is committed under benchmarks/results/, not regenerated here)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import static_report as report

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("registers,threads,expected", [
    (32, 256, 1.0),        # 1024 registers a warp: 64 warps fit, the thread limit too
    (56, 128, 36 / 64),    # 1792 a warp: 36 warps by registers = 9 blocks of 4 warps
    (40, 128, 48 / 64),    # 1280 a warp: 51 warps -> 12 blocks of 4
    (255, 128, 8 / 64),    # 8192 a warp: 8 warps = 2 blocks
    (16, 32, 32 / 64),     # one-warp blocks: the 32-block limit binds
])
def test_occupancy(registers, threads, expected):
    assert report.occupancy(registers, threads) == pytest.approx(expected)


def test_access_widths():
    sass = """
        /*0670*/  LDG.E.128.CONSTANT R24, desc[UR18][R14.64] ;
        /*07d0*/  @P0 LDG.E R29, desc[UR18][R26.64] ;
        /*07e0*/  LDG.E.U16.CONSTANT R20, desc[UR18][R16.64] ;
        /*0800*/  LDG.E.64 R20, desc[UR18][R16.64] ;
        /*0a10*/  STG.E.128 desc[UR18][R14.64], R16 ;
        /*0a20*/  STG.E.U16 desc[UR18][R14.64], R19 ;
    """
    loads, stores = report.access_widths(sass)
    assert loads == {128: 1, 32: 1, 16: 1, 64: 1}
    assert stores == {128: 1, 16: 1}


def test_traffic_model():
    n = 16 * 3 * 1024 * 1024
    assert report.traffic("_laplacian_kernel", 4, {}) == 2 * n * 4
    assert report.traffic("_add_noise_kernel", 2, {"DOMAIN": 1, "GIVEN": True}) == (1 + 2 + 2) * n * 2
    assert report.traffic("_step_kernel", 4, {"HAS_PREV": True, "WRITE_X0": True, "NOISE": 1}) == 6 * n * 4


@pytest.mark.triton
def test_generator_on_one_kernel(tmp_path):
    pytest.importorskip("triton", reason="Triton is not installed")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    proc = subprocess.run([sys.executable, "-m", "benchmarks.static_report", "--only", "laplacian",
                           "--out", str(tmp_path)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "static-sm90.json").read_text())
    assert (tmp_path / "static-sm90.md").read_text().count("laplacian") >= 2
    triton_rows = [r for r in result["rows"] if r["backend"] == "triton"]
    assert {r["dtype"] for r in triton_rows} == {"fp32", "bf16"}
    for row in triton_rows:
        assert row["kernel"] == "_laplacian_kernel"
        assert 0 < row["registers"] <= 255 and row["spill_bytes"] >= 0
        assert 0 < row["occupancy"] <= 1
        assert row["bytes_per_launch"] == 2 * 16 * 3 * 1024 * 1024 * (2 if row["dtype"] == "bf16" else 4)
        assert sum(row["loads"].values()) > 0 and sum(row["stores"].values()) > 0
    cuda_rows = [r for r in result["rows"] if r["backend"] == "cuda"]
    if report._nvcc() is None:
        assert "nvcc not found" in result["notes"][0]
    else:
        assert {r["dtype"] for r in cuda_rows} == {"fp32", "bf16"}
        assert all(r["threads_per_block"] and r["registers"] > 0 for r in cuda_rows)
