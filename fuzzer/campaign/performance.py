"""The performance oracle in a campaign (``--perf``): time sampled tests, confirm slowdowns.

Each lane times the compilers whose optimized configuration and baseline it runs both
(``Backend.baseline``: ort-all and ort-none, tvm and tvm-noopt, inductor and aot-eager), on
every ``PerfPolicy.every``-th test that both sides ran. A timed pair
(``fuzzer.execution.backends.timed``) runs in a worker of its own. A slowdown
(:func:`oracles.performance.is_slowdown`) is re-measured ``confirmations`` times, each in a
fresh worker, and becomes a finding only if every re-measurement shows it too: on a noisy
machine, that is what keeps the findings real. Every timed test is stored (``timed_tests``)
for the speedup score S(t) (:func:`oracles.performance.score_curves`).
"""

from __future__ import annotations

import math
import statistics
import time
from pathlib import Path
from typing import Mapping, Sequence

from fuzzer.execution.backends import load_backend
from fuzzer.execution.isolation import Limits, Worker
from fuzzer.graph.case import TestCase
from fuzzer.execution.outcome import Outcome, Status
from oracles.finding import Finding
from oracles.performance import PerfPolicy, TimedTest, is_slowdown, relative_error
from oracles.verdict import slowdown_finding
from oracles.precision import REFERENCE

INFINITE_ERROR = 1e308  # how an infinite error is stored (SQLite has no infinity literal to bind)
TIMED_SCHEMA = """
CREATE TABLE IF NOT EXISTS timed_tests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    test_index INTEGER NOT NULL,
    compiler TEXT NOT NULL,
    optimized TEXT NOT NULL,
    baseline TEXT NOT NULL,
    optimized_ms REAL,
    baseline_ms REAL,
    error REAL NOT NULL,
    failed TEXT NOT NULL
);
"""


def timed_pairs(backends: Sequence[str]) -> dict[str, tuple[str, str]]:
    """The backends (specs) of ``backends`` whose baseline is among them too, each with the
    names of its two sides (optimized, baseline): the pairs a lane times."""
    names = {load_backend(spec).name for spec in backends}
    pairs = {}
    for spec in backends:
        backend = load_backend(spec)
        if backend.baseline and (baseline := load_backend(backend.baseline).name) in names:
            pairs[spec] = (backend.name, baseline)
    return pairs


class PerfTimer:
    """One lane's timed pairs, each in a worker of its own."""

    def __init__(self, backends: Sequence[str], policy: PerfPolicy, limits: Limits, log_dir: Path) -> None:
        self.policy = policy
        self.limits = limits
        self.log_dir = log_dir
        self.pairs = timed_pairs(backends)
        self.workers = {spec: Worker(f"timed/{spec}", limits, log_dir=log_dir) for spec in self.pairs}
        self.seconds = 0.0  # wall time spent timing and confirming

    def start(self) -> None:
        for worker in self.workers.values():
            worker.start()

    def close(self) -> None:
        for worker in self.workers.values():
            worker.close()

    @property
    def processes(self) -> list:
        return [worker.process for worker in self.workers.values() if worker.process is not None]

    def due(self, case: TestCase) -> bool:
        return bool(self.workers) and case.index % self.policy.every == 0

    def time(self, case: TestCase, outcomes: Sequence[Outcome]) -> tuple[list[TimedTest], list[Finding]]:
        """Time ``case`` on each pair whose sides both ran it; the confirmed slowdowns."""
        started = time.monotonic()
        by_name = {outcome.backend: outcome for outcome in outcomes}
        tests, findings = [], []
        for spec, worker in self.workers.items():
            optimized, baseline = self.pairs[spec]
            ran = [by_name.get(optimized), by_name.get(baseline)]
            if not all(outcome is not None and outcome.status is not Status.UNSUPPORTED for outcome in ran):
                continue
            timed = worker.execute(case)
            if timed.status is Status.UNSUPPORTED:
                continue
            compiler = load_backend(spec).compiler_name()
            tests.append(timed_test(case.index, compiler, optimized, baseline, timed, by_name))
            if timed.ok and is_slowdown(timed.run_seconds, optimized, baseline, self.policy):
                confirmations = self.remeasure(spec, case)
                if len(confirmations) == self.policy.confirmations:
                    operators = [node.op for node in case.graph.nodes] if case.graph is not None else []
                    findings.append(slowdown_finding(optimized, baseline, timed.run_seconds, confirmations,
                                                     self.policy, operators))
        self.seconds += time.monotonic() - started
        return tests, findings

    def remeasure(self, spec: str, case: TestCase) -> list[Mapping[str, tuple[float, ...]]]:
        """Up to ``confirmations`` timings of ``case``, each in a fresh worker, stopping at the
        first that shows no slowdown (then fewer come back)."""
        optimized, baseline = self.pairs[spec]
        agreeing = []
        for _ in range(self.policy.confirmations):
            worker = Worker(f"timed/{spec}", self.limits, log_dir=self.log_dir)
            try:
                worker.start()
                timed = worker.execute(case)
            finally:
                worker.close()
            if not (timed.ok and is_slowdown(timed.run_seconds, optimized, baseline, self.policy)):
                break
            agreeing.append(timed.run_seconds)
        return agreeing


def timed_test(index: int, compiler: str, optimized: str, baseline: str, timed: Outcome,
               campaign_outcomes: Mapping[str, Outcome]) -> TimedTest:
    """What the score needs of one timed pair's Outcome: both medians and the optimized
    result's distance from the float64 judge's (else from the baseline's)."""
    if not timed.ok:
        failed = {optimized: "optimized", baseline: "baseline"}.get(timed.backend, "pair")
        return TimedTest(index, compiler, optimized, baseline, None, None, math.inf, failed)
    judge = campaign_outcomes.get(REFERENCE)
    if judge is None or not judge.ok:
        judge = campaign_outcomes.get(baseline)
    error = relative_error(timed.outputs, judge.outputs) if judge is not None and judge.ok else math.inf
    return TimedTest(index, compiler, optimized, baseline, statistics.median(timed.run_seconds[optimized]) * 1e3,
                     statistics.median(timed.run_seconds[baseline]) * 1e3, error)


def record_timed_tests(store, tests: Sequence[TimedTest]) -> None:
    """Append timed tests to the run's ``timed_tests`` table (``store``: a fuzzer.store.RunStore)."""
    if not tests:
        return
    store.ensure_tables(TIMED_SCHEMA)
    with store.transaction(write=True) as connection:
        connection.executemany(
            "INSERT INTO timed_tests (test_index, compiler, optimized, baseline, optimized_ms, baseline_ms, error, "
            "failed) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(t.test_index, t.compiler, t.optimized, t.baseline, t.optimized_ms, t.baseline_ms,
              min(t.error, INFINITE_ERROR), t.failed) for t in tests])


def timed_tests(store) -> list[TimedTest]:
    """Every timed test of a run, in recording order; none for a run without ``--perf``."""
    with store.transaction() as connection:
        if connection.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'timed_tests'").fetchone() \
                is None:
            return []
        rows = connection.execute("SELECT test_index, compiler, optimized, baseline, optimized_ms, baseline_ms, error, "
                                  "failed FROM timed_tests ORDER BY id").fetchall()
    return [TimedTest(*row[:6], error=math.inf if row[6] >= INFINITE_ERROR else row[6], failed=row[7])
            for row in rows]
