"""Triage a run: one representative per cluster of signatures, re-run, reduced, blamed, reproduced.

The run's findings are clustered first (:mod:`triage.bugs`: one compiler, one kind, one
error), and the clusters are taken in order: targets before judges, crashes before
mismatches. Each cluster's representative signature (its row in ``signatures``, see
:mod:`triage.db`) goes through the steps of :data:`STEPS`: reproducibility (re-runs in warm
workers), reduction (``triage.reduce``), origin (whether a failure is a consequence of a
shape divergence upstream), validity (the reduced graph against the ONNX specification),
culprit (``triage.culprit``) and repro (a verified standalone script plus ``report.md`` in
``RUN/triage/<signature-slug>/``). Each step records its outcome in the signature's notes,
so triage is idempotent and resumes where it stopped; a reduction that ran out of time is
continued by the next triage, and the later steps wait for it to finish. An exception in a
step marks that signature ``triage-failed`` with the one-line error, and triage goes on.
Clusters are triaged :data:`DEFAULT_JOBS` at a time, each job with its own workers, which
stay warm across steps and clusters (one evaluator per set of backends).
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import re
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping

from fuzzer.store import RunStore, StoredFinding
from fuzzer.execution.backends import load_backend
from fuzzer.graph.case import TestCase
from fuzzer.graph.export_onnx import with_explicit_defaults
from fuzzer.graph.ops import undefined_by_constants
from oracles.finding import FindingKind
from oracles.optlevel import OPT_POLICY
from oracles.tolerance import DEFAULT_POLICY, TolerancePolicy, policy_from_dict
from oracles.signature import headline
from oracles.precision import REFERENCE
from oracles.bug_keys import FAILURE_KINDS, backend_facts
from triage.bugs import clusters, representative_signature, tir_key_of
from triage.culprit import Culprit, find_culprit
from triage.db import SignatureRecord, Status, add_note, signature_records, sync_signatures, update_signature
from triage.localize import localize
from triage.reduce import Reduction, ReductionUnsupported, load_reduction, reduce_finding
from triage.perf_repro import write_perf_repro
from triage.repro import ReproUnsupported, bug_report_markdown, verify_repro, write_repro
from triage.reproducibility import DEFAULT_RUNS, Reproducibility, backend_specs, finding_backends, shows
from triage.rerun import Evaluator, campaign_config, find_stored, stored_case

CONSEQUENCE_KINDS = FAILURE_KINDS | {"mismatch", "opt_mismatch"}  # may follow a wrong type upstream
REPLAYABLE_KINDS = frozenset({"crash", "hang", "oom", "error", "mismatch", "shape_mismatch", "dtype_mismatch",
                              "opt_mismatch", "slowdown"})  # what the per-test oracles (and timed pairs) judge again
TRIAGE_DIRECTORY = "triage"
Progress = Callable[[int, int, str, str], None]  # (cluster number, clusters, step, signature)
WARM_EVALUATORS = 3  # sets of warm workers kept between clusters, per job
DEFAULT_JOBS = min(2, os.cpu_count() or 1)  # clusters triaged at once: the work is in worker processes


@dataclass
class TriageSummary:
    records: list[SignatureRecord] = field(default_factory=list)
    steps_run: int = 0
    seconds: float = 0.0
    out_of_time: int = 0  # clusters left for the next triage when the total time ran out

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
    if stored.kind is FindingKind.SLOWDOWN:
        baseline = stored.baseline
        return write_perf_repro(case, specs[stored.backends[0]], specs.get(baseline, baseline), stored,
                                campaign_config(store.config).perf_policy)
    reference = stored.compared_with or None
    policy = OPT_POLICY if stored.kind is FindingKind.OPT_MISMATCH else run_policy(store.config)
    campaign = campaign_config(store.config)
    return write_repro(case, specs[stored.backends[0]], specs.get(reference, reference), stored, policy,
                       timeout=campaign.timeout * load_backend(specs[stored.backends[0]]).timeout_factor,
                       memory_mb=campaign.memory_mb)


class Triage:
    """The steps for one graph-mode run; each takes a record and returns it with its note added."""

    @property
    def steps(self) -> Mapping[str, Callable[[Triage, SignatureRecord, StoredFinding], SignatureRecord]]:
        return STEPS

    def __init__(self, store: RunStore, reruns: int, time_budget: float, specs: Mapping[str, str],
                 configurations: Mapping[str, list[str]]) -> None:
        """``specs``: the run's backend specs by name; ``configurations``: the backends that
        show each representative signature's cluster."""
        self.store = store
        self.reruns = reruns
        self.time_budget = time_budget
        self.specs = specs
        self.configurations = configurations
        self.directory = store.run_dir / TRIAGE_DIRECTORY
        self.evaluators: dict[tuple, Evaluator] = {}

    def evaluator(self, stored: StoredFinding) -> Evaluator:
        """Warm workers for the backends that judge ``stored`` (the least recently used set
        is stopped when more than WARM_EVALUATORS are running)."""
        key = (tuple(finding_backends(self.store.config, stored)), stored.on_rewrite)
        if key not in self.evaluators:
            if len(self.evaluators) >= WARM_EVALUATORS:
                self.evaluators.pop(next(iter(self.evaluators))).__exit__(None, None, None)
            self.evaluators[key] = Evaluator.from_config(self.store.config, key[0], rewrites=key[1]).__enter__()
        self.evaluators[key] = self.evaluators.pop(key)  # most recently used last
        return self.evaluators[key]

    def close(self) -> None:
        for evaluator in self.evaluators.values():
            evaluator.__exit__(None, None, None)
        self.evaluators.clear()

    def pending(self, record: SignatureRecord) -> list[str]:
        """The steps still to run for ``record``."""
        notes = record.notes or {}
        reduction = notes.get("reduction", {})
        final = reduction.get("done") or "skipped" in reduction
        return [step for step in self.steps if step not in notes or (step == "reduction" and not final)
                or (step in AFTER_REDUCTION and not final)]

    def reproducibility(self, record: SignatureRecord, stored: StoredFinding) -> SignatureRecord:
        if stored.kind not in REPLAYABLE_KINDS:
            return add_note(self.store, record, "reproducibility", {"skipped": f"{stored.kind} findings need "
                                                                    "their campaign's sampled oracles"})
        evaluator, case = self.evaluator(stored), stored_case(self.store, stored.id)
        reproduced = sum(shows(evaluator.evaluate(case), stored.signature) for _ in range(self.reruns))
        measured = Reproducibility(self.reruns, reproduced)
        status = Status.FLAKY if measured.reproduced < measured.runs else record.status
        update_signature(self.store, record.signature, reproducibility=measured.rate, status=status)
        record = add_note(self.store, record, "reproducibility", asdict(measured))
        return SignatureRecord(**{**asdict(record), "reproducibility": measured.rate, "status": status})

    def reduction(self, record: SignatureRecord, stored: StoredFinding) -> SignatureRecord:
        if skip := self._not_reproducible(record, stored):
            return add_note(self.store, record, "reduction", {"skipped": skip})
        try:
            reduced = reduce_finding(self.store, stored.id, evaluator=self.evaluator(stored),
                                     time_budget=self.time_budget)
        except ReductionUnsupported as error:
            return add_note(self.store, record, "reduction", {"skipped": str(error)})
        update_signature(self.store, record.signature, reduced_finding=stored.id)
        return add_note(self.store, record, "reduction", {
            "done": reduced.done, "nodes_before": reduced.nodes_before, "nodes_after": reduced.nodes_after,
            "tests": reduced.tests, "seconds": round(reduced.seconds, 1),
            "ops": [node.op for node in reduced.case.graph.nodes]})

    def origin(self, record: SignatureRecord, stored: StoredFinding) -> SignatureRecord:
        """Whether a failure or a value disagreement is a consequence: its reduced graph
        diverges in shape or dtype on the blamed backend at a node before the last one (an
        error in a consumer, or the values of Shape of a wrong shape): the bug is that divergence."""
        case, reduction = triaged_case(self.store, stored.id)
        evaluator = self.evaluator(stored)
        reference = next((name for name in (REFERENCE, campaign_config(self.store.config).reference)
                          if name and name in evaluator.names.values() and name not in stored.backends), None)
        if (stored.kind not in CONSEQUENCE_KINDS or reduction is None or case.graph is None
                or len(case.graph.nodes) < 2 or reference is None):
            return add_note(self.store, record, "origin", {"kind": None})
        located = localize(case, self.specs[stored.backends[0]], reference,
                           evaluator=evaluator)
        kind = next((kind for kind in ("shape", "dtype") if located and located.summary.startswith(kind)), None)
        if located is None or located.node_index >= len(case.graph.nodes) - 1 or kind is None:
            return add_note(self.store, record, "origin", {"kind": None})
        return add_note(self.store, record, "origin", {
            "kind": f"{kind}_mismatch", "node": located.node_index, "op": located.op, "summary": located.summary,
            "ops": [node.op for node in case.graph.nodes[:located.node_index + 1]]})

    def validity(self, record: SignatureRecord, stored: StoredFinding) -> SignatureRecord:
        """The reduced graph against the ONNX specification: a case that breaks it is an
        invalid test (a generator defect), not a compiler bug."""
        case, _ = triaged_case(self.store, stored.id)
        judge_blamed = any(backend_facts(b, self.specs).role == "judge" for b in stored.backends)
        problem = spec_violation(case, run_reference=not judge_blamed)
        return add_note(self.store, record, "validity", {"valid": problem is None, "problem": problem})

    def culprit(self, record: SignatureRecord, stored: StoredFinding) -> SignatureRecord:
        """The optimization to blame, searched only where unoptimized configurations do not
        show the bug too (where they do, no optimization is the culprit)."""
        if skip := self._not_reproducible(record, stored):
            return add_note(self.store, record, "culprit", {"skipped": skip})
        unoptimized = [c for c in self.configurations[stored.signature]
                       if not backend_facts(c, self.specs).optimizing]
        if unoptimized:
            return add_note(self.store, record, "culprit", {"skipped": f"{', '.join(unoptimized)} shows it too: "
                                                                       "not an optimization"})
        case, _ = triaged_case(self.store, stored.id)
        found = find_culprit(self.store.config, case, stored, seconds=self.time_budget)
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
        pythons = campaign_config(self.store.config).pythons or {}  # a backend from another environment
        verified = verify_repro(path, python=pythons.get(self.specs.get(stored.backends[0], ""), sys.executable))
        measured = (record.notes or {}).get("reproducibility", {})
        culprit = (record.notes or {}).get("culprit", {})
        (directory / "report.md").write_text(bug_report_markdown(
            case, stored.backends[0], stored, script, self.store.get_meta("versions", {}),
            Culprit(**culprit) if "knob" in culprit else None,
            Reproducibility(**measured) if "runs" in measured else None,
            reduction.nodes_before if reduction is not None else None,
            configurations=self.configurations[stored.signature]))
        update_signature(self.store, record.signature, repro_path=str(path.relative_to(self.store.run_dir)))
        return add_note(self.store, record, "repro", {"path": str(path), "verified": verified})

    def _not_reproducible(self, record: SignatureRecord, stored: StoredFinding) -> str:
        if stored.kind not in REPLAYABLE_KINDS:
            return f"{stored.kind} findings cannot be judged again on one test case"
        if record.reproducibility == 0:
            return f"did not reproduce in {self.reruns} re-runs"
        return ""

    def run_steps(self, record: SignatureRecord, stored: StoredFinding, announce: Callable[[str], None],
                  deadline: float | None = None) -> tuple[SignatureRecord, int]:
        """The pending steps of ``record``, none begun after ``deadline`` (``time.monotonic()``;
        the next triage goes on from the first left); an exception marks it ``triage-failed``
        (with the one-line error in its notes) instead of stopping the run. (record, steps run)"""
        if record.status is Status.TRIAGE_FAILED:  # tried again: start from its status before
            record = add_note(self.store, record, "failed", None)
            update_signature(self.store, record.signature, status=Status.NEW)
            record = SignatureRecord(**{**asdict(record), "status": Status.NEW})
        steps = 0
        for step in self.pending(record):
            if deadline is not None and time.monotonic() >= deadline:
                break
            announce(step)
            started = time.monotonic()
            try:
                record = self.steps[step](self, record, stored)
            except Exception as error:  # noqa: BLE001 - one signature's failure must not stop triage
                line = f"{step}: {type(error).__name__}: {headline(str(error))[:300]}"
                update_signature(self.store, record.signature, status=Status.TRIAGE_FAILED)
                record = add_note(self.store, record, "failed", {"step": step, "error": line})
                return SignatureRecord(**{**asdict(record), "status": Status.TRIAGE_FAILED}), steps
            timings = {**(record.notes or {}).get("seconds", {}), step: round(time.monotonic() - started, 1)}
            record = add_note(self.store, record, "seconds", timings)
            steps += 1
        return record, steps


def spec_violation(case: TestCase, run_reference: bool = True) -> str | None:
    """Why ``case``'s model breaks the ONNX specification (constants that leave a result
    undefined, the full checker, strict shape inference, a run on the reference evaluator),
    or None when it conforms."""
    import onnx
    import onnx.shape_inference
    from onnx.reference import ReferenceEvaluator

    if case.graph is not None and (undefined := undefined_by_constants(case.graph)):
        return f"the ONNX specification leaves it undefined: {undefined}"
    model = with_explicit_defaults(onnx.load_from_string(case.model))
    checks = [("onnx.checker", lambda: onnx.checker.check_model(model, full_check=True)),
              ("strict shape inference", lambda: onnx.shape_inference.infer_shapes(model, strict_mode=True))]
    if run_reference:
        checks.append(("the reference evaluator", lambda: ReferenceEvaluator(model).run(None, dict(case.inputs))))
    for name, check in checks:
        try:
            check()
        except Exception as error:  # noqa: BLE001 - any rejection is the answer
            return f"{name}: {type(error).__name__}: {headline(str(error))[:300]}"
    return None


STEPS: dict[str, Callable[[Triage, SignatureRecord, StoredFinding], SignatureRecord]] = {
    "reproducibility": Triage.reproducibility,
    "reduction": Triage.reduction,
    "origin": Triage.origin,
    "validity": Triage.validity,
    "culprit": Triage.culprit,
    "repro": Triage.repro,
}
AFTER_REDUCTION = ("origin", "validity", "culprit", "repro")  # wait for a finished reduction


class TirTriage(Triage):
    """A TIR run's bugs: the campaign already shrank them; each gets a verified standalone script."""

    @property
    def steps(self) -> Mapping[str, Callable[[Triage, SignatureRecord, StoredFinding], SignatureRecord]]:
        return {"repro": TirTriage.repro}

    def repro(self, record: SignatureRecord, stored: StoredFinding) -> SignatureRecord:
        directory = self.directory / slug(record.signature)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "repro.py"
        # Rebuilding the module of a crash, hang or out-of-memory finding may do the same again
        # (a Relax import that hangs took 14 GB in the triage process): in a child process.
        if stored.kind in FAILURE_KINDS - {FindingKind.ERROR}:
            memory_mb = int((self.store.config.get("options") or {}).get("memory_mb") or TIR_REPRO_MEMORY_MB)
            problem = isolated(write_tir_repro_here, (self.store.run_dir, stored.id, path), memory_mb,
                               TIR_REPRO_WRITE_TIMEOUT)
        else:
            problem = write_tir_repro_here(self.store.run_dir, stored.id, path)
        if problem:
            return add_note(self.store, record, "repro", {"skipped": problem[:300]})
        verified = verify_repro(path, crash_reproduces=stored.kind is FindingKind.CRASH)
        update_signature(self.store, record.signature, repro_path=str(path.relative_to(self.store.run_dir)))
        return add_note(self.store, record, "repro", {"path": str(path), "verified": verified})


TIR_REPRO_WRITE_TIMEOUT = 120.0  # seconds to rebuild a TIR finding's module and write its script
TIR_REPRO_MEMORY_MB = 4096  # when the run does not say (a TIR run's options.memory_mb)


def write_tir_repro_here(run_dir: Path, finding_id: int, path: Path) -> str:
    """Write a TIR finding's script in this process: "" when written, else why no script can
    rebuild the finding."""
    from fuzzer.tir.repro import write_repro

    try:
        write_repro(run_dir, finding_id, path)
    except (ValueError, KeyError, TypeError, MemoryError) as error:
        return f"{type(error).__name__}: {error}"
    return ""


def isolated(function: Callable[..., str], args: tuple, memory_mb: int, timeout: float) -> str:
    """``function(*args)`` (which returns what went wrong, "" for nothing) in a spawned child
    limited to ``memory_mb`` of address space and ``timeout`` seconds: its answer, or why the
    child gave none."""
    context = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="tcfuzz-isolated-") as directory:
        answer_path = Path(directory) / "answer"
        child = context.Process(target=_isolated_child, args=(function, args, memory_mb, answer_path))
        child.start()
        child.join(timeout)
        if child.is_alive():
            child.kill()
            child.join()
            return f"gave no answer within {timeout:.0f} s"
        if answer_path.exists():
            return answer_path.read_text()
        return f"exited with {child.exitcode} (over {memory_mb} MB of memory, or a crash)"


def _isolated_child(function: Callable[..., str], args: tuple, memory_mb: int, answer_path: Path) -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (memory_mb << 20, memory_mb << 20))
    answer_path.write_text(function(*args))


def triage_run(run_dir: Path, *, reruns: int = DEFAULT_RUNS, time_budget: float = 60.0,
               baseline: Iterable[str] = (), on_progress: Progress | None = None,
               total_time: float | None = None, judges_as_targets: bool = False,
               jobs: int = DEFAULT_JOBS) -> TriageSummary:
    """Triage the run in ``run_dir``: one representative signature per cluster, in triage
    order, ``jobs`` clusters at a time (each job with warm workers of its own); skip what is
    done. A TIR run's bugs get their verified scripts (the campaign shrank them already).

    ``time_budget`` is the reduction time per signature; ``baseline`` the known signatures;
    ``total_time`` stops starting new clusters once spent (the rest waits for the next triage).
    """
    started = time.monotonic()
    summary = TriageSummary()
    with RunStore.open(run_dir) as store:
        tir = store.config.get("mode") == "tir"
        records = {record.signature: record for record in sync_signatures(store, baseline)}
        specs = {} if tir else backend_specs(store.config)
        grouped = clusters(store.findings(), judges_as_targets, tir_key=tir_key_of(store) if tir else None,
                           specs=specs)
        configurations = {representative_signature(members, specs): sorted({b for f in members for b in f.backends})
                          for members in grouped.values()}
        queue = list(enumerate(grouped.values(), 1))
        lock = threading.Lock()
        deadline = started + total_time if total_time is not None else None
        interrupted = []  # clusters whose steps the deadline cut short

        def next_cluster() -> tuple[int, list] | None:
            with lock:
                if not queue:
                    return None
                if deadline is not None and time.monotonic() >= deadline:
                    return None
                return queue.pop(0)

        def job() -> None:
            triage = (TirTriage if tir else Triage)(store, reruns, time_budget, specs, configurations)
            try:
                while (item := next_cluster()) is not None:
                    number, members = item
                    record = records[representative_signature(members, specs)]

                    def announce(step: str, number=number, signature=record.signature) -> None:
                        if on_progress is not None:
                            on_progress(number, len(grouped), step, signature)

                    done, steps = triage.run_steps(record, find_stored(store, record.representative), announce,
                                                   deadline)
                    with lock:
                        summary.steps_run += steps
                        if (deadline is not None and time.monotonic() >= deadline
                                and done.status is not Status.TRIAGE_FAILED and triage.pending(done)):
                            interrupted.append(number)
            finally:
                triage.close()

        workers = max(1, min(jobs, len(queue)))
        with ThreadPoolExecutor(workers) as pool:
            for running in [pool.submit(job) for _ in range(workers)]:
                running.result()
        summary.out_of_time = len(queue) + len(interrupted)  # clusters not begun, and cut short
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
        for (record, _stored), found in zip(replayable, findings):
            failing = shows(found, record.signature)
            status = (Status.NEW if record.status is Status.FIXED else record.status) if failing else Status.FIXED
            update_signature(store, record.signature, status=status)
            verdicts[record.signature] = "failing" if failing else "fixed"
        updated = {r.signature: r for r in signature_records(store)}
    return [Replayed(updated[r.signature], verdicts.get(r.signature, "not replayable")) for r in records]
