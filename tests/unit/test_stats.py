"""Graph statistics: exact counts on hand-built graphs, and a rendering that shows them."""

from __future__ import annotations

from collections import Counter

from rich.console import Console

from fuzzer.generation.generator import generate_graph
from fuzzer.graph.ir import DType, Graph, Input, Node, TensorType
from fuzzer.generation.stats import graph_statistics, render

F32 = TensorType(DType.float32, (2, 3))


def hand_built() -> list[Graph]:
    # x -> Relu -> Exp -> Add(relu, exp) -> Where(c, add, x); a second graph is one Range.
    first = Graph(
        (Input("x", F32), Input("c", TensorType(DType.bool, (3,)))), (),
        (Node("Relu", ("x",), ("r",), (F32,)),
         Node("Exp", ("r",), ("e",), (F32,)),
         Node("Add", ("r", "e"), ("a",), (F32,)),
         Node("Where", ("c", "a", "x"), ("y",), (F32,))),
        ("e", "y"))
    second = Graph((), (), (Node("Range", (), ("n",), (TensorType(DType.int64, (4,)),),
                                 (("delta", 1), ("dtype", "int64"), ("limit", 4), ("start", 0))),), ("n",))
    return [first, second]


def test_counts_on_hand_built_graphs():
    statistics = graph_statistics(hand_built())
    assert statistics.graphs == 2
    assert statistics.operators == Counter({"Relu": 1, "Exp": 1, "Add": 1, "Where": 1, "Range": 1})
    assert statistics.operator_pairs == Counter({("Relu", "Exp"): 1, ("Relu", "Add"): 1, ("Exp", "Add"): 1,
                                                 ("Add", "Where"): 1})
    f32, i64 = DType.float32, DType.int64
    assert statistics.dtype_operators == Counter({(f32, "Relu"): 1, (f32, "Exp"): 1, (f32, "Add"): 1,
                                                  (DType.bool, "Where"): 1, (f32, "Where"): 1, (i64, "Range"): 1})
    assert statistics.ranks == Counter({2: 5, 1: 2})  # x, r, e, a, y; c and n
    assert statistics.nodes == Counter({4: 1, 1: 1})
    assert statistics.inputs == Counter({2: 1, 0: 1})
    assert statistics.outputs == Counter({2: 1, 1: 1})
    assert "Relu" not in statistics.unused_operators and "Conv" in statistics.unused_operators


def test_an_edge_counts_once_per_consuming_input():
    graph = Graph((Input("x", F32),), (), (Node("Neg", ("x",), ("n",), (F32,)),
                                          Node("Mul", ("n", "n"), ("m",), (F32,))), ("m",))
    assert graph_statistics([graph]).operator_pairs == Counter({("Neg", "Mul"): 2})


def test_render_shows_the_counts():
    console = Console(record=True, width=200)
    console.print(render(graph_statistics(hand_built())))
    text = console.export_text()
    assert "2 graphs, 5 nodes" in text
    assert "operators used" in text and "5 of " in text
    assert all(op in text for op in ("Relu", "Exp", "Add", "Where", "Range"))
    assert "nodes per graph" in text and "ranks of values" in text


def test_statistics_of_generated_graphs_add_up():
    graphs = [generate_graph(seed) for seed in range(30)]
    statistics = graph_statistics(graphs)
    assert sum(statistics.operators.values()) == sum(len(g.nodes) for g in graphs)
    assert sum(statistics.nodes.values()) == statistics.graphs == 30
    assert sum(statistics.ranks.values()) == sum(len(g.types) for g in graphs)
    assert len(statistics.operators) >= 40 and len(statistics.operator_pairs) >= 50
