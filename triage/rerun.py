"""Turn a test case into findings again, as the campaign would: for reduction, localization
and reproducibility checks.

An :class:`Evaluator` holds one isolated worker per backend (a
:class:`~fuzzer.isolation.WorkerGroup`) and the run's judging settings (tolerance policy,
fallback reference). :meth:`Evaluator.evaluate` runs a case and applies the campaign's
oracles for one test: blame against the float64 reference (or the differential vote),
then the optimization-level pairs for backends blame left alone.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Mapping, Sequence

from corpus.store import RunStore, StoredFinding
from fuzzer.backends import load_backend
from fuzzer.campaign import CampaignConfig
from fuzzer.ir import Graph
from fuzzer.isolation import Limits, WorkerGroup, collect_all
from fuzzer.outcome import Outcome, TestCase
from oracles.blame import judge
from oracles.finding import Finding
from oracles.optlevel import opt_level
from oracles.tolerance import DEFAULT_POLICY, TolerancePolicy, along_paths, policy_from_dict


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
    with the run's opset and the finding's seed and test index."""
    stored = find_stored(store, finding_id)
    graph_json = store.get_blob(stored.artifacts["graph.json"]).decode() if "graph.json" in stored.artifacts else ""
    graph = Graph.from_json(graph_json) if graph_json.strip() not in ("", "null") else None
    return TestCase(graph, store.load_inputs(finding_id), store.get_blob(stored.artifacts["model.onnx"]),
                    campaign_config(store.config).opset, stored.seed, stored.test_index)


def judge_case(case: TestCase, outcomes: Sequence[Outcome], policy: TolerancePolicy = DEFAULT_POLICY,
               fallback_reference: str | None = None) -> list[Finding]:
    """The campaign's verdict on one test (``Campaign._judge``): blame, then the
    optimization-level findings of backends blame did not already name."""
    expected = case.output_types()
    paths = along_paths(case.graph, policy) if case.graph is not None else policy
    verdict = judge(expected, outcomes, paths, case.graph, fallback_reference=fallback_reference)
    pairs = opt_level(expected, outcomes, case.graph)
    blamed = {f.backends for f in verdict.findings}
    return verdict.findings + [f for f in pairs.findings if f.backends not in blamed]


class Evaluator:
    """Isolated workers for some backends plus a run's judging settings. Use as a context
    manager (workers start on entry, stop on exit)."""

    def __init__(self, backends: Sequence[str], *, policy: TolerancePolicy = DEFAULT_POLICY,
                 fallback_reference: str | None = None, limits: Limits = Limits(),
                 log_dir: Path | None = None) -> None:
        self.backends = tuple(backends)
        self.policy = policy
        self.fallback_reference = fallback_reference
        self.names = {spec: load_backend(spec).name for spec in self.backends}  # as outcomes name them
        self.group = WorkerGroup(self.backends, limits, log_dir or Path(tempfile.mkdtemp(prefix="tcfuzz-rerun-")))

    @classmethod
    def from_config(cls, config: Mapping[str, Any], backends: Sequence[str] | None = None,
                    log_dir: Path | None = None) -> Evaluator:
        """An evaluator judging like the run whose ``store.config`` is ``config``, on
        ``backends`` (as the run named them; all of the run's by default)."""
        campaign = campaign_config(config)
        policy = policy_from_dict(campaign.tolerances) if campaign.tolerances else DEFAULT_POLICY
        return cls(campaign.backends if backends is None else backends, policy=policy,
                   fallback_reference=campaign.reference,
                   limits=Limits(timeout=campaign.timeout, memory_mb=campaign.memory_mb), log_dir=log_dir)

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
        return judge_case(case, outcomes, self.policy, self.fallback_reference)

    def evaluate(self, case: TestCase) -> list[Finding]:
        """The findings the campaign's per-test oracles report for ``case``."""
        return self.evaluate_many([case])[0]

    def evaluate_many(self, cases: Sequence[TestCase]) -> list[list[Finding]]:
        """:meth:`evaluate` for several cases, sent to the workers as one batch."""
        return [self.judge(case, outcomes) for case, outcomes in zip(cases, self.outcomes_many(cases))]
