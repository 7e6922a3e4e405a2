#!/usr/bin/env bash
# GPU readiness: checks from source that every operator's torch lowering runs on CUDA
# (tests/backends/test_lowering_devices.py), installs the gpu extra, then runs a short campaign (some
# control flow and dynamic shapes included) on each GPU backend this machine offers (ort-cuda-*,
# tvm-cuda, inductor-cuda) against the CPU references, and prints one line per backend: its
# tests/s and findings. A backend that fails to start is reported in one line; the others still run.
# Usage: scripts/gpu_check.sh [SECONDS_PER_BACKEND]   (default 60: about 6 minutes on an H200)
set -uo pipefail
cd "$(dirname "$0")/.."
BUDGET="${1:-60}"
PYTHON=.venv/bin/python

# First, from the source tree with the system python3 and nothing installed: every operator's
# torch lowering runs on torch's meta device and on CUDA (values against the CPU's). Without
# pytest, a tiny driver calls the check; --noconftest: tests/conftest.py needs hypothesis.
CHECK_PYTHON=$([ -x "$PYTHON" ] && echo "$PYTHON" || echo python3)  # the venv where one is set up
if $CHECK_PYTHON -c "import pytest" 2>/dev/null; then
    PYTHONPATH=. $CHECK_PYTHON -m pytest -q -p no:cacheprovider --noconftest tests/backends/test_lowering_devices.py
else
    PYTHONPATH=.:tests/backends $CHECK_PYTHON -c 'import sys, test_lowering_devices as check
sys.exit("\n".join(f for device in check.devices() for f in check.check_lowering_on(device)) or None)'
fi
STATUS=$?
LOWERINGS="torch lowerings on meta and cuda: $([ "$STATUS" -eq 0 ] && echo passed || echo "FAILED (exit $STATUS)")"
echo "gpu_check: $LOWERINGS"

# With a package registry: the project's venv and the gpu extra. Without one (a lent GPU
# machine reaches none): tcfuzz from source with the system python3 and what it has.
if make setup >/dev/null 2>&1; then
    INSTALLED=1
else
    echo "gpu_check: make setup failed (no package registry?); running from source with $(command -v python3)"
    PYTHON=python3
    INSTALLED=0
    export PYTHONPATH=.
fi
TCFUZZ="$PYTHON -m fuzzer.cli"

if [ "$INSTALLED" = 1 ] && { [ -e /dev/nvidiactl ] || command -v nvidia-smi >/dev/null; }; then
    # onnxruntime-gpu and onnxruntime share one package directory: drop the CPU wheel, then
    # reinstall the GPU one over what the uninstall removed.
    if $PYTHON -m pip install --quiet -e '.[gpu]'; then
        if $PYTHON -m pip show --quiet onnxruntime 2>/dev/null; then
            $PYTHON -m pip uninstall --quiet -y onnxruntime
            $PYTHON -m pip install --quiet --force-reinstall --no-deps \
                "onnxruntime-gpu==$($PYTHON -c 'import importlib.metadata as m; print(m.version("onnxruntime-gpu"))')" \
                || echo "gpu_check: reinstalling onnxruntime-gpu failed"
        fi
    else
        echo "gpu_check: could not install the gpu extra (pip install -e '.[gpu]'); going on with what is installed"
    fi
fi

# Each available GPU backend, or why each one is missing (one line each).
AVAILABLE=$($PYTHON - <<'PY'
import sys
from fuzzer.execution.backends import builtin_backends
for name, backend in sorted(builtin_backends().items()):
    if backend.device != "cpu":
        reason = backend.missing()
        print(name) if reason is None else print(f"gpu_check: {name} unavailable: {reason}", file=sys.stderr)
PY
)
if [ -z "$AVAILABLE" ]; then
    echo "gpu_check: no GPU backend is available here"
    exit 0
fi

RUNS="runs/gpu-check-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$RUNS"
SUMMARY=("$LOWERINGS")
for BACKEND in $AVAILABLE; do
    echo "gpu_check: $BACKEND for ${BUDGET}s"
    # The budget plus worker start-up and one slow batch past the budget.
    timeout --kill-after=30 $((BUDGET + 120)) $TCFUZZ fuzz --backends "ref-f64,onnx-ref,$BACKEND" \
        --time "$BUDGET" --control-flow 0.1 --dynamic 0.2 --out "$RUNS/$BACKEND" >"$RUNS/$BACKEND.log" 2>&1
    STATUS=$?
    if [ "$STATUS" -gt 1 ]; then
        SUMMARY+=("$BACKEND: failed (exit $STATUS): $(grep -v '^[[:space:]]*$' "$RUNS/$BACKEND.log" | tail -n 1)")
        continue
    fi
    SUMMARY+=("$($PYTHON - "$RUNS/$BACKEND" "$BACKEND" <<'PY'
import sys
from collections import Counter
from pathlib import Path

from fuzzer.store import RunStore

run, backend = Path(sys.argv[1]), sys.argv[2]
with RunStore.open(run, read_only=True) as store:
    counts = store.get_meta("outcomes", {}).get(backend, {})
    with store.transaction() as connection:
        (seconds,) = connection.execute("SELECT seconds FROM progress").fetchone()
        rows = connection.execute("SELECT kind, signature FROM findings WHERE backends LIKE ?",
                                  (f'%"{backend}"%',)).fetchall()
tests = sum(counts.values())
kinds = Counter(kind for kind, _ in rows)
print(f"{backend}: {tests} tests in {seconds:.0f} s ({tests / max(seconds, 1e-9):.2f} tests/s, "
      f"{counts.get('ok', 0) / max(tests, 1):.0%} ok), {len({signature for _, signature in rows})} unique findings "
      f"({', '.join(f'{kind} {count}' for kind, count in sorted(kinds.items())) or 'none'})")
PY
)")
done
echo "gpu_check: summary (runs in $RUNS)"
printf '  %s\n' "${SUMMARY[@]}"
