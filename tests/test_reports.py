"""Reports of a real small run in every format, and `tcfuzz status` on a run being written."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree
from dataclasses import replace
from pathlib import Path

import pytest

from corpus.store import RunStore
from fuzzer.campaign import Campaign, CampaignConfig, start_run
from reports import sarif
from reports.html import render_html
from reports.junit import render_junit
from reports.markdown import render_markdown
from reports.model import fingerprint, summarize
from reports.sarif import render_sarif
from triage.db import Status, sync_signatures, update_signature

ROOT = Path(__file__).resolve().parents[1]
TCFUZZ = Path(sys.executable).with_name("tcfuzz")
SARIF_LEVELS = {"none", "note", "warning", "error"}


def run_with_findings(run_dir: Path, seed: int) -> RunStore:
    """The store of a short real campaign: two fast backends and one that answers wrongly on
    every 4th test."""
    config = CampaignConfig(backends=("ort-none", "onnx-ref", "tests.fault_backends:WrongAnswer"), seed=seed,
                            nodes=3, max_tests=12, reference="onnx-ref", input_budget=None)
    store = start_run(config, run_dir)
    Campaign(config, store).run()
    return store


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("reports") / "run"
    run_with_findings(run_dir, seed=5).close()
    return run_dir


@pytest.fixture
def summary(run_dir):
    with RunStore.open(run_dir, read_only=True) as store:
        return summarize(store)


def tcfuzz(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(TCFUZZ), *args], cwd=ROOT, capture_output=True, text=True, timeout=120, **kwargs)


def test_summary_counts_every_finding_once_per_signature(run_dir, summary):
    with RunStore.open(run_dir, read_only=True) as store:
        findings = store.findings()
        assert summary.findings_by_kind == store.counts_by_kind()
    assert {row.signature for row in summary.signatures} == {f.signature for f in findings}
    assert sum(row.count for row in summary.signatures) == len(findings) == summary.findings > 0
    assert summary.tests == 12 and not summary.triaged and summary.coverage == []
    assert {row.status for row in summary.signatures} == {"new"}  # no baseline, no triage
    wrong = next(row for row in summary.backend_rows if row.name == "fault-wrong")
    assert sum(wrong.findings.values()) == len(findings)
    assert [row.tests for row in summary.backend_rows] == [12, 12, 12]  # every backend's outcome of every test
    assert all(row.errors == 0 and row.outcomes["ok"] + row.unsupported == 12 for row in summary.backend_rows)
    assert "| backend | tests | errors | unsupported |" in render_markdown(summary)
    data = json.loads(json.dumps(summary.to_dict()))
    assert data["findings"]["unique"] == len(summary.signatures)
    assert {row["name"]: row["tests"] for row in data["backend_table"]} == {"fault-wrong": 12, "onnx-ref": 12,
                                                                             "ort-none": 12}
    assert data["coverage"] is None and data["triaged"] is False


def test_baseline_signatures_are_known_and_do_not_fail(run_dir, summary):
    known = summary.signatures[0].signature
    with RunStore.open(run_dir, read_only=True) as store:
        with_baseline = summarize(store, frozenset({known}))
    statuses = {row.signature: row.status for row in with_baseline.signatures}
    assert statuses[known] == "known"
    assert known not in {row.signature for row in with_baseline.failing()}
    assert len(with_baseline.failing()) == len(summary.signatures) - 1


def test_junit_has_one_case_per_signature_and_fails_the_new_ones(run_dir, summary):
    with RunStore.open(run_dir, read_only=True) as store:
        with_baseline = summarize(store, frozenset({summary.signatures[0].signature}))
    suite = ElementTree.fromstring(render_junit(with_baseline).encode())
    cases = suite.findall("testcase")
    assert [case.get("name") for case in cases] == [row.signature for row in with_baseline.signatures]
    failed = {case.get("name") for case in cases if case.find("failure") is not None}
    assert failed == {row.signature for row in with_baseline.failing()}
    assert suite.get("tests") == str(len(cases)) and suite.get("failures") == str(len(failed))


def check_sarif_structure(log: dict) -> None:
    """The properties SARIF 2.1.0 requires, and those GitHub code scanning needs."""
    assert log["version"] == "2.1.0" and log["$schema"].endswith("sarif-2.1.0.json")
    assert isinstance(log["runs"], list) and len(log["runs"]) == 1
    run = log["runs"][0]
    driver = run["tool"]["driver"]
    assert driver["name"] == "tcfuzz"
    rules = driver["rules"]
    assert len({rule["id"] for rule in rules}) == len(rules)
    for rule in rules:
        assert rule["id"] and rule["shortDescription"]["text"] and rule["fullDescription"]["text"]
    for result in run["results"]:
        assert result["message"]["text"]
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["level"] in SARIF_LEVELS
        assert result["baselineState"] in {"new", "unchanged", "updated", "absent"}
        (location,) = result["locations"]
        assert location["physicalLocation"]["artifactLocation"]["uri"]
        assert location["physicalLocation"]["region"]["startLine"] >= 1
        assert re.fullmatch(r"[0-9a-f]{64}", result["partialFingerprints"][sarif.FINGERPRINT_KEY])


def test_sarif_is_valid_and_its_fingerprints_are_stable(run_dir, summary, tmp_path):
    first = json.loads(render_sarif(summary, ROOT))
    with RunStore.open(run_dir, read_only=True) as store:
        second = json.loads(render_sarif(summarize(store), tmp_path))
    check_sarif_structure(first)
    fingerprints = [[r["partialFingerprints"] for r in log["runs"][0]["results"]] for log in (first, second)]
    assert fingerprints[0] == fingerprints[1]
    assert {f[sarif.FINGERPRINT_KEY] for f in fingerprints[0]} == {fingerprint(row.signature)
                                                                   for row in summary.signatures}
    uri = first["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri == (run_dir / "findings.db").as_uri()  # outside the checkout: an absolute URI


def test_sarif_stays_within_its_limits(summary, monkeypatch):
    monkeypatch.setattr(sarif, "MAX_RESULTS", 300)  # GitHub's 25,000 and 10 MB, scaled down
    monkeypatch.setattr(sarif, "MAX_BYTES", 200_000)
    row = summary.signatures[0]
    rows = tuple(replace(row, signature=f"{row.signature}/{index}", summary="x" * 5000) for index in range(400))
    text = render_sarif(replace(summary, signatures=rows), ROOT)
    log = json.loads(text)
    results = log["runs"][0]["results"]
    check_sarif_structure(log)
    assert len(text.encode()) <= sarif.MAX_BYTES
    assert 0 < len(results) <= sarif.MAX_RESULTS
    assert log["runs"][0]["properties"]["resultsLeftOut"] == len(rows) - len(results)
    assert max(len(result["message"]["text"]) for result in results) == sarif.MESSAGE_LIMIT


def test_markdown_and_html_say_what_is_missing(summary, tmp_path):
    markdown = render_markdown(summary)
    assert "no coverage recorded" in markdown and "Not triaged" in markdown
    table_rows = [line for line in markdown.splitlines() if line.startswith("| new |")]
    assert len(table_rows) == len(summary.signatures)
    page = render_html(summary, tmp_path)
    assert page.count('src="data:image/png;base64,') == 2  # tests/s and findings; no coverage series
    assert "no coverage recorded" in page and "Not triaged" in page


def test_triaged_run_shows_statuses_and_links_to_repro_and_report(run_dir, tmp_path):
    triaged_dir = tmp_path / "triaged"
    shutil.copytree(run_dir, triaged_dir)
    with RunStore.open(triaged_dir) as store:
        records = sync_signatures(store, baseline=())
        repro = Path("triage/first/repro.py")
        (triaged_dir / repro.parent).mkdir(parents=True)
        (triaged_dir / repro).write_text("# repro\n")
        (triaged_dir / repro.with_name("report.md")).write_text("# report\n")
        update_signature(store, records[0].signature, repro_path=str(repro), reproducibility=0.6,
                         status=Status.FLAKY)
    with RunStore.open(triaged_dir, read_only=True) as store:
        summary = summarize(store)
    assert summary.triaged
    row = next(row for row in summary.signatures if row.signature == records[0].signature)
    assert (row.status, row.reproducibility, row.repro, row.report) == (
        "flaky", 0.6, str(repro), str(repro.with_name("report.md")))
    page = render_html(summary, triaged_dir / "report")
    assert 'href="../triage/first/repro.py"' in page and 'href="../triage/first/report.md"' in page
    result = json.loads(render_sarif(summary, triaged_dir))["runs"][0]["results"]
    flaky = next(r for r in result if r["properties"]["signature"] == row.signature)
    assert flaky["level"] == "warning"
    assert flaky["locations"][0]["physicalLocation"]["artifactLocation"] == {
        "uri": "triage/first/repro.py", "uriBaseId": "%SRCROOT%"}


def test_report_command_writes_the_chosen_formats(run_dir, tmp_path):
    result = tcfuzz("report", str(run_dir), "-o", str(tmp_path / "all"))
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "all").iterdir()) == [
        "index.html", "junit.xml", "summary.json", "summary.md", "tcfuzz.sarif"]
    result = tcfuzz("report", str(run_dir), "-o", str(tmp_path / "one"), "--format", "sarif")
    assert result.returncode == 0 and [p.name for p in (tmp_path / "one").iterdir()] == ["tcfuzz.sarif"]


@pytest.mark.parametrize("args, words", [
    (["report", "/nonexistent/run"], ["not a tcfuzz run directory"]),
    (["status", "/nonexistent/run"], ["not a tcfuzz run directory"]),
    (["report", ".", "--format", "pdf"], ["invalid choice"]),
])
def test_bad_input_gives_one_line(args, words):
    result = tcfuzz(*args)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and all(w in result.stderr for w in words), result.stderr


@pytest.mark.slow
def test_status_reads_a_run_while_it_is_written(tmp_path):
    run_dir = tmp_path / "live"
    campaign = subprocess.Popen(
        [str(TCFUZZ), "fuzz", "--backends", "onnx-ref,ort-none", "--nodes", "3", "--max-tests", "600",
         "--input-search", "0", "--out", str(run_dir)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        seen = []
        deadline = time.monotonic() + 120
        while campaign.poll() is None and time.monotonic() < deadline:
            result = tcfuzz("status", str(run_dir))
            match = re.search(r"│ tests\s+│\s+([\d,]+)", result.stdout)
            if result.returncode == 0 and "running" in result.stdout and match:
                seen.append(int(match.group(1).replace(",", "")))
            time.sleep(0.2)
        assert campaign.wait(timeout=120) in (0, 1), campaign.stderr.read().decode()  # 1: findings
    finally:
        if campaign.poll() is None:
            os.killpg(campaign.pid, signal.SIGKILL)
    assert seen == sorted(seen) and len(set(seen)) >= 2 and seen[0] < 600  # watched it grow
    with RunStore.open(run_dir, read_only=True) as store:
        assert store.progress().tests == 600  # the reader never held the writer back
    watch = subprocess.Popen([str(TCFUZZ), "status", str(run_dir), "--watch", "0.2"], cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(3)
    watch.send_signal(signal.SIGINT)
    output, _ = watch.communicate(timeout=30)
    assert watch.returncode == 130
    assert output.count("tcfuzz status") >= 2 and re.search(r"│ tests\s+│\s+600 │", output)
