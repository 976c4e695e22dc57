#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh) and runs the main job: a small demo (an LDDM model
# trained on the embedded digits, then a grid of samples in runs/demo/samples.png, a few
# minutes on a 2-core CPU) and the benchmark suite (tables in benchmarks/results/).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup.sh"
set -euo pipefail
cd "$ROOT"
python -m gddm_kernels train --mode laplacian --dataset digits --size 16 --steps 1500 --out runs/demo
python -m gddm_kernels sample --checkpoint runs/demo/checkpoint.pt --out runs/demo/samples.png
python -m benchmarks.run "$@"
