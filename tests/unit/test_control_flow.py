"""If, Loop and Scan: generated control-flow graphs pass the ONNX checker and strict shape
inference, run on the reference evaluator and agree with torch, and survive the JSON round trip."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fuzzer.generation.generator import GeneratorOptions, generate_case, generate_graph
from fuzzer.graph.ir import DType, Graph, Input, Node, TensorType
from fuzzer.graph.ops import get_spec
from fuzzer.graph.rejected import InvalidGraph
from tests.helpers import run_both

CONTROL = {"If", "Loop", "Scan"}
F32 = DType.float32


@settings(max_examples=30, deadline=None, database=None)
@given(seed=st.integers(0, 2**32 - 1), nodes=st.integers(1, 6))
def test_control_flow_graphs_validate_run_on_the_reference_and_match_torch(seed, nodes):
    case = generate_case(seed, GeneratorOptions(nodes=nodes, control_flow=1.0))
    assert CONTROL & {node.op for node in case.graph.nodes}
    run_both(case.graph, dict(case.inputs), case.opset)
    assert Graph.from_json(case.graph.to_json()) == case.graph


@pytest.mark.parametrize("op", sorted(CONTROL))
def test_each_control_flow_operator_is_generated(op):
    options = GeneratorOptions(nodes=2, ops=frozenset({op, "Relu"}))
    assert any(node.op == op for seed in range(10) for node in generate_graph(seed, options).nodes)


def test_share_of_graphs_with_control_flow_follows_the_option():
    assert not any(n.op in CONTROL for s in range(50) for n in generate_graph(s, GeneratorOptions(nodes=5)).nodes)
    with_control = sum(any(n.op in CONTROL
                           for n in generate_graph(s, GeneratorOptions(nodes=5, control_flow=0.5)).nodes)
                       for s in range(100))
    assert 30 <= with_control <= 70


def test_json_of_a_body_round_trips_with_the_same_hash():
    graph = generate_graph(3, GeneratorOptions(nodes=4, control_flow=1.0))
    again = Graph.from_json(graph.to_json())
    assert again.content_hash == graph.content_hash and '"graph":' in graph.to_json()


def test_branches_of_different_types_are_rejected():
    x, wide = TensorType(F32, (2,)), TensorType(DType.float64, (2,))
    then_branch = Graph((Input("b0", x),), (), (Node("Relu", ("b0",), ("r",), (x,)),), ("r",))
    else_branch = Graph((Input("b0", x),), (), (Node("Cast", ("b0",), ("r",), (wide,), (("to", "float64"),)),), ("r",))
    with pytest.raises(InvalidGraph, match="branches return"):
        Graph((Input("c", TensorType(DType.bool, ())), Input("x", x)), (),
              (Node("If", ("c", "x"), ("y",), (x,), (("else_branch", else_branch), ("then_branch", then_branch))),),
              ("y",))


def test_loop_runs_its_body_trip_count_times():
    import torch

    x = TensorType(F32, (3,))
    body = Graph((Input("i", TensorType(DType.int64, ())), Input("v", x)), (),
                 (Node("Exp", ("v",), ("e",), (x,)), Node("Neg", ("v",), ("n",), (x,))), ("n",))
    result = get_spec("Loop").torch([torch.ones(3)], {"body": body, "trip_count": 3})
    np.testing.assert_array_equal(result[0].numpy(), -np.ones(3, np.float32))


def test_a_saved_torch_program_keeps_both_branches_of_an_if():
    """torch.export cannot branch on a tensor's value: a repro's saved program holds a torch.cond,
    which takes the branch the condition picks at run time."""
    import io

    import torch

    from fuzzer.execution.backends.torch_eager import exported_program_bytes
    from fuzzer.graph.export_torch import to_module

    x = TensorType(F32, (3,))
    then_branch = Graph((Input("b0", x),), (), (Node("Relu", ("b0",), ("r",), (x,)),), ("r",))
    else_branch = Graph((Input("b0", x),), (), (Node("Neg", ("b0",), ("r",), (x,)),), ("r",))
    graph = Graph((Input("c", TensorType(DType.bool, ())), Input("x", x)), (),
                  (Node("If", ("c", "x"), ("y",), (x,), (("else_branch", else_branch), ("then_branch", then_branch))),),
                  ("y",))
    values = torch.tensor([-1.0, 0.5, 2.0])
    saved = exported_program_bytes(torch, to_module(graph), [torch.tensor(True), values])
    program = torch.export.load(io.BytesIO(saved)).module()
    for condition in (True, False):
        [expected] = to_module(graph)(torch.tensor(condition), values)
        [actual] = program(torch.tensor(condition), values)
        assert torch.equal(actual, expected)
