"""The comparison rules, agreement classes, and failure and declared-type findings that every
oracle shares.

Two values agree when NaN meets NaN (any payload), an Inf the same Inf, and finite values
are within tolerance (``-0 == +0``; None: exact, integers in their own dtype). Failed runs
(crash, hang, out of memory, unexpected exception) are findings by themselves; successful
runs are checked against the graph's declared output types first.
"""

from __future__ import annotations

import signal as signals
from dataclasses import asdict, dataclass, replace
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from fuzzer.graph.ir import TensorType
from fuzzer.execution.outcome import Outcome, Stage, Status
from oracles.bug_keys import backend_facts
from oracles.finding import Finding, FindingKind
from oracles.precision import ulp_distance
from oracles.signature import failure_cause, headline
from oracles.tolerance import Tolerance, TolerancePolicy

TAIL_CHARS = 2000
DECLARED_TYPES = "declared types"  # what a type finding is compared with: the graph's declared outputs

# Worst first: a dtype disagreement outranks a shape disagreement outranks wrong values.
SEVERITY = (FindingKind.DTYPE_MISMATCH, FindingKind.SHAPE_MISMATCH, FindingKind.MISMATCH)
# Most telling first, so the class that names a finding is the most specific one.
ERROR_CLASSES = ("nan", "inf", "sign", "magnitude", "")

FAILURES = {Status.CRASH: FindingKind.CRASH, Status.HANG: FindingKind.HANG,
            Status.OOM: FindingKind.OOM, Status.ERROR: FindingKind.ERROR}
FAILURE_VERBS = {FindingKind.CRASH: "crashed", FindingKind.HANG: "hung",
                 FindingKind.OOM: "ran out of memory", FindingKind.ERROR: "failed"}


# ---------------------------------------------------------------- the rule (standalone: repro scripts embed it)


def is_float(dtype: np.dtype) -> bool:
    return dtype.kind == "f" or dtype.name == "bfloat16"


def disagreements(a: np.ndarray, b: np.ndarray, tolerance) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Elementwise, where ``a`` and ``b`` disagree: exactly one side is NaN; an Inf on either
    side and the values differ; a finite pair not within ``tolerance`` (None: exact)."""
    a, b = np.asarray(a), np.asarray(b)
    wide_a, wide_b = a.astype(np.float64), b.astype(np.float64)
    nan_a, nan_b = np.isnan(wide_a), np.isnan(wide_b)
    inf = (np.isinf(wide_a) | np.isinf(wide_b)) & ~(nan_a | nan_b) & (wide_a != wide_b)
    finite = np.isfinite(wide_a) & np.isfinite(wide_b)
    if tolerance is None:
        # Integers compare in their own dtype: float64 cannot hold every int64 exactly.
        close = a == b if not is_float(a.dtype) else wide_a == wide_b
    else:
        close = tolerance.within(np.where(finite, wide_a, 0.0), np.where(finite, wide_b, 0.0))
    return nan_a != nan_b, inf, finite & ~close


def mismatch_mask(a: np.ndarray, b: np.ndarray, tolerance) -> np.ndarray:
    """Elementwise, whether ``a`` and ``b`` disagree (:func:`disagreements`, any reason)."""
    nan, inf, value = disagreements(a, b, tolerance)
    return nan | inf | value


# ---------------------------------------------------------------- two arrays, two outcomes


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


def type_name(array: np.ndarray) -> str:
    return f"{array.dtype.name}[{','.join(map(str, array.shape))}]"


def compare_arrays(expected_type: TensorType | None, a: np.ndarray, b: np.ndarray,
                   tolerance: Tolerance | None) -> Comparison:
    """Compare ``a`` with ``b`` elementwise under :func:`disagreements`; ``tolerance`` None
    means exact. Both arrays must share a dtype and shape, and equal ``expected_type`` when
    it is given."""
    a, b = np.asarray(a), np.asarray(b)
    declared = f" (declared {expected_type})" if expected_type else ""
    if a.dtype != b.dtype or (expected_type and a.dtype != expected_type.dtype.numpy):
        return Comparison(False, FindingKind.DTYPE_MISMATCH, description=(
            f"dtype {a.dtype.name} vs {b.dtype.name}{declared}"))
    if a.shape != b.shape or (expected_type and not expected_type.admits(a.shape)):
        return Comparison(False, FindingKind.SHAPE_MISMATCH,
                          description=f"shape {list(a.shape)} vs {list(b.shape)}{declared}")
    nan_mismatch, inf_mismatch, value_mismatch = disagreements(a, b, tolerance)
    wide_a, wide_b = a.astype(np.float64), b.astype(np.float64)
    finite = np.isfinite(wide_a) & np.isfinite(wide_b)
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


def compare_outcomes(expected: Mapping[str, TensorType], policy: TolerancePolicy,
                     first: Outcome, second: Outcome) -> dict[str, Comparison]:
    """Each declared output of ``first`` compared with ``second``'s under ``policy``."""
    return {name: compare_arrays(declared, first.outputs[name], second.outputs[name],
                                 policy.for_output(name, declared.dtype))
            for name, declared in expected.items()}


def votes(backends: Sequence[str]) -> int:
    """The independent implementations among ``backends``: one vote per compiler, however
    many of its configurations agree (five ORT levels sharing one kernel are one opinion)."""
    return len({backend_facts(backend).compiler for backend in backends})


def agreement_classes(outcomes: Sequence[Outcome], agree: Callable[[Outcome, Outcome], bool]) -> list[list[Outcome]]:
    """``outcomes`` grouped with the first class whose first member ``agree``s, classes in
    order of their first member."""
    classes: list[list[Outcome]] = []
    for outcome in outcomes:
        for members in classes:
            if agree(members[0], outcome):
                members.append(outcome)
                break
        else:
            classes.append([outcome])
    return classes


def agree_everywhere(expected: Mapping[str, TensorType], policy: TolerancePolicy) -> Callable[[Outcome, Outcome], bool]:
    """Whether two outcomes agree on every declared output (for :func:`agreement_classes`)."""
    return lambda first, second: all(c.equal for c in compare_outcomes(expected, policy, first, second).values())


def worst_kind(kinds: list[FindingKind]) -> FindingKind:
    return min(kinds, key=SEVERITY.index)


def worst_output(outputs: Mapping[str, Mapping[str, Any]]) -> str:
    """The output whose difference is most telling (NaN, then Inf, sign, magnitude)."""
    return min(outputs, key=lambda name: ERROR_CLASSES.index(outputs[name]["error_class"]))


def reference_usable(reference: Outcome | None, expected: Mapping[str, TensorType]) -> bool:
    """Whether the reference ran and returned every declared output with its declared shape."""
    return reference is not None and reference.ok and all(
        name in reference.outputs and declared.admits(np.shape(reference.outputs[name]))
        for name, declared in expected.items())


def output_stats(declared: TensorType, tolerance: Tolerance | None, actual: np.ndarray, expected: np.ndarray,
                 left: np.ndarray, signal: str) -> dict[str, Any]:
    """Comparison statistics over the elements ``left`` (no guard explains them; the others count as equal)."""
    patched = np.where(left, actual, expected).astype(actual.dtype)
    comparison = compare_arrays(declared, patched, expected, tolerance)
    ulps = ulp_distance(actual[left], expected[left], declared.dtype)
    finite_ulps = ulps[np.isfinite(ulps)]
    return {**comparison.stats(), "max_ulp": float(finite_ulps.max(initial=0.0)),
            "share": comparison.mismatched / max(comparison.total, 1), "signal": signal}


def extent_stats(declared: TensorType, actual: np.ndarray, expected: np.ndarray, signal: str) -> dict[str, Any]:
    """:func:`output_stats` of two arrays whose run-time extents differ: every element differs."""
    comparison = compare_arrays(declared, actual, expected, None)
    return {**comparison.stats(), "mismatched": max(actual.size, expected.size), "total": expected.size,
            "max_ulp": 0.0, "share": 1.0, "signal": signal}


# ---------------------------------------------------------------- findings


def failure_finding(outcome: Outcome, name_signal: bool = True) -> Finding:
    """The crash/hang/oom/error finding of a failed ``outcome``; with ``name_signal``, the
    name of the signal that ended the worker joins the details (``signal``)."""
    kind = FAILURES[outcome.status]
    stage = outcome.stage or Stage.RUN
    details: dict[str, Any] = {"error_type": outcome.error_type, "message": outcome.message}
    if kind is FindingKind.ERROR:
        details["traceback"] = outcome.traceback[-TAIL_CHARS:]
    else:
        details.update(exit_signal=outcome.exit_signal,
                       stderr_tail=outcome.stderr_tail[-TAIL_CHARS:], seconds=outcome.seconds)
    summary = f"{outcome.backend} {FAILURE_VERBS[kind]} during {stage.value}"
    if kind is FindingKind.HANG:
        summary += f" after {outcome.seconds:.1f} s"
    summary += "".join(f": {text}" for text in (failure_cause(details), headline(outcome.message)[:200]) if text)
    finding = Finding(kind, (outcome.backend,), stage, summary, details)
    if name_signal and outcome.exit_signal:
        try:
            name = signals.Signals(outcome.exit_signal).name
        except ValueError:
            name = f"signal {outcome.exit_signal}"
        finding = replace(finding, details={**finding.details, "signal": name})
    return finding


def declared_type_finding(expected: Mapping[str, TensorType], outcome: Outcome) -> Finding | None:
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
        actual = type_name(array)
        if array.dtype != declared.dtype.numpy:
            problems[name] = {"kind": FindingKind.DTYPE_MISMATCH, "actual": actual,
                              "error_class": array.dtype.name}
        elif not declared.admits(array.shape):
            problems[name] = {"kind": FindingKind.SHAPE_MISMATCH, "actual": actual,
                              "error_class": "rank" if array.ndim != declared.rank else "extent"}
    if not problems:
        return None
    kind = worst_kind([problem["kind"] for problem in problems.values()])
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


def partition_outcomes(expected: Mapping[str, TensorType], outcomes: Sequence[Outcome],
                       name_signal: bool = True) -> tuple[list[Finding], list[Outcome]]:
    """Findings for failed runs (:func:`failure_finding`) and for outputs that break the
    declared types, and the outcomes whose values can be compared."""
    findings: list[Finding] = []
    conforming: list[Outcome] = []
    for outcome in outcomes:
        if outcome.status in FAILURES:
            findings.append(failure_finding(outcome, name_signal))
        elif outcome.ok:
            type_finding = declared_type_finding(expected, outcome)
            if type_finding:
                findings.append(type_finding)
            else:
                conforming.append(outcome)
    return findings, conforming


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
    return Finding(kind, (backend,), Stage.COMPARE, summary, {
        "compared_with": compared_with,
        **extra,  # blame adds "signal" and "majority" ("outside/in the majority", "no majority")
        "output": output,
        "dtype": expected[output].dtype.value,
        **{key: stats[key] for key in ("error_class", "max_abs_error", "max_rel_error", "max_ulp",
                                       "mismatched", "share")},
        "outputs": outputs,
    })
