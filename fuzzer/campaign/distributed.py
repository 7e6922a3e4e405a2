"""Scale-out over a Ray cluster: a lane's isolated workers live on a cluster node.

The driver (the campaign) keeps the findings store and the corpus, generates the tests and
judges them; a Ray actor per lane only holds a ``WorkerGroup`` and runs the batches it is
sent. The actor itself never runs a compiler: a test that crashes kills an isolated worker
process under the actor and comes back as an Outcome (a finding), so Ray never retries a
task because of a test (``max_restarts=0``, ``max_task_retries=0``).

Ray is an optional extra (``pip install 'tcfuzz[ray]'``); every node needs tcfuzz and the
compilers installed in the same environment as the driver.
"""

from __future__ import annotations

import threading
from functools import cached_property
from typing import Callable, Mapping, Sequence

from fuzzer.execution.isolation import BatchCancelled, Limits, WorkerGroup, WorkerStartError, batch_size
from fuzzer.graph.case import TestCase
from fuzzer.execution.outcome import Outcome

_connect_lock = threading.Lock()


class RayUnavailable(RuntimeError):
    """Ray is not installed or the cluster cannot be reached."""


def connect(address: str) -> None:
    """Join the Ray cluster at ``address`` ("auto" finds a running one, "local" starts one)."""
    try:
        import ray
    except ImportError:
        raise RayUnavailable("--ray needs Ray: pip install 'tcfuzz[ray]'") from None
    with _connect_lock:
        if ray.is_initialized():
            return
        try:
            ray.init(address=None if address == "local" else address, include_dashboard=False,
                     log_to_driver=False, logging_level="ERROR")
        except (ConnectionError, RuntimeError, ValueError) as error:
            raise RayUnavailable(f"cannot reach the Ray cluster at {address!r} ({error}); start one "
                                 "with `ray start --head` or pass --ray local") from None


class _GroupActor:
    """The remote half: a WorkerGroup on a cluster node (wrapped by ``ray.remote`` on demand)."""

    def __init__(self, backends: Sequence[str], limits: Limits, pythons: dict[str, str] | None,
                 coverage: bool) -> None:
        self.group = WorkerGroup(backends, limits, pythons=pythons, coverage=coverage)
        self.group.start()

    def versions(self) -> dict[str, str]:
        return self.group.versions()

    def execute_batch(self, cases: Sequence[TestCase],
                      declined: Mapping[str, Mapping[int, Outcome]] | None) -> list[list[Outcome]]:
        return self.group.execute_batch(cases, declined)

    def restarts_by_backend(self) -> dict[str, int]:
        return self.group.restarts_by_backend

    def close(self) -> None:
        self.group.close()


class RayWorkerGroup:
    """``WorkerGroup``'s interface, with the workers inside a Ray actor."""

    def __init__(self, backends: Sequence[str], limits: Limits, address: str,
                 pythons: dict[str, str] | None = None, coverage: bool = False) -> None:
        self.backends = tuple(backends)
        self.limits = limits
        self.address = address
        self.pythons = pythons
        self.coverage = coverage
        self._actor = None
        self._abandoned = False  # a cancelled batch may still run in the actor

    def start(self) -> None:
        import ray

        connect(self.address)
        actor_class = ray.remote(num_cpus=1, max_restarts=0, max_task_retries=0)(_GroupActor)
        self._actor = actor_class.remote(self.backends, self.limits, self.pythons, self.coverage)
        try:
            self._versions = ray.get(self._actor.versions.remote())  # a worker that failed to start fails here
        except ray.exceptions.RayError as error:
            cause = getattr(error, "cause", None) or error
            raise WorkerStartError(str(cause).strip().splitlines()[-1]) from None

    def execute_batch(self, cases: Sequence[TestCase], declined: Mapping[str, Mapping[int, Outcome]] | None = None,
                      cancelled: Callable[[], bool] = lambda: False) -> list[list[Outcome]]:
        """As WorkerGroup's; a cancelled batch is abandoned, and ``close`` then kills the actor
        rather than waiting for it (the actor's workers exit when their batch ends)."""
        import ray

        pending = self._actor.execute_batch.remote(list(cases), declined)
        while not ray.wait([pending], timeout=self.limits.poll_interval * 10)[0]:
            if cancelled():
                self._abandoned = True
                raise BatchCancelled
        return ray.get(pending)

    def execute(self, case: TestCase) -> list[Outcome]:
        return self.execute_batch([case])[0]

    @cached_property
    def batch_size(self) -> int:
        return batch_size(self.backends)

    def versions(self) -> dict[str, str]:
        return self._versions

    @property
    def restarts(self) -> int:
        return sum(self.restarts_by_backend.values())

    @property
    def restarts_by_backend(self) -> dict[str, int]:
        import ray

        return ray.get(self._actor.restarts_by_backend.remote()) if self._actor is not None else {}

    def close(self) -> None:
        import ray

        if self._actor is None:
            return
        try:
            if not self._abandoned:
                ray.get(self._actor.close.remote())
        finally:
            ray.kill(self._actor)
            self._actor = None
