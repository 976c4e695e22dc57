#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh) and runs the test suite. Triton kernels run on CPU
# tensors under TRITON_INTERPRET=1; GPU tests run where a GPU is visible and are skipped otherwise.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup.sh"
set -euo pipefail
cd "$ROOT"
TRITON_INTERPRET=1 python -m pytest tests "$@"
