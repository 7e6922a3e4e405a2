"""The performance oracle and the correctness-aware speedup score (docs/performance.md).

A timed pair (``fuzzer.execution.backends.timed``) runs a compiler's optimized configuration
and its baseline, the same compiler with its optimizer off, alternately on the same inputs.
The optimized side is a **slowdown** when its median warm run is at least ``factor`` times
the baseline's and at least ``floor`` seconds longer; the campaign then re-measures it in
fresh workers and records a finding only when every re-measurement agrees.

The speedup score S(t) of a compiler aggregates its timed tests: the geometric mean of the
speedups (baseline median over optimized median), where a test whose optimized result is
further than ``t`` from the judge's, or that failed, counts as ``PENALTY`` instead.
Everything here is a pure function of plain values.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np

from fuzzer.execution.outcome import Stage
from oracles.finding import Finding, FindingKind

PENALTY = 0.1  # a wrong or failed optimized run counts as a tenfold slowdown
TOLERANCES = tuple(10.0 ** exponent for exponent in range(-8, 1))  # the t at which reports show S(t)


@dataclass(frozen=True)
class PerfPolicy:
    factor: float = 2.0  # the optimized median must be at least this many times the baseline's
    floor: float = 0.0005  # ... and at least this many seconds longer
    every: int = 32  # every Nth test is timed
    confirmations: int = 3  # fresh-worker re-measurements that must all agree

    def __post_init__(self) -> None:
        if self.factor <= 1 or self.floor < 0 or self.every < 1 or self.confirmations < 1:
            raise ValueError("performance policy needs a factor over 1, a floor of at least 0 ms, "
                             "every >= 1 and at least one confirmation")


def medians(run_seconds: Mapping[str, Sequence[float]], optimized: str, baseline: str) -> tuple[float, float]:
    """(optimized, baseline) median seconds of a timed pair's warm runs."""
    return statistics.median(run_seconds[optimized]), statistics.median(run_seconds[baseline])


def is_slowdown(run_seconds: Mapping[str, Sequence[float]], optimized: str, baseline: str,
                policy: PerfPolicy) -> bool:
    slow, fast = medians(run_seconds, optimized, baseline)
    return slow >= policy.factor * fast and slow - fast >= policy.floor


def slowdown_finding(optimized: str, baseline: str, first: Mapping[str, Sequence[float]],
                     confirmations: Sequence[Mapping[str, Sequence[float]]], policy: PerfPolicy,
                     operators: Iterable[str] = ()) -> Finding:
    """The finding of a slowdown seen in ``first`` and in every one of ``confirmations``."""
    slow, fast = medians(first, optimized, baseline)
    ratios = [round(ratio(seconds, optimized, baseline), 2) for seconds in confirmations]
    summary = (f"{optimized} runs {slow / fast:.1f}x slower than {baseline} ({slow * 1e3:.3f} ms against "
               f"{fast * 1e3:.3f} ms, medians of warm runs)")
    if ratios:
        agreeing = ", ".join(f"{r}x" for r in ratios)
        summary += f"; {len(ratios)} of {len(ratios)} fresh re-measurements agree ({agreeing})"
    return Finding(FindingKind.SLOWDOWN, (optimized,), Stage.RUN, summary, {
        "baseline": baseline, "slowdown": round(slow / fast, 3), "optimized_ms": round(slow * 1e3, 4),
        "baseline_ms": round(fast * 1e3, 4), "confirmations": ratios, "factor": policy.factor,
        "floor_ms": policy.floor * 1e3, "operators": sorted(set(operators))})


def ratio(run_seconds: Mapping[str, Sequence[float]], optimized: str, baseline: str) -> float:
    """Optimized median over baseline median: over 1 is a slowdown."""
    slow, fast = medians(run_seconds, optimized, baseline)
    return slow / fast if fast > 0 else math.inf


# ---------------------------------------------------------------- the speedup score


@dataclass(frozen=True)
class TimedTest:
    """One compiler's timed test, as the score sees it."""

    test_index: int
    compiler: str
    optimized: str
    baseline: str
    optimized_ms: float | None  # median warm run; None when a side failed
    baseline_ms: float | None
    error: float  # the optimized result's distance from the judge's (relative_error); inf when wrong in type
    failed: str = ""  # the side that failed: "optimized", "baseline", or "pair" (its worker died)

    @property
    def speedup(self) -> float | None:
        if self.failed or not self.optimized_ms or not self.baseline_ms:
            return None
        return self.baseline_ms / self.optimized_ms

    def to_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def relative_error(actual: Mapping[str, np.ndarray], expected: Mapping[str, np.ndarray]) -> float:
    """The largest ``|a - e| / (1 + |e|)`` over the elements of every output in ``actual`` that
    ``expected`` has too; 0 where both are the same NaN or infinity, and infinite when an
    output differs in shape, or is non-finite where the other is not."""
    worst = 0.0
    for name, got in actual.items():
        wanted = expected.get(name)
        if wanted is None:
            continue
        if np.shape(got) != np.shape(wanted):
            return math.inf
        a, e = np.asarray(got, np.float64), np.asarray(wanted, np.float64)
        same = (a == e) | (np.isnan(a) & np.isnan(e))
        finite = np.isfinite(a) & np.isfinite(e)
        if np.any(~same & ~finite):
            return math.inf
        if a.size:
            worst = max(worst, float(np.max(np.where(same, 0.0, np.abs(a - e) / (1.0 + np.abs(e))))))
    return worst


def speedup_score(tests: Sequence[TimedTest], tolerance: float, penalty: float = PENALTY) -> float | None:
    """S(t): the geometric mean over ``tests`` of the speedup, or of ``penalty`` for a test that
    failed or whose error is over ``tolerance``; None without tests."""
    if not tests:
        return None
    logs = [math.log(test.speedup) if test.speedup and test.error <= tolerance else math.log(penalty)
            for test in tests]
    return math.exp(sum(logs) / len(logs))


def score_curves(tests: Iterable[TimedTest], tolerances: Sequence[float] = TOLERANCES) -> dict[str, dict]:
    """Per compiler: how many tests were timed, how many failed, the median speedup, and S(t)
    at each tolerance (keyed by its exponent string, e.g. ``"1e-05"``)."""
    by_compiler: dict[str, list[TimedTest]] = {}
    for test in tests:
        if test.failed in ("", "optimized"):  # a failed baseline says nothing about the optimizer
            by_compiler.setdefault(test.compiler, []).append(test)
    curves = {}
    for compiler, timed in sorted(by_compiler.items()):
        speedups = [t.speedup for t in timed if t.speedup]
        curves[compiler] = {
            "optimized": timed[0].optimized, "baseline": timed[0].baseline, "tests": len(timed),
            "failed": sum(1 for t in timed if t.failed),
            "median_speedup": statistics.median(speedups) if speedups else None,
            "score": {f"{t:.0e}": speedup_score(timed, t) for t in tolerances}}
    return curves
