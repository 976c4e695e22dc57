#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh) and runs the main job: the benchmark suite, which
# prints its tables and writes benchmarks/results/<device>-<date>.{json,md}.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup.sh"
set -euo pipefail
cd "$ROOT"
python -m benchmarks.run "$@"
