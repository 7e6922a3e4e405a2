"""Turn a test case into findings again, as the campaign would: for reduction, localization
and reproducibility checks.

An :class:`Evaluator` holds one isolated worker per backend (a
:class:`~fuzzer.execution.isolation.WorkerGroup`) and the run's judging settings (tolerance policy,
fallback reference). :meth:`Evaluator.evaluate` runs a case and applies the campaign's
oracles for one test (:func:`oracles.blame.judge_case`). An evaluator for a finding on a
metamorphic rewrite (``rewrites``) also rewrites each case as the campaign did and applies
the metamorphic oracle; such a finding's stored case is the original, so that reduction
shrinks the original and rewrites every candidate again.
"""

from __future__ import annotations

import random
import tempfile
from pathlib import Path
from typing import Any, Mapping, Sequence

from fuzzer.store import RunStore, StoredFinding
from fuzzer.execution.backends import load_backend
from fuzzer.campaign.config import CampaignConfig
from fuzzer.graph.export_onnx import to_onnx_bytes
from fuzzer.graph.ir import Graph
from fuzzer.execution.isolation import Limits, WorkerGroup, collect_all
from fuzzer.graph.case import TestCase
from fuzzer.execution.outcome import Outcome
from oracles.performance import PerfPolicy
from oracles.optlevel import opt_pairs
from oracles.verdict import judge_case, judge_rewrite, slowdowns
from oracles.finding import Finding
from oracles.metamorphic import NotApplicable, rewrite_case
from oracles.tolerance import DEFAULT_POLICY, TolerancePolicy, policy_from_dict



def campaign_config(config: Mapping[str, Any]) -> CampaignConfig:
    """The CampaignConfig of a run's stored configuration (``store.config``), or of the
    campaign dict itself; TIR runs have none."""
    if config.get("mode") == "tir":
        raise ValueError("a TIR-mode run has no graph campaign configuration")
    return CampaignConfig.from_dict(config.get("campaign", config))


def find_stored(store: RunStore, finding_id: int) -> StoredFinding:
    for stored in store.findings():
        if stored.id == finding_id:
            return stored
    raise LookupError(f"no finding {finding_id} in {store.run_dir}; list findings with `tcfuzz report`")


def stored_case(store: RunStore, finding_id: int) -> TestCase:
    """The test case behind a finding, rebuilt from its artifacts (graph, model, inputs)
    with the run's opset and the finding's seed and test index; for a finding on a rewrite,
    the original case the campaign rewrote."""
    stored = find_stored(store, finding_id)
    if stored.on_rewrite:
        graph_json, inputs = store.load_original(stored)
        graph = Graph.from_json(graph_json)
        opset = campaign_config(store.config).opset
        return TestCase(graph, inputs, to_onnx_bytes(graph, opset), opset, stored.seed, stored.test_index)
    graph_json = store.load_graph_json(stored)
    graph = Graph.from_json(graph_json) if graph_json.strip() not in ("", "null") else None
    return TestCase(graph, store.load_inputs(finding_id), store.load_model(stored),
                    campaign_config(store.config).opset, stored.seed, stored.test_index)


class Evaluator:
    """Isolated workers for some backends plus a run's judging settings. Use as a context
    manager (workers start on entry, stop on exit)."""

    def __init__(self, backends: Sequence[str], *, policy: TolerancePolicy = DEFAULT_POLICY,
                 fallback_reference: str | None = None, limits: Limits = Limits(),
                 log_dir: Path | None = None, rewrites: bool = False,
                 perf_policy: PerfPolicy = PerfPolicy(), pythons: Mapping[str, str] | None = None) -> None:
        self.backends = tuple(backends)
        self.policy = policy
        self.perf_policy = perf_policy
        self.fallback_reference = fallback_reference
        self.rewrites = rewrites  # also judge each case against its campaign rewrite
        self.names = {spec: load_backend(spec).name for spec in self.backends}  # as outcomes name them
        self.opt_pairs = opt_pairs(load_backend(spec) for spec in self.backends)
        self.group = WorkerGroup(self.backends, limits, log_dir or Path(tempfile.mkdtemp(prefix="tcfuzz-rerun-")),
                                 pythons=dict(pythons or {}))

    @classmethod
    def from_config(cls, config: Mapping[str, Any], backends: Sequence[str] | None = None,
                    log_dir: Path | None = None, rewrites: bool = False) -> Evaluator:
        """An evaluator judging like the run whose ``store.config`` is ``config``, on
        ``backends`` (as the run named them; all of the run's by default)."""
        campaign = campaign_config(config)
        policy = policy_from_dict(campaign.tolerances) if campaign.tolerances else DEFAULT_POLICY
        return cls(campaign.backends if backends is None else backends, policy=policy,
                   fallback_reference=campaign.reference,
                   limits=Limits(timeout=campaign.timeout, memory_mb=campaign.memory_mb), log_dir=log_dir,
                   rewrites=rewrites, perf_policy=campaign.perf_policy, pythons=campaign.pythons)

    def __enter__(self) -> Evaluator:
        self.group.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.group.close()

    @property
    def restarts(self) -> int:
        return sum(worker.restarts for worker in self.group.workers)

    def outcomes_many(self, cases: Sequence[TestCase], only: Sequence[str] | None = None) -> list[list[Outcome]]:
        """Every case's outcomes on every backend (or on those named in ``only``, by the
        backends' own names), all backends working at once."""
        if not cases:
            return []
        workers = [w for w in self.group.workers if only is None or w.name in only]
        for worker in workers:
            worker.submit(cases)
        by_worker = collect_all(workers)
        return [[outcomes[position] for outcomes in by_worker] for position in range(len(cases))]

    def judge(self, case: TestCase, outcomes: Sequence[Outcome]) -> list[Finding]:
        """The campaign's verdict, and the slowdowns of the timed pairs among the backends."""
        return judge_case(case, outcomes, self.policy, self.fallback_reference, self.opt_pairs).findings + \
            slowdowns(case, outcomes, self.perf_policy)

    def evaluate(self, case: TestCase) -> list[Finding]:
        """The findings the campaign's per-test oracles report for ``case``."""
        return self.evaluate_many([case])[0]

    def evaluate_many(self, cases: Sequence[TestCase]) -> list[list[Finding]]:
        """:meth:`evaluate` for several cases, sent to the workers as one batch (with their
        rewrites, for an evaluator of ``rewrites``)."""
        rewritten = [rewritten_case(case) if self.rewrites else None for case in cases]
        outcomes = self.outcomes_many([*cases, *(r[1] for r in rewritten if r is not None)])
        after = iter(outcomes[len(cases):])
        found = []
        for case, before, rewrite in zip(cases, outcomes, rewritten):
            findings = self.judge(case, before)
            if rewrite is not None:
                findings += [f for pair, *_ in judge_rewrite(case, rewrite[0], before, next(after), self.policy)
                             for f in pair]
            found.append(findings)
        return found


def rewritten_case(case: TestCase) -> tuple[str, TestCase] | None:
    """The metamorphic rewrite the campaign applies to ``case`` (name, case), or None."""
    try:
        return rewrite_case(case, random.Random(case.seed))
    except NotApplicable:
        return None
