"""Re-running a stored finding: the case comes back from its artifacts and judges as the campaign did."""

from __future__ import annotations

import numpy as np
import pytest

from fuzzer.campaign.config import CampaignConfig
from fuzzer.campaign.driver import start_run
from fuzzer.generation.generator import make_case
from oracles.finding import FindingKind
from tests.planted_backends import BACKENDS, planted_graph, record_findings
from triage.localize import prefix_graph
from triage.rerun import Evaluator, campaign_config, stored_case


@pytest.fixture(scope="module")
def evaluator():
    """Judges like a stored run does (its config's reference and limits), unlike the shared fixture."""
    config = CampaignConfig(backends=BACKENDS).to_dict()
    with Evaluator.from_config({"campaign": config}) as running:
        yield running


def test_stored_case_round_trips_and_reproduces_the_signature(tmp_path, evaluator):
    case = make_case(planted_graph(), seed=3, opset=15, index=5)
    store = start_run(CampaignConfig(backends=BACKENDS, opset=15), tmp_path / "run")
    [finding_id] = record_findings(store, evaluator, case)
    [stored] = store.findings()
    rebuilt = stored_case(store, finding_id)
    assert rebuilt.graph == case.graph and rebuilt.model == case.model
    assert (rebuilt.opset, rebuilt.seed, rebuilt.index) == (15, 3, 5)
    assert all(np.array_equal(rebuilt.inputs[name], case.inputs[name]) for name in case.inputs)
    [again] = evaluator.evaluate(rebuilt)
    assert (again.kind, again.backends, again.signature) == (FindingKind.MISMATCH, ("planted",), stored.signature)


def test_evaluate_many_judges_each_case_alone(evaluator):
    planted = make_case(planted_graph(), seed=1)
    clean_graph = prefix_graph(planted_graph(), 3)  # stops before the Mul
    results = evaluator.evaluate_many([planted, make_case(clean_graph, seed=1)])
    assert [[f.backends for f in findings] for findings in results] == [[("planted",)], []]
    assert all(f.signature for f in results[0])


def test_only_graph_campaigns_have_a_configuration():
    with pytest.raises(ValueError, match="TIR"):
        campaign_config({"mode": "tir", "seed": 0})
