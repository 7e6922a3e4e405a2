"""Mutators: every mutant is valid, exports, passes the ONNX checker and runs; mutation is
deterministic, works from the real-world seeds, splices donors, adds control flow and
symbolic dimensions, keeps to the node budget, follows weights and reports when stuck."""

from __future__ import annotations

import random

import onnx
import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st
from onnx.reference import ReferenceEvaluator

from corpus.seeds import mlp_head, residual_block, seed_graphs
from fuzzer.graph.export_onnx import to_onnx
from fuzzer.generation.generator import SYMBOL, VARIANTS, GeneratorOptions, concrete_variants, generate_graph
from fuzzer.graph.ir import Graph
from fuzzer.generation.mutate import GROWING, MUTATORS, admit, mutate, mutator_order
from fuzzer.graph.rejected import Rejected, Unsatisfiable
from fuzzer.graph.values import random_inputs

OPTIONS = GeneratorOptions(nodes=5)


def assert_runs(graph: Graph, options: GeneratorOptions = OPTIONS) -> None:
    model = to_onnx(graph, options.opset)
    onnx.checker.check_model(model, full_check=True)
    outputs = ReferenceEvaluator(model).run(None, random_inputs(graph, 0))
    assert len(outputs) == len(graph.outputs)


def applied(name: str, graph: Graph, rng: random.Random) -> Graph | None:
    """The first of a few candidates of one mutator that passes the gate and changes the graph."""
    for _ in range(6):
        try:
            mutant = MUTATORS[name](graph, rng, OPTIONS, ())
            admit(mutant, graph, OPTIONS)
        except Rejected:
            continue
        if mutant.content_hash != graph.content_hash:
            return mutant
    return None


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(seed=st.integers(0, 2**32 - 1), name=st.sampled_from(sorted(MUTATORS)))
def test_every_mutator_output_is_valid_and_runs(seed, name):
    mutant = applied(name, generate_graph(seed, OPTIONS), random.Random(seed))
    assume(mutant is not None)
    assert_runs(mutant)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_chained_mutations_stay_valid(seed):
    graph, rng = generate_graph(seed, OPTIONS), random.Random(seed)
    for _ in range(4):
        graph, _ = mutate(graph, rng, options=OPTIONS)
    assert_runs(graph)


def test_every_mutator_applies_to_some_generated_graph():
    succeeded = {name for name in MUTATORS for seed in range(20)
                 if applied(name, generate_graph(seed, OPTIONS), random.Random(seed)) is not None}
    assert succeeded == set(MUTATORS)


def test_mutation_is_deterministic_for_a_seed():
    graph = generate_graph(7, OPTIONS)
    first = [mutate(graph, random.Random(seed)) for seed in range(10)]
    again = [mutate(graph, random.Random(seed)) for seed in range(10)]
    assert [(m.content_hash, n) for m, n in first] == [(m.content_hash, n) for m, n in again]
    assert len({m.content_hash for m, _ in first}) > 5


@pytest.mark.parametrize("name", sorted(seed_graphs()))
def test_mutation_from_seeds(name):
    graph, rng = seed_graphs()[name], random.Random(0)
    for _ in range(5):
        mutant, _ = mutate(graph, rng, donors=list(seed_graphs().values()))
        assert_runs(mutant)


def test_splice_copies_a_donor_subgraph():
    host, donor = mlp_head(), residual_block()
    spliced = [MUTATORS["splice"](host, random.Random(seed), OPTIONS, [donor]) for seed in range(10)]
    with_conv = [g for g in spliced if any(n.op == "Conv" for n in g.nodes)]
    assert with_conv, "no splice took a Conv from the donor"
    assert all(len(g.nodes) > len(host.nodes) for g in with_conv)
    assert_runs(with_conv[0])


def test_delete_node_bypasses_to_a_same_typed_input():
    host = residual_block()
    relu = next(k for k, n in enumerate(host.nodes) if n.op == "Relu")
    for seed in range(30):
        try:
            mutant = MUTATORS["delete_node"](host, random.Random(seed), OPTIONS, ())
        except Unsatisfiable:
            continue
        if [n.op for n in mutant.nodes].count("Relu") == 1 and len(mutant.nodes) == len(host.nodes) - 1:
            reader = host.nodes[relu + 1]
            assert host.nodes[relu].inputs[0] in next(n for n in mutant.nodes if n.outputs == reader.outputs).inputs
            return
    pytest.fail("no deletion of the inner Relu within 30 seeds")


def test_unsatisfiable_when_no_mutant_suits_the_options():
    transformer = seed_graphs()["transformer_encoder_block"]  # LayerNormalization needs opset 17
    with pytest.raises(Unsatisfiable, match="no mutator applies"):
        mutate(transformer, random.Random(0), options=GeneratorOptions(opset=13))


def test_add_control_node_adds_an_if_loop_or_scan_whose_outputs_are_read():
    added = [g for seed in range(10) if (g := applied("add_control_node", generate_graph(seed, OPTIONS),
                                                       random.Random(seed))) is not None]
    assert len(added) >= 5
    for graph in added:
        control = [n for n in graph.nodes if n.op in ("If", "Loop", "Scan")]
        assert control and set(control[-1].outputs) & set(graph.outputs)
    assert_runs(added[0])


def test_make_dynamic_gives_a_symbolic_batch_that_runs_at_several_sizes():
    for seed in range(10):
        dynamic = applied("make_dynamic", generate_graph(seed, OPTIONS), random.Random(seed))
        if dynamic is not None:
            break
    assert dynamic is not None and SYMBOL in dynamic.symbols
    assert len(concrete_variants(dynamic, random.Random(0))) == VARIANTS + 1
    with pytest.raises(Unsatisfiable, match="dynamic already"):
        MUTATORS["make_dynamic"](dynamic, random.Random(0), OPTIONS, ())


def test_mutants_keep_to_the_node_budget():
    budget = GeneratorOptions(nodes=5)
    graph = seed_graphs()["transformer_encoder_block"]  # 33 nodes
    assert mutator_order(graph, random.Random(0), budget)[0] == "delete_node"
    assert not GROWING & set(mutator_order(generate_graph(1, GeneratorOptions(nodes=5, exact_size=True)),
                                           random.Random(0), budget))
    rng = random.Random(1)
    for _ in range(10):
        mutant, _ = mutate(graph, rng, options=budget)
        assert len(mutant.nodes) <= len(graph.nodes)
        graph = mutant


def test_weights_order_the_mutators():
    weights = dict.fromkeys(MUTATORS, 0.01) | {"rewire_edge": 100.0}
    graph = generate_graph(2, OPTIONS)
    firsts = [mutator_order(graph, random.Random(seed), OPTIONS, weights)[0] for seed in range(50)]
    assert firsts.count("rewire_edge") > 45
    uniform = [mutator_order(graph, random.Random(seed), OPTIONS)[0] for seed in range(50)]
    assert uniform.count("rewire_edge") < 15
