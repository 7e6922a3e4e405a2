"""Reduction: a planted bug's ten-node graph shrinks to its culprit, never drifts, and resumes."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from fuzzer.store import RunStore, StoredFinding, arrays_to_npz
from fuzzer.campaign.config import CampaignConfig
from fuzzer.campaign.driver import Campaign, start_run
from fuzzer.generation.generator import make_case
from fuzzer.graph.ir import DType
from tests.planted_backends import BACKENDS, planted_graph, record_findings
from tests.helpers import Builder
from triage.reduce import (Reduction, ReductionUnsupported, judging_backends, load_reduction, reduce_finding,
                           with_branch_inlined, without_nodes, without_outputs)
from triage.reproducibility import measure_finding
from triage.rerun import stored_case


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


def test_a_finding_is_judged_again_by_the_lane_that_found_it():
    config = CampaignConfig(backends=("onnx-ref", "ort-none", "tests.fault_backends:SlowAlwaysWrong"),
                            reference="onnx-ref")
    def blaming(backend: str) -> StoredFinding:
        return StoredFinding(0, 0, "mismatch", (backend,), "compare", "", "", {}, 0, "", 0.0, {})

    assert judging_backends(config, blaming("ort-none")) == ["onnx-ref", "ort-none"]
    assert judging_backends(config, blaming("fault-slow-wrong")) == ["onnx-ref", "tests.fault_backends:SlowAlwaysWrong"]


@pytest.mark.slow
def test_a_metamorphic_finding_reproduces_and_reduces_from_its_original(tmp_path):
    config = CampaignConfig(backends=("onnx-ref", "tests.quality.planted_ort:PlantedIdentity"), seed=2, nodes=6,
                            max_tests=40, reference="onnx-ref", single_compiler_every=1, input_budget=None,
                            ops=("Add", "Mul", "Relu", "Transpose"), dtypes=("float32",))
    with start_run(config, tmp_path / "run") as store:
        Campaign(config, store).run()
        metamorphic = [f for f in store.findings() if f.kind == "metamorphic"]
        assert metamorphic and all("identity_chain" in f.signature for f in metamorphic)
        finding = metamorphic[0]
        original = stored_case(store, finding.id)
        assert "Identity" not in {node.op for node in original.graph.nodes}  # the case before the rewrite
        assert measure_finding(store, finding.id, runs=1).reproduced == 1
        reduction = reduce_finding(store, finding.id, time_budget=60)
        assert reduction.nodes_after <= reduction.nodes_before and reduction.tests > 1


def test_a_failure_is_judged_again_by_its_backend_and_the_judges_only():
    config = CampaignConfig(backends=("ref-f64", "onnx-ref", "ort-none", "ort-all", "torch"), reference="onnx-ref")
    failure = StoredFinding(0, 0, "error", ("ort-all",), "run", "", "", {}, 0, "", 0.0, {})
    assert judging_backends(config, failure) == ["ref-f64", "onnx-ref", "ort-all"]
    mismatch = StoredFinding(0, 0, "mismatch", ("ort-all",), "compare", "", "", {"compared_with": "torch"},
                             0, "", 0.0, {})
    assert judging_backends(config, mismatch) == ["ref-f64", "onnx-ref", "ort-all", "torch"]
    metamorphic = StoredFinding(0, 0, "metamorphic", ("ort-all",), "compare", "", "", {}, 0, "", 0.0, {})
    assert len(judging_backends(config, metamorphic)) == 5


def test_an_if_is_replaced_by_either_branch_with_its_values_renamed_apart():
    """A branch reads the If's data input and has values named as the outer graph's: inlined,
    each computes what the If computes when the condition picks it."""
    from fuzzer.graph.case import TestCase
    from fuzzer.graph.export_onnx import to_onnx_bytes
    from fuzzer.graph.export_torch import to_module
    from fuzzer.graph.ir import Graph, Input, Node, TensorType
    from fuzzer.graph.values import to_numpy, to_torch

    def evaluated(graph: Graph, feed) -> np.ndarray:
        return to_numpy(to_module(graph)(*(to_torch(feed[i.name]) for i in graph.inputs))[0])

    x = TensorType(DType.float32, (3,))
    then_branch = Graph((Input("b", x),), (), (Node("Relu", ("b",), ("y",), (x,)),), ("y",))
    else_branch = Graph((Input("b", x),), (), (Node("Neg", ("b",), ("y",), (x,)),), ("y",))
    graph = Graph((Input("c", TensorType(DType.bool, ())), Input("x", x)), (),
                  (Node("If", ("c", "x"), ("y",), (x,), (("else_branch", else_branch), ("then_branch", then_branch))),
                   Node("Exp", ("y",), ("z",), (x,))), ("z",))
    values = {"x": np.float32([-1, 0.5, 2])}
    for condition, branch in ((True, "then_branch"), (False, "else_branch")):
        feed = {"c": np.array(condition), **values}
        case = TestCase(graph, feed, to_onnx_bytes(graph, 17), 17, 0, 0)
        inlined = with_branch_inlined(case, 0, branch)
        assert [node.op for node in inlined.graph.nodes] == ["Relu" if condition else "Neg", "Exp"]
        assert [i.name for i in inlined.graph.inputs] == ["x"]  # the condition is no longer read
        np.testing.assert_array_equal(evaluated(inlined.graph, inlined.inputs), evaluated(graph, feed))
