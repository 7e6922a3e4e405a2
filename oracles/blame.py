"""Blame against a high-precision reference: which compiler is wrong, not only who disagrees.

When the ``ref-f64`` backend (:mod:`fuzzer.execution.backends.float64_reference`) ran, every other
backend's outputs are compared with the float64 reference rounded to the declared dtype,
under the same tolerance policy as the differential oracle. Per output:

1. each backend's elements that differ from the reference beyond tolerance are found;
2. the guards (:mod:`oracles.guards`) claim the elements no backend can be blamed for,
   each claim a :class:`~oracles.guards.Suppression` with its reason;
3. the backends left with differing elements are blamed, unless that is every backend
   (two or more): then the reference is the odd one out, and if the backends all agree
   with each other nobody is blamed (a ``reference-outlier`` suppression), otherwise the
   majority vote among the backends decides, ties going to the class nearer the reference.

A blamed backend gets one finding, naming its worst output, with the maximum absolute and
relative error against the reference, the maximum ULP distance in the output's dtype, how
many elements differ (and what share), and whether the majority vote agrees. Crashes,
hangs, memory blow-ups, errors and declared-type disagreements are reported exactly as
:func:`oracles.differential.differential` reports them. Without a usable reference the
verdict is the plain differential one.
"""

from __future__ import annotations

import signal as signals
from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Sequence

import numpy as np

from fuzzer.graph.ir import Graph, TensorType
from fuzzer.execution.outcome import Outcome, Stage, TestCase
from oracles.differential import (partition_outcomes, _ERROR_CLASSES, _FAILURES, _compare_outcomes,
                                  _failure_finding, compare_arrays, differential)
from oracles.finding import Finding, FindingKind
from oracles.guards import GUARDS, Context, Guard, Suppression, apply_guards, mismatch_mask
from oracles.precision import REFERENCE, ulp_distance
from oracles.tolerance import DEFAULT_POLICY, TolerancePolicy, along_paths
from triage.signature import signature


@dataclass(frozen=True)
class Verdict:
    """What the oracles decided for one test case."""

    findings: list[Finding] = field(default_factory=list)
    suppressions: list[Suppression] = field(default_factory=list)


def failure_finding(outcome: Outcome) -> Finding:
    """The differential oracle's crash/hang/oom/error finding, with the signal's name added
    to the details (``signal``) where a signal ended the worker."""
    finding = _failure_finding(outcome)
    if outcome.exit_signal:
        try:
            name = signals.Signals(outcome.exit_signal).name
        except ValueError:
            name = f"signal {outcome.exit_signal}"
        finding = replace(finding, details={**finding.details, "signal": name})
    return replace(finding, signature=signature(finding))


def reference_usable(reference: Outcome | None, expected: Mapping[str, TensorType]) -> bool:
    """Whether the reference ran and returned every declared output with its declared shape."""
    return reference is not None and reference.ok and all(
        name in reference.outputs and np.shape(reference.outputs[name]) == declared.shape
        for name, declared in expected.items())


def judge(expected: Mapping[str, TensorType], outcomes: Sequence[Outcome],
          policy: TolerancePolicy = DEFAULT_POLICY, graph: Graph | None = None,
          reference_backend: str = REFERENCE, fallback_reference: str | None = None,
          guards: Sequence[Guard] = GUARDS) -> Verdict:
    """Findings and suppressions for one test case, given every backend's outcome.

    ``graph`` lets the guards see ties, rule flags and paths; without it only the guards
    that need no graph run. ``fallback_reference`` wins ties in the differential vote used
    when the reference is missing or failed.
    """
    reference = next((o for o in outcomes if o.backend == reference_backend), None)
    others = [o for o in outcomes if o.backend != reference_backend]
    if not reference_usable(reference, expected):
        findings = [replace(f, details={**f.details, "reference": "unavailable"})
                    for f in differential(expected, others, policy, fallback_reference)]
        if reference is not None and reference.status in _FAILURES:
            findings.append(failure_finding(reference))
        return Verdict([replace(f, signature=signature(f)) for f in findings])
    findings, conforming = partition_outcomes(expected, others, failure_finding)
    findings = [replace(f, signature=signature(f)) for f in findings]
    context = Context(graph, reference, expected, policy)
    majority = _majority(expected, conforming, policy)
    suppressions: list[Suppression] = []
    blamed: dict[str, dict[str, dict[str, Any]]] = {}
    for name, declared in expected.items():
        verdicts, suppressed = _judge_output(context, name, declared, conforming, guards)
        suppressions += suppressed
        for backend, stats in verdicts.items():
            blamed.setdefault(backend, {})[name] = stats
    for outcome in conforming:
        if outcome.backend in blamed:
            standing = "no majority" if majority is None else \
                "in the majority" if outcome.backend in majority else "outside the majority"
            findings.append(_mismatch_finding(outcome.backend, blamed[outcome.backend], expected,
                                              standing, reference_backend))
    return Verdict(findings, suppressions)


def judge_case(case: TestCase, outcomes: Sequence[Outcome], policy: TolerancePolicy = DEFAULT_POLICY,
               fallback_reference: str | None = None) -> Verdict:
    """The campaign's verdict on one test: :func:`judge` with ``policy`` widened along the
    graph's paths, then the optimization-level findings of backends it did not already
    name; the suppressions of both."""
    from oracles.optlevel import opt_level  # deferred: oracles.optlevel imports this module

    expected = case.output_types()
    paths = along_paths(case.graph, policy) if case.graph is not None else policy
    verdict = judge(expected, outcomes, paths, case.graph, fallback_reference=fallback_reference)
    pairs = opt_level(expected, outcomes, case.graph)
    blamed = {f.backends for f in verdict.findings}
    return Verdict(verdict.findings + [f for f in pairs.findings if f.backends not in blamed],
                   verdict.suppressions + pairs.suppressions)


def judge_rewrite(case: TestCase, rewrite: str, outcomes: Sequence[Outcome], rewritten: Sequence[Outcome],
                  policy: TolerancePolicy = DEFAULT_POLICY) -> list[tuple[list[Finding], Outcome, Outcome]]:
    """The metamorphic oracle on ``case`` (``outcomes``) and its ``rewrite`` (``rewritten``,
    in the same backend order): per backend but the reference, its findings and the two
    outcomes they compare."""
    from oracles.metamorphic import metamorphic  # deferred: oracles.metamorphic imports this module

    expected = case.output_types()
    reference = next((o for o in outcomes if o.backend == REFERENCE), None)
    return [(metamorphic(expected, original, after, rewrite, policy, case.graph, reference).findings, original, after)
            for original, after in zip(outcomes, rewritten) if original.backend != REFERENCE]


def blame(expected: Mapping[str, TensorType], outcomes: Sequence[Outcome],
          policy: TolerancePolicy = DEFAULT_POLICY, reference_backend: str = REFERENCE,
          graph: Graph | None = None) -> list[Finding]:
    """:func:`judge`'s findings alone: a drop-in for :func:`oracles.differential.differential`."""
    return judge(expected, outcomes, policy, graph, reference_backend).findings


# ---------------------------------------------------------------- one output


def reference_for_comparison(reference: np.ndarray, declared: TensorType) -> np.ndarray:
    """The reference value rounded to the declared dtype (float64 overflows become Inf)."""
    with np.errstate(over="ignore"):
        return np.asarray(reference).astype(declared.dtype.numpy)


def _judge_output(context: Context, name: str, declared: TensorType, outcomes: Sequence[Outcome],
                  guards: Sequence[Guard]) -> tuple[dict[str, dict[str, Any]], list[Suppression]]:
    tolerance = context.policy.for_output(name, declared.dtype)
    expected = reference_for_comparison(context.reference.outputs[name], declared)
    suppressions: list[Suppression] = []
    remaining: dict[str, np.ndarray] = {}
    for outcome in outcomes:
        actual = np.asarray(outcome.outputs[name])
        mismatched = mismatch_mask(actual, expected, tolerance)
        if mismatched.any():
            left, claimed = apply_guards(context, outcome.backend, name, actual, expected, mismatched, guards)
            suppressions += claimed
            if left.any():
                remaining[outcome.backend] = left
    signal = "reference"
    culprits = set(remaining)
    if len(outcomes) >= 2 and len(culprits) == len(outcomes):
        classes = _agreement_classes(name, declared, tolerance, outcomes)
        if len(classes) == 1:
            for backend, left in remaining.items():
                suppressions.append(Suppression(
                    backend, name, f"every backend agrees with the others but not with {context.reference.backend} "
                    f"({int(left.sum())} elements): the reference is the odd one out (a precision effect the "
                    f"guards missed, or a tcfuzz lowering bug), so no backend is blamed",
                    "reference-outlier", int(left.sum())))
            return {}, suppressions
        errors = {backend: int(left.sum()) for backend, left in remaining.items()}
        winner = max(classes, key=lambda members: (len(members), -min(errors[m] for m in members)))
        for backend in winner:
            left = remaining[backend]
            suppressions.append(Suppression(
                backend, name, f"differs from {context.reference.backend} on {int(left.sum())} elements, but no "
                f"backend agrees with the reference there and {backend} is in the largest agreeing group "
                f"({', '.join(winner)}): blamed by majority instead", "majority-over-reference", int(left.sum())))
        culprits -= set(winner)
        signal = "majority"
    verdicts = {}
    for outcome in outcomes:
        if outcome.backend in culprits:
            verdicts[outcome.backend] = _output_stats(declared, tolerance, np.asarray(outcome.outputs[name]),
                                                      expected, remaining[outcome.backend], signal)
    return verdicts, suppressions


def _agreement_classes(name: str, declared: TensorType, tolerance, outcomes: Sequence[Outcome]) -> list[list[str]]:
    classes: list[list[Outcome]] = []
    for outcome in outcomes:
        for members in classes:
            if compare_arrays(declared, members[0].outputs[name], outcome.outputs[name], tolerance).equal:
                members.append(outcome)
                break
        else:
            classes.append([outcome])
    return [[member.backend for member in members] for members in classes]


def _majority(expected: Mapping[str, TensorType], outcomes: Sequence[Outcome],
              policy: TolerancePolicy) -> set[str] | None:
    """The backends in the largest class agreeing on every output (None if classes tie)."""
    classes: list[list[Outcome]] = []
    for outcome in outcomes:
        for members in classes:
            if all(c.equal for c in _compare_outcomes(expected, policy, members[0], outcome).values()):
                members.append(outcome)
                break
        else:
            classes.append([outcome])
    sizes = sorted((len(members) for members in classes), reverse=True)
    if not sizes or (len(sizes) > 1 and sizes[0] == sizes[1]):
        return None
    return {member.backend for member in max(classes, key=len)}


def _output_stats(declared: TensorType, tolerance, actual: np.ndarray, expected: np.ndarray,
                  left: np.ndarray, signal: str) -> dict[str, Any]:
    """Comparison statistics over the elements no guard explains (guarded ones count as equal)."""
    patched = np.where(left, actual, expected).astype(actual.dtype)
    comparison = compare_arrays(declared, patched, expected, tolerance)
    ulps = ulp_distance(actual[left], expected[left], declared.dtype)
    finite_ulps = ulps[np.isfinite(ulps)]
    return {**comparison.stats(), "max_ulp": float(finite_ulps.max(initial=0.0)),
            "share": comparison.mismatched / max(comparison.total, 1), "signal": signal}


def _mismatch_finding(backend: str, outputs: dict[str, dict[str, Any]], expected: Mapping[str, TensorType],
                      majority: str, reference_backend: str) -> Finding:
    stats = outputs[worst_output(outputs)]
    return comparison_finding(FindingKind.MISMATCH, backend, reference_backend, outputs, expected,
                              f"{backend} differs from {reference_backend}", note=majority,
                              signal=stats["signal"], majority=majority)


def comparison_finding(kind: FindingKind, backend: str, compared_with: str, outputs: dict[str, dict[str, Any]],
                       expected: Mapping[str, TensorType], headline: str, note: str = "",
                       **extra: Any) -> Finding:
    """A finding that ``backend``'s ``outputs`` (per-output statistics) differ from
    ``compared_with``'s, summarized by its worst output; ``extra`` joins the details."""
    output = worst_output(outputs)
    stats = outputs[output]
    summary = (f"{headline} on {output} ({expected[output]}): {stats['description']}, "
               f"max {stats['max_ulp']:.4g} ULP" + (f" ({note})" if note else ""))
    if len(outputs) > 1:
        summary += f" (+{len(outputs) - 1} more outputs)"
    finding = Finding(kind, (backend,), Stage.COMPARE, summary, {
        "compared_with": compared_with,
        **extra,  # blame adds "signal" and "majority" ("outside/in the majority", "no majority")
        "output": output,
        "dtype": expected[output].dtype.value,
        **{key: stats[key] for key in ("error_class", "max_abs_error", "max_rel_error", "max_ulp",
                                       "mismatched", "share")},
        "outputs": outputs,
    })
    return replace(finding, signature=signature(finding))


def count_by_guard(suppressions: Sequence[Suppression]) -> dict[str, int]:
    """How many suppressions each guard made (for a campaign's statistics)."""
    counts: dict[str, int] = {}
    for suppression in suppressions:
        counts[suppression.guard] = counts.get(suppression.guard, 0) + 1
    return counts




# ---------------------------------------------------------------- two runs that must agree


def pair_differences(expected: Mapping[str, TensorType], actual: Outcome, baseline: Outcome,
                     policy: TolerancePolicy, context: Context | None = None,
                     guards: Sequence[Guard] = GUARDS) -> tuple[dict[str, dict[str, Any]], list[Suppression]]:
    """Where ``actual`` differs from ``baseline`` beyond ``policy``, output by output, after
    the guards (run only when ``context`` holds a reference) have claimed what they explain.

    Both outcomes must be OK and conform to ``expected``. Returns the statistics of each
    differing output (as in a blame finding's ``outputs``) and the suppressions, which
    name ``actual``'s backend.
    """
    differing: dict[str, dict[str, Any]] = {}
    suppressions: list[Suppression] = []
    for name, declared in expected.items():
        tolerance = policy.for_output(name, declared.dtype)
        mine, theirs = np.asarray(actual.outputs[name]), np.asarray(baseline.outputs[name])
        left = mismatch_mask(mine, theirs, tolerance)
        if left.any() and context is not None and reference_usable(context.reference, {name: declared}):
            left, claimed = apply_guards(context, actual.backend, name, mine, theirs, left, guards)
            suppressions += claimed
        if left.any():
            differing[name] = _output_stats(declared, tolerance, mine, theirs, left, "pair")
    return differing, suppressions


def worst_output(outputs: Mapping[str, Mapping[str, Any]]) -> str:
    """The output whose difference is most telling (NaN, then Inf, sign, magnitude)."""
    return min(outputs, key=lambda name: _ERROR_CLASSES.index(outputs[name]["error_class"]))
