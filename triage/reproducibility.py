"""Does a finding happen again? Its test case re-run several times, each in fresh workers.

A re-run judges the case with the campaign's own oracles (``triage.rerun.Evaluator``) on
the backends that the finding needs (``triage.reduce.judging_backends``). The finding
reproduces when its signature comes back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

from fuzzer.store import RunStore, StoredFinding
from fuzzer.execution.backends import load_backend
from fuzzer.graph.case import TestCase
from oracles.finding import Finding
from triage.reduce import judging_backends
from triage.rerun import Evaluator, campaign_config, find_stored, stored_case
from triage.grouping import near_identical

DEFAULT_RUNS = 5


@dataclass(frozen=True)
class Reproducibility:
    runs: int
    reproduced: int

    @property
    def rate(self) -> float:
        return self.reproduced / self.runs if self.runs else 0.0

    @property
    def flaky(self) -> bool:
        return 0 < self.reproduced < self.runs


def shows(findings: Iterable[Finding], signature: str) -> bool:
    """Whether the finding with ``signature``, or a near-identical one, is among ``findings``
    (the one "same bug?" check)."""
    return any(f.signature == signature or near_identical(f.signature, signature) for f in findings)


def backend_specs(config: Mapping) -> dict[str, str]:
    """Each campaign backend's spec (how the run named it: a name or ``module:Class``) by
    the name its findings carry."""
    return {load_backend(spec).name: spec for spec in campaign_config(config).backends}


def finding_backends(config: Mapping, stored: StoredFinding) -> list[str]:
    """The run's backends that must run again to judge ``stored`` (as reduction chooses them)."""
    return judging_backends(campaign_config(config), stored)


def measure(config: Mapping, case: TestCase, signature: str, backends: Sequence[str],
            runs: int = DEFAULT_RUNS, rewrites: bool = False) -> Reproducibility:
    """Run ``case`` (and its rewrite, with ``rewrites``) ``runs`` times on ``backends``, each
    time in freshly started workers."""
    reproduced = 0
    for _ in range(runs):
        with Evaluator.from_config(dict(config), backends, rewrites=rewrites) as evaluator:
            reproduced += shows(evaluator.evaluate(case), signature)
    return Reproducibility(runs, reproduced)


def measure_finding(store: RunStore, finding_id: int, runs: int = DEFAULT_RUNS) -> Reproducibility:
    """How often stored finding ``finding_id`` reproduces."""
    finding = find_stored(store, finding_id)
    return measure(store.config, stored_case(store, finding_id), finding.signature,
                   finding_backends(store.config, finding), runs, finding.on_rewrite)
