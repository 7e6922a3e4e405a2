"""SARIF 2.1.0 for GitHub code scanning: one rule per compiler and finding kind, one result
per bug (root cause, triage.bugs).

Compiler bugs are errors (new), warnings (flaky, or triage failed) or notes (known);
reference issues (a judge is wrong) and invalid tests are notes that say what they are;
fixed bugs are not reported. A result's partial fingerprint hashes the bug's root-cause
fingerprint (before triage: its cluster key), so it follows the bug across runs.

Kept under GitHub's upload limits: at most 25,000 results per run (GitHub shows the 5,000
most severe, so results are ordered error, warning, note), messages cut to MESSAGE_LIMIT
characters, and the file under 10 MB.
"""

from __future__ import annotations

import json
from pathlib import Path

from reports.model import RunSummary, fingerprint
from triage.bugs import Bug

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
MAX_RESULTS = 25_000
MAX_BYTES = 10_000_000
MESSAGE_LIMIT = 1_000
FINGERPRINT_KEY = "tcfuzzBug/v1"
LEVELS = {"new": "error", "flaky": "warning", "triage-failed": "warning", "known": "note"}  # fixed: no result
LEVEL_ORDER = ("error", "warning", "note")
BASELINE_STATES = {"new": "new", "flaky": "new", "triage-failed": "new", "known": "unchanged"}
CATEGORY_MESSAGES = {
    "reference-issue": "reference issue, not a compiler bug: the judge {compiler} is wrong",
    "invalid-test": "invalid test, not a compiler bug: the reduced graph breaks the ONNX specification",
    "unreproduced": "not reproduced in triage's fresh re-runs, not counted as a bug",
}
KIND_DESCRIPTIONS = {
    "crash": "the compiler's process died (signal or exit)",
    "hang": "the compiler overran the per-test timeout",
    "oom": "the compiler exceeded the worker's memory limit",
    "error": "the compiler raised an internal error on a valid model",
    "mismatch": "the compiler's output values disagree with the reference",
    "shape_mismatch": "the compiler's output shape disagrees with the model",
    "dtype_mismatch": "the compiler's output dtype disagrees with the model",
    "opt_mismatch": "the compiler's output changes with its optimization level",
    "metamorphic": "the compiler's output changes under a semantics-preserving rewrite",
    "nondeterminism": "the compiler's output changes between two identical runs",
    "slowdown": "the compiler's optimized configuration runs slower than its unoptimized one",
}


def render_sarif(summary: RunSummary, source_root: Path) -> str:
    """The SARIF log of ``summary``; locations are relative to ``source_root`` (the checkout)."""
    reported = reported_bugs(summary)[:MAX_RESULTS]
    rule_ids = sorted({rule_id(bug) for bug in reported})
    rules = [_rule(rule) for rule in rule_ids]
    results = [_result(bug, rule_ids.index(rule_id(bug)), summary, Path(source_root)) for bug in reported]
    while True:
        text = json.dumps(_log(summary, rules, results), indent=1) + "\n"
        if len(text.encode()) <= MAX_BYTES:
            return text
        results = results[: len(results) // 2]


def level(bug: Bug) -> str | None:
    """The SARIF level of ``bug``; None for one that is not reported (fixed)."""
    if bug.status == "fixed":
        return None
    return LEVELS.get(bug.status, "warning") if bug.category == "bug" else "note"


def reported_bugs(summary: RunSummary) -> list[Bug]:
    """The bugs that are results, most severe first (a stable sort keeps the bugs' order)."""
    return sorted((bug for bug in summary.bugs if level(bug)), key=lambda bug: LEVEL_ORDER.index(level(bug)))


def rule_id(bug: Bug) -> str:
    return f"{bug.compiler}/{bug.kind}"


def _log(summary: RunSummary, rules: list[dict], results: list[dict]) -> dict:
    left_out = len(reported_bugs(summary)) - len(results)
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "tcfuzz", "rules": rules}},
            "results": results,
            "properties": {"tests": summary.tests, "backends": list(summary.backends),
                           "triaged": summary.triaged, "resultsLeftOut": left_out},
        }],
    }


def _rule(rule: str) -> dict:
    compiler, kind = rule.rsplit("/", 1)
    text = f"{kind.replace('_', ' ')} in {compiler}: {KIND_DESCRIPTIONS.get(kind, kind)}"
    return {
        "id": rule,
        "name": "".join(part.capitalize() for part in rule.replace("_", "/").replace(".", "/").replace("-", "/")
                        .split("/")),
        "shortDescription": {"text": text[:MESSAGE_LIMIT]},
        "fullDescription": {"text": text[:MESSAGE_LIMIT]},
        "defaultConfiguration": {"level": "error"},
        "properties": {"tags": ["tcfuzz", compiler, kind]},
    }


def _message(bug: Bug) -> str:
    what = (f"{bug.status} {bug.kind} in {bug.compiler}" if bug.category == "bug" else
            f"{CATEGORY_MESSAGES.get(bug.category, bug.category).format(compiler=bug.compiler)} ({bug.kind})")
    culprit = f"; culprit: {bug.culprit}" if bug.culprit else ""
    ops = f"; reduced to {'→'.join(bug.reduced_ops)}" if bug.reduced_ops else ""
    return (f"{bug.id} {what}: {bug.summary} ({bug.findings} finding(s) in {', '.join(bug.configurations)}"
            f"{culprit}{ops})")


def _result(bug: Bug, rule_index: int, summary: RunSummary, source_root: Path) -> dict:
    evidence = bug.repro or "findings.db"
    return {
        "ruleId": rule_id(bug),
        "ruleIndex": rule_index,
        "level": level(bug),
        "baselineState": BASELINE_STATES.get(bug.status, "new"),
        "message": {"text": _message(bug)[:MESSAGE_LIMIT]},
        "locations": [{"physicalLocation": {**_artifact(Path(summary.run_dir) / evidence, source_root),
                                            "region": {"startLine": 1}}}],
        "partialFingerprints": {FINGERPRINT_KEY: fingerprint(bug.fingerprints[0])},
        "properties": {"bug": bug.id, "compiler": bug.compiler, "category": bug.category, "kind": bug.kind,
                       "status": bug.status, "configurations": list(bug.configurations), "findings": bug.findings,
                       "signatures": len(bug.signatures), "firstTest": bug.first_test, "scope": bug.scope,
                       "culprit": bug.culprit, "reducedOps": list(bug.reduced_ops), "verified": bug.verified,
                       "fingerprint": bug.fingerprints[0][:MESSAGE_LIMIT]},
    }


def _artifact(path: Path, source_root: Path) -> dict:
    """A location relative to the checkout when the file lies in it, else an absolute URI."""
    absolute, root = path.resolve(), source_root.resolve()
    if absolute.is_relative_to(root):
        return {"artifactLocation": {"uri": absolute.relative_to(root).as_posix(), "uriBaseId": "%SRCROOT%"}}
    return {"artifactLocation": {"uri": absolute.as_uri()}}
