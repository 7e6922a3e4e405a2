"""Quality: a short campaign finds each planted bug, triage deduplicates it to one
signature, reduces it to at most three nodes within a bounded number of tests and writes a
script that reproduces it.

A crash costs a worker restart per candidate, so its reduction may still be simplifying
values when its time is up: the bound is on nodes and tests, not on finishing."""

from __future__ import annotations

import json

import pytest

from fuzzer.store import RunStore
from tests.quality.planted_ort import focused_campaign
from triage.bugs import run_bugs
from triage.db import Status
from triage.pipeline import STEPS, Triage, triage_run
from triage.reduce import reduce_finding

PLANTED = {
    "PlantedBroadcast": ({"Add", "Mul", "Relu", "Sigmoid"}, "mismatch/planted-broadcast/"),
    "PlantedSliceOffByOne": ({"Slice", "Add", "Relu"}, "mismatch/planted-slice/"),
    "PlantedReduceAxis": ({"ReduceMean", "Add", "Relu"}, "mismatch/planted-reduce/"),
    "PlantedAbort": ({"Concat", "Add", "Relu"}, "crash/planted-abort/prepare/SIGABRT"),
}
MAX_TESTS = 60  # campaign tests
REDUCTION_SECONDS = 20
MAX_REDUCTION_TESTS = 150


@pytest.mark.slow
@pytest.mark.parametrize("planted", sorted(PLANTED))
def test_planted_bug_is_found_deduplicated_reduced_and_reproduced(planted, tmp_path, monkeypatch):
    monkeypatch.setenv("TCFUZZ_CACHE_DIR", str(tmp_path / "cache"))
    ops, prefix = PLANTED[planted]
    run = tmp_path / "run"
    snapshot = focused_campaign(run, planted, ops, max_tests=MAX_TESTS)
    assert len(snapshot.signatures) == 1, snapshot.signatures
    assert next(iter(snapshot.signatures)).startswith(prefix)

    summary = triage_run(run, reruns=2, time_budget=REDUCTION_SECONDS)
    (record,) = summary.records
    assert record.reproducibility == 1.0 and record.status.value == "new"
    reduction = record.notes["reduction"]
    assert reduction["nodes_after"] <= 3 and reduction["tests"] <= MAX_REDUCTION_TESTS, reduction
    assert record.notes["repro"]["verified"], record.notes
    report = (run / "triage").glob("*/report.md")
    assert "## Minimal graph" in next(report).read_text()

    with RunStore.open(run) as store:  # the biggest test case reduces as far
        largest = max(store.findings(),
                      key=lambda f: len(json.loads(store.get_blob(f.artifacts["graph.json"]))["nodes"]))
        reduced = reduce_finding(store, largest.id, time_budget=REDUCTION_SECONDS)
        assert reduced.nodes_after <= 3 and reduced.tests <= MAX_REDUCTION_TESTS


@pytest.mark.slow
@pytest.mark.parametrize("planted, ops, kind", [
    ("PlantedShapeSlip", {"Relu", "Add", "Sigmoid"}, "shape_mismatch"),
    ("PlantedDtypeSlip", {"Sigmoid", "Add", "Relu"}, "dtype_mismatch"),
])
def test_type_bugs_are_triaged_to_one_bug_with_their_consequences(planted, ops, kind, tmp_path, monkeypatch):
    """Shape and dtype disagreements go through every triage step; errors that a wrong shape
    causes downstream join the shape bug."""
    monkeypatch.setenv("TCFUZZ_CACHE_DIR", str(tmp_path / "cache"))
    run = tmp_path / "run"
    snapshot = focused_campaign(run, planted, ops, max_tests=MAX_TESTS)
    assert any(s.startswith(kind) for s in snapshot.signatures), snapshot.signatures
    summary = triage_run(run, reruns=2, time_budget=REDUCTION_SECONDS)
    assert not summary.count(Status.TRIAGE_FAILED)
    with RunStore.open(run) as store:
        bugs = run_bugs(store)
    (bug,) = bugs
    assert bug.fingerprints[0] == f"target/onnxruntime/{kind}/@{'Relu' if kind == 'shape_mismatch' else 'Sigmoid'}"
    assert bug.verified and bug.findings == sum(snapshot.findings.values())


@pytest.mark.slow
def test_an_exception_on_one_signature_is_recorded_and_triage_goes_on(tmp_path, monkeypatch):
    monkeypatch.setenv("TCFUZZ_CACHE_DIR", str(tmp_path / "cache"))
    run = tmp_path / "run"
    snapshot = focused_campaign(run, "PlantedShapeSlip", {"Relu", "Add", "Sigmoid"}, max_tests=MAX_TESTS)
    assert len(snapshot.signatures) >= 2
    original = Triage.reduction

    def broken_for_errors(triage, record, stored):
        if stored.kind == "error":
            raise KeyError("no such backend")
        return original(triage, record, stored)

    monkeypatch.setitem(STEPS, "reduction", broken_for_errors)
    summary = triage_run(run, reruns=1, time_budget=REDUCTION_SECONDS)
    failed = [r for r in summary.records if r.status is Status.TRIAGE_FAILED]
    assert failed and all(r.notes["failed"] == {"step": "reduction", "error": "reduction: KeyError: 'no such backend'"}
                          for r in failed)
    assert any(r.notes.get("repro", {}).get("verified") for r in summary.records)  # the others went on
    monkeypatch.setitem(STEPS, "reduction", original)
    again = triage_run(run, reruns=1, time_budget=REDUCTION_SECONDS)  # tried again, and now it works
    assert not again.count(Status.TRIAGE_FAILED)
