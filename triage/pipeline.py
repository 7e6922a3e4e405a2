"""Triage a run: one representative per signature, re-run, reduced, blamed, reproduced.

For each signature (its row in ``signatures``, see :mod:`triage.db`) the representative
finding goes through the steps of :data:`STEPS`, in order: reproducibility (re-runs in fresh
workers), reduction (``triage.reduce``), culprit (``triage.culprit``) and repro (a verified
standalone script plus ``report.md`` in ``RUN/triage/<signature-slug>/``). Each step records
its outcome in the signature's notes, so triage is idempotent and resumes where it stopped;
a reduction that ran out of time is continued by the next triage, and the culprit and
repro steps wait for it to finish.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping

from corpus.store import RunStore, StoredFinding
from fuzzer.backends import load_backend
from fuzzer.outcome import TestCase
from oracles.optlevel import OPT_POLICY
from oracles.tolerance import DEFAULT_POLICY, TolerancePolicy, policy_from_dict
from triage.culprit import Culprit, find_culprit
from triage.db import SignatureRecord, Status, add_note, signature_records, sync_signatures, update_signature
from triage.reduce import Reduction, ReductionUnsupported, load_reduction, reduce_finding
from triage.repro import ReproUnsupported, bug_report_markdown, verify_repro, write_repro
from triage.reproducibility import DEFAULT_RUNS, Reproducibility, backend_specs, finding_backends, measure_finding, shows
from triage.rerun import Evaluator, campaign_config, find_stored, stored_case

REPLAYABLE_KINDS = frozenset({"crash", "hang", "oom", "error", "mismatch", "shape_mismatch", "dtype_mismatch",
                              "opt_mismatch"})  # what the per-test oracles judge again
TRIAGE_DIRECTORY = "triage"
Progress = Callable[[int, int, str, str], None]  # (signature number, signatures, step, signature)


@dataclass
class TriageSummary:
    records: list[SignatureRecord] = field(default_factory=list)
    steps_run: int = 0
    seconds: float = 0.0

    def count(self, status: Status) -> int:
        return sum(record.status is status for record in self.records)

    @property
    def verified_repros(self) -> int:
        return sum(bool((r.notes or {}).get("repro", {}).get("verified")) for r in self.records)


def slug(signature: str) -> str:
    """A directory name for ``signature``: readable, and unique by a short hash."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "-", signature).strip("-")[:60]
    return f"{readable}-{hashlib.sha1(signature.encode()).hexdigest()[:8]}"


def run_policy(config: Mapping) -> TolerancePolicy:
    tolerances = campaign_config(config).tolerances
    return policy_from_dict(tolerances) if tolerances else DEFAULT_POLICY


def triaged_case(store: RunStore, finding_id: int) -> tuple[TestCase, Reduction | None]:
    """The finding's reduced test case when a reduction is stored, else its own."""
    reduction = load_reduction(store, finding_id)
    return (reduction.case if reduction is not None else stored_case(store, finding_id)), reduction


def repro_source(store: RunStore, stored: StoredFinding, case: TestCase) -> str:
    """The standalone script for ``stored`` on ``case``, judged as the run judged it."""
    specs = backend_specs(store.config)
    reference = stored.details.get("compared_with")
    policy = OPT_POLICY if stored.kind == "opt_mismatch" else run_policy(store.config)
    campaign = campaign_config(store.config)
    return write_repro(case, specs[stored.backends[0]], specs.get(reference, reference), stored, policy,
                       timeout=campaign.timeout * load_backend(specs[stored.backends[0]]).timeout_factor,
                       memory_mb=campaign.memory_mb)


class Triage:
    """The steps for one run; each takes a record and returns it with its note added."""

    def __init__(self, store: RunStore, reruns: int, time_budget: float) -> None:
        self.store = store
        self.reruns = reruns
        self.time_budget = time_budget
        self.directory = store.run_dir / TRIAGE_DIRECTORY

    def pending(self, record: SignatureRecord) -> list[str]:
        """The steps still to run for ``record``."""
        notes = record.notes or {}
        reduction = notes.get("reduction", {})
        final = reduction.get("done") or "skipped" in reduction
        return [step for step in STEPS if step not in notes or (step == "reduction" and not final)
                or (step in ("culprit", "repro") and not final)]

    def reproducibility(self, record: SignatureRecord, stored: StoredFinding) -> SignatureRecord:
        if stored.kind not in REPLAYABLE_KINDS:
            return add_note(self.store, record, "reproducibility", {"skipped": f"{stored.kind} findings need "
                                                                    "their campaign's sampled oracles"})
        measured = measure_finding(self.store, stored.id, self.reruns)
        status = Status.FLAKY if measured.reproduced < measured.runs else record.status
        update_signature(self.store, record.signature, reproducibility=measured.rate, status=status)
        record = add_note(self.store, record, "reproducibility", asdict(measured))
        return SignatureRecord(**{**asdict(record), "reproducibility": measured.rate, "status": status})

    def reduction(self, record: SignatureRecord, stored: StoredFinding) -> SignatureRecord:
        if skip := self._not_reproducible(record, stored):
            return add_note(self.store, record, "reduction", {"skipped": skip})
        try:
            reduced = reduce_finding(self.store, stored.id, time_budget=self.time_budget)
        except ReductionUnsupported as error:
            return add_note(self.store, record, "reduction", {"skipped": str(error)})
        update_signature(self.store, record.signature, reduced_finding=stored.id)
        return add_note(self.store, record, "reduction", {
            "done": reduced.done, "nodes_before": reduced.nodes_before, "nodes_after": reduced.nodes_after,
            "tests": reduced.tests, "seconds": round(reduced.seconds, 1)})

    def culprit(self, record: SignatureRecord, stored: StoredFinding) -> SignatureRecord:
        if skip := self._not_reproducible(record, stored):
            return add_note(self.store, record, "culprit", {"skipped": skip})
        case, _ = triaged_case(self.store, stored.id)
        found = find_culprit(self.store.config, case, stored)
        update_signature(self.store, record.signature, culprit=asdict(found) if found else None)
        return add_note(self.store, record, "culprit", asdict(found) if found else {"found": False})

    def repro(self, record: SignatureRecord, stored: StoredFinding) -> SignatureRecord:
        case, reduction = triaged_case(self.store, stored.id)
        try:
            script = repro_source(self.store, stored, case)
        except ReproUnsupported as error:
            return add_note(self.store, record, "repro", {"skipped": str(error)})
        directory = self.directory / slug(record.signature)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "repro.py"
        path.write_text(script)
        verified = verify_repro(path)
        measured = (record.notes or {}).get("reproducibility", {})
        culprit = (record.notes or {}).get("culprit", {})
        (directory / "report.md").write_text(bug_report_markdown(
            case, stored.backends[0], stored, script, self.store.get_meta("versions", {}),
            Culprit(**culprit) if "knob" in culprit else None,
            Reproducibility(**measured) if "runs" in measured else None,
            reduction.nodes_before if reduction is not None else None))
        update_signature(self.store, record.signature, repro_path=str(path.relative_to(self.store.run_dir)))
        return add_note(self.store, record, "repro", {"path": str(path), "verified": verified})

    def _not_reproducible(self, record: SignatureRecord, stored: StoredFinding) -> str:
        if stored.kind not in REPLAYABLE_KINDS:
            return f"{stored.kind} findings cannot be judged again on one test case"
        if record.reproducibility == 0:
            return f"did not reproduce in {self.reruns} re-runs"
        return ""


STEPS: dict[str, Callable[[Triage, SignatureRecord, StoredFinding], SignatureRecord]] = {
    "reproducibility": Triage.reproducibility,
    "reduction": Triage.reduction,
    "culprit": Triage.culprit,
    "repro": Triage.repro,
}


def triage_run(run_dir: Path, *, reruns: int = DEFAULT_RUNS, time_budget: float = 300.0,
               baseline: Iterable[str] = (), on_progress: Progress | None = None) -> TriageSummary:
    """Triage every signature of the graph-mode run in ``run_dir``; skip what is done.

    ``time_budget`` is the reduction time per signature; ``baseline`` the known signatures.
    """
    started = time.monotonic()
    summary = TriageSummary()
    with RunStore.open(run_dir) as store:
        if store.config.get("mode") == "tir":
            raise ReductionUnsupported(f"{run_dir} is a TIR-mode run: its findings are shrunk by the TIR "
                                       "campaign; write their scripts with `tcfuzz repro RUN ID`")
        triage = Triage(store, reruns, time_budget)
        records = sync_signatures(store, baseline)
        for number, record in enumerate(records, 1):
            stored = find_stored(store, record.representative)
            for step in triage.pending(record):
                if on_progress is not None:
                    on_progress(number, len(records), step, record.signature)
                record = STEPS[step](triage, record, stored)
                summary.steps_run += 1
        summary.records = signature_records(store)
    summary.seconds = time.monotonic() - started
    return summary


@dataclass(frozen=True)
class Replayed:
    record: SignatureRecord
    verdict: str  # "failing", "fixed" or "not replayable"


def replay_run(run_dir: Path) -> list[Replayed]:
    """Re-run each signature's representative (reduced where a reduction is stored) on the
    installed compilers, all in one set of workers; mark those that no longer show ``fixed``
    (and a fixed one that shows again ``new``)."""
    with RunStore.open(run_dir) as store:
        if store.config.get("mode") == "tir":
            raise ReductionUnsupported(f"{run_dir} is a TIR-mode run; replay its findings with "
                                       "fuzzer.tir.campaign.replay")
        records = sync_signatures(store)
        replayable = [(r, find_stored(store, r.representative)) for r in records]
        replayable = [(r, s) for r, s in replayable if s.kind in REPLAYABLE_KINDS]
        backends = list(dict.fromkeys(b for _, s in replayable for b in finding_backends(store.config, s)))
        cases = [triaged_case(store, s.id)[0] for _, s in replayable]
        findings = []
        if cases:
            with Evaluator.from_config(store.config, backends) as evaluator:
                findings = evaluator.evaluate_many(cases)
        verdicts = {}
        for (record, stored), found in zip(replayable, findings):
            failing = shows(found, record.signature)
            status = (Status.NEW if record.status is Status.FIXED else record.status) if failing else Status.FIXED
            update_signature(store, record.signature, status=status)
            verdicts[record.signature] = "failing" if failing else "fixed"
        updated = {r.signature: r for r in signature_records(store)}
    return [Replayed(updated[r.signature], verdicts.get(r.signature, "not replayable")) for r in records]
