"""The fuzz campaign of tests/fuzz/fuzz_public_api.py, in a subprocess (a crash fails this test
instead of killing the session), bounded so that it takes seconds."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parent / "fuzz" / "fuzz_public_api.py"


@pytest.mark.triton
@pytest.mark.parametrize("seed", [0, 1])
def test_fuzz_public_api(seed):
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    result = subprocess.run([sys.executable, str(SCRIPT), "120", str(seed)], capture_output=True, text=True,
                            env=env, cwd=SCRIPT.parents[2], timeout=900)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
