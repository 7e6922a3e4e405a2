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

from dataclasses import replace
from typing import Any, Mapping, Sequence

import numpy as np

from fuzzer.graph.ir import Graph, TensorType
from fuzzer.execution.outcome import Outcome, Stage
from oracles.compare import (FAILURES, agree_everywhere, agreement_classes, compare_arrays, comparison_finding,
                             failure_finding, mismatch_mask, output_stats, partition_outcomes, reference_usable,
                             type_name, votes, worst_output)
from oracles.differential import differential
from oracles.finding import Finding, FindingKind, Suppression, Verdict
from oracles.guards import GUARDS, Context, Guard, apply_guards
from oracles.judge_defects import defective_judges
from oracles.precision import REFERENCE
from oracles.tolerance import DEFAULT_POLICY, TolerancePolicy


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
        if graph is not None:  # a judge whose known defect the graph shows gets no vote
            others = [o for o in others if o.backend not in defective_judges(graph)]
        findings = [replace(f, details={**f.details, "reference": "unavailable"})
                    for f in differential(expected, others, policy, fallback_reference)]
        if reference is not None and reference.status in FAILURES:
            findings.append(failure_finding(reference))
        return Verdict(findings)
    findings, conforming = partition_outcomes(expected, others)
    context = Context(graph, reference, expected, policy)
    majority = _majority(expected, conforming, policy)
    suppressions: list[Suppression] = []
    blamed: dict[str, dict[str, dict[str, Any]]] = {}
    wrong_extents: dict[str, Finding] = {}
    for name, declared in expected.items():
        judged = conforming
        if declared.runtime:
            judged, off, suppressed = _judge_extents(reference, name, declared, conforming)
            suppressions += suppressed
            for finding in off:
                wrong_extents.setdefault(finding.backends[0], finding)
        verdicts, suppressed = _judge_output(context, name, declared, judged, guards)
        suppressions += suppressed
        for backend, stats in verdicts.items():
            blamed.setdefault(backend, {})[name] = stats
    for outcome in conforming:
        if outcome.backend in blamed:
            standing = "no majority" if majority is None else \
                "in the majority" if outcome.backend in majority else "outside the majority"
            findings.append(_mismatch_finding(outcome.backend, blamed[outcome.backend], expected,
                                              standing, reference_backend))
    return Verdict(findings + list(wrong_extents.values()), suppressions)


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


def _judge_extents(reference: Outcome, name: str, declared: TensorType, outcomes: Sequence[Outcome]
                   ) -> tuple[list[Outcome], list[Finding], list[Suppression]]:
    """For an output with an extent only the run gives: the outcomes whose extents are the
    reference's (their values are judged next), and a shape mismatch finding for each other
    one; none when every backend returns one other shape (the reference is the odd one out)."""
    wanted = np.shape(reference.outputs[name])
    shapes = {o.backend: np.shape(o.outputs[name]) for o in outcomes}
    off = [o for o in outcomes if shapes[o.backend] != wanted]
    agreeing = [o for o in outcomes if shapes[o.backend] == wanted]
    if not off:
        return agreeing, [], []
    if len(outcomes) >= 2 and not agreeing and len(set(shapes.values())) == 1:
        return [], [], [Suppression(o.backend, name, f"every backend returns {name} at extents "
                                    f"{list(shapes[o.backend])}, {reference.backend} at {list(wanted)}: "
                                    "the reference is the odd one out", "reference-outlier") for o in off]
    findings = []
    for outcome in off:
        actual = type_name(np.asarray(outcome.outputs[name]))
        findings.append(Finding(FindingKind.SHAPE_MISMATCH, (outcome.backend,), Stage.COMPARE,
                                f"{outcome.backend} returns {name} as {actual}, {reference.backend} at extents "
                                f"{list(wanted)} (declared {declared})", {
                                    "compared_with": reference.backend, "output": name, "dtype": declared.dtype.value,
                                    "error_class": "extent", "outputs": {name: {
                                        "declared": str(declared), "actual": actual,
                                        "kind": FindingKind.SHAPE_MISMATCH.value}}}))
    return agreeing, findings, []


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
        classes = [[member.backend for member in members] for members in agreement_classes(
            outcomes, lambda first, second: compare_arrays(declared, first.outputs[name], second.outputs[name],
                                                           tolerance).equal)]
        if len(classes) == 1:
            for backend, left in remaining.items():
                suppressions.append(Suppression(
                    backend, name, f"every backend agrees with the others but not with {context.reference.backend} "
                    f"({int(left.sum())} elements): the reference is the odd one out (a precision effect the "
                    f"guards missed, or a tcfuzz lowering bug), so no backend is blamed",
                    "reference-outlier", int(left.sum())))
            return {}, suppressions
        errors = {backend: int(left.sum()) for backend, left in remaining.items()}
        winner = max(classes, key=lambda members: (votes(members), len(members), -min(errors[m] for m in members)))
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
            verdicts[outcome.backend] = output_stats(declared, tolerance, np.asarray(outcome.outputs[name]),
                                                      expected, remaining[outcome.backend], signal)
    return verdicts, suppressions


def _majority(expected: Mapping[str, TensorType], outcomes: Sequence[Outcome],
              policy: TolerancePolicy) -> set[str] | None:
    """The backends in the largest class agreeing on every output (None if classes tie)."""
    classes = [[member.backend for member in members]
               for members in agreement_classes(outcomes, agree_everywhere(expected, policy))]
    sizes = sorted((votes(members) for members in classes), reverse=True)
    if not sizes or (len(sizes) > 1 and sizes[0] == sizes[1]):
        return None
    return set(max(classes, key=votes))


def _mismatch_finding(backend: str, outputs: dict[str, dict[str, Any]], expected: Mapping[str, TensorType],
                      majority: str, reference_backend: str) -> Finding:
    stats = outputs[worst_output(outputs)]
    return comparison_finding(FindingKind.MISMATCH, backend, reference_backend, outputs, expected,
                              f"{backend} differs from {reference_backend}", note=majority,
                              signal=stats["signal"], majority=majority)


def count_by_guard(suppressions: Sequence[Suppression]) -> dict[str, int]:
    """How many suppressions each guard made (for a campaign's statistics)."""
    counts: dict[str, int] = {}
    for suppression in suppressions:
        counts[suppression.guard] = counts.get(suppression.guard, 0) + 1
    return counts
