#!/usr/bin/env bash
# Builds the package against another torch release and runs the CPU test suite with it, in a
# throwaway virtualenv and a copy of this checkout (nothing here is touched):
#
#   bash scripts/check_torch_version.sh 2.11.0 [pytest args...]
#
# The venv gets torch==VERSION from the package index (several GB of CUDA wheels where pip
# offers them, hence not part of CI), the triton it pulls, and the test dependencies; the
# extension is built with the CUDA kernels wherever nvcc is found (CUDA_HOME, else
# /usr/local/cuda). The venv and the copy are deleted at the end (KEEP=1 keeps them).
set -euo pipefail
if [ $# -lt 1 ]; then
  echo "usage: bash scripts/check_torch_version.sh TORCH_VERSION [pytest args...]" >&2
  exit 2
fi
VERSION="$1"; shift
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3}"
WORK="${GDDM_CHECK_DIR:-/tmp/gddm-torch-$VERSION}"
VENV="$WORK/venv"
TREE="$WORK/tree"
cleanup() { [ "${KEEP:-0}" = 1 ] || rm -rf "$WORK"; }
trap cleanup EXIT

rm -rf "$TREE" && mkdir -p "$TREE"
(cd "$ROOT" && git ls-files -co --exclude-standard | tar -cf - -T -) | tar -xf - -C "$TREE"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/pip" install -q "torch==$VERSION" numpy ninja pybind11 setuptools wheel
if [ -z "${CUDA_HOME:-}" ] && [ -x /usr/local/cuda/bin/nvcc ]; then export CUDA_HOME=/usr/local/cuda; fi
# As scripts/setup.sh does, with torch pinned so that no extra's needs move it.
MAX_JOBS="${MAX_JOBS:-2}" "$VENV/bin/pip" install -q --no-build-isolation -e "$TREE[test,bench,train,diffusers]" \
  "torch==$VERSION"
cd "$TREE"
"$VENV/bin/python" -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)"
"$VENV/bin/python" -m gddm_kernels.info
TRITON_INTERPRET=1 "$VENV/bin/python" -m pytest tests -q -p no:cacheprovider "$@"
