"""Every registered backend must agree with the ONNX reference evaluator on simple graphs.

A backend whose package (or GPU) is missing here is skipped, not failed.
"""

from __future__ import annotations

import fnmatch
import importlib.metadata

import pytest

from fuzzer.execution.backends import builtin_backends
from fuzzer.generation.generator import GeneratorOptions, generate_case
from fuzzer.graph.ir import DType
from fuzzer.execution.isolation import Limits, WorkerGroup
from fuzzer.execution.outcome import Status
from oracles.verdict import differential

COMMON_OPERATORS = frozenset({"Add", "Mul", "Sub", "Relu", "Sigmoid", "Tanh", "MatMul", "Conv", "Transpose",
                              "Reshape", "ReduceSum", "Concat", "MaxPool", "Softmax", "Where", "Less"})
CASES = [generate_case(seed, GeneratorOptions(nodes=4, ops=COMMON_OPERATORS, dtypes=frozenset({DType.float32})),
                       seed) for seed in range(6)]


@pytest.mark.parametrize("name", sorted(n for n, b in builtin_backends().items() if not b.is_reference))
def test_backend_agrees_with_the_reference(name, tmp_path):
    backend = builtin_backends()[name]
    if (reason := backend.missing()) is not None:
        pytest.skip(reason)
    with WorkerGroup([name, "onnx-ref"], Limits(timeout=300), tmp_path) as group:
        for case, outcomes in zip(CASES, group.execute_batch(CASES)):
            assert outcomes[0].status is Status.OK, f"{name}: {outcomes[0].message}\n{case.graph}"
            findings = differential(case.output_types(), outcomes, reference="onnx-ref")
            assert not findings, f"{name}: {findings[0].summary}\n{case.graph}"


@pytest.mark.parametrize("name", sorted(n for n, b in builtin_backends().items() if b.coverage_include))
def test_declared_coverage_scope_names_installed_compiler_code(name):
    """Each ``coverage_include`` pattern matches Python files of the packages the backend requires."""
    backend = builtin_backends()[name]
    if (reason := backend.missing()) is not None:
        pytest.skip(reason)
    installed = [str(distribution.locate_file(path)) for distribution in map(importlib.metadata.distribution,
                                                                             backend.requires)
                 for path in distribution.files or () if path.suffix == ".py"]
    for pattern in backend.coverage_include:
        assert any(fnmatch.fnmatch(path, pattern) for path in installed), f"{name}: {pattern} matches no file"
