"""The differential oracle: backends that run the same test case must agree.

Failed runs and outputs that break the declared types are findings by themselves
(:func:`oracles.compare.partition_outcomes`). The runs that conform are grouped into
agreement classes; the largest class is the consensus and every backend outside it is
blamed once.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from fuzzer.graph.ir import TensorType
from fuzzer.execution.outcome import Outcome, Stage
from oracles.compare import (ERROR_CLASSES, SEVERITY, agree_everywhere, agreement_classes, compare_outcomes,
                             partition_outcomes, votes, worst_kind)
from oracles.finding import Finding
from oracles.tolerance import DEFAULT_POLICY, TolerancePolicy


def differential(expected: Mapping[str, TensorType], outcomes: Sequence[Outcome],
                 policy: TolerancePolicy = DEFAULT_POLICY,
                 reference: str | None = None) -> list[Finding]:
    """Findings for one test case, given every backend's outcome (unsigned: see :mod:`oracles.verdict`).

    ``expected`` holds the declared type of each graph output; only those outputs are
    checked. Ties between equally large agreement classes go to the one containing
    ``reference``, else to the one whose first member comes first in ``outcomes``.
    """
    findings, conforming = partition_outcomes(expected, outcomes, name_signal=False)
    return findings + _consensus_findings(expected, conforming, policy, reference)


def _consensus_findings(expected: Mapping[str, TensorType], outcomes: Sequence[Outcome],
                        policy: TolerancePolicy, reference: str | None) -> list[Finding]:
    if len(outcomes) < 2:
        return []
    classes = agreement_classes(outcomes, agree_everywhere(expected, policy))
    # max() keeps the first of equal keys, and classes are in order of their first member.
    consensus = max(classes, key=lambda members: (
        votes([member.backend for member in members]), len(members),
        any(member.backend == reference for member in members)))
    representative = consensus[0]
    agreeing = len(consensus) - 1
    others = f" and {agreeing} other{'s' if agreeing > 1 else ''}" if agreeing else ""
    findings = []
    for outcome in outcomes:
        if any(outcome is member for member in consensus):
            continue
        comparisons = compare_outcomes(expected, policy, representative, outcome)
        differing = {name: comparison for name, comparison in comparisons.items()
                     if not comparison.equal}
        kind = worst_kind([comparison.kind for comparison in differing.values()])
        output = min(differing, key=lambda name: (
            SEVERITY.index(differing[name].kind),
            ERROR_CLASSES.index(differing[name].error_class)))
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
