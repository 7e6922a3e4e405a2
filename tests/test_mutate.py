"""Mutators: every mutant is valid, exports, passes the ONNX checker and runs; mutation is
deterministic, works from the real-world seeds, splices donors and reports when stuck."""

from __future__ import annotations

import random

import onnx
import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st
from onnx.reference import ReferenceEvaluator

from corpus.seeds import mlp_head, residual_block, seed_graphs
from fuzzer.export_onnx import to_onnx
from fuzzer.generator import GeneratorOptions, generate_graph
from fuzzer.ir import Graph
from fuzzer.mutate import MUTATORS, admit, mutate
from fuzzer.ops.spec import Unsatisfiable
from fuzzer.values import random_inputs

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
        except (Unsatisfiable, ValueError):
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
