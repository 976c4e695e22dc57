"""Every Triton kernel compiles for Hopper (sm_90) through Triton's own compiler and its bundled
ptxas, with the specialisation a real launch on contiguous float32 and bfloat16 data gets
(gddm_kernels.triton.aot). The interpreter that runs the other Triton tests accepts programs the
compiler rejects; here a rejected kernel is a failing test. No GPU is needed.

The compile runs once, in a subprocess without TRITON_INTERPRET (under it @triton.jit builds
interpreter objects). Skipped only when Triton itself is not installed.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("triton", reason="Triton is not installed: nothing to compile")

from gddm_kernels.triton import diffusion, multigrid, poisson, stencils  # noqa: E402

pytestmark = pytest.mark.triton

ROOT = Path(__file__).resolve().parents[1]
COMPILE_TIMEOUT_S = 1800
KERNELS = sorted(name for module in (stencils, poisson, multigrid, diffusion) for name in vars(module)
                 if name.endswith("_kernel") and name.startswith("_"))


@pytest.fixture(scope="module")
def sm90(tmp_path_factory) -> dict:
    """The aot module's JSON record of every compiled specialisation (and its exit status)."""
    out = tmp_path_factory.mktemp("aot") / "sm90.json"
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    proc = subprocess.run([sys.executable, "-m", "gddm_kernels.triton.aot", "--arch", "90", "--json", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=COMPILE_TIMEOUT_S)
    assert out.exists(), f"the compile did not run:\n{proc.stdout}\n{proc.stderr}"
    record = json.loads(out.read_text())
    record["returncode"], record["stderr"] = proc.returncode, proc.stderr
    return record


def test_every_kernel_of_the_package_is_compiled(sm90):
    assert sm90["kernels"] == KERNELS


@pytest.mark.parametrize("kernel", KERNELS)
def test_kernel_compiles_for_sm90(sm90, kernel):
    results = [r for r in sm90["results"] if r["kernel"] == kernel]
    assert results, f"no launch of {kernel} was compiled"
    failed = {r["name"]: r["error"] for r in results if not r["ok"]}
    assert not failed, "\n".join(f"{name}:\n{error}" for name, error in failed.items())


def test_float32_and_bfloat16_launches_are_specialised_as_on_a_gpu(sm90):
    """Contiguous launches get what JITFunction.run would give them: the unit column stride is a
    constant, 16-byte aligned pointers and sizes divisible by 16 carry tt.divisibility=16."""
    lap = [r for r in sm90["results"] if r["kernel"] == "_laplacian_kernel"]
    assert {r["signature"]["x_ptr"] for r in lap} == {"*fp32", "*bf16"}
    for r in lap:
        assert r["signature"]["s_w"] == "constexpr"
        position = {name: i for i, name in enumerate(r["signature"])}
        for name in ("x_ptr", "out_ptr", "H", "W", "s_h"):
            assert r["attrs"][str((position[name],))] == [["tt.divisibility", 16]], name


def test_exit_status(sm90):
    failed = [r["name"] for r in sm90["results"] if not r["ok"]]
    assert (sm90["returncode"] == 0) == (not failed), sm90["stderr"][-2000:]
