"""Coverage feedback: fingerprints from real workers, the coverage map, structural features."""

from __future__ import annotations

import pytest

from fuzzer.store import RunStore
from fuzzer.execution.coverage_bits import ARC, GRAPH, NOTED, bit, kind_of
from fuzzer.campaign.coverage import (CoverageMap, CoveragePoint, attribute_bucket, compiler_bits, cost,
                                      coverage_series, fingerprint, graph_features, record_coverage)
from fuzzer.generation.generator import SYMBOL, VARIANTS, make_case
from fuzzer.graph.ir import Graph, Input
from fuzzer.execution.isolation import WorkerGroup
from fuzzer.execution.outcome import Outcome, Status

FLOAT_2X3 = {"dtype": "float32", "shape": [2, 3]}
RELU_SOFTMAX = Graph.from_dict({
    "inputs": [{"name": "x", **FLOAT_2X3}], "weights": [],
    "nodes": [{"op": "Relu", "inputs": ["x"], "outputs": ["y"], "types": [FLOAT_2X3], "attrs": {}},
              {"op": "Softmax", "inputs": ["y"], "outputs": ["z"], "types": [FLOAT_2X3], "attrs": {"axis": -1}}],
    "outputs": ["z"]})


def ok_case():
    return make_case(RELU_SOFTMAX, seed=3)


def kinds(bits) -> set[int]:
    return {kind_of(b) for b in bits}


@pytest.mark.slow
def test_worker_fingerprints_on_ort_and_tvm_are_stable_and_repeat_adds_nothing():
    case = ok_case()
    with WorkerGroup(["ort-all", "tvm"], coverage=True) as group:
        first = group.execute(case)
        second = group.execute(case)
        third = group.execute(case)
    assert [o.status for o in first] == [Status.OK, Status.OK], first
    ort, tvm = first
    assert not ort.coverage  # ONNX Runtime has no Python compiler layer to measure
    assert kinds(tvm.coverage) == {ARC} and "tvm:LegalizeOps" in tvm.effects  # branches; passes that changed it
    assert not second[1].coverage  # no arc is new to the worker
    assert second[1].effects == tvm.effects

    coverage_map = CoverageMap()
    fingerprints = [fingerprint(case.graph, outcomes) for outcomes in (first, second, third)]
    assert coverage_map.update(fingerprints[0]) == fingerprints[0]
    assert fingerprints[1] == fingerprints[2]  # deterministic once the worker has seen the graph
    assert not coverage_map.update(fingerprints[1])
    assert coverage_map.branches == sum(kind_of(b) == ARC for b in fingerprints[0]) > 100


@pytest.mark.slow
def test_coverage_off_reports_nothing_and_tvm_notes_no_passes():
    with WorkerGroup(["tvm"], coverage=False) as group:
        (outcome,) = group.execute(ok_case())
    assert outcome.status is Status.OK and outcome.coverage == frozenset()


def test_structural_fingerprint_tags_each_backend_and_status():
    case = ok_case()
    ran = [Outcome("a", Status.OK), Outcome("b", Status.ERROR)]
    bits = fingerprint(case.graph, ran)
    assert kinds(bits) == {GRAPH}
    assert len(bits) == 2 * len(graph_features(case.graph))
    assert bits == fingerprint(case.graph, ran)
    assert fingerprint(case.graph, [Outcome("a", Status.OK)]) < bits
    declined = Outcome("b", Status.UNSUPPORTED, error_type="Declined")
    assert fingerprint(case.graph, [ran[0], declined]) == fingerprint(case.graph, ran[:1])


def test_graph_features_name_operators_dtypes_edges_attributes_and_ranks():
    assert graph_features(RELU_SOFTMAX) == {
        "op:Relu", "op:Softmax", "dtype:Relu:float32", "dtype:Softmax:float32", "edge:Relu>Softmax",
        "attr:Softmax.axis=-1", "rank:Relu:2>2", "rank:Softmax:2>2"}


@pytest.mark.parametrize("value, bucket", [(0, "0"), (1, "1"), (3, "2"), (4, "3"), (-5, "-3"), (0.25, "frac"),
                                           ("NOTSET", "NOTSET"), ((1, 8, 0), "[1,4,0]")])
def test_attribute_buckets_are_log2_or_categorical(value, bucket):
    assert attribute_bucket(value) == bucket


def test_coverage_map_counts_bits_by_kind_and_finds_the_rarest():
    coverage_map = CoverageMap()
    arc, feature, passed = bit(ARC, "f:1:2"), bit(GRAPH, "op:Relu"), bit(NOTED, "pass-changed:FuseOps")
    assert coverage_map.update([arc, feature]) == {arc, feature}
    assert coverage_map.update([feature, passed]) == {passed}
    assert (coverage_map.branches, coverage_map.features) == (1, 2)
    assert coverage_map.rarest([feature, passed]) == 1 and coverage_map.rarest([feature]) == 2


def test_coverage_series_is_empty_without_feedback_and_grows_with_points(tmp_path):
    with RunStore.create(tmp_path / "run", {}) as store:
        assert coverage_series(store) == []
        record_coverage(store, CoveragePoint(1.0, 10, 100, 50, 3))
        record_coverage(store, CoveragePoint(2.0, 20, 150, 60, 4))
        series = coverage_series(store)
    assert [(p["tests"], p["branches"], p["features"], p["corpus"]) for p in series] == [(10, 100, 50, 3),
                                                                                          (20, 150, 60, 4)]


def test_compiler_bits_are_arcs_and_noted_features():
    arc, feature, passed = bit(ARC, "f:1:2"), bit(GRAPH, "op:Relu"), bit(NOTED, "pass-changed:FuseOps")
    assert compiler_bits([arc, feature, passed]) == {arc, passed}


def test_cost_grows_with_nodes_and_with_the_sizes_a_dynamic_graph_runs_at():
    dynamic = Graph(tuple(Input(i.name, i.type, ((0, SYMBOL),)) for i in RELU_SOFTMAX.inputs), RELU_SOFTMAX.weights,
                    RELU_SOFTMAX.nodes, RELU_SOFTMAX.outputs)
    assert cost(RELU_SOFTMAX, budget=2) == 2.0 and cost(RELU_SOFTMAX, budget=4) == 1.5
    assert cost(dynamic, budget=2) == 2.0 * (1 + VARIANTS)
