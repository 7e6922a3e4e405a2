"""One summary of a run, read from its store, that every report format renders.

The summary reads only: a run that is still being written, was never triaged, or has no
coverage series still gets a complete summary whose missing parts say so.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fuzzer.store import RunStore
from fuzzer.campaign.config import Throughput
from fuzzer.campaign.coverage import coverage_series, effect_rows
from fuzzer.campaign.performance import timed_tests
from oracles.performance import score_curves
from triage.bugs import FAILING_STATUSES
from triage.bugs import STATUS_ORDER as STATUSES
from triage.bugs import Bug, run_bugs
from triage.db import SignatureRecord, signature_records

FAILURE_KINDS = frozenset({"crash", "hang", "oom", "error"})
RUNNING_WITHIN_SECONDS = 10.0  # a campaign records a stats point every 2 s while it runs


def fingerprint(signature: str) -> str:
    """The stable hash of a signature that identifies it across runs (SARIF, baselines)."""
    return hashlib.sha256(signature.encode()).hexdigest()


@dataclass(frozen=True)
class SignatureRow:
    """One unique finding: every stored finding with the same signature."""

    signature: str
    kind: str
    backends: tuple[str, ...]
    stage: str
    summary: str  # of the first finding
    count: int  # tests that reported it
    first_test: int
    first_seen: float
    last_seen: float
    status: str  # one of STATUSES
    reproducibility: float | None = None  # share of reruns that reproduced it (triage)
    culprit: str | None = None  # what triage blamed (a pass, an operator)
    repro: str | None = None  # repro script, relative to the run directory (triage)
    report: str | None = None  # triage's report.md, relative to the run directory

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.signature)

    @property
    def rule(self) -> str:
        """The signature's class: kind and stage, e.g. ``crash/compile``."""
        return f"{self.kind}/{self.stage}"


@dataclass(frozen=True)
class BackendRow:
    name: str
    findings: dict[str, int]  # by kind, findings that blame this backend
    unsupported_features: int  # (operator, dtype) pairs learned as unsupported
    outcomes: dict[str, int] = field(default_factory=dict)  # the backend's runs by status (ok, unsupported, ...)
    seconds: float = 0.0  # time its worker spent on its tests

    @property
    def failures(self) -> int:
        """Crashes, hangs, out-of-memory kills and internal errors blamed on this backend."""
        return sum(count for kind, count in self.findings.items() if kind in FAILURE_KINDS)

    @property
    def tests(self) -> int:
        """Tests the backend was given (declined ones included)."""
        return sum(self.outcomes.values())

    @property
    def errors(self) -> int:
        """Its runs that ended in an error, crash, hang or out-of-memory kill."""
        return sum(count for status, count in self.outcomes.items() if status in FAILURE_KINDS)

    @property
    def unsupported(self) -> int:
        """Its runs that it declined as unsupported."""
        return self.outcomes.get("unsupported", 0)


@dataclass(frozen=True)
class RunSummary(Throughput):
    run_dir: str
    mode: str
    backends: tuple[str, ...]
    seed: int | None
    tests: int
    valid: int
    seconds: float
    updated: float | None  # wall-clock time of the last stats point
    versions: dict[str, str]
    stats: list[dict]  # time series: time, seconds, tests, valid, findings
    coverage: list[dict]  # time series with "seconds" and coverage counts; empty: none recorded
    signatures: tuple[SignatureRow, ...] = ()
    backend_rows: tuple[BackendRow, ...] = ()
    triaged: bool = False
    findings_by_kind: dict[str, int] = field(default_factory=dict)
    bugs: tuple[Bug, ...] = ()  # root causes (triage.bugs), compiler bugs first
    effects: list[dict] = field(default_factory=list)  # optimizer effects per backend (coverage.effect_rows)
    # The performance oracle's speedup scores per compiler (oracles.performance.score_curves); {}: not run.
    speedups: dict[str, dict] = field(default_factory=dict)
    perf_seconds: float = 0.0  # wall time the lanes spent timing and confirming

    def compiler_bugs(self) -> tuple[Bug, ...]:
        """The bugs that count: not reference issues, invalid tests or findings not reproduced."""
        return tuple(bug for bug in self.bugs if bug.category == "bug")

    def failing_bugs(self) -> tuple[Bug, ...]:
        """Compiler bugs that should fail a CI job: new and flaky ones, and those triage failed on."""
        return tuple(bug for bug in self.compiler_bugs() if bug.status in FAILING_STATUSES)

    @property
    def findings(self) -> int:
        return sum(self.findings_by_kind.values())

    def running(self, now: float | None = None) -> bool:
        """Whether the campaign recorded progress in the last few seconds."""
        return self.updated is not None and (now or time.time()) - self.updated < RUNNING_WITHIN_SECONDS

    def coverage_measures(self) -> list[str]:
        """What the coverage series counts (branches, features, ...), without its time axes."""
        return [key for key in (self.coverage[0] if self.coverage else ()) if key not in ("time", "seconds", "tests")]

    def by_status(self) -> dict[str, int]:
        counts = Counter(row.status for row in self.signatures)
        return {status: counts[status] for status in STATUSES if counts[status]}

    def failing(self) -> tuple[SignatureRow, ...]:
        """Signatures that should fail a CI job: new ones, flaky ones and those whose triage failed."""
        return tuple(row for row in self.signatures if row.status in FAILING_STATUSES)

    def to_dict(self) -> dict[str, Any]:
        """The JSON summary."""
        return {
            "tool": "tcfuzz", "run": self.run_dir, "mode": self.mode, "backends": list(self.backends),
            "seed": self.seed, "tests": self.tests, "valid": self.valid, "seconds": round(self.seconds, 3),
            "tests_per_second": round(self.rate, 3), "valid_share": round(self.valid_share, 4),
            "ran_on_all_backends_share": round(self.valid_share, 4),
            "triaged": self.triaged,
            "coverage": self.coverage[-1] if self.coverage else None,
            "findings": {"total": self.findings, "unique": len(self.signatures),
                         "bugs": len(self.compiler_bugs()),
                         "reference_issues": sum(b.category == "reference-issue" for b in self.bugs),
                         "invalid_tests": sum(b.category == "invalid-test" for b in self.bugs),
                         "unreproduced": sum(b.category == "unreproduced" for b in self.bugs),
                         "verified_bugs": sum(b.verified for b in self.compiler_bugs()),
                         "by_kind": self.findings_by_kind, "by_status": self.by_status()},
            "bugs": [bug.to_dict() for bug in self.bugs],
            "signatures": [{**asdict(row), "backends": list(row.backends), "fingerprint": row.fingerprint,
                            "rule": row.rule} for row in self.signatures],
            "performance": {"compilers": self.speedups, "seconds": round(self.perf_seconds, 3)}
            if self.speedups else None,
            "backend_table": [{**asdict(row), "failures": row.failures, "tests": row.tests, "errors": row.errors,
                               "unsupported": row.unsupported} for row in self.backend_rows],
            "versions": self.versions,
        }


def summarize(store: RunStore, baseline: frozenset[str] = frozenset(), judges_as_targets: bool = False) -> RunSummary:
    """The summary of the run in ``store``; ``baseline`` holds the signatures and bug
    fingerprints known before it (used for the status of what triage has not judged)."""
    config = store.config.get("campaign", store.config)
    progress = store.progress()
    stats = store.stats()
    findings = store.findings()
    triage = triage_records(store)
    grouped: dict[str, list] = {}
    for finding in findings:
        grouped.setdefault(finding.signature, []).append(finding)
    rows = [_signature_row(group, triage.get(signature), baseline, store.run_dir)
            for signature, group in grouped.items()]
    rows.sort(key=lambda row: (STATUSES.index(row.status), -row.count, row.signature))
    return RunSummary(
        run_dir=str(store.run_dir), mode=store.config.get("mode", "graph"),
        backends=tuple(config.get("backends", ())), seed=config.get("seed"),
        tests=progress.tests, valid=progress.valid, seconds=progress.seconds,
        updated=stats[-1]["time"] if stats else None, versions=store.get_meta("versions", {}),
        stats=stats, coverage=coverage_series(store), signatures=tuple(rows),
        backend_rows=_backend_rows(findings, store.get_meta("unsupported", {}), store.get_meta("outcomes", {}),
                                   store.get_meta("backend_seconds", {})),
        triaged=bool(triage), findings_by_kind=store.counts_by_kind(),
        bugs=tuple(run_bugs(store, baseline, judges_as_targets)), effects=effect_rows(store),
        speedups=score_curves(timed_tests(store)), perf_seconds=sum(store.get_meta("perf_seconds", {}).values()))


def _signature_row(group: list, triaged: SignatureRecord | None, baseline: frozenset[str],
                   run_dir: Path) -> SignatureRow:
    """The row of one signature's findings, with triage's verdict when there is one."""
    first = group[0]
    extra = {}
    if triaged is None:
        status = "known" if first.signature in baseline else "new"
    else:
        status = triaged.status.value
        extra = {"reproducibility": triaged.reproducibility,
                 "culprit": triaged.culprit.get("description") if triaged.culprit else None}
        if triaged.repro_path:
            repro = Path(triaged.repro_path)  # relative to the run directory
            extra["repro"] = str(repro)
            report = repro.with_name("report.md")
            extra["report"] = str(report) if (run_dir / report).is_file() else None
    return SignatureRow(
        signature=first.signature, kind=first.kind, backends=first.backends, stage=first.stage,
        summary=first.summary, count=len(group), first_test=min(f.test_index for f in group),
        first_seen=min(f.created for f in group), last_seen=max(f.created for f in group),
        status=status, **extra)


def _backend_rows(findings: list, unsupported: dict[str, list], outcomes: dict[str, dict[str, int]],
                  seconds: dict[str, float]) -> tuple[BackendRow, ...]:
    by_backend: dict[str, Counter] = {name: Counter() for name in [*unsupported, *outcomes]}
    for finding in findings:
        for backend in finding.backends:
            by_backend.setdefault(backend, Counter())[finding.kind] += 1
    return tuple(BackendRow(name, dict(sorted(counts.items())), len(unsupported.get(name, ())),
                            dict(outcomes.get(name, {})), seconds.get(name, 0.0))
                 for name, counts in sorted(by_backend.items()))


def triage_records(store: RunStore) -> dict[str, SignatureRecord]:
    """Triage's record per signature; {} for a run never triaged."""
    return {record.signature: record for record in signature_records(store)}
