#!/usr/bin/env bash
# Downloads, here (with network), the wheels of the benchmark peers and test helpers that the
# offline GPU machine lacks, for its Python 3.12 on manylinux x86_64, into .gpu-wheels/
# (ignored by git; scripts/gpu_check.sh installs them with pip --no-index --target).
#
#   bash scripts/fetch_gpu_wheels.sh [DIR]
#
# One pinned version of each (two versions of one package stop the whole install there), with
# --no-deps: their needs are listed here explicitly, less what that machine has (torch, numpy,
# scipy, pillow, requests, regex, filelock, safetensors, huggingface-hub, zipp, packaging).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${1:-$ROOT/.gpu-wheels}"
PY="${PYTHON:-python3}"
WHEELS=(
  kornia==0.9.0 kornia-rs==0.2.0              # stencils: kornia rows
  diffusers==0.42.1 importlib-metadata==10.2.0 lazy-importer==0.1.0   # diffusion: diffusers rows
  torch-dct==0.1.6                            # poisson: torch-dct rows
  pyamg==5.4.1                                # multigrid: pyamg rows
  expecttest==0.3.0                           # tests: torch.library.opcheck
)
PLATFORMS=(manylinux2014_x86_64 manylinux_2_17_x86_64 manylinux_2_24_x86_64 manylinux_2_27_x86_64
           manylinux_2_28_x86_64 manylinux_2_31_x86_64 manylinux_2_34_x86_64)

mkdir -p "$DIR"
platform_args=()
for p in "${PLATFORMS[@]}"; do platform_args+=(--platform "$p"); done
specs=()
for w in "${WHEELS[@]}"; do [[ "$w" == *"=="* ]] && specs+=("$w"); done
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  "${platform_args[@]}" -d "$DIR" "${specs[@]}"
# Keep only the pinned versions (an earlier run's other versions would break the install).
for f in "$DIR"/*.whl; do
  name="$(basename "$f" | cut -d- -f1-2 | tr '_' '-' | tr '[:upper:]' '[:lower:]')"
  keep=0
  for w in "${specs[@]}"; do
    [ "$(echo "${w/==/-}" | tr '_' '-' | tr '[:upper:]' '[:lower:]')" = "$name" ] && keep=1
  done
  [ "$keep" = 1 ] || { echo "removing $(basename "$f") (not pinned here)"; rm -f "$f"; }
done
ls -1 "$DIR"
du -sh "$DIR"
