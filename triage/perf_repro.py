"""Standalone scripts for slowdowns: time a compiler's optimized configuration against its baseline.

The script embeds the test case and each side's fragment (``Backend.repro_source``, which
must define ``compile_backend(model)`` returning a function of the inputs), pins itself to
one CPU with one thread, compiles both sides, warms them up, runs them alternately and
compares medians as the performance oracle does (:mod:`oracles.performance`). It prints
REPRODUCED and exits 1 while the slowdown holds, and exits 0 when it does not.
"""

from __future__ import annotations

import inspect
from typing import Any

from fuzzer.execution.backends import load_backend
from fuzzer.graph.case import TestCase
from fuzzer.store import arrays_to_npz, npz_to_arrays
from oracles.performance import PerfPolicy
from triage.repro import VERSION_PACKAGES, ReproUnsupported, _b64, artifact_for, fragment, print_versions

REPEATS = 15  # timed runs of each side in the script


def timing_fragment(backend: str) -> str:
    """``backend``'s fragment, which must be able to compile once and run many times."""
    source = fragment(backend)
    if "def compile_backend(" not in source:
        raise ReproUnsupported(f"backend {load_backend(backend).name}'s reproduction fragment cannot time warm runs "
                               "(it defines no compile_backend)")
    return source


def write_perf_repro(case: TestCase, optimized: str, baseline: str, finding: Any, policy: PerfPolicy) -> str:
    """The source of a script that exits 1 while ``optimized`` (a spec) is slower than
    ``baseline`` on ``case`` by ``policy``'s factor and floor."""
    substitutions = {
        "summary": finding.summary.replace('"""', "'''").replace("\\", "/"), "signature": finding.signature,
        "optimized": load_backend(optimized).name, "baseline": load_backend(baseline).name,
        "optimized_artifact": _b64(artifact_for(optimized, case)),
        "baseline_artifact": _b64(artifact_for(baseline, case)),
        "inputs": _b64(arrays_to_npz(dict(case.inputs))), "factor": repr(policy.factor),
        "floor_ms": repr(policy.floor * 1e3), "repeats": repr(REPEATS), "packages": repr(VERSION_PACKAGES),
        "optimized_source": repr(timing_fragment(optimized)), "baseline_source": repr(timing_fragment(baseline)),
        "helpers": inspect.getsource(npz_to_arrays) + "\n\n" + inspect.getsource(print_versions),
    }
    return _TEMPLATE.format(**substitutions)


_TEMPLATE = '''"""Reproduction of a tcfuzz slowdown on {optimized}: {summary}

Signature: {signature}
Run: python repro.py   (exit status 1: {optimized} is still at least {factor}x and {floor_ms} ms slower than
{baseline}, medians of warm runs on one CPU; 0: it is not)
"""
import os

for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TVM_NUM_THREADS"):
    os.environ[variable] = "1"  # one thread each, before any compiler is imported

import base64
import io
import json
import statistics
import sys
import time

import numpy as np

OPTIMIZED, BASELINE = "{optimized}", "{baseline}"
ARTIFACTS = {{OPTIMIZED: base64.b64decode("""
{optimized_artifact}
"""), BASELINE: base64.b64decode("""
{baseline_artifact}
""")}}
INPUTS = base64.b64decode("""
{inputs}
""")
SOURCES = {{OPTIMIZED: {optimized_source}, BASELINE: {baseline_source}}}
FACTOR, FLOOR_MS, REPEATS = {factor}, {floor_ms}, {repeats}
PACKAGES = {packages}
_DTYPES_MEMBER = "dtypes.json"

try:
    import ml_dtypes  # noqa: F401  names bfloat16 for numpy
except ImportError:
    pass


{helpers}

def compiled(name):
    namespace = {{}}
    exec(SOURCES[name], namespace)
    return namespace["compile_backend"](ARTIFACTS[name])


def main():
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {{max(os.sched_getaffinity(0))}})
    print_versions(PACKAGES)
    inputs = npz_to_arrays(INPUTS)
    runs = {{name: compiled(name) for name in (OPTIMIZED, BASELINE)}}
    seconds = {{name: [] for name in runs}}
    for name, run in runs.items():
        run(inputs)  # warm up
    for _ in range(REPEATS):
        for name, run in runs.items():
            started = time.perf_counter()
            run(inputs)
            seconds[name].append(time.perf_counter() - started)
    slow, fast = (statistics.median(seconds[name]) * 1e3 for name in (OPTIMIZED, BASELINE))
    print(f"{{OPTIMIZED}}: {{slow:.4f}} ms, {{BASELINE}}: {{fast:.4f}} ms (medians of {{REPEATS}} warm runs): "
          f"{{slow / fast:.2f}}x")
    if slow >= FACTOR * fast and slow - fast >= FLOOR_MS:
        print("REPRODUCED")
        return 1
    print(f"not reproduced: under {{FACTOR}}x or {{FLOOR_MS}} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
'''
