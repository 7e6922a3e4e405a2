"""Input search: planted domain violations are fixed, results are deterministic and clean
inputs really are clean on an independent runtime."""

from __future__ import annotations

import time

import numpy as np
import onnx
import pytest
from onnx.reference import ReferenceEvaluator

from fuzzer.graph.export_onnx import to_onnx_bytes
from fuzzer.generation.generator import GeneratorOptions, generate_graph
from fuzzer.generation.input_search import search_inputs
from fuzzer.graph.ir import DType, Graph, Input, Node, TensorType, Weight


def chain(dtype: DType, shape: tuple[int, ...], *ops: tuple[str, dict], weights: dict[str, np.ndarray] | None = None,
          first_inputs: tuple[str, ...] = ("x",)) -> Graph:
    """x -> ops[0] -> ops[1] -> ... ; an op's extra operands are the named weights."""
    weights = weights or {}
    tensor = TensorType(dtype, shape)
    nodes, previous = [], first_inputs
    for index, (op, attrs) in enumerate(ops):
        extra = tuple(attrs.pop("operands", ()))
        output_type = TensorType(DType(attrs["to"]), shape) if op == "Cast" else tensor
        nodes.append(Node(op, (*previous, *extra), (f"v{index}",), (output_type,), tuple(attrs.items())))
        previous, tensor = (f"v{index}",), output_type
    input_type = TensorType(dtype, shape)
    return Graph((Input("x", input_type),), tuple(Weight.from_array(n, a) for n, a in weights.items()),
                 tuple(nodes), (f"v{len(ops) - 1}",))


def reference_outputs(graph: Graph, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    """The outputs on onnx's reference evaluator: numpy, independent of the torch lowerings."""
    return ReferenceEvaluator(onnx.load_from_string(to_onnx_bytes(graph))).run(None, inputs)


@pytest.mark.parametrize("graph, lowest", [
    (chain(DType.float32, (16,), ("Log", {})), 0.0),
    (chain(DType.float64, (3, 4), ("Sqrt", {})), 0.0),
    (chain(DType.float16, (2, 5), ("Acosh", {})), 1.0),
], ids=["Log", "Sqrt", "Acosh-float16"])
def test_planted_domain_violation_on_an_input_is_fixed_by_gradient_steps(graph, lowest):
    first = search_inputs(graph, seed=0, budget_seconds=10)
    assert first.clean and first.method == "gradient" and first.reason == ""
    x = first.inputs["x"]
    assert x.dtype == graph.inputs[0].type.dtype.numpy and x.shape == graph.inputs[0].type.shape
    assert (x.astype(np.float64) >= lowest).all()
    assert all(np.isfinite(output.astype(np.float64)).all() for output in reference_outputs(graph, first.inputs))


def test_violations_behind_other_nodes_and_float16_overflow_are_fixed():
    shift = {"s": np.full((6,), 3.0, np.float32)}
    behind = chain(DType.float32, (6,), ("Sub", {"operands": ("s",)}), ("Tanh", {}), ("Atanh", {}),
                   ("Sqrt", {}), weights=shift)  # sqrt(atanh(tanh(x - 3))): needs x >= 3
    overflow = chain(DType.float16, (8,), ("Mul", {"operands": ("k",)}), ("Exp", {}),
                     weights={"k": np.full((8,), 8.0, np.float16)})  # exp(8x) overflows float16 for x > 1.4
    for graph in (behind, overflow):
        result = search_inputs(graph, seed=3, budget_seconds=10)
        assert result.clean, result.reason
        assert all(np.isfinite(o.astype(np.float64)).all() for o in reference_outputs(graph, result.inputs))
    assert (search_inputs(behind, seed=3, budget_seconds=10).inputs["x"] >= 3).all()


def test_integer_inputs_are_fixed_by_sampling():
    graph = chain(DType.int32, (5,), ("Cast", {"to": "float32"}), ("Log", {}))  # log of an int: needs x >= 1
    result = search_inputs(graph, seed=1, budget_seconds=10)
    assert result.clean and result.method == "sampling"
    assert (result.inputs["x"] >= 1).all()


def test_a_violation_that_only_weights_reach_is_reported_at_once():
    graph = Graph((Input("x", TensorType(DType.float32, (3,))),),
                  (Weight.from_array("w", np.array([-1.0, 2.0, 3.0], np.float32)),),
                  (Node("Log", ("w",), ("v0",), (TensorType(DType.float32, (3,)),)),
                   Node("Add", ("x", "v0"), ("v1",), (TensorType(DType.float32, (3,)),))), ("v1",))
    result = search_inputs(graph, seed=0)
    assert not result.clean and result.steps == 0
    assert "node 0 (Log)" in result.reason and "no graph input reaches" in result.reason


def test_an_infeasible_graph_respects_its_budget_and_says_why():
    graph = chain(DType.float32, (64,), ("Sigmoid", {}), ("Acosh", {}))  # acosh of (0, 1): never defined
    start = time.thread_time()
    result = search_inputs(graph, seed=0, budget_seconds=0.02)
    assert time.thread_time() - start < 0.02 + 0.05  # at most one step beyond the budget
    assert not result.clean and "node 1 (Acosh) reads values outside its domain" in result.reason
    assert result.inputs["x"].shape == (64,)  # the seed's first draw comes back


def test_the_search_is_deterministic_for_a_seed():
    graphs = [(seed, generate_graph(seed)) for seed in range(40)]
    searched = [(seed, graph) for seed, graph in graphs if search_inputs(graph, seed).method != "initial"]
    assert len(searched) >= 5
    for seed, graph in searched:
        first, second = search_inputs(graph, seed, budget_seconds=10), search_inputs(graph, seed, budget_seconds=10)
        assert (first.clean, first.method, first.steps) == (second.clean, second.method, second.steps)
        assert all(np.array_equal(first.inputs[k], second.inputs[k]) for k in first.inputs)


def test_generated_graphs_mostly_get_inputs_that_are_clean_on_the_reference_evaluator():
    results = [(graph, search_inputs(graph, seed, budget_seconds=10))
               for seed, graph in ((seed, generate_graph(seed)) for seed in range(100))]
    assert sum(result.clean for _, result in results) >= 85
    assert sum(result.method == "gradient" and result.clean for _, result in results) >= 15
    for graph, result in results:
        if result.clean:
            for name, output in zip(graph.outputs, reference_outputs(graph, result.inputs)):
                if graph.types[name].dtype.is_float:
                    assert np.isfinite(output.astype(np.float64)).all(), f"{graph}\n{name} is not finite"


def test_at_least_97_percent_of_generated_graphs_get_clean_inputs():
    """The share that bench/input_search.py measures over 1000 seeds, as a floor on 200 (the
    work bound, not the clock, ends these searches)."""
    options = GeneratorOptions()
    clean = sum(search_inputs(generate_graph(seed, options), seed, budget_seconds=10).clean for seed in range(200))
    assert clean >= 194
