"""SARIF 2.1.0 for GitHub code scanning: one rule per signature class, one result per signature.

Kept under GitHub's upload limits: at most 25,000 results per run (GitHub shows the 5,000
most severe, so results are ordered new, flaky, known), messages cut to MESSAGE_LIMIT
characters, and the file under 10 MB.
"""

from __future__ import annotations

import json
from pathlib import Path

from reports.model import RunSummary, SignatureRow

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
MAX_RESULTS = 25_000
MAX_BYTES = 10_000_000
MESSAGE_LIMIT = 1_000
FINGERPRINT_KEY = "tcfuzzSignature/v1"
LEVELS = {"new": "error", "flaky": "warning", "known": "note"}  # fixed signatures are not results
BASELINE_STATES = {"new": "new", "flaky": "new", "known": "unchanged"}
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
}


def render_sarif(summary: RunSummary, source_root: Path) -> str:
    """The SARIF log of ``summary``; locations are relative to ``source_root`` (the checkout)."""
    reported = [row for row in summary.signatures if row.status in LEVELS][:MAX_RESULTS]
    rule_ids = sorted({row.rule for row in reported})
    rules = [_rule(rule_id) for rule_id in rule_ids]
    results = [_result(row, rule_ids.index(row.rule), summary, Path(source_root)) for row in reported]
    while True:
        text = json.dumps(_log(summary, rules, results), indent=1) + "\n"
        if len(text.encode()) <= MAX_BYTES:
            return text
        results = results[: len(results) // 2]


def _log(summary: RunSummary, rules: list[dict], results: list[dict]) -> dict:
    left_out = len([row for row in summary.signatures if row.status in LEVELS]) - len(results)
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


def _rule(rule_id: str) -> dict:
    kind, stage = rule_id.split("/")
    text = f"{kind.replace('_', ' ')} in the {stage} stage: {KIND_DESCRIPTIONS.get(kind, kind)}"
    return {
        "id": rule_id,
        "name": "".join(part.capitalize() for part in rule_id.replace("_", "/").split("/")),
        "shortDescription": {"text": text[:MESSAGE_LIMIT]},
        "fullDescription": {"text": text[:MESSAGE_LIMIT]},
        "defaultConfiguration": {"level": "error"},
        "properties": {"tags": ["tcfuzz", kind, stage]},
    }


def _result(row: SignatureRow, rule_index: int, summary: RunSummary, source_root: Path) -> dict:
    evidence = row.repro or "findings.db"
    return {
        "ruleId": row.rule,
        "ruleIndex": rule_index,
        "level": LEVELS[row.status],
        "baselineState": BASELINE_STATES[row.status],
        "message": {"text": (f"{row.status} {row.kind} in {'+'.join(row.backends)}: {row.summary} "
                             f"({row.count} test(s); signature {row.signature})")[:MESSAGE_LIMIT]},
        "locations": [{"physicalLocation": {**_artifact(Path(summary.run_dir) / evidence, source_root),
                                            "region": {"startLine": 1}}}],
        "partialFingerprints": {FINGERPRINT_KEY: row.fingerprint},
        "properties": {"signature": row.signature[:MESSAGE_LIMIT], "count": row.count,
                       "firstTest": row.first_test, "status": row.status},
    }


def _artifact(path: Path, source_root: Path) -> dict:
    """A location relative to the checkout when the file lies in it, else an absolute URI."""
    absolute, root = path.resolve(), source_root.resolve()
    if absolute.is_relative_to(root):
        return {"artifactLocation": {"uri": absolute.relative_to(root).as_posix(), "uriBaseId": "%SRCROOT%"}}
    return {"artifactLocation": {"uri": absolute.as_uri()}}
