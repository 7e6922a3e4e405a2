"""JUnit XML: one test case per bug (root cause, triage.bugs).

New and flaky compiler bugs, and those triage failed on, fail; fixed ones are skipped; known
ones pass with their details in system-out. Reference issues (a judge is wrong) and invalid
tests never fail: they pass, saying what they are in system-out.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree

from reports.model import RunSummary
from triage.bugs import FAILING_STATUSES, Bug

MESSAGE_LIMIT = 1000
NAME_SUMMARY_LIMIT = 100
CATEGORY_TEXT = {
    "bug": "compiler bug",
    "reference-issue": "reference issue: a judge is wrong, not the compiler under test; not counted as a bug",
    "invalid-test": "invalid test: the reduced graph breaks the ONNX specification; not counted as a bug",
    "unreproduced": "not reproduced in triage's fresh re-runs; not counted as a bug",
}


def case_name(bug: Bug) -> str:
    summary = " ".join(bug.summary.split())
    if len(summary) > NAME_SUMMARY_LIMIT:
        summary = summary[:NAME_SUMMARY_LIMIT - 1] + "…"
    return f"{bug.id}: {summary}"


def detail(bug: Bug, run_dir: str = "RUN") -> str:
    """What a reader of the CI job needs to act on ``bug`` (paths are relative to ``run_dir``)."""
    repro = (f"{bug.repro} (run: python {bug.repro}; exit status 1 while the bug is present)"
             if bug.repro else f"none yet (tcfuzz triage {run_dir} writes one)")
    lines = [bug.summary,
             f"category: {CATEGORY_TEXT.get(bug.category, bug.category)}",
             f"status: {bug.status}; compiler: {bug.compiler}; kind: {bug.kind}",
             f"configurations: {', '.join(bug.configurations)} ({bug.scope})",
             f"culprit: {bug.culprit or 'not isolated'}",
             f"reduced ops: {' -> '.join(bug.reduced_ops) or '(not reduced)'}",
             f"findings: {bug.findings} in {len(bug.signatures)} signature(s), first test {bug.first_test}",
             "reproducibility: " + ("-" if bug.reproducibility is None else f"{bug.reproducibility:.0%} of re-runs"),
             f"verified: {'yes' if bug.verified else 'no'}",
             f"repro: {repro}"]
    if bug.report and bug.repro:
        lines.append(f"report: {bug.report}")
    if bug.triage_error:
        lines.append(f"triage failed: {bug.triage_error}")
    return "\n".join(lines)


def render_junit(summary: RunSummary) -> str:
    failing = summary.failing_bugs()
    suite = ElementTree.Element("testsuite", name="tcfuzz", tests=str(len(summary.bugs)),
                                failures=str(len(failing)), errors="0",
                                skipped=str(sum(bug.status == "fixed" for bug in summary.bugs)),
                                time=f"{summary.seconds:.3f}")
    properties = ElementTree.SubElement(suite, "properties")
    for name, value in (("run", summary.run_dir), ("backends", ",".join(summary.backends)),
                        ("tests", summary.tests), ("triaged", summary.triaged), ("findings", summary.findings),
                        ("signatures", len(summary.signatures)), ("bugs", len(summary.compiler_bugs())),
                        ("reference_issues", sum(b.category == "reference-issue" for b in summary.bugs)),
                        ("invalid_tests", sum(b.category == "invalid-test" for b in summary.bugs))):
        ElementTree.SubElement(properties, "property", name=name, value=str(value))
    for bug in summary.bugs:
        compiler = bug.compiler.replace(".", "-")  # a dot (onnx.reference) would read as one more package level
        case = ElementTree.SubElement(suite, "testcase", classname=f"tcfuzz.{compiler}.{bug.kind}",
                                      name=case_name(bug))
        text = detail(bug, summary.run_dir)
        if bug.status == "fixed":
            ElementTree.SubElement(case, "skipped", message="fixed: no longer reproduces")
        elif bug.category == "bug" and bug.status in FAILING_STATUSES:
            failure = ElementTree.SubElement(case, "failure", type=bug.kind,
                                             message=f"{bug.status} {bug.kind} in {bug.compiler}: "
                                                     f"{bug.summary}"[:MESSAGE_LIMIT])
            failure.text = text
        else:
            ElementTree.SubElement(case, "system-out").text = text
    ElementTree.indent(suite)
    return ElementTree.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"
