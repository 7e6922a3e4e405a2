"""Campaigns end to end: findings survive SIGKILL, and a resumed campaign equals an unbroken one."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from fuzzer.store import RunStore
from fuzzer.campaign.config import CampaignConfig, seed_for_test, split_backends
from fuzzer.campaign.driver import Campaign, start_run
from tests.helpers import ROOT

BACKENDS = "onnx-ref,tests.fault_backends:WrongAnswer"


def fuzz(*args: str, cache: Path) -> subprocess.Popen:
    """`tcfuzz fuzz` in a subprocess that learns backend support into ``cache``."""
    return subprocess.Popen([sys.executable, "-m", "fuzzer.cli", "fuzz", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                            env={**os.environ, "TCFUZZ_CACHE_DIR": str(cache)})


def reported(run_dir: Path) -> set[tuple[int, str]]:
    """Findings visible to another process right now (read-only, like `tcfuzz status`)."""
    database = run_dir / "findings.db"
    if not database.exists():
        return set()
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
            return set(connection.execute("SELECT test_index, signature FROM findings"))
    except sqlite3.OperationalError:  # schema not created yet
        return set()


def stored(run_dir: Path) -> tuple[set[tuple[int, str]], int]:
    with RunStore.open(run_dir) as store:
        for finding in store.findings():
            for sha in finding.artifacts.values():
                store.get_blob(sha)  # every artifact readable and hash-correct
        return {(f.test_index, f.signature) for f in store.findings()}, store.progress().tests


def test_sigkill_loses_no_finding_and_resume_matches_an_unbroken_run(tmp_path):
    common = ["--backends", BACKENDS, "--nodes", "3", "--seed", "7", "--max-tests", "240"]
    killed_dir, unbroken_dir = tmp_path / "killed", tmp_path / "unbroken"
    process = fuzz(*common, "--out", str(killed_dir), cache=tmp_path / "cache-killed")
    deadline = time.monotonic() + 120
    while len(seen := reported(killed_dir)) < 15:
        assert process.poll() is None, process.stderr.read().decode()
        assert time.monotonic() < deadline, "campaign reported too few findings"
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    after_kill, tests_done = stored(killed_dir)
    assert seen <= after_kill
    assert tests_done < 240

    resumed = fuzz("--resume", str(killed_dir), cache=tmp_path / "cache-killed")
    assert resumed.wait(timeout=300) == 1, resumed.stderr.read().decode()  # 1: findings exist
    unbroken = fuzz(*common, "--out", str(unbroken_dir), cache=tmp_path / "cache-unbroken")
    assert unbroken.wait(timeout=300) == 1, unbroken.stderr.read().decode()
    resumed_findings, resumed_tests = stored(killed_dir)
    unbroken_findings, unbroken_tests = stored(unbroken_dir)
    assert unbroken_tests == 240 and resumed_tests >= 240
    assert resumed_findings == unbroken_findings
    wrong_answers = {index for index, sig in unbroken_findings if sig.startswith("mismatch/fault-wrong")}
    assert {index % 4 for index in wrong_answers} == {1}  # exactly the triggered tests
    assert len(wrong_answers) >= 40  # all but the triggered tests the reference evaluator cannot run


def test_campaign_survives_every_fault_kind(tmp_path):
    faults = ["Segfault", "Abort", "Hang", "MemoryBomb"]
    config = CampaignConfig(backends=("onnx-ref", *(f"tests.fault_backends:{f}" for f in faults)),
                            seed=3, nodes=3, max_tests=6, timeout=10.0, memory_mb=350)
    with start_run(config, tmp_path / "run") as store:
        snapshot = Campaign(config, store).run()
        kinds = {(f.kind, f.backends[0]) for f in store.findings()}
        finding = store.findings(kind="crash")[0]
        assert finding.seed == seed_for_test(3, finding.test_index)
        assert store.load_inputs(finding.id)
    assert snapshot.tests == 6
    assert kinds == {("crash", "fault-segfault"), ("crash", "fault-abort"), ("hang", "fault-hang"),
                     ("oom", "fault-memory")}
    # Tests 1 and 5 trigger each of the four faults: 8 restarts. A sampled test's second run
    # (the determinism oracle) can meet the memory bomb's worker still over its limit and
    # cost one more, depending on the machine's load. The time limit leaves the memory bomb
    # room to reach its limit on a loaded machine or a fresh virtual one (it was once read as a
    # hang at 3 s; first touches of memory have taken 2.9 s).
    assert 8 <= snapshot.restarts <= 9
    # the summary names the backends whose workers were restarted
    by_backend = snapshot.restarts_by_backend
    assert sum(by_backend.values()) == snapshot.restarts and set(by_backend) == {
        f"tests.fault_backends:{fault}" for fault in faults}


def test_lanes_share_the_work(tmp_path):
    config = CampaignConfig(backends=("onnx-ref", "ort-none"), nodes=4, max_tests=40, workers=2)
    with start_run(config, tmp_path / "run") as store:
        snapshot = Campaign(config, store).run()
        assert store.progress().next_index == 40
    assert snapshot.tests == 40


def test_slow_compilers_run_in_their_own_lane(tmp_path):
    config = CampaignConfig(backends=("onnx-ref", "ort-none", "tests.fault_backends:SlowAlwaysWrong"),
                            nodes=3, max_tests=200, reference="onnx-ref")
    with start_run(config, tmp_path / "run") as store:
        campaign = Campaign(config, store)
        assert split_backends(config) == (("onnx-ref", "ort-none"),
                                          ("onnx-ref", "tests.fault_backends:SlowAlwaysWrong"))
        snapshot = campaign.run()
        slow = {f.test_index for f in store.findings() if f.backends == ("fault-slow-wrong",)}
        counted = {name: sum(counts.values()) for name, counts in campaign.outcome_counts.items()}
    assert snapshot.tests == 200 and counted["ort-none"] == 200  # the fast lane ran every test
    assert slow and counted["fault-slow-wrong"] < 200  # the slow one those its lane had time for
