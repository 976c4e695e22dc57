#!/usr/bin/env bash
# The C++ CPU kernels (gddm_kernels._C) and the CUDA kernels run on the CPU through the emulation
# module (tests/cuda_emulation.py) under AddressSanitizer and UndefinedBehaviorSanitizer: both
# are built with -fsanitize=address,undefined into build/sanitize (the in-place build is left
# alone), the sanitizer runtime is preloaded into Python, and the emulation tests, the internal-op
# and non-finite tests and the CPU-backend kernel tests run against them. Any finding fails.
#
#   bash scripts/sanitize.sh [extra pytest args]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -z "${PYTHON:-}" ]; then  # the virtualenv of scripts/setup.sh, else the python on PATH
  if [ -x "$ROOT/.venv/bin/python" ]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON="$(command -v python)"; fi
fi
OUT="$ROOT/build/sanitize"
SANITIZE="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -O1"

# libstdc++ with it: Python does not link it, and ASan must see it at start-up to intercept throws.
export LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libstdc++.so)"
export ASAN_OPTIONS="detect_leaks=0"  # Python and torch keep memory alive on purpose
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"

# The sanitized CPU kernels, as gddm_kernels._C of a copy of the Python package.
mkdir -p "$OUT/cpu" "$OUT/site"
ROOT="$ROOT" OUT="$OUT" SANITIZE="$SANITIZE" "$PYTHON" - <<'PY'
import os, shlex, shutil
from pathlib import Path
from torch.utils import cpp_extension
root, out = Path(os.environ["ROOT"]), Path(os.environ["OUT"])
flags = ["-fopenmp", "-fno-math-errno", "-fno-trapping-math", "-ffp-contract=off"]  # setup.py's, minus -O3
sanitize = shlex.split(os.environ["SANITIZE"])
sources = sorted(str(p) for p in (root / "csrc").glob("*.cpp")) + sorted(str(p) for p in (root / "csrc" / "cpu").glob("*.cpp"))
cpp_extension.load(name="_C", sources=sources, extra_cflags=flags + sanitize,
                   extra_ldflags=["-fopenmp", "-fsanitize=address,undefined"], build_directory=str(out / "cpu"))
package = out / "site" / "gddm_kernels"
shutil.rmtree(package, ignore_errors=True)
shutil.copytree(root / "gddm_kernels", package, ignore=shutil.ignore_patterns("*.so", "__pycache__"))
shutil.copy(out / "cpu" / "_C.so", package / "_C.so")
PY

# The sanitized emulation module (built by the first test that loads it).
export GDDM_EMULATION_BUILD_DIR="$OUT/emulation" GDDM_EMULATION_CFLAGS="$SANITIZE"

# From the copy's directory, so that `import gddm_kernels` is the sanitized one.
cd "$OUT/site"
"$PYTHON" -c "import gddm_kernels._C as c; assert c.__file__.startswith('$OUT'), c.__file__"
# --capture=sys: a sanitizer report (written to the process's stderr) stays visible.
TRITON_INTERPRET=1 "$PYTHON" -m pytest -q -p no:cacheprovider --capture=sys \
  "$ROOT/tests/test_cuda_emulated.py" "$ROOT/tests/test_internal_ops.py" "$ROOT/tests/test_nonfinite_kernels.py" \
  "$ROOT/tests/test_stencils.py" "$ROOT/tests/test_poisson.py" "$ROOT/tests/test_multigrid.py" \
  "$ROOT/tests/test_diffusion_ops.py" -k "not triton" "$@"
