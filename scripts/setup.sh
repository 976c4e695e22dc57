#!/usr/bin/env bash
# Sets up a fresh machine: a virtualenv in .venv, torch (the CUDA build where pip offers it),
# the package's dependencies and the compiled kernels. Safe to run again (it only rebuilds).
# Source it: `source scripts/setup.sh`; afterwards `python` is the venv's.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${GDDM_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
# shellcheck disable=SC1091
source "$VENV/bin/activate"
pip install -q --upgrade pip
pip install -q "torch>=2.6" numpy ninja pybind11 setuptools wheel
if [ -z "${CUDA_HOME:-}" ] && [ -x /usr/local/cuda/bin/nvcc ]; then
  export CUDA_HOME=/usr/local/cuda
fi
export MAX_JOBS="${MAX_JOBS:-2}"
pip install -q --no-build-isolation -e "$ROOT[test,bench]"
python -m gddm_kernels.info
set +euo pipefail
