#!/usr/bin/env bash
# One prepared GPU check of perceiver-byte for an H200 (bf16 autocast, SDPA flash backend, shapes that fill the chip):
# correctness against float32, then training and inference timings with throughput, MFU (of 790 TFLOP/s bf16) and peak
# memory, in a short table. Everything lands under $OUT (default ./gpu_out). Arguments go to scripts/gpu_benchmark.py.
#
#   bash scripts/gpu_benchmark.sh                        # on the H200 (about 1-3 minutes)
#   bash scripts/gpu_benchmark.sh --device cpu --tiny    # the same script, tiny, on a CPU (smoke test)
#
# If the machine's transformers is older than the package needs (>= 5.24), put wheels in .whl/ (repository root):
# they are installed into /tmp/site first and put on PYTHONPATH.
# Exit status: 0 when the bf16/flash results match float32 within tolerance (and, on 2+ GPUs, FSDP passes), 1 otherwise.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
export OUT="${OUT:-$PWD/gpu_out}"
mkdir -p "$OUT"
PY="${PYTHON:-$(command -v python3 || command -v python)}"
if compgen -G "$ROOT/.whl/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$ROOT"/.whl/*.whl
    export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
if ! "$PY" -c "import perceiver_byte" 2>/dev/null; then
    export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
fi
{
    echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(hostname) $*"
    "$PY" -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)" || true
    command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
} >"$OUT/gpu_env.txt" 2>&1
cd "$ROOT"
status=0
"$PY" "$HERE/gpu_benchmark.py" --out "$OUT" "$@" || status=$?
# FSDP through scripts/train.py and accelerate needs 2 accelerators (accelerate runs FSDP on GPUs only): with 2 or
# more GPUs, the test that launches it (it skips with fewer).
if [ "$("$PY" -c 'import torch; print(torch.cuda.device_count())' 2>/dev/null || echo 0)" -ge 2 ]; then
    "$PY" -m pytest -q -rs tests/test_fsdp.py >"$OUT/fsdp.txt" 2>&1 || status=1
fi
exit $status
