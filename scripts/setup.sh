#!/usr/bin/env bash
# Sets up a fresh machine: a virtualenv in .venv, torch (the CUDA build where pip offers it),
# the package's dependencies and the compiled kernels. Source it: `source scripts/setup.sh`;
# afterwards `python` is the venv's.
#
# Incremental: a second run with nothing changed takes seconds. Two stamps in the venv decide:
#   deps   hash of pyproject.toml, this script and the Python version: the pip installs run
#          (and `pip install -e`) only when it changed;
#   build  hash of csrc/, setup.py, torch's version and the build switches (GDDM_SKIP_CUDA,
#          TORCH_CUDA_ARCH_LIST, CUDA_HOME, nvcc's version): `setup.py build_ext --inplace`
#          runs only when it changed, and then ninja recompiles only what changed, its objects
#          being kept in build/ (setup.py).
# GDDM_SETUP_FORCE=1 runs everything again.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${GDDM_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
EXTRAS="test,bench,train,diffusers"
BASE_PACKAGES=("torch>=2.6" numpy ninja pybind11 setuptools wheel)
DEPS_STAMP="$VENV/.gddm-deps.sha256"
BUILD_STAMP="$VENV/.gddm-build.sha256"

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
# shellcheck disable=SC1091
source "$VENV/bin/activate"
if [ -z "${CUDA_HOME:-}" ] && [ -x /usr/local/cuda/bin/nvcc ]; then
  export CUDA_HOME=/usr/local/cuda
fi
export MAX_JOBS="${MAX_JOBS:-2}"

_gddm_stamp_ok() {  # _gddm_stamp_ok FILE HASH: the stamp holds HASH and no forced run
  [ "${GDDM_SETUP_FORCE:-0}" != "1" ] && [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]
}

_gddm_deps_hash() {
  { cat "$ROOT/pyproject.toml" "$ROOT/scripts/setup.sh"; python -VV; } | sha256sum | cut -d' ' -f1
}

_gddm_build_hash() {
  {
    (cd "$ROOT" && find csrc setup.py -type f | LC_ALL=C sort | xargs sha256sum)
    python -c "import importlib.metadata as m; print('torch', m.version('torch'))"
    echo "GDDM_SKIP_CUDA=${GDDM_SKIP_CUDA:-} TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-} CUDA_HOME=${CUDA_HOME:-}"
    if [ -n "${CUDA_HOME:-}" ] && [ -x "$CUDA_HOME/bin/nvcc" ]; then "$CUDA_HOME/bin/nvcc" --version | tail -1; fi
  } | sha256sum | cut -d' ' -f1
}

_gddm_extension_built() {
  compgen -G "$ROOT/gddm_kernels/_C*.so" > /dev/null
}

deps_hash="$(_gddm_deps_hash)"
if _gddm_stamp_ok "$DEPS_STAMP" "$deps_hash"; then
  echo "setup: dependencies up to date (pyproject.toml and scripts/setup.sh unchanged)"
else
  rm -f "$DEPS_STAMP" "$BUILD_STAMP"
  pip install -q --upgrade pip
  pip install -q "${BASE_PACKAGES[@]}"
  # Installs the extras' dependencies and the package (editable), building the extension.
  pip install -q --no-build-isolation -e "$ROOT[$EXTRAS]"
  echo "$deps_hash" > "$DEPS_STAMP"
  _gddm_build_hash > "$BUILD_STAMP"
fi

build_hash="$(_gddm_build_hash)"
if _gddm_stamp_ok "$BUILD_STAMP" "$build_hash" && _gddm_extension_built; then
  echo "setup: compiled kernels up to date (csrc/, setup.py, torch and build switches unchanged)"
else
  rm -f "$BUILD_STAMP"
  (cd "$ROOT" && python setup.py -q build_ext --inplace)
  echo "$build_hash" > "$BUILD_STAMP"
fi
python -m gddm_kernels.info
set +euo pipefail
