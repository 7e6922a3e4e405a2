"""The verdict on a test case: the oracles composed, and each finding signed once.

The oracle modules return unsigned findings; the functions here are their public, signed
forms (:func:`sign` is the one place a finding gets its :func:`oracles.signature.signature`).
:func:`judge_case` is the campaign's verdict on one test (blame or differential, then the
optimization-level pairs), :func:`judge_rewrite` the metamorphic one.
"""

from __future__ import annotations

from dataclasses import replace
from functools import wraps
from typing import Callable, Sequence, TypeVar

from fuzzer.graph.case import TestCase
from fuzzer.execution.outcome import Outcome
from oracles import blame as blame_oracle
from oracles import compare, optlevel
from oracles import determinism as determinism_oracle
from oracles import differential as differential_oracle
from oracles import metamorphic as metamorphic_oracle
from oracles import performance
from oracles.finding import Finding, Verdict
from oracles.precision import REFERENCE
from oracles.signature import signature
from oracles.tolerance import DEFAULT_POLICY, TolerancePolicy, along_paths

Result = TypeVar("Result", list[Finding], Verdict, Finding)


def sign(findings: Sequence[Finding]) -> list[Finding]:
    """``findings``, each with its signature."""
    return [replace(finding, signature=signature(finding)) for finding in findings]


def _signed(result: Result) -> Result:
    if isinstance(result, Verdict):
        return Verdict(sign(result.findings), result.suppressions)
    if isinstance(result, Finding):
        return sign([result])[0]
    return sign(result)


def _signing(oracle: Callable[..., Result]) -> Callable[..., Result]:
    @wraps(oracle)
    def signed_oracle(*args, **kwargs) -> Result:
        return _signed(oracle(*args, **kwargs))
    return signed_oracle


differential = _signing(differential_oracle.differential)
judge = _signing(blame_oracle.judge)
blame = _signing(blame_oracle.blame)
opt_level = _signing(optlevel.opt_level)
metamorphic = _signing(metamorphic_oracle.metamorphic)
determinism = _signing(determinism_oracle.determinism)
failure_finding = _signing(compare.failure_finding)
slowdown_finding = _signing(performance.slowdown_finding)


def slowdowns(case: TestCase, outcomes: Sequence[Outcome], policy: performance.PerfPolicy) -> list[Finding]:
    """The slowdowns that the timed pairs among ``outcomes`` show on ``case`` in this one
    measurement (no confirmation: triage's gate, which re-times every candidate)."""
    operators = [node.op for node in case.graph.nodes] if case.graph is not None else []
    found = []
    for outcome in outcomes:
        if outcome.ok and len(outcome.run_seconds) == 2:
            optimized, baseline = outcome.run_seconds  # the optimized side first
            if performance.is_slowdown(outcome.run_seconds, optimized, baseline, policy):
                found.append(slowdown_finding(optimized, baseline, outcome.run_seconds, [], policy, operators))
    return found


def judge_case(case: TestCase, outcomes: Sequence[Outcome], policy: TolerancePolicy = DEFAULT_POLICY,
               fallback_reference: str | None = None,
               pairs: frozenset[tuple[str, str]] = optlevel.OPT_PAIRS) -> Verdict:
    """The campaign's verdict on one test: :func:`judge` with ``policy`` widened along the
    graph's paths, then the optimization-level findings (of ``pairs``: the run's backends'
    :func:`~oracles.optlevel.opt_pairs`) of backends it did not already name; the
    suppressions of both."""
    expected = case.output_types()
    paths = along_paths(case.graph, policy) if case.graph is not None else policy
    verdict = blame_oracle.judge(expected, outcomes, paths, case.graph, fallback_reference=fallback_reference)
    levels = optlevel.opt_level(expected, outcomes, case.graph, pairs=pairs)
    blamed = {f.backends for f in verdict.findings}
    return Verdict(sign(verdict.findings + [f for f in levels.findings if f.backends not in blamed]),
                   verdict.suppressions + levels.suppressions)


def judge_rewrite(case: TestCase, rewrite: str, outcomes: Sequence[Outcome], rewritten: Sequence[Outcome],
                  policy: TolerancePolicy = DEFAULT_POLICY) -> list[tuple[list[Finding], Outcome, Outcome]]:
    """The metamorphic oracle on ``case`` (``outcomes``) and its ``rewrite`` (``rewritten``,
    in the same backend order): per backend but the reference, its findings and the two
    outcomes they compare."""
    expected = case.output_types()
    reference = next((o for o in outcomes if o.backend == REFERENCE), None)
    return [(metamorphic(expected, original, after, rewrite, policy, case.graph, reference).findings, original, after)
            for original, after in zip(outcomes, rewritten) if original.backend != REFERENCE]
