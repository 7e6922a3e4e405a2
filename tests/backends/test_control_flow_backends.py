"""Control flow (If, Loop, Scan) and dynamic graphs on every available backend: each one
runs them or declines them as a documented limitation (UNSUPPORTED), never fails with an
error or a crash; what runs agrees with the reference evaluator.

All backends share one worker group; each backend is then its own test.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx
import pytest

from fuzzer.execution.backends import builtin_backends
from fuzzer.generation.generator import make_case
from fuzzer.graph.ir import DType, Graph, Input, Node, TensorType, Weight, resized
from fuzzer.execution.isolation import Limits, WorkerGroup
from fuzzer.graph.case import TestCase
from fuzzer.execution.outcome import Status
from oracles.verdict import differential

F32 = DType.float32
ROW, TABLE = TensorType(F32, (3,)), TensorType(F32, (2, 3))


def body(inputs: tuple[TensorType, ...], nodes: tuple[tuple[str, tuple[str, ...], TensorType], ...],
         returns: tuple[str, ...]) -> Graph:
    """A body reading ``b0``, ``b1``, ... whose nodes (operator, inputs, type) give one output
    each, ``n0``, ``n1``, ...; it returns ``returns``."""
    return Graph(tuple(Input(f"b{i}", t) for i, t in enumerate(inputs)), (),
                 tuple(Node(op, operands, (f"n{i}",), (t,)) for i, (op, operands, t) in enumerate(nodes)), returns)


def if_cases() -> list[TestCase]:
    """``y = If(c, Relu(x), Neg(x))``, once down each branch."""
    graph = Graph((Input("c", TensorType(DType.bool, ())), Input("x", TABLE)), (),
                  (Node("If", ("c", "x"), ("y",), (TABLE,),
                        (("then_branch", body((TABLE,), (("Relu", ("b0",), TABLE),), ("n0",))),
                         ("else_branch", body((TABLE,), (("Neg", ("b0",), TABLE),), ("n0",))))),),
                  ("y",))
    case = make_case(graph, 0)
    return [dataclasses.replace(case, inputs={**case.inputs, "c": np.array(taken)}) for taken in (True, False)]


def loop_case() -> TestCase:
    """Three iterations of ``x = Sigmoid(x) * x``."""
    iteration = TensorType(DType.int64, ())
    graph = Graph((Input("x", TABLE),), (),
                  (Node("Loop", ("x",), ("y",), (TABLE,),
                        (("body", body((iteration, TABLE), (("Sigmoid", ("b1",), TABLE),
                                                            ("Mul", ("n0", "b1"), TABLE)), ("n1",))),
                         ("trip_count", 3))),),
                  ("y",))
    return make_case(graph, 1)


def scan_case() -> TestCase:
    """A running sum over the rows of ``x`` (state) and each row times the state (scan output)."""
    graph = Graph((Input("s", ROW), Input("x", TABLE)), (),
                  (Node("Scan", ("s", "x"), ("total", "rows"), (ROW, TABLE),
                        (("body", body((ROW, ROW), (("Add", ("b0", "b1"), ROW), ("Mul", ("b0", "b1"), ROW)),
                                       ("n0", "n1"))),)),),
                  ("total", "rows"))
    return make_case(graph, 2)


def dynamic_cases() -> list[TestCase]:
    """``Relu(x) @ w`` with x's leading dimension symbolic, at two sizes of one model."""
    weight = Weight.from_array("w", np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4))
    graph = Graph((Input("x", TABLE, ((0, "N"),)),), (weight,),
                  (Node("Relu", ("x",), ("r",), (TABLE,)),
                   Node("MatMul", ("r", "w"), ("y",), (TensorType(F32, (2, 4)),))),
                  ("y",))
    return [make_case(variant, 3) for variant in (graph, resized(graph, {"N": 5}))]


CASES = [*if_cases(), loop_case(), scan_case(), *dynamic_cases()]
AVAILABLE = sorted(name for name, backend in builtin_backends().items() if backend.missing() is None)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict[str, list]:
    """Each available backend's outcome of every case, from one group of isolated workers."""
    with WorkerGroup(AVAILABLE, Limits(timeout=120), tmp_path_factory.mktemp("logs")) as group:
        by_case = group.execute_batch(CASES)
    return {name: [row[position] for row in by_case] for position, name in enumerate(AVAILABLE)}


def test_the_cases_are_what_they_claim():
    assert [c.graph.nodes[0].op for c in CASES[:4]] == ["If", "If", "Loop", "Scan"]
    assert [c.graph.symbols for c in CASES[4:]] == [{"N": 2}, {"N": 5}]
    dims = onnx.load_from_string(CASES[5].model).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["N", 3]


@pytest.mark.slow
@pytest.mark.parametrize("name", AVAILABLE)
def test_backend_runs_or_declines_control_flow_and_dynamic_graphs(name, outcomes):
    reference = outcomes["onnx-ref"]
    for case, outcome, expected in zip(CASES, outcomes[name], reference):
        assert outcome.status in (Status.OK, Status.UNSUPPORTED), \
            f"{name} on {case.graph.nodes[0].op}: {outcome.status.value} {outcome.error_type}: {outcome.message[:500]}"
        assert expected.ok, expected.message
        if outcome.ok and not builtin_backends()[name].is_reference:
            findings = differential(case.output_types(), [expected, outcome], reference="onnx-ref")
            assert not findings, f"{name}: {findings[0].summary}"
