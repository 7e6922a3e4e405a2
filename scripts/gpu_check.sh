#!/usr/bin/env bash
# A short campaign on every GPU backend this machine offers, against the CPU reference.
# Usage: scripts/gpu_check.sh [SECONDS]   (prints tcfuzz backends, then the campaign summary)
set -euo pipefail
cd "$(dirname "$0")/.."
make setup >/dev/null
SECONDS_BUDGET="${1:-120}"
.venv/bin/tcfuzz backends
GPU_BACKENDS=$(.venv/bin/python - <<'PY'
from fuzzer.backends import builtin_backends
print(",".join(n for n, b in sorted(builtin_backends().items()) if b.device != "cpu" and b.missing() is None))
PY
)
if [ -z "$GPU_BACKENDS" ]; then
    echo "gpu_check: no GPU backend can run here (see the table above)"
    exit 0
fi
echo "gpu_check: fuzzing $GPU_BACKENDS for ${SECONDS_BUDGET}s"
.venv/bin/tcfuzz fuzz --backends "onnx-ref,ort-none,$GPU_BACKENDS" --time "$SECONDS_BUDGET" \
    --out "runs/gpu-check-$(date +%Y%m%d-%H%M%S)" || test $? -eq 1
.venv/bin/python bench/backends.py --seconds 20 --backends "$GPU_BACKENDS"
