"""The determinism oracle: the same backend on the same test twice gives the same bits."""

from __future__ import annotations

import dataclasses

import ml_dtypes
import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fuzzer.graph.ir import DType, Graph, Input, Node, TensorType
from fuzzer.graph.ops import get_spec, registry
from fuzzer.execution.outcome import Outcome, Stage, Status
from oracles.determinism import identical, nondeterministic_outputs
from oracles.finding import FindingKind
from oracles.verdict import determinism

F32 = TensorType(DType.float32, (3,))
EXPECTED = {"y": F32, "z": F32}


def ok(y, z=(0.0, 0.0, 0.0)) -> Outcome:
    return Outcome("b", Status.OK, Stage.RUN, {"y": np.asarray(y, np.float32), "z": np.asarray(z, np.float32)})


def graph() -> Graph:
    """y = Exp(x), z = Neg(x)."""
    return Graph((Input("x", F32),), (), (Node("Exp", ("x",), ("y",), (F32,)), Node("Neg", ("x",), ("z",), (F32,))),
                 ("y", "z"))


@given(hnp.arrays(np.float32, 5, elements=st.floats(width=32)))
def test_identical_runs_are_deterministic(values):
    assert identical(values, values.copy(), TensorType(DType.float32, (5,))).all()


def test_nan_payloads_do_not_count_but_every_other_bit_does():
    payload = np.array([0x7FC00001], np.uint32).view(np.float32)[0]
    assert determinism(EXPECTED, ok([np.nan, 1, 2]), ok([payload, 1, 2])) == []
    [finding] = determinism(EXPECTED, ok([np.nan, 1, 2]), ok([np.nan, np.nextafter(np.float32(1), 2), 2]))
    assert finding.kind is FindingKind.NONDETERMINISM and finding.backends == ("b",)
    assert finding.details["output"] == "y" and finding.details["outputs"]["y"]["mismatched"] == 1
    assert determinism(EXPECTED, ok([0, 1, 2]), ok([-0.0, 1, 2]))  # the sign of zero is a bit


def test_bfloat16_and_integers_compare_bitwise():
    bf16 = TensorType(DType.bfloat16, (2,))
    a = np.array([1.0, np.nan], dtype=ml_dtypes.bfloat16)
    assert identical(a, a.copy(), bf16).all()
    assert not identical(np.int32([1, 2]), np.int32([1, 3]), TensorType(DType.int32, (2,)))[1]


def test_flaky_status_is_nondeterminism():
    crash = Outcome("b", Status.CRASH, Stage.RUN, error_type="SIGSEGV", exit_signal=11)
    [finding] = determinism(EXPECTED, ok([1, 2, 3]), crash)
    assert finding.kind is FindingKind.NONDETERMINISM and finding.stage is Stage.RUN
    assert "ok then crash" in finding.summary
    assert determinism(EXPECTED, crash, crash) == []


def test_runs_stopped_by_a_resource_limit_are_never_nondeterminism():
    """How far a run gets before the memory or time limit depends on the machine's load."""
    oom = Outcome("b", Status.OOM, Stage.RUN, error_type="MemoryLimit")
    memory_error = Outcome("b", Status.ERROR, Stage.RUN, error_type="MemoryError")
    crash = Outcome("b", Status.CRASH, Stage.RUN, error_type="SIGKILL", exit_signal=9)
    hang = Outcome("b", Status.HANG, Stage.RUN)
    for limited in (oom, memory_error, hang):
        for other in (ok([1, 2, 3]), crash, oom, memory_error):
            assert determinism(EXPECTED, limited, other) == [] == determinism(EXPECTED, other, limited)


def test_outputs_of_documented_nondeterministic_operators_are_skipped(monkeypatch):
    assert nondeterministic_outputs(graph()) == frozenset()
    changed = ok([1, 2, 4], [1, 1, 1]), ok([1, 2, 5], [1, 1, 1])
    assert determinism(EXPECTED, *changed, graph=graph())
    monkeypatch.setitem(registry(), "Exp", dataclasses.replace(get_spec("Exp"), nondeterministic=True))
    assert nondeterministic_outputs(graph()) == frozenset({"y"})
    assert determinism(EXPECTED, *changed, graph=graph()) == []
    [finding] = determinism(EXPECTED, ok([1, 2, 4], [1, 1, 1]), ok([1, 2, 5], [1, 1, 2]), graph=graph())
    assert finding.details["output"] == "z" and finding.details["skipped_nondeterministic"] == ["y"]
