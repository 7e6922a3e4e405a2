"""Persistent, isolated worker processes, one per backend, seen from the campaign.

Each worker pays its heavy imports once and then runs test after test. A worker that dies
(segfault, abort, exit), overruns the per-test timeout, or grows past its memory limit is
killed with its whole process group; the test's Outcome says crash, hang or oom (with the
signal, the stage it was in and the tail of its stderr); the next test restarts it.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import select
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

from fuzzer.execution import portable
from fuzzer.execution import worker as protocol
from fuzzer.execution.backends import load_backend
from fuzzer.graph.case import TestCase
from fuzzer.execution.outcome import Outcome, Stage, Status

FATAL = frozenset({Status.CRASH, Status.HANG, Status.OOM})
STDERR_TAIL_BYTES = 4000
STARTUP_TIMEOUT = 120.0
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


class WorkerStartError(RuntimeError):
    """A backend's worker could not start (missing package, failing setup)."""


@dataclass(frozen=True)
class Limits:
    timeout: float = 10.0  # seconds per test
    memory_mb: int = 4096  # resident memory of the worker
    poll_interval: float = 0.02  # how often a running test's memory is checked


PROJECT_ROOT = str(Path(__file__).resolve().parent.parent)


def worker_environment(python: str = sys.executable) -> dict[str, str]:
    """The parent's import path, so plugins and tests' backends import in the worker.

    A worker under another Python environment (``--backend-python``) gets only tcfuzz's own
    directory and the current one: its compiler and libraries must be its environment's.
    """
    env = dict(os.environ)
    if python == sys.executable:
        paths = [p for p in sys.path if p and os.path.isdir(p)]
    else:
        paths = [PROJECT_ROOT, os.getcwd()]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.setdefault("OMP_NUM_THREADS", "1")
    env["PYTHONFAULTHANDLER"] = "1"
    return env


class Worker:
    """One backend in one subprocess, restarted after every fatal test."""

    def __init__(self, backend: str, limits: Limits = Limits(), python: str = sys.executable,
                 log_dir: Path | None = None, coverage: bool = False) -> None:
        self.backend = backend
        self.coverage = coverage  # the worker measures compiler code and reports coverage bits
        self.limits = limits
        self.python = python
        self.log_dir = Path(log_dir or tempfile.mkdtemp(prefix="tcfuzz-worker-"))
        self.process: subprocess.Popen | None = None
        self.name = backend  # replaced by the backend's own name once it has started
        self.versions: dict[str, str] = {}  # package versions the started worker sees
        self.timeout = limits.timeout * timeout_factor(backend)  # per test
        self.restarts = 0
        self._log_offset = 0

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.log_dir / f"{log_name(self.backend)}.stderr.log"
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [self.python, "-m", "fuzzer.execution.worker", self.backend, *(["--coverage"] if self.coverage else [])],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=log, env=worker_environment(self.python), start_new_session=True,
            bufsize=0)  # unbuffered: select() must see every byte the worker wrote
        log.close()
        message = self._startup_message()
        if message is None or message[0] != protocol.READY:
            detail = message[1].decode(errors="replace") if message else self._stderr_tail(0).strip()
            self.kill()
            raise WorkerStartError(f"backend {self.backend!r} failed to start: "
                                   f"{detail.splitlines()[-1] if detail else 'no message'}")
        announced = json.loads(message[1])
        self.name, self.versions = announced["name"], announced["versions"]

    def _startup_message(self) -> tuple[bytes, bytes] | None:
        ready, _, _ = select.select([self.process.stdout], [], [], STARTUP_TIMEOUT)
        return protocol.receive(self.process.stdout) if ready else None

    def kill(self) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            stream.close()
        self.process = None

    def close(self) -> None:
        """Ask the worker to exit (end of input), then make sure it did."""
        if self.process is None:
            return
        try:
            self.process.stdin.close()
            self.process.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.kill()

    # ---------------------------------------------------------------- tests

    def submit(self, cases: Sequence[TestCase]) -> None:
        """Start a batch; ``step`` (or ``collect``) returns one Outcome per case."""
        self._batch = list(cases)
        self._results: dict[int, Outcome] = {}
        self._queue: list[list[int]] = []  # positions to re-run after a fatal failure
        self._packed_failure: tuple[Outcome, int] | None = None
        self._send(list(range(len(self._batch))))

    def _send(self, positions: list[int]) -> None:
        if self.process is None:
            self.start()
        self._positions = positions  # positions in the batch of the cases in flight
        self._log_offset = self.log_path.stat().st_size
        payload = portable.dumps([self._batch[p] for p in positions])
        try:
            protocol.send(self.process.stdin, protocol.CASES, payload)
        except (BrokenPipeError, OSError):
            pass  # the death is noticed and reported by step()
        self._submitted = self._memory_checked = time.monotonic()
        self._deadline = self._submitted + self.timeout
        self._stage: Stage | None = None
        self._current: str | None = None  # the in-flight position now running, or "*"

    def fileno(self) -> int:
        return self.process.stdout.fileno()

    def step(self, readable: bool) -> list[Outcome] | None:
        """Advance the batch: its Outcomes once every case has ended, else None.

        ``readable`` says whether select() found data from the worker. Otherwise the
        deadline, the memory limit and the process's life are checked.
        """
        if readable:
            message = protocol.receive(self.process.stdout)
            if message is None:
                return self._on_fatal(Status.CRASH)
            kind, payload = message
            if kind == protocol.RESULT:
                local, outcome = pickle.loads(payload)
                self._results[self._positions[local]] = outcome
                return self._advance() if all(p in self._results for p in self._positions) else None
            current, stage = payload.decode().split(":")
            if current != self._current:  # each case gets its own time; a packed batch one case's
                self._current = current
                self._deadline = time.monotonic() + self.timeout
            self._stage = Stage(stage)
            return None
        now = time.monotonic()
        past_deadline = now >= self._deadline
        if past_deadline or now - self._memory_checked >= self.limits.poll_interval:
            self._memory_checked = now
            if self._resident_mb() > self.limits.memory_mb:  # over its memory when time ran out: an OOM
                return self._on_fatal(Status.OOM)
        if past_deadline:
            return self._on_fatal(Status.HANG)
        if self.process.poll() is not None:
            return self.step(readable=True)  # read what it wrote before dying, then report
        return None

    def _on_fatal(self, status: Status) -> list[Outcome] | None:
        """Blame the case that was running, and queue the rest of the batch again."""
        fatal = self._fatal(status)
        remaining = [p for p in self._positions if p not in self._results]
        if self._current == protocol.WHOLE_BATCH and len(remaining) > 1:
            self._packed_failure = (fatal, remaining[0])
            self._queue.extend([p] for p in remaining)  # alone, each case shows if it is the culprit
        else:
            culprit = self._positions[int(self._current)] if self._current not in (None, protocol.WHOLE_BATCH) \
                else remaining[0]
            self._results[culprit] = fatal
            if rest := [p for p in remaining if p != culprit]:
                self._queue.append(rest)
        return self._advance()

    def _advance(self) -> list[Outcome] | None:
        if self._queue:
            self._send(self._queue.pop(0))
            return None
        if self._packed_failure is not None:
            fatal, first = self._packed_failure
            # A pack that outlasts one case's time limit says nothing about its cases (Dynamo's
            # time grows faster than the program it traces); one that crashes only together does.
            if fatal.status is not Status.HANG and not any(self._results[p].status in FATAL for p in self._results):
                self._results[first] = replace(fatal, message=f"{fatal.message} (only when compiled "
                                               f"together with the other {len(self._batch) - 1} cases of its batch)")
        return [self._results[p] for p in range(len(self._batch))]

    def collect(self) -> list[Outcome]:
        return collect_all([self])[0]

    def execute(self, case: TestCase) -> Outcome:
        self.submit([case])
        return self.collect()[0]

    # ---------------------------------------------------------------- internals

    def _resident_mb(self) -> float:
        try:
            with open(f"/proc/{self.process.pid}/statm") as statm:
                return int(statm.read().split()[1]) * PAGE_SIZE / 2**20
        except (OSError, IndexError, ValueError):
            return 0.0

    def _stderr_tail(self, offset: int) -> str:
        try:
            with open(self.log_path, "rb") as log:
                log.seek(max(offset, log.seek(0, os.SEEK_END) - STDERR_TAIL_BYTES))
                return log.read().decode(errors="replace")
        except OSError:
            return ""

    def _fatal(self, status: Status) -> Outcome:
        """Kill the worker (it is restarted lazily) and describe how the test ended."""
        seconds = time.monotonic() - self._submitted
        rss = self._resident_mb()
        returncode = None
        if status is Status.CRASH:
            try:
                returncode = self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self.kill()
        exit_signal = -returncode if returncode is not None and returncode < 0 else None
        if status is Status.HANG:
            error_type, message = "Timeout", f"no result after {self.timeout:g} s"
        elif status is Status.OOM:
            error_type = "MemoryLimit"
            message = f"resident memory {rss:.0f} MiB over the {self.limits.memory_mb} MiB limit"
        elif exit_signal:
            error_type = signal.Signals(exit_signal).name
            message = f"worker killed by {error_type}"
        else:
            error_type, message = "WorkerExit", f"worker exited with status {returncode}"
        self.restarts += 1
        return Outcome(self.name, status, self._stage, error_type=error_type, message=message,
                       stderr_tail=self._stderr_tail(self._log_offset), exit_signal=exit_signal,
                       seconds=seconds)


def batch_size(backends: Iterable[str]) -> int:
    """The largest batch any of ``backends`` benefits from: a group's batch size."""
    return max(load_backend(backend).batch_size for backend in backends)


def log_name(backend: str, limit: int = 80) -> str:
    """A file name for a backend's log: its spec with unsafe characters replaced, and a long
    one (a culprit-configured backend carries its whole configuration) cut and hashed."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in backend)
    if len(safe) <= limit:
        return safe
    return f"{safe[:limit - 13]}~{hashlib.sha1(backend.encode()).hexdigest()[:12]}"


def timeout_factor(backend: str) -> float:
    try:
        return load_backend(backend).timeout_factor
    except (ValueError, TypeError):
        return 1.0  # a backend that cannot load is reported by Worker.start


class BatchCancelled(Exception):
    """The batch was abandoned unfinished (its workers were killed); it has no outcomes."""


def collect_all(workers: Sequence[Worker], cancelled: Callable[[], bool] = lambda: False) -> list[list[Outcome]]:
    """Wait for every submitted batch, watching all workers' deadlines and memory at once.
    Once ``cancelled()`` says so, the unfinished workers are killed and BatchCancelled raised."""
    results: dict[int, list[Outcome]] = {}
    interval = min(w.limits.poll_interval for w in workers)
    while len(results) < len(workers):
        if cancelled():
            for index, worker in enumerate(workers):
                if index not in results:
                    worker.kill()  # restarted by its next batch
            raise BatchCancelled
        pending = [w for i, w in enumerate(workers) if i not in results]
        readable, _, _ = select.select(pending, [], [], interval)
        for index, worker in enumerate(workers):
            if index not in results and (outcome := worker.step(worker in readable)) is not None:
                results[index] = outcome
    return [results[index] for index in range(len(workers))]


class WorkerGroup:
    """One worker per backend; a test goes to all of them at once, then results are collected."""

    def __init__(self, backends: Sequence[str], limits: Limits = Limits(), log_dir: Path | None = None,
                 pythons: dict[str, str] | None = None, coverage: bool = False) -> None:
        pythons = pythons or {}
        self.workers = [Worker(b, limits, pythons.get(b, sys.executable), log_dir, coverage) for b in backends]

    @property
    def restarts(self) -> int:
        return sum(self.restarts_by_backend.values())

    @property
    def restarts_by_backend(self) -> dict[str, int]:
        """Restarts (each after a crash, hang or memory kill) of the workers that had any."""
        return {worker.backend: worker.restarts for worker in self.workers if worker.restarts}

    def versions(self) -> dict[str, str]:
        """Package versions the started workers reported."""
        return {package: version for worker in self.workers for package, version in worker.versions.items()}

    def start(self) -> None:
        """Start every worker at once: heavy imports (torch, TVM) overlap."""
        with ThreadPoolExecutor(max_workers=len(self.workers)) as pool:
            for future in [pool.submit(worker.start) for worker in self.workers]:
                future.result()

    def execute(self, case: TestCase) -> list[Outcome]:
        """One Outcome per backend."""
        return self.execute_batch([case])[0]

    def execute_batch(self, cases: Sequence[TestCase], declined: Mapping[str, Mapping[int, Outcome]] | None = None,
                      cancelled: Callable[[], bool] = lambda: False) -> list[list[Outcome]]:
        """For each case, one Outcome per backend; every backend gets its share of the batch at once.

        ``declined[backend][position]`` is an Outcome decided without running (a case the
        backend is known not to support); such cases are not sent to that backend. Raises
        BatchCancelled once ``cancelled()`` is true before every outcome is in.
        """
        declined = declined or {}
        shares = []
        for worker in self.workers:
            skip = declined.get(worker.name, {})
            positions = [p for p in range(len(cases)) if p not in skip]
            shares.append(positions)
            if positions:
                worker.submit([cases[p] for p in positions])
        busy = [w for w, positions in zip(self.workers, shares) if positions]
        results = iter(collect_all(busy, cancelled) if busy else [])
        by_worker = []
        for worker, positions in zip(self.workers, shares):
            outcomes = dict(declined.get(worker.name, {}))
            if positions:
                outcomes.update(zip(positions, next(results)))
            by_worker.append(outcomes)
        return [[outcomes[position] for outcomes in by_worker] for position in range(len(cases))]

    @cached_property
    def batch_size(self) -> int:
        return batch_size(w.backend for w in self.workers)

    def close(self) -> None:
        for worker in self.workers:
            worker.close()

    def __enter__(self) -> WorkerGroup:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
