"""The differential oracle: backends that run the same test case must agree.

Failed runs (crash, hang, out of memory, unexpected exception) are findings by
themselves. Successful runs are checked against the graph's declared output types, and
the runs that conform are grouped into agreement classes; the largest class is the
consensus and every backend outside it is blamed once.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from fuzzer.graph.ir import DType, TensorType
from fuzzer.execution.outcome import Outcome, Stage, Status
from oracles.finding import Finding, FindingKind
from oracles.tolerance import DEFAULT_POLICY, Tolerance, TolerancePolicy
from triage.signature import failure_cause, headline, signature

TAIL_CHARS = 2000
DECLARED_TYPES = "declared types"  # what a type finding is compared with: the graph's declared outputs

# Worst first: a dtype disagreement outranks a shape disagreement outranks wrong values.
_SEVERITY = (FindingKind.DTYPE_MISMATCH, FindingKind.SHAPE_MISMATCH, FindingKind.MISMATCH)
# Most telling first, so the class that names a finding is the most specific one.
_ERROR_CLASSES = ("nan", "inf", "sign", "magnitude", "")

_FAILURES = {Status.CRASH: FindingKind.CRASH, Status.HANG: FindingKind.HANG,
             Status.OOM: FindingKind.OOM, Status.ERROR: FindingKind.ERROR}
_FAILURE_VERBS = {FindingKind.CRASH: "crashed", FindingKind.HANG: "hung",
                  FindingKind.OOM: "ran out of memory", FindingKind.ERROR: "failed"}


@dataclass(frozen=True)
class Comparison:
    """How two arrays that should hold the same output compare."""

    equal: bool
    kind: FindingKind | None  # None when equal
    max_abs_error: float = 0.0  # over positions finite on both sides
    max_rel_error: float = 0.0  # |a-b| / max(|a|,|b|), over the same positions
    mismatched: int = 0
    total: int = 0
    nan_mismatches: int = 0  # exactly one side is NaN
    inf_mismatches: int = 0  # an Inf on either side, and the values differ
    error_class: str = ""  # "nan", "inf", "sign", "magnitude", or "" when no values differ
    description: str = ""

    def stats(self) -> dict[str, Any]:
        """A JSON-serializable form, for finding details."""
        return {**asdict(self), "kind": self.kind.value if self.kind else None}


def _is_float(dtype: np.dtype) -> bool:
    return dtype.kind == "f" or dtype == DType.bfloat16.numpy


def _dtype_name(dtype: np.dtype) -> str:
    return "bfloat16" if dtype == DType.bfloat16.numpy else dtype.name


def _type_name(array: np.ndarray) -> str:
    return f"{_dtype_name(array.dtype)}[{','.join(map(str, array.shape))}]"


def compare_arrays(expected_type: TensorType | None, a: np.ndarray, b: np.ndarray,
                   tolerance: Tolerance | None) -> Comparison:
    """Compare ``a`` with ``b`` elementwise; ``tolerance`` None means exact.

    Both arrays must share a dtype and shape, and equal ``expected_type`` when it is
    given. Floats are compared in float64: NaN agrees only with NaN (payloads ignored),
    Inf only with an Inf of the same sign, finite pairs within ``tolerance``.
    """
    a, b = np.asarray(a), np.asarray(b)
    declared = f" (declared {expected_type})" if expected_type else ""
    if a.dtype != b.dtype or (expected_type and a.dtype != expected_type.dtype.numpy):
        return Comparison(False, FindingKind.DTYPE_MISMATCH, description=(
            f"dtype {_dtype_name(a.dtype)} vs {_dtype_name(b.dtype)}{declared}"))
    if a.shape != b.shape or (expected_type and a.shape != expected_type.shape):
        return Comparison(False, FindingKind.SHAPE_MISMATCH,
                          description=f"shape {list(a.shape)} vs {list(b.shape)}{declared}")
    wide_a, wide_b = a.astype(np.float64), b.astype(np.float64)
    nan_a, nan_b = np.isnan(wide_a), np.isnan(wide_b)
    nan_mismatch = nan_a != nan_b
    inf_mismatch = (np.isinf(wide_a) | np.isinf(wide_b)) & ~(nan_a | nan_b) & (wide_a != wide_b)
    finite = np.isfinite(wide_a) & np.isfinite(wide_b)
    if tolerance is None:
        # Integers compare in their own dtype: float64 cannot hold every int64 exactly.
        close = a == b if not _is_float(a.dtype) else wide_a == wide_b
    else:
        close = tolerance.within(np.where(finite, wide_a, 0.0), np.where(finite, wide_b, 0.0))
    value_mismatch = finite & ~close
    mismatched = int(np.count_nonzero(nan_mismatch | inf_mismatch | value_mismatch))
    abs_error = np.abs(wide_a[finite] - wide_b[finite])
    scale = np.maximum(np.abs(wide_a[finite]), np.abs(wide_b[finite]))
    rel_error = np.divide(abs_error, scale, out=np.zeros_like(abs_error), where=scale > 0)
    stats = dict(
        max_abs_error=float(abs_error.max(initial=0.0)),
        max_rel_error=float(rel_error.max(initial=0.0)),
        mismatched=mismatched, total=int(a.size),
        nan_mismatches=int(np.count_nonzero(nan_mismatch)),
        inf_mismatches=int(np.count_nonzero(inf_mismatch)),
    )
    if not mismatched:
        return Comparison(True, None, **stats, description="equal")
    if stats["nan_mismatches"]:
        error_class = "nan"
    elif stats["inf_mismatches"]:
        error_class = "inf"
    elif 2 * np.count_nonzero(
            np.sign(wide_a[value_mismatch]) * np.sign(wide_b[value_mismatch]) < 0) >= mismatched:
        error_class = "sign"  # at least half the wrong values have the opposite sign
    else:
        error_class = "magnitude"
    parts = [f"max abs err {stats['max_abs_error']:.4g}",
             f"{mismatched}/{a.size} elements ({100 * mismatched / a.size:.3g}%)"]
    if stats["nan_mismatches"]:
        parts.append(f"{stats['nan_mismatches']} NaN positions differ")
    if stats["inf_mismatches"]:
        parts.append(f"{stats['inf_mismatches']} Inf values differ")
    parts.append(f"class {error_class}")
    return Comparison(False, FindingKind.MISMATCH, **stats, error_class=error_class,
                      description=", ".join(parts))


def differential(expected: Mapping[str, TensorType], outcomes: Sequence[Outcome],
                 policy: TolerancePolicy = DEFAULT_POLICY,
                 reference: str | None = None) -> list[Finding]:
    """Findings for one test case, given every backend's outcome.

    ``expected`` holds the declared type of each graph output; only those outputs are
    checked. Ties between equally large agreement classes go to the one containing
    ``reference``, else to the one whose first member comes first in ``outcomes``.
    """
    findings, conforming = partition_outcomes(expected, outcomes, _failure_finding)
    findings.extend(_consensus_findings(expected, conforming, policy, reference))
    return [replace(finding, signature=signature(finding)) for finding in findings]


def partition_outcomes(expected: Mapping[str, TensorType], outcomes: Sequence[Outcome],
                       failure: Callable[[Outcome], Finding]) -> tuple[list[Finding], list[Outcome]]:
    """Findings for failed runs (``failure``) and for outputs that break the declared
    types, and the outcomes whose values can be compared."""
    findings: list[Finding] = []
    conforming: list[Outcome] = []
    for outcome in outcomes:
        if outcome.status in _FAILURES:
            findings.append(failure(outcome))
        elif outcome.ok:
            type_finding = _declared_type_finding(expected, outcome)
            if type_finding:
                findings.append(type_finding)
            else:
                conforming.append(outcome)
    return findings, conforming


def _failure_finding(outcome: Outcome) -> Finding:
    kind = _FAILURES[outcome.status]
    stage = outcome.stage or Stage.RUN
    details: dict[str, Any] = {"error_type": outcome.error_type, "message": outcome.message}
    if kind is FindingKind.ERROR:
        details["traceback"] = outcome.traceback[-TAIL_CHARS:]
    else:
        details.update(exit_signal=outcome.exit_signal,
                       stderr_tail=outcome.stderr_tail[-TAIL_CHARS:], seconds=outcome.seconds)
    summary = f"{outcome.backend} {_FAILURE_VERBS[kind]} during {stage.value}"
    if kind is FindingKind.HANG:
        summary += f" after {outcome.seconds:.1f} s"
    summary += "".join(f": {text}" for text in (failure_cause(details), headline(outcome.message)[:200]) if text)
    return Finding(kind, (outcome.backend,), stage, summary, details)


def _worst(kinds: list[FindingKind]) -> FindingKind:
    return min(kinds, key=_SEVERITY.index)


def _declared_type_finding(expected: Mapping[str, TensorType], outcome: Outcome) -> Finding | None:
    """A finding if ``outcome`` lacks a declared output or returns one with the wrong type.

    Its ``error_class`` is the returned dtype for a dtype mismatch, else "missing",
    "rank" or "extent", so that signatures separate these kinds of type error.
    """
    problems: dict[str, dict[str, Any]] = {}
    for name, declared in expected.items():
        if name not in outcome.outputs:
            problems[name] = {"kind": FindingKind.SHAPE_MISMATCH, "actual": "missing",
                              "error_class": "missing"}
            continue
        array = np.asarray(outcome.outputs[name])
        actual = _type_name(array)
        if array.dtype != declared.dtype.numpy:
            problems[name] = {"kind": FindingKind.DTYPE_MISMATCH, "actual": actual,
                              "error_class": _dtype_name(array.dtype)}
        elif array.shape != declared.shape:
            problems[name] = {"kind": FindingKind.SHAPE_MISMATCH, "actual": actual,
                              "error_class": "rank" if array.ndim != declared.rank else "extent"}
    if not problems:
        return None
    kind = _worst([problem["kind"] for problem in problems.values()])
    output = next(name for name, problem in problems.items() if problem["kind"] is kind)
    problem = problems[output]
    if problem["actual"] == "missing":
        summary = f"{outcome.backend} returns no output {output} (declared {expected[output]})"
    else:
        summary = (f"{outcome.backend} returns {output} as {problem['actual']}, "
                   f"declared {expected[output]}")
    if len(problems) > 1:
        summary += f" (+{len(problems) - 1} more outputs)"
    return Finding(kind, (outcome.backend,), Stage.COMPARE, summary, {
        "compared_with": DECLARED_TYPES,
        "output": output,
        "dtype": expected[output].dtype.value,
        "error_class": problem["error_class"],
        "outputs": {name: {"declared": str(expected[name]), "actual": found["actual"],
                           "kind": found["kind"].value} for name, found in problems.items()},
    })


def _compare_outcomes(expected: Mapping[str, TensorType], policy: TolerancePolicy,
                      first: Outcome, second: Outcome) -> dict[str, Comparison]:
    return {name: compare_arrays(declared, first.outputs[name], second.outputs[name],
                                 policy.for_output(name, declared.dtype))
            for name, declared in expected.items()}


def _consensus_findings(expected: Mapping[str, TensorType], outcomes: Sequence[Outcome],
                        policy: TolerancePolicy, reference: str | None) -> list[Finding]:
    if len(outcomes) < 2:
        return []
    classes: list[list[Outcome]] = []
    for outcome in outcomes:
        for members in classes:
            comparisons = _compare_outcomes(expected, policy, members[0], outcome)
            if all(comparison.equal for comparison in comparisons.values()):
                members.append(outcome)
                break
        else:
            classes.append([outcome])
    # max() keeps the first of equal keys, and classes are in order of their first member.
    consensus = max(classes, key=lambda members: (
        len(members), any(member.backend == reference for member in members)))
    representative = consensus[0]
    agreeing = len(consensus) - 1
    others = f" and {agreeing} other{'s' if agreeing > 1 else ''}" if agreeing else ""
    findings = []
    for outcome in outcomes:
        if any(outcome is member for member in consensus):
            continue
        comparisons = _compare_outcomes(expected, policy, representative, outcome)
        differing = {name: comparison for name, comparison in comparisons.items()
                     if not comparison.equal}
        kind = _worst([comparison.kind for comparison in differing.values()])
        output = min(differing, key=lambda name: (
            _SEVERITY.index(differing[name].kind),
            _ERROR_CLASSES.index(differing[name].error_class)))
        summary = (f"{outcome.backend} differs from {representative.backend}{others} on "
                   f"{output} ({expected[output]}): {differing[output].description}")
        if len(differing) > 1:
            summary += f" (+{len(differing) - 1} more outputs)"
        findings.append(Finding(kind, (outcome.backend,), Stage.COMPARE, summary, {
            "compared_with": representative.backend,
            "consensus": [member.backend for member in consensus],
            "output": output,
            "dtype": expected[output].dtype.value,
            "error_class": differing[output].error_class,
            "outputs": {name: comparison.stats() for name, comparison in comparisons.items()},
        }))
    return findings
