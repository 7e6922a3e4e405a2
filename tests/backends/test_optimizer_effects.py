"""Optimizer effects: the rewrites each backend's optimizer applied, on outcomes, as coverage
features, in the run store and in the reports."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from fuzzer.execution.coverage_bits import NOTED, bit
from fuzzer.campaign.coverage import CoverageMap, EffectTally, compiler_bits, effect_rows, fingerprint
from fuzzer.campaign.config import CampaignConfig
from fuzzer.campaign.driver import Campaign, start_run
from fuzzer.execution.backends import load_backend
from fuzzer.execution.backends.onnxruntime import sampled
from fuzzer.execution.isolation import WorkerGroup
from fuzzer.execution.outcome import Outcome, Status
from fuzzer.generation.generator import make_case
from fuzzer.graph.ir import Graph
from reports.html import render_html
from reports.markdown import render_markdown
from reports.model import summarize


def tensor(*shape: int) -> dict:
    data = np.linspace(-1, 1, int(np.prod(shape)), dtype=np.float32)
    return {"dtype": "float32", "shape": list(shape), "data": base64.b64encode(data.tobytes()).decode()}


def typed(*shape: int) -> dict:
    return {"dtype": "float32", "shape": list(shape)}


MATMUL_ADD = Graph.from_dict({
    "inputs": [{"name": "x", **typed(4, 8)}],
    "weights": [{"name": "w", **tensor(8, 16)}, {"name": "b", **tensor(16)}],
    "nodes": [{"op": "MatMul", "inputs": ["x", "w"], "outputs": ["m"], "types": [typed(4, 16)], "attrs": {}},
              {"op": "Add", "inputs": ["m", "b"], "outputs": ["y"], "types": [typed(4, 16)], "attrs": {}}],
    "outputs": ["y"]})


def effects_of(name: str, case) -> tuple[str, ...]:
    """The effects of ``case`` on the backend ``name``, run in this process, its log always read."""
    backend = load_backend(name)()
    backend.setup()
    backend.effects_share = 1.0
    outcome = backend.execute(case, lambda stage: None)
    assert outcome.status is Status.OK, outcome.message
    return outcome.effects


def test_matmul_add_fuses_on_ort_all_and_nothing_fires_on_ort_none():
    case = make_case(MATMUL_ADD, seed=1)
    assert effects_of("ort-all", case) == ("ort:MatMulAddFusion",)
    assert effects_of("ort-none", case) == ()


def test_ort_samples_its_log_by_model_the_same_way_every_time():
    models = [bytes([n]) * 16 for n in range(200)]
    drawn = [sampled(model, 0.25) for model in models]
    assert drawn == [sampled(model, 0.25) for model in models]
    assert 20 < sum(drawn) < 80
    assert all(sampled(model, 1.0) for model in models) and not any(sampled(model, 0.0) for model in models)


def test_effects_become_coverage_features_that_admit_a_test():
    fused = Outcome("ort-all", Status.OK, effects=("ort:MatMulAddFusion",))
    plain = Outcome("ort-all", Status.OK)
    feature = bit(NOTED, "effect:ort:MatMulAddFusion")
    bits = fingerprint(MATMUL_ADD, [fused])
    assert feature in bits and feature not in fingerprint(MATMUL_ADD, [plain])
    assert compiler_bits(bits) == {feature}  # the scheduler admits a test for a new one
    coverage_map = CoverageMap()
    assert feature in coverage_map.update(bits) and coverage_map.features > 0
    assert feature not in coverage_map.update(fingerprint(MATMUL_ADD, [fused]))


def test_effects_are_tallied_in_the_store_and_reported(tmp_path):
    config = CampaignConfig(backends=("ort-none", "onnx-ref"), seed=2, nodes=3, max_tests=4, input_budget=None)
    store = start_run(config, tmp_path / "run")
    Campaign(config, store).run()
    tally = EffectTally(store)
    tally.count(7, 1.5, [Outcome("ort-all", Status.OK, effects=("ort:MatMulAddFusion", "ort:ConstantFolding")),
                         Outcome("tvm", Status.OK, effects=("tvm:FuseOps",))])
    tally.count(9, 2.5, [Outcome("ort-all", Status.OK, effects=("ort:MatMulAddFusion",))])
    tally.save()
    resumed = EffectTally(store)  # a resumed campaign counts on
    resumed.count(12, 4.0, [Outcome("ort-all", Status.OK, effects=("ort:ConstantFolding",))])
    resumed.save()
    rows = {(row["backend"], row["effect"]): row for row in effect_rows(store)}
    assert rows[("ort-all", "ort:MatMulAddFusion")] == {"backend": "ort-all", "effect": "ort:MatMulAddFusion",
                                                       "tests": 2, "first_test": 7, "first_seconds": 1.5}
    assert rows[("ort-all", "ort:ConstantFolding")]["tests"] == 2 and len(rows) == 3

    summary = summarize(store)
    markdown = render_markdown(summary)
    assert "## Optimizer effects" in markdown and "ort:MatMulAddFusion (2)" in markdown
    page = render_html(summary, tmp_path)
    assert "<h2>Optimizer effects</h2>" in page and "tvm:FuseOps" in page
    assert 'alt="Distinct optimizer effects over time"' in page
    store.close()


@pytest.mark.slow
def test_tvm_passes_and_inductor_counters_arrive_from_workers():
    case = make_case(MATMUL_ADD, seed=1)
    with WorkerGroup(["tvm", "tvm-noopt", "inductor"]) as group:
        tvm, noopt, inductor = group.execute(case)
    assert tvm.ok and noopt.ok and inductor.ok, (tvm.message, noopt.message, inductor.message)
    assert "tvm:FuseOps" in tvm.effects and "tvm:FuseOps" not in noopt.effects
    assert "inductor:pattern_matcher_count" in inductor.effects  # addmm from the pattern matcher
