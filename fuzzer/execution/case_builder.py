"""Test cases built ahead of the lane that runs them, in a helper process of the lane's own.

Generating a graph, searching its inputs and exporting it is most of a lane's own work.
Done in the campaign's process it holds the interpreter lock that all lanes share, so
several lanes could not use more than one core between them. A lane hands the tests of
its next batch to its CaseBuilder and runs the current batch meanwhile; the builder's
process makes fresh graphs from their seeds, and the cases of mutants the scheduler planned.

The helper is ``python -m fuzzer.execution.case_builder``, speaking the workers' framing
(``fuzzer.execution.worker``): it announces READY, then answers each pickled ``(jobs, options)``
request with the pickled cases, in order. It runs in a session of its own, so Ctrl-C is
the campaign's to handle.
"""

from __future__ import annotations

import pickle
import queue
import random
import subprocess
import sys
import threading
from dataclasses import dataclass, replace
from pathlib import Path

from fuzzer.execution import worker as protocol
from fuzzer.generation.generator import GeneratorOptions, concrete_variants, generate_case, make_case
from fuzzer.graph.ir import Graph
from fuzzer.graph.rejected import Unsatisfiable
from fuzzer.graph.case import TestCase


@dataclass(frozen=True)
class CaseJob:
    index: int
    seed: int
    graph: Graph | None = None  # a mutant the scheduler planned; None: a fresh graph from the seed


def build_cases(job: CaseJob, options: GeneratorOptions) -> list[TestCase]:
    """The job's case and, for a dynamic graph, the same (dynamic) model at its other
    concrete sizes, each with inputs of its own; none when the seed gives no graph."""
    try:
        case = generate_case(job.seed, options, job.index) if job.graph is None else \
            make_case(job.graph, job.seed, options.opset, job.index, options.input_budget)
    except Unsatisfiable:
        return []
    if not case.graph.symbols:
        return [case]
    variants = concrete_variants(case.graph, random.Random(case.seed))[1:]
    return [case, *(replace(make_case(variant, case.seed, case.opset, case.index, options.input_budget),
                            model=case.model) for variant in variants)]


class CaseBuilderError(RuntimeError):
    """The helper process failed to start or died."""


class CaseBuilder:
    """One lane's helper process; ``submit`` returns a handle whose ``result`` waits."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.process: subprocess.Popen | None = None
        self._submitted = self._received = 0
        self._answers: dict[int, list[list[TestCase]]] = {}

    def start(self) -> None:
        """Launch the helper; ``wait_ready`` waits for its imports (start workers meanwhile)."""
        from fuzzer.execution.isolation import worker_environment

        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "fuzzer.execution.case_builder"],
                                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                                            env=worker_environment(), start_new_session=True, bufsize=0)

    def wait_ready(self) -> None:
        message = protocol.receive(self.process.stdout)
        if message is None or message[0] != protocol.READY:
            self.close()
            raise CaseBuilderError(f"the case builder did not start; see {self.log_path}")

    def submit(self, jobs: list[CaseJob], options: GeneratorOptions) -> PendingCases:
        protocol.send(self.process.stdin, protocol.CASES, pickle.dumps((jobs, options), pickle.HIGHEST_PROTOCOL))
        self._submitted += 1
        return PendingCases(self, self._submitted)

    def result(self, number: int) -> list[list[TestCase]]:
        """The cases of request ``number`` (answers come in the order of the requests)."""
        while number not in self._answers:
            message = protocol.receive(self.process.stdout)
            if message is None:
                raise CaseBuilderError(f"the case builder died; see {self.log_path}")
            self._received += 1
            self._answers[self._received] = pickle.loads(message[1])
        return self._answers.pop(number)

    def close(self) -> None:
        if self.process is None:
            return
        self.process.stdin.close()  # end of requests: the helper exits
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()
        self.process = None


@dataclass(frozen=True)
class PendingCases:
    builder: CaseBuilder
    number: int

    def result(self) -> list[list[TestCase]]:
        """Each job's cases (see :func:`build_cases`)."""
        return self.builder.result(self.number)


def main() -> int:
    """Serve requests until the campaign closes the pipe. A reader thread drains the
    requests, so that a lane writing its next request never waits on an unread answer."""
    out = protocol.protocol_output()
    import fuzzer.generation.input_search  # noqa: F401 - imports torch before READY, off the campaign's clock

    requests: queue.Queue = queue.Queue()

    def read() -> None:
        while (message := protocol.receive(sys.stdin.buffer)) is not None:
            requests.put(message[1])
        requests.put(None)

    threading.Thread(target=read, daemon=True).start()
    protocol.send(out, protocol.READY)
    while (payload := requests.get()) is not None:
        jobs, options = pickle.loads(payload)
        built = [build_cases(job, options) for job in jobs]
        protocol.send(out, protocol.RESULT, pickle.dumps(built, pickle.HIGHEST_PROTOCOL))
    return 0


if __name__ == "__main__":
    sys.exit(main())
