"""Quality: triage on what real campaigns produce, not only on planted bugs.

A short default-style campaign on real compilers (ONNX Runtime, torch, the judges) is
triaged end to end; a campaign of misbehaving backends gives every failure kind (crash by
two signals, hang, out of memory). Triage must finish every bug without a harness error,
and the bug list must be shorter than the signature list."""

from __future__ import annotations

import pytest

from fuzzer.store import RunStore
from fuzzer.campaign.config import CampaignConfig
from fuzzer.campaign.driver import Campaign, start_run
from fuzzer.cli import main
from triage.bugs import run_bugs
from triage.db import Status
from triage.pipeline import triage_run

REAL_BACKENDS = "ref-f64,onnx-ref,ort-none,ort-basic,ort-all,torch"


@pytest.mark.slow
def test_a_real_campaign_is_triaged_into_fewer_bugs_than_signatures(tmp_path, capsys):
    run = tmp_path / "run"
    status = main(["fuzz", "--backends", REAL_BACKENDS, "--max-tests", "1500", "--seed", "11", "--out", str(run)])
    assert status in (0, 1)
    summary = triage_run(run, reruns=1, time_budget=10, total_time=150)
    assert not summary.count(Status.TRIAGE_FAILED), [r.notes.get("failed") for r in summary.records]
    with RunStore.open(run, read_only=True) as store:
        signatures = {finding.signature for finding in store.findings()}
        bugs = run_bugs(store)
    assert signatures, "the campaign found nothing to triage; pick another seed"
    assert len(bugs) < len(signatures) or len(signatures) == 1
    triaged = [bug for bug in bugs if bug.reduced_ops]
    assert triaged and all(bug.repro for bug in triaged)
    capsys.readouterr()
    assert main(["bugs", str(run)]) in (0, 1)
    lines = capsys.readouterr().out.splitlines()
    assert any(bug.id in line and bug.compiler in line for bug in bugs for line in lines)


@pytest.mark.slow
def test_every_failure_kind_is_triaged_without_a_harness_error(tmp_path):
    faults = ["Segfault", "Abort", "Hang", "MemoryBomb"]
    config = CampaignConfig(backends=("onnx-ref", *(f"tests.fault_backends:{f}" for f in faults)),
                            seed=3, nodes=3, max_tests=6, timeout=10.0, memory_mb=350)
    with start_run(config, tmp_path / "run") as store:
        Campaign(config, store).run()
    summary = triage_run(tmp_path / "run", reruns=1, time_budget=5)
    assert not summary.count(Status.TRIAGE_FAILED), [r.notes.get("failed") for r in summary.records]
    with RunStore.open(tmp_path / "run", read_only=True) as store:
        bugs = run_bugs(store)
    assert sorted((bug.compiler, bug.kind) for bug in bugs) == [
        ("faulty", "crash"), ("faulty", "crash"), ("faulty", "hang"), ("faulty", "oom")]
    # a bomb that a loaded machine slows into a hang in triage's one re-run is "not reproduced"
    assert all(bug.category in ("bug", "unreproduced") for bug in bugs)
