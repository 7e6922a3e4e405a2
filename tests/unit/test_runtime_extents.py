"""Run-time extents: NonZero's count and the slices Compress keeps, known only when the graph runs."""

from __future__ import annotations

import random

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fuzzer.generation.generator import GeneratorOptions, generate_case
from fuzzer.graph.export_torch import to_module
from fuzzer.graph.ir import DType, Graph, Node, TensorType
from fuzzer.graph.onnx_import import graph_from_onnx
from fuzzer.graph.rejected import InvalidGraph
from fuzzer.graph.values import to_numpy, to_torch
from oracles.metamorphic import add_zero
from oracles.precision import evaluate_reference
from oracles.probes import spread_probe
from tests.helpers import Builder, reference_evaluator

# Operators that make run-time extents and some that read them (extent-free) or refuse them.
RUNTIME_OPS = frozenset({"NonZero", "Compress", "Greater", "Relu", "Neg", "Cast", "Add", "Mul", "ReduceSum",
                         "Transpose", "Unsqueeze", "MatMul", "Reshape", "Abs"})


def nonzero_graph() -> tuple[Graph, Builder]:
    b = Builder()
    x = b.input("x", DType.float32, (3, 4))
    indices = b.node("NonZero", b.node("Relu", x), outputs=("nz",))
    b.node("Cast", indices, outputs=("as_float",), to="float32")
    return b.graph("nz", "as_float"), b


def test_nonzero_of_a_value_has_a_run_time_count_that_extent_free_operators_carry() -> None:
    graph, _ = nonzero_graph()
    assert graph.types["nz"] == TensorType(DType.int64, (2, 12), ((1, "nz#1"),))
    assert str(graph.types["nz"]) == "int64[2,<=12]"
    assert graph.types["as_float"].runtime == ((1, "nz#1"),)  # Cast keeps the extent's name
    assert graph.types["nz"].admits((2, 0)) and graph.types["nz"].admits((2, 12))
    assert not graph.types["nz"].admits((2, 13)) and not graph.types["nz"].admits((3, 5))
    assert Graph.from_json(graph.to_json()) == graph


def test_consumers_keep_reduce_or_refuse_a_run_time_extent() -> None:
    _, b = nonzero_graph()
    assert b.types[b.node("ReduceSum", "nz", axes=(1,), keepdims=0)] == TensorType(DType.int64, (2,))
    assert b.types[b.node("Transpose", "nz", perm=(1, 0))].runtime == ((0, "nz#1"),)
    assert b.types[b.node("Add", "nz", b.weight("one", np.ones((2, 1), np.int64)))].runtime == ((1, "nz#1"),)
    with pytest.raises(Exception, match="needs a fixed extent"):  # a broadcast against a fixed extent of 12
        b.node("Add", "nz", b.weight("row", np.ones((2, 12), np.int64)))
    with pytest.raises(Exception, match="extent that only the run gives"):  # not extent-free
        b.node("MatMul", "as_float", b.weight("w", np.ones((12, 2), np.float32)))


def test_a_renamed_producer_keeps_its_extent_and_an_extent_is_introduced_once() -> None:
    graph, _ = nonzero_graph()
    rewritten = add_zero(graph, random.Random(0))  # renames a producer's output
    assert {t.runtime for t in rewritten.types.values() if t.runtime} == {((1, "nz#1"),)}
    copy = Node("NonZero", ("x",), ("again",), graph.nodes[1].output_types)  # declares nz#1 as its own
    with pytest.raises(InvalidGraph, match="another node introduced"):
        Graph(graph.inputs, graph.weights, graph.nodes + (copy,), graph.outputs)


def test_compress_by_a_computed_condition_keeps_a_run_time_extent_and_imports_back() -> None:
    b = Builder()
    x = b.input("x", DType.float32, (4, 3))
    keep = b.node("Greater", b.input("c", DType.float32, (4,)), b.weight("zero", np.zeros((), np.float32)))
    b.node("Compress", x, keep, outputs=("kept",), axis=0)
    graph = b.graph("kept")
    assert graph.types["kept"] == TensorType(DType.float32, (4, 3), ((0, "kept#0"),))
    imported = graph_from_onnx(onnx.load_from_string(generate_case_model(graph)))
    assert [node.op for node in imported.nodes] == ["Greater", "Compress"]
    assert imported.types["kept"].runtime


def generate_case_model(graph: Graph) -> bytes:
    from fuzzer.graph.export_onnx import to_onnx_bytes

    return to_onnx_bytes(graph)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31))
def test_graphs_with_run_time_extents_are_valid_onnx_and_torch_agrees_with_the_reference(seed) -> None:
    """Outputs whose extents only the run gives: ONNX's checker and strict shape inference
    accept the model, and the torch lowering and the reference evaluator return arrays of the
    same shape, which the declared types admit."""
    case = generate_case(seed, GeneratorOptions(nodes=5, ops=RUNTIME_OPS))
    model = onnx.load_from_string(case.model)
    onnx.checker.check_model(model, full_check=True)
    onnx.shape_inference.infer_shapes(model, strict_mode=True)
    expected = reference_evaluator(model).run(None, dict(case.inputs))
    import torch

    with torch.no_grad():
        actual = to_module(case.graph)(*(to_torch(case.inputs[i.name]) for i in case.graph.inputs))
    for name, want, got in zip(case.graph.outputs, expected, actual):
        got = to_numpy(got)
        assert got.shape == np.shape(want) and case.graph.types[name].admits(got.shape), (name, case.graph)


def test_generated_graphs_make_run_time_extents() -> None:
    graphs = [generate_case(seed, GeneratorOptions(nodes=5, ops=RUNTIME_OPS)).graph for seed in range(80)]
    readers = [node for g in graphs for node in g.nodes
               if any(g.types[name].runtime for name in node.inputs)]
    assert sum(any(t.runtime for t in g.types.values()) for g in graphs) >= 8
    assert {node.op for node in readers} - {"NonZero", "Compress"}  # extent-free operators read them on


def test_the_float64_judge_follows_the_declared_precision_where_rounding_moves_an_extent() -> None:
    """x + 1 - 1 is 0 in float32 for a small x and not in float64: NonZero counts differ, so
    the reference is the declared precision's count and every element is ill-conditioned."""
    b = Builder()
    x = b.input("x", DType.float32, (4,))
    one = b.weight("one", np.ones((), np.float32))
    b.node("NonZero", b.node("Sub", b.node("Add", x, one), one), outputs=("nz",))
    graph = b.graph("nz")
    values = evaluate_reference(graph, {"x": np.array([1e-9, 0.0, 2.0, 1e-9], np.float32)})
    assert values["nz"].tolist() == [[2]]
    assert np.isinf(values[spread_probe("nz")]).all()


def test_reduction_cuts_a_run_time_extent_into_an_input_of_the_extent_it_had() -> None:
    from fuzzer.graph.case import TestCase
    from fuzzer.graph.export_onnx import to_onnx_bytes
    from triage.reduce import without_nodes

    graph, _ = nonzero_graph()
    inputs = {"x": np.array([[1, -1, 2, 0]] * 3, np.float32)}
    case = TestCase(graph, inputs, to_onnx_bytes(graph), 17, 0, 0)
    cut = without_nodes(case, {"nz"}, {"nz": np.array([[0, 1, 2], [0, 2, 0]], np.int64)})
    assert cut is not None and cut.graph.types["nz"] == TensorType(DType.int64, (2, 3))
    assert cut.graph.types["as_float"] == TensorType(DType.float32, (2, 3))


def test_a_backend_with_another_count_than_the_reference_is_a_shape_mismatch() -> None:
    from tests.helpers import verdict

    graph, _ = nonzero_graph()
    x = np.array([[1, -1, 2, 0], [0, 0, 3, 1], [-2, 1, 0, 0]], np.float32)
    right = np.array([[0, 0, 1, 1, 2], [0, 2, 2, 3, 1]], np.int64)
    wrong = np.array([[0, 0, 1, 1], [0, 2, 2, 3]], np.int64)
    outputs = lambda nz: {"nz": nz, "as_float": nz.astype(np.float32)}  # noqa: E731
    result = verdict(graph, {"x": x}, {"ort": outputs(right), "tvm": outputs(wrong), "torch": outputs(right)})
    assert [(f.kind.value, f.backends) for f in result.findings] == [("shape_mismatch", ("tvm",))]
    assert "at extents [2, 5]" in result.findings[0].summary
    agreeing = verdict(graph, {"x": x}, {"ort": outputs(wrong), "tvm": outputs(wrong)})
    assert not agreeing.findings and {s.guard for s in agreeing.suppressions} == {"reference-outlier"}


def test_two_runs_with_other_counts_differ_in_a_pair_oracle() -> None:
    from fuzzer.execution.outcome import Outcome, Stage, Status
    from oracles.guards import pair_differences
    from oracles.tolerance import DEFAULT_POLICY

    graph, _ = nonzero_graph()
    expected = {"nz": graph.types["nz"]}
    first, second = (Outcome(name, Status.OK, Stage.RUN, {"nz": np.zeros((2, n), np.int64)})
                     for name, n in (("ort-all", 3), ("ort-none", 4)))
    differing, _ = pair_differences(expected, first, second, DEFAULT_POLICY)
    assert differing["nz"]["kind"] == "shape_mismatch" and differing["nz"]["share"] == 1.0
