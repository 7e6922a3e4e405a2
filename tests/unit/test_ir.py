"""The IR: validation, canonical JSON round trips, and content hashes stable across processes."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fuzzer.generation.generator import GeneratorOptions, generate_graph
from fuzzer.graph.ir import DType, Graph, Input, Node, TensorType, Weight
from fuzzer.graph.rejected import InvalidGraph
from tests.helpers import ROOT

F32 = DType.float32


def small_graph(**changes) -> Graph:
    parts = dict(
        inputs=(Input("x", TensorType(F32, (2, 3))),),
        weights=(Weight.from_array("w", np.arange(3, dtype=np.float32)),),
        nodes=(Node("Add", ("x", "w"), ("y",), (TensorType(F32, (2, 3)),)),
               Node("Relu", ("y",), ("z",), (TensorType(F32, (2, 3)),))),
        outputs=("z",),
    )
    parts.update(changes)
    return Graph(**parts)


def test_types_and_consumers():
    graph = small_graph()
    assert graph.types["y"] == TensorType(F32, (2, 3))
    assert graph.consumers["y"] == (1,) and graph.consumers["z"] == ()
    assert str(graph).splitlines()[-1] == "return z"


@pytest.mark.parametrize("changes, message", [
    (dict(outputs=("missing",)), "not defined"),
    (dict(outputs=()), "no outputs"),
    (dict(nodes=(Node("Relu", ("nope",), ("z",), (TensorType(F32, (2, 3)),)),)), "before it is defined"),
    (dict(nodes=(Node("NoSuchOp", ("x",), ("z",), (TensorType(F32, (2, 3)),)),)), "unknown operator"),
    (dict(nodes=(Node("Relu", ("x",), ("z",), (TensorType(F32, (3, 2)),)),)), "shape rule gives"),
    (dict(nodes=(Node("Relu", ("x",), ("x",), (TensorType(F32, (2, 3)),)),), outputs=("x",)), "redefines"),
    (dict(weights=(Weight("w", TensorType(F32, (3,)), b"\0" * 5),)), "needs 12"),
])
def test_invalid_graphs_are_rejected_with_a_precise_message(changes, message):
    with pytest.raises(InvalidGraph, match=message):
        small_graph(**changes)


def test_graph_is_immutable_and_hashable():
    graph = small_graph()
    with pytest.raises(AttributeError):
        graph.outputs = ("y",)
    assert hash(graph) == hash(small_graph())
    assert graph.content_hash == small_graph().content_hash


def test_hash_changes_with_any_content():
    base = small_graph().content_hash
    other_weight = small_graph(weights=(Weight.from_array("w", np.ones(3, dtype=np.float32)),))
    assert other_weight.content_hash != base
    assert small_graph(outputs=("y", "z")).content_hash != base


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32), nodes=st.integers(1, 12))
def test_json_round_trip_preserves_graph_and_hash(seed, nodes):
    graph = generate_graph(seed, GeneratorOptions(nodes=nodes))
    again = Graph.from_json(graph.to_json())
    assert again == graph
    assert again.to_json() == graph.to_json()
    assert again.content_hash == graph.content_hash


def test_hash_is_the_same_in_another_process():
    graphs = [generate_graph(seed) for seed in range(5)]
    code = ("from fuzzer.generation.generator import generate_graph\n"
            "print(' '.join(generate_graph(s).content_hash for s in range(5)))")
    other = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": "123", "PATH": "/usr/bin:/bin"})
    assert other.stdout.split() == [g.content_hash for g in graphs]


def test_weights_round_trip_every_dtype():
    for dtype in DType:
        array = np.arange(6).reshape(2, 3).astype(dtype.numpy)
        weight = Weight.from_array("w", array)
        assert weight.type == TensorType(dtype, (2, 3))
        np.testing.assert_array_equal(weight.array, array)
    scalar = Weight.from_array("s", np.float32(2.5))
    assert scalar.type.shape == () and scalar.array == np.float32(2.5)


def test_malformed_json_is_invalid_graph():
    with pytest.raises(InvalidGraph, match="missing"):
        Graph.from_dict({"inputs": []})
