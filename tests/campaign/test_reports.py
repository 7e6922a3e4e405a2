"""Reports of a real small run in every format (one entry per bug, reference issues and invalid
tests apart), the campaign's summary lines, and `tcfuzz status` on a run being written."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
import xml.etree.ElementTree as ElementTree
from dataclasses import replace
from pathlib import Path

import pytest

from rich.console import Console

from fuzzer.store import RunStore
from fuzzer.campaign.config import Snapshot
from fuzzer.cli import bug_count_line
from fuzzer.execution.outcome import Stage
from fuzzer.campaign.progress import plain_line, summary_table
from oracles.finding import Finding, FindingKind
from reports import sarif
from reports.html import render_html
from reports.junit import render_junit
from reports.markdown import render_markdown
from reports.model import fingerprint, summarize
from reports.sarif import render_sarif
from reports.status import status_table
from triage.db import Status, sync_signatures, update_signature
from triage.repro import bug_report_markdown
from tests.helpers import BROADCAST, ROOT, TCFUZZ, run_with_findings, tcfuzz as run_tcfuzz

SARIF_LEVELS = {"none", "note", "warning", "error"}


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
    return run_tcfuzz(*args, installed=True, timeout=120, **kwargs)


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
    markdown = render_markdown(summary)
    assert "| backend | tests | ran | declined | errors |" in markdown
    for row in summary.backend_rows:  # ran: its tests less those it declined
        assert f"| {row.name} | {row.tests} | {row.tests - row.unsupported} | {row.unsupported} |" in markdown
    assert any(row.unsupported for row in summary.backend_rows)  # ort-none declines some operators
    data = json.loads(json.dumps(summary.to_dict()))
    assert data["findings"]["unique"] == len(summary.signatures)
    assert {row["name"]: row["tests"] for row in data["backend_table"]} == {"fault-wrong": 12, "onnx-ref": 12,
                                                                             "ort-none": 12}
    assert data["coverage"] is None and data["triaged"] is False
    assert data["valid_share"] == round(summary.valid_share, 4)  # the old key stays
    assert data["findings"]["bugs"] == len(summary.compiler_bugs()) > 0
    assert sum(bug["findings"] for bug in data["bugs"]) == len(findings)


def test_baseline_signatures_are_known_and_do_not_fail(run_dir, summary):
    known = summary.signatures[0].signature
    with RunStore.open(run_dir, read_only=True) as store:
        with_baseline = summarize(store, frozenset({known}))
    statuses = {row.signature: row.status for row in with_baseline.signatures}
    assert statuses[known] == "known"
    assert known not in {row.signature for row in with_baseline.failing()}
    assert len(with_baseline.failing()) == len(summary.signatures) - 1


def test_junit_has_one_case_per_bug_and_fails_the_new_ones(run_dir, summary):
    known = summary.bugs[0]
    with RunStore.open(run_dir, read_only=True) as store:
        with_baseline = summarize(store, frozenset({known.fingerprints[0]}))
    assert len(with_baseline.bugs) == len(summary.bugs) >= 2
    suite = ElementTree.fromstring(render_junit(with_baseline).encode())
    cases = suite.findall("testcase")
    assert [case.get("name").split(":")[0] for case in cases] == [bug.id for bug in with_baseline.bugs]
    assert all(case.get("classname") == f"tcfuzz.{bug.compiler}.{bug.kind}"
               for case, bug in zip(cases, with_baseline.bugs))
    failed = {case.get("name").split(":")[0] for case in cases if case.find("failure") is not None}
    assert failed == {bug.id for bug in with_baseline.failing_bugs()} and known.id not in failed
    assert suite.get("tests") == str(len(cases)) and suite.get("failures") == str(len(failed)) != "0"
    detail = next(case for case in cases if case.get("name").startswith(known.id)).find("system-out").text
    for line in ("status: known", "configurations: fault-wrong", "culprit: not isolated",
                 "reduced ops: (not reduced)", "verified: no", "repro: none yet"):
        assert line in detail


def every_category(summary):
    """``summary`` with one bug of each status and category, made from its first bug."""
    base = summary.bugs[0]

    def bug(name: str, **changes):
        return replace(base, id=name, fingerprints=(f"target/faulty/{name}",), **changes)

    bugs = (bug("Bnew0001", status="new"), bug("Bflaky01", status="flaky"), bug("Bknown01", status="known"),
            bug("Bfixed01", status="fixed"), bug("Bfailed1", status="triage-failed", triage_error="reduction broke"),
            bug("Breffix1", status="fixed", category="reference-issue", compiler="onnx.reference"),
            bug("Bref0001", status="new", category="reference-issue", compiler="onnx.reference",
                configurations=("onnx-ref",), summary="onnx-ref differs from ref-f64 on v1"),
            bug("Binval01", status="new", category="invalid-test", summary="graph breaks the spec"))
    return replace(summary, bugs=bugs)


def test_only_new_flaky_and_untriaged_compiler_bugs_fail_junit(summary):
    mixed = every_category(summary)
    assert [bug.id for bug in mixed.failing_bugs()] == ["Bnew0001", "Bflaky01", "Bfailed1"]
    suite = ElementTree.fromstring(render_junit(mixed).encode())
    cases = {case.get("name").split(":")[0]: case for case in suite.findall("testcase")}
    assert list(cases) == [bug.id for bug in mixed.bugs]
    assert {name for name, case in cases.items() if case.find("failure") is not None} == {
        "Bnew0001", "Bflaky01", "Bfailed1"}
    assert suite.get("failures") == str(len(mixed.failing_bugs())) == "3"
    assert {name for name, case in cases.items() if case.find("skipped") is not None} == {"Bfixed01", "Breffix1"}
    assert suite.get("skipped") == "2" and suite.get("tests") == str(len(mixed.bugs))
    reference, invalid = cases["Bref0001"], cases["Binval01"]
    assert reference.get("classname") == "tcfuzz.onnx-reference.mismatch"
    assert reference.find("failure") is None and "reference issue" in reference.find("system-out").text
    assert invalid.find("failure") is None and "invalid test" in invalid.find("system-out").text
    assert "triage failed: reduction broke" in cases["Bfailed1"].find("failure").text
    assert cases["Bref0001"].get("name") == "Bref0001: onnx-ref differs from ref-f64 on v1"


def test_sarif_has_one_result_per_bug_and_reference_issues_are_notes(summary):
    mixed = every_category(summary)
    log = json.loads(render_sarif(mixed, ROOT))
    check_sarif_structure(log)
    results = log["runs"][0]["results"]
    levels = {result["properties"]["bug"]: result["level"] for result in results}
    assert levels == {"Bnew0001": "error", "Bflaky01": "warning", "Bfailed1": "warning", "Bknown01": "note",
                      "Bref0001": "note", "Binval01": "note"}  # fixed ones are not results
    order = [result["level"] for result in results]
    assert order == sorted(order, key=["error", "warning", "note"].index)  # most severe first
    by_bug = {bug.id: bug for bug in mixed.bugs}
    for result in results:
        bug = by_bug[result["properties"]["bug"]]
        assert result["partialFingerprints"] == {sarif.FINGERPRINT_KEY: fingerprint(bug.fingerprints[0])}
        assert result["ruleId"] == f"{bug.compiler}/{bug.kind}" and result["message"]["text"].startswith(bug.id)
    reference = next(r for r in results if r["properties"]["bug"] == "Bref0001")
    assert "reference issue, not a compiler bug" in reference["message"]["text"]
    assert reference["properties"]["category"] == "reference-issue"
    invalid = next(r for r in results if r["properties"]["bug"] == "Binval01")
    assert "invalid test, not a compiler bug" in invalid["message"]["text"]
    assert {rule["id"] for rule in log["runs"][0]["tool"]["driver"]["rules"]} == {
        "faulty/mismatch", "onnx.reference/mismatch"}


def test_markdown_and_html_list_bugs_first_then_reference_issues_and_invalid_tests(summary, tmp_path):
    mixed = every_category(summary)
    markdown = render_markdown(mixed)
    headings = [line for line in markdown.splitlines() if line.startswith("## ")]
    assert headings == ["## Bugs", "## Reference issues", "## Invalid tests", "## Findings by signature",
                        "## Backends"]
    sections = dict(zip(headings, markdown.split("\n## ")[1:]))
    for name, section in (("## Bugs", ["Bnew0001", "Bflaky01", "Bknown01", "Bfixed01", "Bfailed1"]),
                          ("## Reference issues", ["Breffix1", "Bref0001"]), ("## Invalid tests", ["Binval01"])):
        assert [line.split(" | ")[0].lstrip("| ") for line in sections[name].splitlines()
                if line.startswith("| B")] == section
    assert "| Bfailed1 | triage-failed | faulty | mismatch |" in markdown
    assert "triage failed: reduction broke" in markdown
    assert "ran on all backends" in markdown and "| valid |" not in markdown
    overview = markdown.splitlines()[2]
    assert overview.startswith(f"**{len(mixed.compiler_bugs())} bugs (root causes; 0 with a verified repro, 3 failing "
                               f"CI) from {mixed.findings} findings in {len(mixed.signatures)} unique signatures; "
                               "2 reference issues; 1 invalid tests.**")
    page = render_html(mixed, tmp_path)
    assert page.index('<h2 id="bug">Bugs</h2>') < page.index('<h2 id="reference-issue">Reference issues</h2>') \
        < page.index('<h2 id="invalid-test">Invalid tests</h2>') < page.index("<h2>Findings by signature</h2>")
    assert page.count("<td>Bref0001</td>") == 1 and "ran on all backends" in page
    assert "<th>ran</th><th>declined</th>" in page


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
    assert [f[sarif.FINGERPRINT_KEY] for f in fingerprints[0]] == [fingerprint(bug.fingerprints[0])
                                                                   for bug in summary.bugs]
    assert len(fingerprints[0]) == len(summary.bugs) > 0
    uri = first["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri == (run_dir / "findings.db").as_uri()  # outside the checkout: an absolute URI


def test_sarif_stays_within_its_limits(summary, monkeypatch):
    monkeypatch.setattr(sarif, "MAX_RESULTS", 300)  # GitHub's 25,000 and 10 MB, scaled down
    monkeypatch.setattr(sarif, "MAX_BYTES", 200_000)
    bug = summary.bugs[0]
    bugs = tuple(replace(bug, id=f"B{index:07d}", fingerprints=(f"{bug.fingerprints[0]}/{index}",), summary="x" * 5000)
                 for index in range(400))
    text = render_sarif(replace(summary, bugs=bugs), ROOT)
    log = json.loads(text)
    results = log["runs"][0]["results"]
    check_sarif_structure(log)
    assert len(text.encode()) <= sarif.MAX_BYTES
    assert 0 < len(results) <= sarif.MAX_RESULTS
    assert log["runs"][0]["properties"]["resultsLeftOut"] == len(bugs) - len(results)
    assert max(len(result["message"]["text"]) for result in results) == sarif.MESSAGE_LIMIT


def test_markdown_and_html_say_what_is_missing(summary, tmp_path):
    markdown = render_markdown(summary)
    assert "no coverage recorded" in markdown and "Not triaged" in markdown
    table_rows = [line for line in markdown.splitlines() if line.startswith("| new |")]
    assert len(table_rows) == len(summary.signatures)
    bug_rows = [line for line in markdown.splitlines() if re.match(r"\| B[0-9a-f]{7} \| new \|", line)]
    assert len(bug_rows) == len(summary.bugs)
    assert "## Reference issues\n\nA judge" in markdown and markdown.count("\nNone.\n") == 2
    page = render_html(summary, tmp_path)
    assert page.count('src="data:image/png;base64,') == 2  # tests/s and findings; no coverage series
    assert "no coverage recorded" in page and "Not triaged" in page


def with_first_bug_triaged(run_dir: Path, copy: Path, **fields) -> str:
    """A copy of ``run_dir`` at ``copy`` whose first bug's representative signature has
    ``fields`` (triage's record); that signature."""
    shutil.copytree(run_dir, copy)
    with RunStore.open(copy) as store:
        signature = summarize(store).bugs[0].representative
        sync_signatures(store, baseline=())
        update_signature(store, signature, **fields)
    return signature


def test_triaged_run_shows_statuses_and_links_to_repro_and_report(run_dir, tmp_path):
    triaged_dir = tmp_path / "triaged"
    repro = Path("triage/first/repro.py")
    signature = with_first_bug_triaged(run_dir, triaged_dir, repro_path=str(repro), reproducibility=0.6,
                                       status=Status.FLAKY)
    (triaged_dir / repro.parent).mkdir(parents=True)
    (triaged_dir / repro).write_text("# repro\n")
    (triaged_dir / repro.with_name("report.md")).write_text("# report\n")
    with RunStore.open(triaged_dir, read_only=True) as store:
        summary = summarize(store)
    assert summary.triaged
    row = next(row for row in summary.signatures if row.signature == signature)
    assert (row.status, row.reproducibility, row.repro, row.report) == (
        "flaky", 0.6, str(repro), str(repro.with_name("report.md")))
    bug = next(bug for bug in summary.bugs if signature in bug.signatures)
    assert (bug.status, bug.repro, bug.report, bug.reproducibility) == ("flaky", str(repro),
                                                                       str(repro.with_name("report.md")), 0.6)
    page = render_html(summary, triaged_dir / "report")
    bugs_section = page.split("<h2>Findings by signature</h2>")[0]
    assert 'href="../triage/first/repro.py"' in bugs_section and 'href="../triage/first/report.md"' in bugs_section
    assert 'href="../triage/first/repro.py"' in page.split("<h2>Findings by signature</h2>")[1]
    markdown = render_markdown(summary, triaged_dir / "report")
    assert "[repro.py](../triage/first/repro.py) [report.md](../triage/first/report.md)" in markdown
    assert "`triage/first/repro.py`" in render_markdown(summary)  # no output directory: the run's path
    junit = ElementTree.fromstring(render_junit(summary).encode())
    case = next(case for case in junit.findall("testcase") if case.get("name").startswith(bug.id))
    assert case.find("failure") is not None and f"repro: {repro} (run: python {repro};" in case.find("failure").text
    result = json.loads(render_sarif(summary, triaged_dir))["runs"][0]["results"]
    flaky = next(r for r in result if r["properties"]["bug"] == bug.id)
    assert flaky["level"] == "warning"
    assert flaky["locations"][0]["physicalLocation"]["artifactLocation"] == {
        "uri": "triage/first/repro.py", "uriBaseId": "%SRCROOT%"}


def test_a_signature_whose_triage_failed_is_reported_and_fails_ci(run_dir, tmp_path):
    """A real campaign's triage left two signatures triage-failed, and `tcfuzz report` crashed."""
    failed_dir = tmp_path / "failed"
    signature = with_first_bug_triaged(run_dir, failed_dir, status=Status.TRIAGE_FAILED)
    with RunStore.open(failed_dir, read_only=True) as store:
        summary = summarize(store)
    assert summary.by_status()["triage-failed"] == 1
    assert signature in {row.signature for row in summary.failing()}
    assert tcfuzz("report", str(failed_dir)).returncode == 0


def test_report_command_writes_the_chosen_formats(run_dir, tmp_path):
    result = tcfuzz("report", str(run_dir), "-o", str(tmp_path / "all"))
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "all").iterdir()) == [
        "index.html", "junit.xml", "summary.json", "summary.md", "tcfuzz.sarif"]
    result = tcfuzz("report", str(run_dir), "-o", str(tmp_path / "one"), "--format", "sarif")
    assert result.returncode == 0 and [p.name for p in (tmp_path / "one").iterdir()] == ["tcfuzz.sarif"]


def test_progress_and_status_say_ran_on_all_backends_and_each_backends_ran_and_declined(summary):
    snapshot = Snapshot(tests=10, valid=4, seconds=2.0)
    console = Console(record=True, width=100)
    console.print(summary_table(snapshot, outcomes={"ort-none": {"ok": 7, "unsupported": 3}, "tvm": {"ok": 10}}))
    text = console.export_text()
    assert re.search(r"ran on all backends\s+│\s+40\.0%", text) and "valid" not in text
    assert re.search(r"ort-none\s+│\s+7 / 3 │", text) and re.search(r"tvm\s+│\s+10 / 0 │", text)
    console = Console(record=True, width=100)
    console.print(summary_table(snapshot))  # no outcome counts: no per-backend rows
    assert "ran / declined" not in console.export_text()
    assert "ran on all backends 40.0%" in plain_line(snapshot) and "valid" not in plain_line(snapshot)
    console = Console(record=True, width=100)
    console.print(status_table(summary, now=0.0))
    text = console.export_text()
    assert re.search(r"ran on all backends\s+│\s+\d+\.\d%", text) and "valid" not in text
    assert re.search(rf"bugs \(root causes\)\s+│\s+{len(summary.compiler_bugs())} \(not reduced\)", text)


def test_campaign_end_line_counts_bugs_and_never_fails(run_dir, summary, tmp_path):
    triage = "" if any(bug.reduced_ops for bug in summary.bugs) else " before triage (it joins more)"
    assert bug_count_line(run_dir) == (f"{len(summary.compiler_bugs())} bugs (root causes){triage} from "
                                       f"{summary.findings} findings; 0 reference issues; see `tcfuzz bugs {run_dir}`")
    assert bug_count_line(tmp_path / "missing").startswith("bug count unavailable: StoreError: ")


def test_bug_report_reads_as_an_issue_for_the_compilers_tracker():
    finding = Finding(FindingKind.MISMATCH, ("ort-all",), Stage.COMPARE, "ort-all differs from ref-f64 on y",
                      {"compared_with": "ref-f64", "output": "y", "dtype": "float32", "error_class": "magnitude"},
                      "mismatch/ort-all/compare/float32/magnitude")
    report = bug_report_markdown(BROADCAST, "ort-all", finding, "print('repro')", {"onnxruntime": "1.0"},
                                 nodes_before=7, configurations=("ort-all", "ort-basic"))
    lines = report.splitlines()
    assert lines[0] == "# onnxruntime: differs from ref-f64 on y"
    assert lines[2].startswith("onnxruntime computes output values that disagree with the ONNX reference "
                               "evaluator (onnx.reference) computing in float64 beyond tolerance on the 1-operator "
                               "ONNX model below (Add), opset 17, which tcfuzz reduced from a generated model of 7")
    assert "Only its optimizing configurations show it" in lines[2]
    headings = [line for line in lines if line.startswith("## ")]
    assert headings == ["## Configurations that show it", "## Environment", "## Minimal graph",
                        "## Expected vs actual", "## Culprit", "## Reproduction"]
    assert "- `ort-all`: ONNX Runtime CPU, ORT_ENABLE_ALL" in report and "- `ort-basic`: " in report
    assert "- onnxruntime 1.0" in report and "run `python repro.py`" in report
    assert "```python\nprint('repro')\n```" in report
    without = bug_report_markdown(BROADCAST, "ort-all", finding, "print('repro')")  # the old call still works
    assert "- `ort-all`: " in without and "others may show it too" in without


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
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(watch.stdout), daemon=True)
    reader.start()
    deadline = time.monotonic() + 120  # a loaded machine takes seconds to import it
    while sum("tcfuzz status" in line for line in list(lines)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    watch.send_signal(signal.SIGINT)
    watch.wait(timeout=30)
    reader.join(timeout=30)
    output = "".join(lines)
    assert watch.returncode == 130
    assert output.count("tcfuzz status") >= 2 and re.search(r"│ tests\s+│\s+600 │", output)


def test_a_finding_not_reproduced_gets_its_own_section_and_fails_nothing(summary, tmp_path):
    hang = replace(summary.bugs[0], id="Bhang001", status="flaky", category="unreproduced", kind="hang")
    with_hang = replace(summary, bugs=(*summary.bugs, hang))
    markdown = render_markdown(with_hang)
    headings = [line for line in markdown.splitlines() if line.startswith("## ")]
    assert headings[:4] == ["## Bugs", "## Reference issues", "## Invalid tests", "## Not reproduced"]
    assert "Not reproduced" not in render_markdown(summary)
    assert hang not in with_hang.compiler_bugs() and hang not in with_hang.failing_bugs()
    assert '<h2 id="unreproduced">Not reproduced</h2>' in render_html(with_hang, tmp_path)
    suite = ElementTree.fromstring(render_junit(with_hang).encode())
    assert suite.get("failures") == str(len(summary.failing_bugs()))
