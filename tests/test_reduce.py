"""Reduction: a planted bug's ten-node graph shrinks to its culprit, never drifts, and resumes."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from corpus.store import RunStore, arrays_to_npz
from fuzzer.campaign import CampaignConfig, start_run
from fuzzer.generator import make_case
from fuzzer.ir import DType
from tests.planted_backends import BACKENDS, planted_graph, record_findings
from tests.test_guards import Builder
from triage.reduce import Reduction, ReductionUnsupported, load_reduction, reduce_finding, without_nodes, without_outputs
from triage.rerun import Evaluator


@pytest.fixture(scope="module")
def evaluator():
    with Evaluator(BACKENDS) as running:
        yield running


def planted_run(tmp_path, evaluator, graph=None) -> tuple[RunStore, int]:
    store = start_run(CampaignConfig(backends=BACKENDS), tmp_path / "run")
    [finding_id] = record_findings(store, evaluator, make_case(graph or planted_graph(), seed=4, index=1))
    return store, finding_id


def same(first: Reduction, second: Reduction) -> bool:
    """Equal reductions: the same fields, graph, model and input values."""
    return (replace(first, case=None) == replace(second, case=None) and first.case.graph == second.case.graph
            and first.case.model == second.case.model and first.case.inputs.keys() == second.case.inputs.keys()
            and all(np.array_equal(first.case.inputs[n], second.case.inputs[n]) for n in first.case.inputs))


def test_a_planted_mismatch_shrinks_to_its_culprit_without_drifting(tmp_path, evaluator):
    store, finding_id = planted_run(tmp_path, evaluator)
    reduction = reduce_finding(store, finding_id, evaluator=evaluator, time_budget=120)
    assert reduction.done and reduction.nodes_before == 10 and reduction.nodes_after <= 3
    assert "Mul" in [node.op for node in reduction.case.graph.nodes]
    assert reduction.signature == store.findings()[0].signature
    [again] = evaluator.evaluate(reduction.case)
    assert (again.backends, again.signature) == (("planted",), reduction.signature)
    assert all(d == 1 for source in reduction.case.graph.inputs for d in source.type.shape)
    assert same(load_reduction(store, finding_id), reduction)
    assert same(reduce_finding(store, finding_id, evaluator=evaluator), reduction)  # finished: as stored


def test_an_error_keeps_its_raising_node_and_condition(tmp_path, evaluator):
    builder = Builder()
    value = builder.node("Sigmoid", builder.input("x", DType.float32, (2, 3, 4)))
    value = builder.node("Transpose", builder.node("Exp", value), perm=(2, 0, 1))
    value = builder.node("Neg", builder.node("Abs", value))
    store, finding_id = planted_run(tmp_path, evaluator, builder.graph(value))
    reduction = reduce_finding(store, finding_id, evaluator=evaluator, time_budget=120)
    assert [node.op for node in reduction.case.graph.nodes] == ["Transpose"]
    [node] = reduction.case.graph.nodes
    assert node.attr["perm"][-1] != 2 and len(node.attr["perm"]) >= 3
    assert reduction.signature.startswith("error/planted/run/RuntimeError/@raising_transpose:planted_backends.py")


def test_a_checkpoint_is_resumed(tmp_path, evaluator):
    store, finding_id = planted_run(tmp_path, evaluator)
    paused = reduce_finding(store, finding_id, evaluator=evaluator, time_budget=0.0)
    assert not paused.done and paused.nodes_after == 10 and paused.tests == 1
    assert same(load_reduction(store, finding_id), paused)
    # A checkpoint further on, as an interrupted reduction leaves it: two nodes, 40 tests, 3 s.
    case = paused.case
    partial = without_nodes(without_outputs(case, {case.graph.outputs[1]}), {"v0", "v1"}, {})
    with store.transaction(write=True) as connection:
        connection.execute("UPDATE reductions SET graph_json = ?, inputs_sha = ?, nodes_after = ?, tests = 40, "
                           "seconds = 3.0 WHERE finding_id = ?", (partial.graph.to_json(),
                           store.put_blob(arrays_to_npz(partial.inputs)), len(partial.graph.nodes), finding_id))
    assert load_reduction(store, finding_id).case.graph == partial.graph
    resumed = reduce_finding(store, finding_id, evaluator=evaluator, time_budget=120)
    assert resumed.done and resumed.nodes_before == 10 and resumed.nodes_after <= 3
    assert resumed.tests > 40 and resumed.seconds > 3.0 and resumed.signature == paused.signature


def test_tir_findings_are_refused(tmp_path):
    with RunStore.create(tmp_path / "tir", {"mode": "tir", "seed": 0}) as store:
        with pytest.raises(ReductionUnsupported, match="TIR"):
            reduce_finding(store, 1)
