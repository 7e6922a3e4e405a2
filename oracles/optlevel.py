"""The optimization-level oracle: one compiler with optimizations off and on must agree.

Both sides share a frontend, kernels and numerics, so they are compared under tight
tolerances (:data:`OPT_TOLERANCES`, a few ULPs of float32, about two of float16): a
difference is the cleanest signal of a miscompiling optimization. The pairs are the backends'
own facts (``Backend.baseline``, :data:`OPT_PAIRS`); a pair is judged only when both of its backends ran. With the
``ref-f64`` outcome at hand, the guards of :mod:`oracles.guards` first claim the elements
that depend on rounding (judged against the same tight tolerances).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Iterable, Mapping, Sequence

from fuzzer.graph.ir import DType, Graph, TensorType
from fuzzer.execution.backends import builtin_backends, load_backend
from fuzzer.execution.outcome import Outcome
from oracles.compare import comparison_finding, declared_type_finding, reference_usable
from oracles.finding import Finding, FindingKind, Verdict
from oracles.guards import Context, pair_differences
from oracles.precision import REFERENCE
from oracles.tolerance import Tolerance, TolerancePolicy, along_paths

def opt_pairs(backends: Iterable[type]) -> frozenset[tuple[str, str]]:
    """(optimizations off, optimizations on) of ``backends`` (backend classes, plugins too),
    as their outcomes name them: each that names a ``baseline``, with it."""
    return frozenset((load_backend(backend.baseline).name, backend.name) for backend in backends if backend.baseline)


# The built-in backends' pairs: the same compiler, frontend and device.
OPT_PAIRS: frozenset[tuple[str, str]] = opt_pairs(builtin_backends().values())

OPT_TOLERANCES: Mapping[DType, Tolerance] = MappingProxyType({
    DType.float64: Tolerance(rtol=1e-12, atol=1e-14),
    DType.float32: Tolerance(rtol=1e-5, atol=1e-6),
    DType.float16: Tolerance(rtol=2e-3, atol=1e-3),
    DType.bfloat16: Tolerance(rtol=1.6e-2, atol=1e-2),
})
OPT_POLICY = TolerancePolicy(OPT_TOLERANCES)


def opt_level(expected: Mapping[str, TensorType], outcomes: Sequence[Outcome], graph: Graph | None = None,
              policy: TolerancePolicy = OPT_POLICY, pairs: frozenset[tuple[str, str]] = OPT_PAIRS,
              reference_backend: str = REFERENCE) -> Verdict:
    """OPT_MISMATCH findings (blaming the optimized backend) and the guards' suppressions.

    ``policy`` is widened along the graph's paths when ``graph`` is given. Outcomes that
    failed or break the declared types are left to the main oracle.
    """
    if graph is not None:
        policy = along_paths(graph, policy)
    by_name = {o.backend: o for o in outcomes}
    reference = by_name.get(reference_backend)
    context = Context(graph, reference, expected, policy) if reference_usable(reference, expected) else None
    findings: list[Finding] = []
    suppressions = []
    for baseline_name, optimized_name in sorted(pairs):
        baseline, optimized = by_name.get(baseline_name), by_name.get(optimized_name)
        if not (baseline and optimized and baseline.ok and optimized.ok):
            continue
        if declared_type_finding(expected, baseline) or declared_type_finding(expected, optimized):
            continue
        differing, claimed = pair_differences(expected, optimized, baseline, policy, context)
        suppressions += claimed
        if not differing:
            continue
        findings.append(comparison_finding(FindingKind.OPT_MISMATCH, optimized_name, baseline_name, differing, expected,
                                           f"{optimized_name} (optimized) differs from {baseline_name}"))
    return Verdict(findings, suppressions)
