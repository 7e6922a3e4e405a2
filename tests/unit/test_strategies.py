"""Hypothesis strategies: valid graphs and cases that run on the reference evaluator, and
shrinking down to minimal graphs."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, find, given, settings
from onnx.reference import ReferenceEvaluator

from fuzzer.graph.export_onnx import to_onnx_bytes
from fuzzer.graph.ir import DType
from fuzzer.strategies import cases, graphs
from fuzzer.graph.values import random_inputs

QUICK = settings(max_examples=25, deadline=None, database=None, derandomize=True,
                 suppress_health_check=[HealthCheck.too_slow])
SHRINK = settings(max_examples=500, database=None, derandomize=True)


@QUICK
@given(graphs(max_nodes=5))
def test_graphs_are_valid_and_run_on_the_reference_evaluator(graph):
    assert 1 <= len(graph.nodes) <= 5
    model = onnx.load_from_string(to_onnx_bytes(graph))
    onnx.checker.check_model(model, full_check=True)
    outputs = ReferenceEvaluator(model).run(None, random_inputs(graph, 0))
    assert [tuple(np.shape(o)) for o in outputs] == [graph.types[name].shape for name in graph.outputs]


@QUICK
@given(cases(operators={"Add", "MatMul", "Relu", "Log", "Sqrt", "Exp"}, dtypes={"float32", "float16"}, max_nodes=4))
def test_cases_keep_to_their_operators_and_dtypes_and_have_clean_inputs(case):
    assert {node.op for node in case.graph.nodes} <= {"Add", "MatMul", "Relu", "Log", "Sqrt", "Exp"}
    assert {i.type.dtype for i in case.graph.inputs} <= {DType.float32, DType.float16}
    assert case.model == to_onnx_bytes(case.graph, case.opset)
    outputs = ReferenceEvaluator(onnx.load_from_string(case.model)).run(None, dict(case.inputs))
    assert all(np.isfinite(o.astype(np.float64)).all() for o in outputs)


def test_shrinks_to_a_single_node_of_the_wanted_operator():
    # A few operators besides the wanted one: over the whole registry, how soon a derandomized
    # search meets Softmax depends on how many operators there are.
    operators = {"Softmax", "Relu", "Add", "Mul", "Exp", "Concat", "Transpose", "ReduceSum", "MatMul"}
    minimal = find(graphs(operators=operators, max_nodes=8), lambda g: any(node.op == "Softmax" for node in g.nodes),
                   settings=SHRINK)
    assert [node.op for node in minimal.nodes] == ["Softmax"]
    assert len(minimal.inputs) == 1


def test_shrinks_shapes_as_well_as_nodes():
    minimal = find(graphs(operators={"Relu", "Add", "Exp"}, max_nodes=8),
                   lambda g: len(g.nodes) >= 2 and any(i.type.rank >= 2 for i in g.inputs), settings=SHRINK)
    assert len(minimal.nodes) == 2
    assert [i.type.shape for i in minimal.inputs if i.type.rank >= 2] == [(1, 1)]


def test_impossible_choices_fail_at_once():
    with pytest.raises(ValueError, match="NoSuchOp"):
        graphs(operators={"NoSuchOp"})
    with pytest.raises(ValueError, match="min_nodes"):
        graphs(min_nodes=3, max_nodes=2)
    with pytest.raises(ValueError, match="opset"):
        cases(opset=12)
