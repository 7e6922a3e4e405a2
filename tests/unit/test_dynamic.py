"""Dynamic graphs: symbolic input dimensions kept in the ONNX model as dim_param, and
concrete variants at several sizes that all validate and agree with the reference."""

from __future__ import annotations

import random

import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fuzzer.graph.export_onnx import to_onnx, to_onnx_bytes
from fuzzer.graph.ops import Family, all_specs
from fuzzer.generation.generator import SYMBOL, VARIANTS, GeneratorOptions, concrete_variants, generate_graph, make_case
from fuzzer.graph.ir import DType, Graph, Input, Node, TensorType, resized
from fuzzer.graph.rejected import InvalidGraph
from tests.helpers import run_both

F32 = DType.float32
# run_both compares torch with the reference exactly up to float tolerances of each output's own
# dtype; a float32 recurrence sums its steps in another order than the reference does, and a
# Cast to float64 downstream then differs by more than float64 tolerances (not a dynamic-shape
# question: the recurrent operators' own tests check them at their dtypes)
WITHOUT_RECURRENCES = frozenset(spec.name for spec in all_specs()
                                if spec.family not in (Family.RECURRENT, Family.CONTROL) and spec.dtypes_at(17))


@settings(max_examples=25, deadline=None, database=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_dynamic_graphs_run_at_every_variant_on_one_model(seed):
    graph = generate_graph(seed, GeneratorOptions(nodes=8, dynamic=1.0, ops=WITHOUT_RECURRENCES))
    if not graph.symbols:
        return  # no leading dimension the graph follows: it stays static
    model = onnx.load_from_string(to_onnx_bytes(graph))
    onnx.checker.check_model(model, full_check=True)
    assert any(d.dim_param == SYMBOL for i in model.graph.input for d in i.type.tensor_type.shape.dim)
    variants = concrete_variants(graph, random.Random(seed))
    assert len(variants) == VARIANTS + 1 and len({v.symbols[SYMBOL] for v in variants}) == VARIANTS + 1
    for variant in variants:
        case = make_case(variant, seed, input_budget=1.0)
        run_both(variant, dict(case.inputs), case.opset)  # torch against the reference on this size


def test_most_graphs_become_dynamic_and_the_share_follows_the_option():
    assert not any(generate_graph(s, GeneratorOptions(nodes=6)).symbols for s in range(30))
    assert sum(bool(generate_graph(s, GeneratorOptions(nodes=6, dynamic=1.0)).symbols) for s in range(40)) >= 25


def test_symbols_round_trip_and_old_json_still_loads():
    graph = next(g for s in range(20) if (g := generate_graph(s, GeneratorOptions(nodes=5, dynamic=1.0))).symbols)
    assert Graph.from_json(graph.to_json()) == graph and '"symbols"' in graph.to_json()
    static = generate_graph(0)
    assert '"symbols"' not in static.to_json()  # static graphs keep their JSON and hashes


def test_resized_reinfers_and_rejects_sizes_a_node_cannot_follow():
    x = Input("x", TensorType(F32, (2, 3)), ((0, "N"),))
    graph = Graph((x,), (), (Node("Relu", ("x",), ("y",), (TensorType(F32, (2, 3)),)),), ("y",))
    assert resized(graph, {"N": 5}).types["y"] == TensorType(F32, (5, 3))
    reshape = Node("Reshape", ("x",), ("y",), (TensorType(F32, (6,)),), (("shape", (6,)),))
    with pytest.raises(InvalidGraph, match="cannot follow"):
        resized(Graph((x,), (), (reshape,), ("y",)), {"N": 5})
    with pytest.raises(InvalidGraph, match="outside rank"):
        Graph((Input("x", TensorType(F32, (2,)), ((1, "N"),)),), (), graph.nodes, ("y",))
    assert to_onnx(graph).graph.input[0].type.tensor_type.shape.dim[0].dim_param == "N"
