"""Each backend's reproduction fragment, run in a clean subprocess without tcfuzz, gives the
same outputs as the backend itself."""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap


import numpy as np
import pytest

from fuzzer.execution.backends import builtin_backends
from fuzzer.generation.generator import GeneratorOptions, generate_case
from fuzzer.graph.ir import DType
from tests.helpers import ROOT

CASE = generate_case(4, GeneratorOptions(nodes=4, dtypes=frozenset({DType.float32}),
                                         ops=frozenset({"Add", "Mul", "Relu", "MatMul", "Transpose", "Sigmoid"})))
FAST = ["onnx-ref", "ort-none", "ort-all", "torch", "aot-eager", "tvm"]

RUNNER = textwrap.dedent("""
    import pickle, sys
    root = sys.argv[1]
    sys.path = [p for p in sys.path if p.rstrip("/") != root]  # tcfuzz must not be importable
    artifact, inputs, source = pickle.load(sys.stdin.buffer)
    for package in ("fuzzer", "oracles", "corpus", "triage"):
        sys.modules[package] = None  # importing tcfuzz now fails
    namespace = {}
    exec(source, namespace)
    pickle.dump([__import__("numpy").asarray(o) for o in namespace["run_backend"](artifact, inputs)],
                sys.stdout.buffer)
""")


@pytest.mark.parametrize("name", FAST)
def test_fragment_reproduces_the_backend(name, tmp_path):
    backend = builtin_backends()[name]()
    backend.setup()
    outcome = backend.execute(CASE, lambda stage: None)
    assert outcome.ok, outcome.message
    payload = pickle.dumps((backend.repro_artifact(CASE), dict(CASE.inputs), backend.repro_source()))
    result = subprocess.run([sys.executable, "-c", RUNNER, str(ROOT)], input=payload, capture_output=True, cwd=tmp_path,
                            env={"PATH": "/usr/bin:/bin"}, timeout=300)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    for expected, actual in zip(outcome.outputs.values(), pickle.loads(result.stdout)):
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)
