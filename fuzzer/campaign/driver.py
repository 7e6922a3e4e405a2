"""A fuzzing campaign: generate, run on every backend in isolated workers, judge, store.

Test ``i`` of a campaign with seed ``s`` is fully determined by ``(s, i)``, so a campaign
killed at any point resumes where its store says it stopped, and any finding can be
regenerated from its seed alone. Several lanes run side by side, each with its own worker
per backend; the store is shared. The fast lanes (``workers`` of them) run every test on the
backends that take milliseconds; each slow compiler (TVM, Inductor: ``Backend.timeout_factor``
over 1) has a lane of its own, with the references that judge it, running a stream of tests of
its own. Lanes split the machine's CPU by their weights (``lane_weights``;
``fuzzer.campaign.shares``). Each lane's cases are built a batch ahead in a helper process of
its own (``fuzzer.execution.case_builder``), so the lanes' threads only hand out, judge and record.

With coverage feedback (``coverage``), the campaign keeps a global coverage map, adds a
test to the corpus when ``fuzzer.campaign.coverage.Scheduler.admit`` says it covered something new
(compiler branches or pass effects first), and turns a share of the tests into mutants of
corpus entries. Fresh tests keep their seeds; a mutant
depends on the corpus at the time, so it is reproducible from its stored graph, and a
resumed guided campaign continues rather than repeats an unbroken one.
"""

from __future__ import annotations

import platform
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Mapping

from fuzzer.store import Progress, RunStore
from fuzzer.execution.support import Feature, SupportTable, features
from fuzzer.execution.backends import load_backend
from fuzzer.execution.case_builder import CaseBuilder, CaseJob, PendingCases
from fuzzer.campaign.config import CampaignConfig, Lane, Snapshot, plan_lanes, seed_for_test
from fuzzer.generation.generator import GeneratorOptions
from fuzzer.campaign.performance import PerfTimer, record_timed_tests
from fuzzer.campaign.coverage import CoverageMap, CoveragePoint, EffectTally, Scheduler, fingerprint, record_coverage
from fuzzer.campaign.distributed import RayWorkerGroup
from fuzzer.campaign.shares import CpuMeter, FairShare, Source, idle_seconds
from fuzzer.execution.isolation import BatchCancelled, Limits, WorkerGroup, log_name
from fuzzer.graph.case import TestCase
from fuzzer.execution.outcome import Outcome, Stage, Status
from oracles.optlevel import opt_pairs
from oracles.verdict import judge_case, judge_rewrite
from oracles.verdict import determinism
from oracles.finding import Finding
from oracles.metamorphic import NotApplicable, rewrite_case
from oracles.precision import REFERENCE
from oracles.tolerance import DEFAULT_POLICY, policy_from_dict
from oracles.bug_keys import cluster_key


RECHECK_EVERY = 16  # every Nth test runs on backends that are known to decline it (Campaign._declined)


def support_tables(backends: tuple[str, ...]) -> dict[str, SupportTable]:
    """Each backend's learned support table by the backend's own name (which outcomes carry);
    raises SupportTableError for an untrustworthy table."""
    classes = [load_backend(name) for name in backends]
    return {backend.name: SupportTable.load(backend.name, backend.versions()) for backend in classes}


def learned_avoidance(tables: Mapping[str, SupportTable]) -> tuple[tuple[str, str], ...]:
    """Features that more than half of the backends decline: the generator stops producing them."""
    declined = Counter(feature for table in tables.values() for feature in table.unsupported)
    return tuple(sorted(f for f, count in declined.items() if count * 2 > len(tables)))


@dataclass(frozen=True)
class PendingBatch:
    """Tests handed to a lane, whose cases its case builder is making."""

    indices: list[int]
    origins: list[str]  # where each test comes from: "test N", or the mutant's parent and mutator
    cases: PendingCases | None  # each test's cases (fuzzer.execution.case_builder.build_cases); None: no tests

    def built(self) -> list[tuple[TestCase, str]]:
        """Every case with its test's origin (a dynamic graph's test has several cases)."""
        if self.cases is None:
            return []
        return [(case, origin) for cases, origin in zip(self.cases.result(), self.origins) for case in cases]


def package_versions(backends: tuple[str, ...]) -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in backends:
        versions.update(load_backend(name).versions())
    return versions


class Campaign:
    def __init__(self, config: CampaignConfig, store: RunStore) -> None:
        self.config = config
        self.store = store
        self.versions = package_versions(config.backends)
        self.support = support_tables(config.backends)
        self.policy = policy_from_dict(config.tolerances) if config.tolerances else DEFAULT_POLICY
        if config.input_budget is not None:
            import fuzzer.generation.input_search  # noqa: F401 - imports torch now, not on the campaign's clock
        self._support_saved = time.monotonic()
        store.set_meta("versions", self.versions)
        resumed = store.progress()
        self.snapshot = Snapshot(tests=resumed.tests, valid=resumed.valid)
        self._specs = {load_backend(spec).name: spec for spec in config.backends}
        self.opt_pairs = opt_pairs(load_backend(spec) for spec in config.backends)
        self.lanes = plan_lanes(config)
        self.lane_options = {lane.name: self._lane_options(lane) for lane in self.lanes}
        total_weight = sum(lane.weight for lane in self.lanes)
        self._lane_cpu_before = store.get_meta("lane_seconds", {})
        self.snapshot.lanes = {lane.name: (self._lane_cpu_before.get(lane.name, 0.0), lane.weight / total_weight)
                               for lane in self.lanes}
        # Whether a lane is ahead of its share; None without local workers to meter (Ray) or a second lane.
        self.shares: FairShare | None = FairShare({lane.name: lane.weight for lane in self.lanes}) \
            if len(self.lanes) > 1 and not config.ray else None
        self._meters: list[tuple[str, CpuMeter]] = []
        for stored in store.findings():
            self.snapshot.findings[stored.kind] += 1
            self.snapshot.signatures.add(stored.signature)
            self.snapshot.bugs.add(cluster_key(stored, specs=self._specs))
        self._seconds_before = resumed.seconds
        self._first_index = resumed.next_index  # where this invocation starts
        self._next_index = resumed.next_index  # every test before it has finished
        self._next_claim = resumed.next_index
        self._in_flight: set[int] = set()
        self._done_beyond: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._exhausted = threading.Event()  # no more tests will be handed out
        self._errors: list[BaseException] = []
        self.coverage_map = CoverageMap()
        self.effects = EffectTally(store)  # the rewrites each backend's optimizer applied
        self.outcome_counts = {name: Counter(counts) for name, counts in store.get_meta("outcomes", {}).items()}
        self.backend_seconds = Counter(store.get_meta("backend_seconds", {}))  # seconds in each backend's worker
        self.perf_seconds = Counter(store.get_meta("perf_seconds", {}))  # seconds each lane spent timing
        self.scheduler = self._open_corpus() if config.coverage else None

    def _open_corpus(self) -> Scheduler:
        from corpus.corpus import Corpus

        path = Path(self.config.corpus) if self.config.corpus else self.store.run_dir / "corpus"
        scheduler = Scheduler(Corpus.open(path), self.coverage_map, self.config.mutation_share,
                              self.config.generator_options, self.config.feedback)
        self._count_coverage(len(scheduler.candidates))
        return scheduler

    # ---------------------------------------------------------------- scheduling

    def _claim(self, count: int) -> list[int]:
        """Up to ``count`` next test indices for a lane; none when a budget is spent."""
        with self._lock:
            config = self.config
            if self._stop.is_set():
                return []
            if self._time_spent():
                self.snapshot.stopping_reason = "time budget reached"
                self._exhausted.set()
                return []
            if config.max_tests is not None:
                count = min(count, config.max_tests - self.snapshot.tests - len(self._in_flight))
                if count <= 0:
                    self.snapshot.stopping_reason = "test budget reached"
                    self._exhausted.set()
                    return []
            indices = list(range(self._next_claim, self._next_claim + count))
            self._next_claim += count
            self._in_flight.update(indices)
            return indices

    def _finish(self, index: int, valid: bool) -> None:
        """Count a test; advance the resume point past every finished index."""
        with self._lock:
            self._in_flight.discard(index)
            self._done_beyond.add(index)
            while self._next_index in self._done_beyond:
                self._done_beyond.remove(self._next_index)
                self._next_index += 1
            self.snapshot.tests += 1
            self.snapshot.valid += valid

    # ---------------------------------------------------------------- work

    def _lane(self, lane: Lane, name: str, ready: threading.Barrier) -> None:
        """Run ``lane`` (its workers and case builder logged under ``name``) until the campaign ends."""
        limits = Limits(timeout=self.config.timeout, memory_mb=self.config.memory_mb)
        group = self._worker_group(lane.backends, limits, name)
        builder = CaseBuilder(self.store.run_dir / "case-builders" / f"{name}.stderr.log")
        perf = PerfTimer(lane.backends, self.config.perf_policy, limits, self.store.run_dir / "workers" / name) \
            if self.config.perf and not self.config.ray else None
        started = False
        try:
            builder.start()
            group.start()
            if perf is not None:
                perf.start()
            builder.wait_ready()
            self._note_versions(group.versions())
            ready.wait()
            self._meter(lane.name, group, builder, perf)
            started = True
            if lane is self.lanes[0]:
                self._run_every_test(lane.name, group, builder, perf)
            else:
                self._run_own_stream(lane.name, group, builder, perf)
        except BaseException as error:  # noqa: BLE001 - re-raised by run() in the main thread
            self._errors.append(error)
            self._stop.set()
            ready.abort()
        finally:
            if started and self.shares is not None:
                self.shares.stop(lane.name)
            with self._lock:
                self.snapshot.restarts += group.restarts
                self.snapshot.restarts_by_backend.update(group.restarts_by_backend)
            group.close()
            builder.close()
            if perf is not None:
                perf.close()
                with self._lock:
                    self.perf_seconds[lane.name] += perf.seconds

    def _run_every_test(self, name: str, group: WorkerGroup, builder: CaseBuilder, perf: PerfTimer | None) -> None:
        """A fast lane: the next tests in order, each counted; the builder makes the next
        batch's cases while this batch runs."""
        pending = self._build(builder, self._claim(group.batch_size), name)
        while pending.indices:
            self._wait_turn(name)
            current, pending = pending, self._build(builder, self._claim(group.batch_size), name)
            for index, valid in zip(current.indices, self._test_batch(group, current, perf=perf)):
                self._finish(index, valid)

    def _run_own_stream(self, name: str, group: WorkerGroup, builder: CaseBuilder, perf: PerfTimer | None) -> None:
        """A slow compiler's lane: batch after batch of the tests most recently handed out
        that it has not run, or of the next ones when the fast lanes have none newer (its
        tests are not counted: the fast lanes run every test). Near the end of the time
        budget its batches shrink to what the time left fits; a batch still compiling when
        the budget ends (or the campaign stops) is abandoned, so the budget holds."""
        done, per_test = self._first_index - 1, 0.0  # seconds per test of its last batch
        while not (self._stop.is_set() or self._exhausted.is_set()):
            self._wait_turn(name)
            count = self._fitting(group.batch_size, per_test)
            with self._lock:
                stop = max(self._next_claim, done + 1 + count)
            if self.config.max_tests is not None:
                stop = min(stop, self.config.max_tests)
            due = list(range(max(done + 1, stop - count), stop))
            if not due:
                return
            started = time.monotonic()
            try:
                self._test_batch(group, self._build(builder, due, name), slow=True, perf=perf)
            except BatchCancelled:
                return
            done, per_test = due[-1], (time.monotonic() - started) / len(due)

    def _fitting(self, count: int, per_test: float) -> int:
        """Up to ``count`` tests: fewer when the time budget left would not see them all end."""
        if self.config.time_budget is None or not per_test:
            return count
        left = self.config.time_budget - (time.monotonic() - self._started)
        return max(1, min(count, int(left / per_test)))

    def _meter(self, name: str, group: WorkerGroup | RayWorkerGroup, builder: CaseBuilder,
               perf: PerfTimer | None) -> None:
        """Count the CPU of this lane's workers, timed pairs, case builder and thread into lane
        ``name``'s share."""
        if self.shares is None:
            return
        thread = threading.get_native_id()

        def sources() -> list[Source]:
            processes = [worker.process for worker in group.workers] + [builder.process] + \
                (perf.processes if perf is not None else [])
            return [("thread", thread), *(("process", p.pid) for p in processes if p is not None)]

        with self._lock:
            self._meters.append((name, CpuMeter(sources)))
        self.shares.start(name)

    def _wait_turn(self, name: str) -> None:
        """Hold lane ``name`` while it is ahead of its share of the machine (and the campaign goes on)."""
        while self.shares is not None and self.shares.ahead(name) and not (
                self._past_deadline() or self._exhausted.is_set()):
            time.sleep(0.02)

    def _worker_group(self, backends: tuple[str, ...], limits: Limits, name: str) -> WorkerGroup | RayWorkerGroup:
        """The lane's workers: local processes, or processes on a Ray cluster's node."""
        config = self.config
        if config.ray:
            return RayWorkerGroup(backends, limits, config.ray, pythons=config.pythons, coverage=config.coverage)
        return WorkerGroup(backends, limits, self.store.run_dir / "workers" / name, pythons=config.pythons,
                           coverage=config.coverage)

    def _note_versions(self, reported: Mapping[str, str]) -> None:
        """Versions as the workers see them (another environment's for ``--backend-python``)."""
        with self._lock:
            if any(self.versions.get(package) != version for package, version in reported.items()):
                self.versions.update(reported)
                self.store.set_meta("versions", self.versions)

    def _lane_options(self, lane: Lane) -> GeneratorOptions:
        """The campaign's generator options, also avoiding what more than half of ``lane``'s
        targets (its backends but the judges) declined in the support tables it started with:
        a lane's tests are for its compilers (on the default backends, ONNX Runtime declined
        45% of the fast lane's tests, most for bfloat16 kernels it lacks)."""
        options = self.config.generator_options
        targets = {c.name: self.support[c.name] for c in map(load_backend, lane.backends) if c.role != "judge"}
        return replace(options, avoid=options.avoid | frozenset(learned_avoidance(targets))) if targets else options

    def _build(self, builder: CaseBuilder, indices: list[int], lane: str) -> PendingBatch:
        """Tests ``indices``, their cases made by the lane's ``builder``: each test's mutant
        if the scheduler plans one, else a fresh graph from its seed."""
        jobs, origins = [], []
        shared = len(self.lanes) > 1  # a slow compiler's lane may run any test too
        for index in indices:
            seed = seed_for_test(self.config.seed, index)
            planned = self.scheduler.plan(index, seed, shared) if self.scheduler else None
            graph, origin = planned if planned is not None else (None, None)
            jobs.append(CaseJob(index, seed, graph))
            origins.append(f"{origin} (test {index})" if origin else f"test {index}")
        if not jobs:
            return PendingBatch(indices, origins, None)
        # Every RECHECK_EVERY-th batch avoids only the campaign's features, so that the lane's
        # compilers still see, and can unlearn, a feature its support tables pinned wrongly.
        recheck = any(index % RECHECK_EVERY == 0 for index in indices)
        options = self.config.generator_options if recheck else self.lane_options[lane]
        return PendingBatch(indices, origins, builder.submit(jobs, options))

    def _time_spent(self) -> bool:
        budget = self.config.time_budget
        return budget is not None and time.monotonic() - self._started >= budget

    def _past_deadline(self) -> bool:
        """Whether the campaign is stopping, or its time budget is spent."""
        return self._stop.is_set() or self._time_spent()

    def _test_batch(self, group: WorkerGroup, batch: PendingBatch, slow: bool = False,
                    perf: PerfTimer | None = None) -> list[bool]:
        """Run ``batch``'s tests together; whether each was valid (no backend declined it).
        A ``slow`` batch (a slow compiler's lane) skips the one-compiler oracles, and
        raises BatchCancelled if the campaign's deadline passes while it runs. With ``perf``,
        the tests it samples are timed too."""
        built = batch.built()
        cases = [case for case, _ in built]
        valid = dict.fromkeys((case.index for case in cases), True)
        found = [features(case.graph) for case in cases]
        declined = self._declined(cases, found)
        cancelled = self._past_deadline if slow else lambda: False
        results = group.execute_batch(cases, declined, cancelled) if cases else []
        for (case, origin), case_features, outcomes in zip(built, found, results):
            self._judge(case, outcomes)
            self._observe(case, outcomes, origin)
            self._learn(case_features, outcomes)
            valid[case.index] &= not any(o.status is Status.UNSUPPORTED for o in outcomes)
            if perf is not None and perf.due(case) and not self._past_deadline():
                timed, slowdowns = perf.time(case, outcomes)
                record_timed_tests(self.store, timed)
                self._record(case, slowdowns, outcomes)
        if not slow:
            self._single_compiler_oracles(group, cases, results)
        return [valid.get(index, False) for index in batch.indices]

    def _observe(self, case: TestCase, outcomes: list[Outcome], origin: str) -> None:
        """Count the test's coverage; a test that covered new bits joins the corpus (every
        test does without feedback)."""
        if self.scheduler is None:
            return
        bits = fingerprint(case.graph, outcomes)
        with self._lock:
            new = self.coverage_map.update(bits)
        if (new or not self.scheduler.feedback) and case.graph is not None:
            self.scheduler.admit(case.graph, bits, origin, case.inputs)
        if new:
            self._count_coverage(0)

    def _count_coverage(self, added: int) -> None:
        """Show the map's totals and ``added`` more corpus entries in the snapshot."""
        with self._lock:
            self.snapshot.branches = self.coverage_map.branches
            self.snapshot.features = self.coverage_map.features
            self.snapshot.corpus += added

    def _single_compiler_oracles(self, group: WorkerGroup, cases: list[TestCase],
                                 results: list[list[Outcome]]) -> None:
        """On a sample of tests: a semantics-preserving rewrite, and the same test again."""
        every = self.config.single_compiler_every
        sampled = [(c, o) for c, o in zip(cases, results) if every and c.index % every == 0]
        if not sampled:
            return
        rewrites = []
        for case, outcomes in sampled:
            try:
                rewrites.append((case, outcomes, *rewrite_case(case, random.Random(case.seed))))
            except NotApplicable:
                continue
        again = group.execute_batch([case for case, _ in sampled])
        changed = group.execute_batch([rewritten for *_, rewritten in rewrites]) if rewrites else []
        for (case, outcomes), repeated in zip(sampled, again):
            self._observe(case, repeated, f"test {case.index} again")
            expected = case.output_types()
            for first, second in zip(outcomes, repeated):
                if first.backend != REFERENCE and first.status is not Status.UNSUPPORTED:
                    self._record(case, determinism(expected, first, second, case.graph), [first, second])
        for (case, outcomes, name, rewritten), rewritten_outcomes in zip(rewrites, changed):
            self._observe(rewritten, rewritten_outcomes, f"{name} rewrite of test {case.index}")
            for findings, original, after in judge_rewrite(case, name, outcomes, rewritten_outcomes, self.policy):
                self._record(rewritten, findings, [original, after], case)

    def _declined(self, cases: list[TestCase], found: list[set[Feature]]) -> dict[str, dict[int, Outcome]]:
        """Cases (given by their features) each backend is known not to support: answered
        without running them. Every RECHECK_EVERY-th test runs anyway, so that a feature pinned
        by one unlucky graph (an attribute the backend rejects, not the operator) is learned
        supported again as soon as a graph with it runs."""
        declined: dict[str, dict[int, Outcome]] = {}
        for name, table in self.support.items():
            for position, (case, case_features) in enumerate(zip(cases, found)):
                if case.index % RECHECK_EVERY and (feature := table.declines(case_features)) is not None:
                    declined.setdefault(name, {})[position] = Outcome(
                        name, Status.UNSUPPORTED, Stage.PREPARE, error_type="Declined",
                        message=f"{name} is known not to support {feature[0]} on {feature[1]}")
        return declined

    def _learn(self, found: set[Feature], outcomes: list[Outcome]) -> None:
        with self._lock:
            for outcome in outcomes:
                if outcome.error_type != "Declined" and outcome.status in (Status.OK, Status.UNSUPPORTED):
                    self.support[outcome.backend].learn(found, outcome.status is Status.UNSUPPORTED)

    def _judge(self, case: TestCase, outcomes: list[Outcome]) -> None:
        """The campaign's verdict (:func:`oracles.blame.judge_case`); guards' suppressions and
        each backend's outcomes by status are counted."""
        verdict = judge_case(case, outcomes, self.policy, self.config.reference, self.opt_pairs)
        with self._lock:
            self.snapshot.suppressed.update(s.guard for s in verdict.suppressions)
            for outcome in outcomes:
                self.outcome_counts.setdefault(outcome.backend, Counter())[outcome.status.value] += 1
                self.backend_seconds[outcome.backend] += outcome.seconds
            self.effects.count(case.index, self.snapshot.seconds, outcomes)
        self._record(case, verdict.findings, outcomes)

    def _record(self, case: TestCase, findings: list[Finding], outcomes: list[Outcome],
                original: TestCase | None = None) -> None:
        """Store ``findings`` of ``case`` (a dynamic graph's with its sizes in the details);
        a rewrite's findings also keep the ``original`` case it was rewritten from."""
        kept = None if original is None else (original.graph.to_json(), original.inputs)
        for finding in findings:
            if case.graph.symbols:
                finding = replace(finding, details={**finding.details, "sizes": case.graph.symbols})
            recorded = self.store.record_finding(
                test_index=case.index, seed=case.seed, finding=finding, graph_json=case.graph.to_json(),
                case_hash=case.graph.content_hash, model=case.model, inputs=case.inputs,
                outcomes=outcomes, versions=self.versions, original=kept)
            if recorded is not None:
                with self._lock:
                    self.snapshot.findings[finding.kind.value] += 1
                    self.snapshot.signatures.add(finding.signature)
                    self.snapshot.bugs.add(cluster_key(finding, specs=self._specs))

    def run(self, on_progress: Callable[[Snapshot], None] = lambda snapshot: None,
            interval: float = 0.25) -> Snapshot:
        """Run until a budget is spent or the run is interrupted; returns the summary."""
        fast, *slow = self.lanes
        lanes = [(fast, f"lane{number}") for number in range(max(1, self.config.workers))] + \
            [(lane, log_name(lane.name)) for lane in slow]
        # Budgets count from when every worker is up (the barrier's action sets the clock).
        ready = threading.Barrier(len(lanes) + 1, action=self._start_clock)
        threads = [threading.Thread(target=self._lane, args=(lane, name, ready), daemon=True) for lane, name in lanes]
        for thread in threads:
            thread.start()
        try:
            ready.wait()
        except threading.BrokenBarrierError:
            self._start_clock()
        return self._watch(threads, on_progress, interval)

    def _watch(self, threads: list[threading.Thread], on_progress: Callable[[Snapshot], None],
               interval: float) -> Snapshot:
        """Checkpoint and report progress until the lanes end; the final summary."""
        last_stats = 0.0
        try:
            while any(t.is_alive() for t in threads):
                time.sleep(interval)
                self._measure_lanes()
                self._checkpoint()
                on_progress(self.snapshot)
                if time.monotonic() - last_stats >= 2.0:
                    last_stats = time.monotonic()
                    self._record_stats()
                if self.scheduler is not None:
                    self._count_coverage(self.scheduler.flush())
                if time.monotonic() - self._support_saved >= 10.0:
                    self._support_saved = time.monotonic()
                    self._save_support()
        except KeyboardInterrupt:
            self.snapshot.stopping_reason = "interrupted"
            self._stop.set()
            for thread in threads:
                thread.join()
        if self.scheduler is not None:
            self._count_coverage(self.scheduler.flush())
            self.scheduler.corpus.close()
        self._checkpoint()
        self._record_stats()
        self._save_support()
        on_progress(self.snapshot)
        if self._errors:
            raise self._errors[0]
        return self.snapshot

    def _start_clock(self) -> None:
        self._started = time.monotonic()

    def _measure_lanes(self) -> None:
        """Each lane's CPU seconds, for its share (``_wait_turn``) and the progress display."""
        if self.shares is None:
            return
        with self._lock:
            meters = list(self._meters)
        used = Counter()
        for name, meter in meters:
            used[name] += meter.sample()
        self.shares.record(time.monotonic(), used, idle_seconds())
        with self._lock:
            self.snapshot.lanes = {name: (self._lane_cpu_before.get(name, 0.0) + used[name], share)
                                   for name, share in self.shares.shares.items()}

    def _checkpoint(self) -> None:
        with self._lock:
            self.snapshot.seconds = self._seconds_before + time.monotonic() - self._started
            progress = Progress(self._next_index, self.snapshot.tests, self.snapshot.valid,
                                self.snapshot.seconds)
        self.store.save_progress(progress)

    def _save_support(self) -> None:
        with self._lock:
            for table in self.support.values():
                table.save()
            self.store.set_meta("unsupported", {name: sorted(t.unsupported) for name, t in self.support.items()})
            self.store.set_meta("outcomes", {name: dict(counts) for name, counts in self.outcome_counts.items()})
            self.store.set_meta("backend_seconds", {name: round(s, 3) for name, s in self.backend_seconds.items()})
            if self.config.perf:
                self.store.set_meta("perf_seconds", {name: round(s, 3) for name, s in self.perf_seconds.items()})
            self.effects.save()
            if self.shares is not None:
                self.store.set_meta("lane_seconds", {name: round(s, 3) for name, (s, _) in self.snapshot.lanes.items()})

    def _record_stats(self) -> None:
        snapshot = self.snapshot
        self.store.record_stats(seconds=snapshot.seconds, tests=snapshot.tests, valid=snapshot.valid,
                                findings=sum(snapshot.findings.values()))
        if self.scheduler is not None:
            record_coverage(self.store, CoveragePoint(snapshot.seconds, snapshot.tests, snapshot.branches,
                                                      snapshot.features, snapshot.corpus))


def start_run(config: CampaignConfig, run_dir: Path) -> RunStore:
    return RunStore.create(run_dir, {"campaign": config.to_dict()})


def resume_run(run_dir: Path) -> tuple[CampaignConfig, RunStore]:
    store = RunStore.open(run_dir)
    return CampaignConfig.from_dict(store.config["campaign"]), store
