"""Metamorphic rewrites keep graphs valid and results identical; the oracle reports changes."""

from __future__ import annotations

import random

import numpy as np
import onnx
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx.reference import ReferenceEvaluator

from fuzzer.graph.export_onnx import to_onnx_bytes
from fuzzer.graph.export_torch import to_module
from fuzzer.generation.generator import GeneratorOptions, generate_case
from fuzzer.graph.ir import DType, Graph, Input, Node, TensorType
from fuzzer.graph.ops import registry
from fuzzer.graph.rejected import Unsatisfiable
from fuzzer.execution.outcome import Outcome, Stage, Status
from oracles.determinism import identical
from oracles.finding import FindingKind
from oracles.metamorphic import (REWRITES, NotApplicable, add_zero, rewrite_case, rewritten_inputs,
                                 swap_commutative)
from oracles.verdict import metamorphic
from fuzzer.graph.values import to_numpy, to_torch

OPTIONS = GeneratorOptions(nodes=6)


def run_torch(graph: Graph, inputs) -> dict[str, np.ndarray]:
    with torch.no_grad():
        results = to_module(graph)(*[to_torch(inputs[i.name]) for i in graph.inputs])
    return {name: to_numpy(t) for name, t in zip(graph.outputs, results)}


def run_reference(graph: Graph, inputs, opset: int) -> dict[str, np.ndarray]:
    results = ReferenceEvaluator(to_onnx_bytes(graph, opset)).run(None, dict(inputs))
    return dict(zip(graph.outputs, results))


def same(graph: Graph, a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return all(a[n].shape == b[n].shape and identical(a[n], b[n], graph.types[n]).all() for n in graph.outputs)


def test_rewrites_are_listed_once_and_use_registered_operators():
    names = [rewrite.__name__ for rewrite in REWRITES]
    assert len(names) == len(set(names)) >= 9
    assert {"Add", "Mul", "Transpose", "Reshape", "Split", "Concat", "Identity"} <= set(registry())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**32))
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_every_rewrite_keeps_the_graph_valid_and_the_results_identical(seed):
    try:
        case = generate_case(seed, OPTIONS)
    except Unsatisfiable:
        return
    original_torch = run_torch(case.graph, case.inputs)
    original_reference = run_reference(case.graph, case.inputs, case.opset)
    rng = random.Random(seed)
    for rewrite in REWRITES:
        try:
            graph = rewrite(case.graph, rng, case.inputs, opset=case.opset)
        except NotApplicable:
            continue
        assert isinstance(graph, Graph) and graph.outputs == case.graph.outputs, rewrite.__name__
        assert all(graph.types[n] == case.graph.types[n] for n in graph.outputs), rewrite.__name__
        assert graph.content_hash != case.graph.content_hash or rewrite.__name__ == "swap_commutative"
        inputs = rewritten_inputs(case.graph, case.inputs, graph)
        assert same(case.graph, original_torch, run_torch(graph, inputs)), rewrite.__name__
        assert same(case.graph, original_reference, run_reference(graph, inputs, case.opset)), rewrite.__name__


def test_add_zero_keeps_negative_zero():
    graph = Graph((Input("x", TensorType(DType.float32, (3,))),), (),
                  (Node("Neg", ("x",), ("y",), (TensorType(DType.float32, (3,)),)),), ("y",))
    rewritten = add_zero(graph, random.Random(0))
    assert [n.op for n in rewritten.nodes].count("Add") == 1
    x = np.float32([0.0, -1.0, np.nan])
    before, after = run_torch(graph, {"x": x}), run_torch(rewritten, {"x": x})
    assert np.signbit(after["y"][0]) and identical(before["y"], after["y"], graph.types["y"]).all()


def test_swap_commutative_needs_a_commutative_node():
    f32 = TensorType(DType.float32, (2,))
    graph = Graph((Input("x", f32), Input("z", f32)), (), (Node("Sub", ("x", "z"), ("y",), (f32,)),), ("y",))
    with pytest.raises(NotApplicable):
        swap_commutative(graph, random.Random(0))


def test_rewrite_case_exports_a_checked_onnx_model():
    case = generate_case(11, OPTIONS)
    name, rewritten = rewrite_case(case, random.Random(1))
    assert name in {rewrite.__name__ for rewrite in REWRITES}
    onnx.checker.check_model(onnx.load_from_string(rewritten.model), full_check=True)
    assert set(rewritten.inputs) == {i.name for i in rewritten.graph.inputs}
    assert rewritten.output_types() == case.output_types()


F32 = TensorType(DType.float32, (4,))


def ok(backend: str, y: np.ndarray) -> Outcome:
    return Outcome(backend, Status.OK, Stage.RUN, {"y": np.asarray(y, dtype=np.float32)})


def test_metamorphic_reports_a_changed_result_and_nothing_else():
    base = np.float32([1, 2, 3, 4])
    assert metamorphic({"y": F32}, ok("ort-all", base), ok("ort-all", base), "mul_one").findings == []
    assert metamorphic({"y": F32}, ok("ort-all", base), ok("ort-all", base * (1 + 1e-5)), "mul_one").findings == []
    [finding] = metamorphic({"y": F32}, ok("ort-all", base), ok("ort-all", [1, 2, -3, 4]), "double_transpose").findings
    assert finding.kind is FindingKind.METAMORPHIC and finding.backends == ("ort-all",)
    assert finding.details["rewrite"] == "double_transpose" and finding.details["mismatched"] == 1
    assert finding.signature == "metamorphic/ort-all/compare/float32/double_transpose/sign"


def test_metamorphic_reports_a_crash_caused_by_the_rewrite():
    crash = Outcome("ort-all", Status.CRASH, Stage.COMPILE, error_type="SIGABRT", exit_signal=6)
    [finding] = metamorphic({"y": F32}, ok("ort-all", np.ones(4)), crash, "split_concat").findings
    assert finding.kind is FindingKind.CRASH and finding.details["metamorphic"] == "split_concat"
    assert metamorphic({"y": F32}, crash, ok("ort-all", np.ones(4)), "split_concat").findings == []
