"""Localization finds the node where the blamed backend first goes wrong."""

from __future__ import annotations

import pytest

from fuzzer.generation.generator import make_case
from fuzzer.graph.ir import DType
from tests.planted_backends import planted_graph
from tests.helpers import Builder
from triage.localize import expose_intermediates, localize


def test_exposing_keeps_the_original_outputs_first():
    graph = planted_graph()
    exposed = expose_intermediates(graph)
    assert exposed.outputs[:2] == graph.outputs
    assert set(exposed.outputs) == {name for node in graph.nodes for name in node.outputs}


@pytest.mark.parametrize("reference", ["ref-f64", "onnx-ref"])
def test_the_planted_wrong_node_is_found_in_a_chain(evaluator, reference):
    found = localize(make_case(planted_graph(), seed=2), "planted", reference, evaluator=evaluator)
    assert (found.node_index, found.op, found.method) == (4, "Mul", "exposed")
    assert "class magnitude" in found.summary


def test_a_crash_is_placed_by_prefix_graphs(evaluator):
    builder = Builder()
    value = builder.node("Exp", builder.node("Relu", builder.input("x", DType.float32, (2, 3))))
    value = builder.node("Neg", builder.node("Softmax", value, axis=0))
    found = localize(make_case(builder.graph(value), seed=0), "tests.planted_backends:PlantedBugs", "ref-f64",
                     evaluator=evaluator)
    assert (found.node_index, found.op, found.method) == (2, "Softmax", "prefix")
    assert found.summary.startswith("crash: SIGSEGV")


def test_nothing_is_found_when_the_backends_agree(evaluator):
    builder = Builder()
    value = builder.node("Tanh", builder.node("Relu", builder.input("x", DType.float32, (2, 3))))
    assert localize(make_case(builder.graph(value), seed=0), "planted", "ref-f64", evaluator=evaluator) is None


def test_without_an_evaluator_its_own_workers_are_started():
    found = localize(make_case(planted_graph(), seed=2), "tests.planted_backends:PlantedBugs", "onnx-ref")
    assert found.op == "Mul"
