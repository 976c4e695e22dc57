#!/usr/bin/env bash
# The whole GPU story in one call, on a GPU machine as it comes (system python3 with torch,
# Triton, pytest; nvcc and compute-sanitizer; no network, no virtualenv):
#
#   bash scripts/gpu_check.sh OUT_DIR [--dry]
#
# Phases, each under its own time budget in seconds (GDDM_BUDGET_<PHASE> overrides: BUILD 120,
# TESTS 80, SANITIZE_<TOOL> 22 each, BENCH 150, SWEEP 30; 8 min at most in all):
#   peers     optional benchmark peers from a carried wheel folder (scripts/fetch_gpu_wheels.sh),
#             pip install --no-index --target, put on PYTHONPATH; a missing peer only drops its rows
#   build     the extension in place for the visible GPU's architecture, with every core
#   tests     pytest -m "cuda or triton" on the GPU (TRITON_INTERPRET unset)
#   sanitize  compute-sanitizer memcheck / racecheck / initcheck / synccheck on
#             scripts/gpu/launch_all_kernels.py (every CUDA kernel of gddm_kernels._C once)
#   bench     the benchmark suite at the GPU targets' sizes (scripts/gpu/bench_gpu.py; GDDM_BENCH_FULL=1
#             for every GPU size of benchmarks/, which takes longer than this budget)
#   sweep     Triton block sizes of the memory-bound kernels (scripts/gpu/triton_sweep.py)
# then prints the one-screen summary (scripts/gpu/summary.py). OUT_DIR receives at most 8
# files: gpu_check.log, summary.{md,json}, <gpu>-<date>.{json,md,png}, sweep.json.
#
# Without a visible GPU it stops at once with exit status 3. --dry (or GDDM_GPU_CHECK_DRY=1)
# runs what needs no GPU instead: the build without the GPU, the driver on the CPU kernels,
# every script's argument handling and the summary of empty results.
# GDDM_GPU_CHECK_SKIP="tests sanitize ..." skips phases (a second run after a fix, say).
# PYTHON (default python3) and GDDM_WHEELS (default .gpu-wheels) can be set.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DRY="${GDDM_GPU_CHECK_DRY:-0}"
OUT=""
for arg in "$@"; do
  case "$arg" in
    --dry) DRY=1 ;;
    -h|--help) sed -n '2,24p' "${BASH_SOURCE[0]}"; exit 0 ;;
    -*) echo "gpu_check: unknown option $arg (usage: gpu_check.sh OUT_DIR [--dry])" >&2; exit 2 ;;
    *) if [ -n "$OUT" ]; then echo "gpu_check: one OUT_DIR only" >&2; exit 2; fi; OUT="$arg" ;;
  esac
done
if [ -z "$OUT" ]; then
  echo "usage: bash scripts/gpu_check.sh OUT_DIR [--dry]" >&2
  exit 2
fi
mkdir -p "$OUT" && OUT="$(cd "$OUT" && pwd)"
PY="${PYTHON:-python3}"
WHEELS="${GDDM_WHEELS:-$ROOT/.gpu-wheels}"
SKIP=" ${GDDM_GPU_CHECK_SKIP:-} "
WORK="$(mktemp -d /tmp/gddm-gpu-check.XXXXXX)"
PHASES="$WORK/phases.tsv"
LOG="$OUT/gpu_check.log"
: > "$PHASES"
: > "$LOG"
cd "$ROOT"
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
unset TRITON_INTERPRET
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"

budget() {  # budget PHASE DEFAULT_SECONDS
  local var="GDDM_BUDGET_$(echo "$1" | tr '[:lower:]' '[:upper:]')"
  echo "${!var:-$2}"
}

log() { echo "gpu_check: $*" | tee -a "$LOG"; }

record() {  # record PHASE STATUS SECONDS DETAIL
  printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >> "$PHASES"
  log "phase $1: $2 (${3} s) $4"
}

# run_phase PHASE BUDGET CMD...: runs CMD under `timeout`, output to the log; sets STATUS.
run_phase() {
  local phase="$1" limit="$2"; shift 2
  local t0=$SECONDS rc
  log "phase $phase: start (budget $limit s): $*"
  timeout --kill-after=10 "$limit" "$@" > "$WORK/phase.out" 2>&1
  rc=$?
  cat "$WORK/phase.out" >> "$LOG"
  PHASE_SECONDS=$((SECONDS - t0))
  case $rc in
    0) STATUS=ok ;;
    124|137) STATUS=timeout ;;
    *) STATUS="failed (exit $rc)" ;;
  esac
}

skipped() { [[ "$SKIP" == *" $1 "* ]]; }

# --- preflight: a GPU must be visible (the dry mode checks only the tools) ---
if [ "$DRY" != "1" ]; then
  gpu_line="$(nvidia-smi -L 2>/dev/null | head -1)"
  if [ -z "$gpu_line" ] || ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>>"$LOG"; then
    echo "gpu_check: no GPU visible (nvidia-smi -L: '${gpu_line:-nothing}'; torch.cuda.is_available() is False" \
         "or torch missing for $PY). This script needs a CUDA GPU; use --dry to check it without one." | tee -a "$LOG" >&2
    rm -rf "$WORK"
    exit 3
  fi
  log "GPU: $gpu_line"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv >> "$LOG" 2>&1
fi
"$PY" -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda)" \
  2>&1 | tee -a "$LOG"

# --- peers ---
t0=$SECONDS
if compgen -G "$WHEELS/*.whl" > /dev/null; then
  if "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$WORK/site" \
      "$WHEELS"/*.whl >> "$LOG" 2>&1; then
    export PYTHONPATH="$PYTHONPATH:$WORK/site"
    status=ok
  else
    status="failed (pip install --no-index: wheels for another Python or platform?)"
  fi
  record peers "$status" $((SECONDS - t0)) "$(ls "$WHEELS"/*.whl | wc -l) wheels from $WHEELS"
else
  record peers skipped 0 "no wheel folder at $WHEELS (scripts/fetch_gpu_wheels.sh makes it)"
fi
peer_report="$("$PY" - <<'EOF' 2>/dev/null
import importlib
def state(name):
    try:
        importlib.import_module(name)
        return "yes"
    except Exception as exc:  # missing, or its own needs missing or too old
        return f"MISSING ({type(exc).__name__})"
print(", ".join(f"{p} {state(p)}" for p in ("kornia", "diffusers", "torch_dct", "pyamg", "cupy")))
EOF
)"
log "peers: $peer_report"

# --- build ---
if skipped build; then
  record build skipped 0 "GDDM_GPU_CHECK_SKIP"
elif [ "$DRY" = "1" ]; then
  # Without a GPU: the same build command, into a scratch folder (the objects in build/ are
  # reused, the importable extension in gddm_kernels/ is left alone).
  run_phase build "$(budget build 600)" "$PY" setup.py build_ext --build-lib "$WORK/build-lib"
  record build "$STATUS" "$PHASE_SECONDS" "dry: built into a scratch folder"
else
  arch="$("$PY" -c "import torch; print('%d.%d' % torch.cuda.get_device_capability())")"
  export TORCH_CUDA_ARCH_LIST="$arch" MAX_JOBS="$(nproc)"
  export CUDA_HOME="${CUDA_HOME:-$(dirname "$(dirname "$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)")")}"
  run_phase build "$(budget build 120)" "$PY" setup.py build_ext --inplace
  record build "$STATUS" "$PHASE_SECONDS" "TORCH_CUDA_ARCH_LIST=$arch MAX_JOBS=$MAX_JOBS"
  if [ "$STATUS" != ok ]; then
    log "the build failed: the later phases would test a stale or missing extension; stopping"
    "$PY" scripts/gpu/summary.py "$OUT" "$PHASES"
    rm -rf "$WORK"
    exit 1
  fi
fi

# --- tests ---
if skipped tests; then
  record tests skipped 0 "GDDM_GPU_CHECK_SKIP"
elif [ "$DRY" = "1" ]; then
  run_phase tests "$(budget tests 300)" "$PY" -m pytest -m "cuda or triton" --collect-only -q -p no:cacheprovider tests
  record tests "$STATUS" "$PHASE_SECONDS" "dry: collected only ($(grep -Eo '[0-9]+/[0-9]+ tests collected' "$LOG" | tail -1))"
else
  run_phase tests "$(budget tests 80)" "$PY" -m pytest -m "cuda or triton" -q -p no:cacheprovider \
    --junitxml="$WORK/junit.xml" tests
  record tests "$STATUS" "$PHASE_SECONDS" "$(grep -E '^(=+ )?[0-9]+ (passed|failed)' "$LOG" | tail -1)"
fi

# --- sanitizers ---
DRIVER=scripts/gpu/launch_all_kernels.py
if skipped sanitize; then
  record sanitize skipped 0 "GDDM_GPU_CHECK_SKIP"
elif [ "$DRY" = "1" ]; then
  run_phase sanitize "$(budget sanitize 300)" "$PY" "$DRIVER" --device cpu
  record sanitize "$STATUS" "$PHASE_SECONDS" "dry: the driver on the CPU kernels; compute-sanitizer $(command -v compute-sanitizer > /dev/null && echo found || echo 'not found here')"
  "$PY" "$DRIVER" --list >> "$LOG" 2>&1
else
  SANITIZER="$(command -v compute-sanitizer || echo "${CUDA_HOME:-/usr/local/cuda}/bin/compute-sanitizer")"
  # The caching allocator would hide overruns inside its blocks from memcheck.
  export PYTORCH_NO_CUDA_MEMORY_CACHING=1
  for tool in memcheck racecheck initcheck synccheck; do
    # initcheck sees the whole process: a filter would leave torch's writes untracked.
    filter=(--kernel-name kns=gddm)
    [ "$tool" = initcheck ] && filter=()
    run_phase "sanitize-$tool" "$(budget "sanitize_$tool" 22)" "$SANITIZER" --tool "$tool" --error-exitcode 1 \
      --print-limit 20 "${filter[@]}" "$PY" "$DRIVER"
    ours=$(grep -E '^=+ +at ' "$WORK/phase.out" | grep -c gddm)
    theirs=$(grep -E '^=+ +at ' "$WORK/phase.out" | grep -vc gddm)
    if [ "$tool" = initcheck ] && [ "$STATUS" = "failed (exit 1)" ] && [ "$ours" = 0 ] && [ "$theirs" -gt 0 ]; then
      STATUS=ok  # reports only in other libraries' kernels (cuFFT, torch), listed in the log
    fi
    record "sanitize-$tool" "$STATUS" "$PHASE_SECONDS" \
      "$(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$WORK/phase.out" | tail -1); reports in gddm kernels: $ours, in others: $theirs"
  done
  unset PYTORCH_NO_CUDA_MEMORY_CACHING
fi

# --- benchmarks ---
bench_budget="$(budget bench 150)"
if skipped bench; then
  record bench skipped 0 "GDDM_GPU_CHECK_SKIP"
elif [ "$DRY" = "1" ]; then
  run_phase bench 120 "$PY" scripts/gpu/bench_gpu.py --out "$OUT" --dry
  record bench "$STATUS" "$PHASE_SECONDS" "dry: plan and empty results"
else
  # bench_gpu starts no suite after 85% of the budget; `timeout` is the backstop.
  full=()
  [ "${GDDM_BENCH_FULL:-0}" = 1 ] && full=(--full)
  run_phase bench "$bench_budget" "$PY" scripts/gpu/bench_gpu.py --out "$OUT" --budget-s $((bench_budget * 85 / 100)) \
    "${full[@]}"
  record bench "$STATUS" "$PHASE_SECONDS" "$(grep -c 'done in' "$LOG") suites done"
fi

# --- Triton block-size sweep ---
sweep_budget="$(budget sweep 30)"
if skipped sweep; then
  record sweep skipped 0 "GDDM_GPU_CHECK_SKIP"
elif [ "$DRY" = "1" ]; then
  run_phase sweep 120 "$PY" scripts/gpu/triton_sweep.py --out "$OUT/sweep.json" --dry
  record sweep "$STATUS" "$PHASE_SECONDS" "dry: plan only"
else
  run_phase sweep "$sweep_budget" "$PY" scripts/gpu/triton_sweep.py --out "$OUT/sweep.json" \
    --budget-s $((sweep_budget * 75 / 100))
  record sweep "$STATUS" "$PHASE_SECONDS" ""
fi

# --- summary ---
junit=()
[ -f "$WORK/junit.xml" ] && junit=("$WORK/junit.xml")
"$PY" scripts/gpu/summary.py "$OUT" "$PHASES" "${junit[@]}" | tee -a "$LOG"
failed=$(cut -f2 "$PHASES" | grep -cv '^ok$\|^skipped$')
rm -rf "$WORK"
if [ "$failed" -gt 0 ]; then
  echo "gpu_check: $failed phase(s) failed or ran out of time (details in $LOG)" >&2
  exit 1
fi
echo "gpu_check: every phase passed; results in $OUT"
