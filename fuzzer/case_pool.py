"""Test cases built ahead of the lanes that run them, in helper processes.

Generating a graph, searching its inputs and exporting it is most of a lane's own work.
Done in the campaign's process it holds the interpreter lock that all lanes share, so
several lanes could not use more than one core between them. A lane hands the tests of
its next batch to a CasePool and runs the current batch meanwhile; the pool's processes
build fresh graphs from their seeds, and the cases of mutants the scheduler planned.
"""

from __future__ import annotations

import multiprocessing
import random
import signal
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, replace

from fuzzer.generator import GeneratorOptions, concrete_variants, generate_case, make_case
from fuzzer.ir import Graph
from fuzzer.ops import Unsatisfiable
from fuzzer.outcome import TestCase


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


def build_all(jobs: list[CaseJob], options: GeneratorOptions) -> list[list[TestCase]]:
    return [build_cases(job, options) for job in jobs]


def _warm(input_search: bool) -> None:
    """Pay the heavy imports when the pool starts, not on the campaign's clock. Ctrl-C is
    the campaign's to handle (it stops the lanes); a helper that took it would break the pool."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if input_search:
        import fuzzer.input_search  # noqa: F401 - imports torch


class CasePool:
    """``processes`` helper processes that build batches of cases (one process per lane)."""

    def __init__(self, processes: int, options: GeneratorOptions) -> None:
        context = multiprocessing.get_context("forkserver")  # the campaign has threads: never fork it
        context.set_forkserver_preload(["fuzzer.case_pool"])
        self.processes = max(1, processes)
        self._executor = ProcessPoolExecutor(self.processes, mp_context=context, initializer=_warm,
                                             initargs=(options.input_budget is not None,))
        self.options = options

    def warm(self) -> None:
        """Start every process and wait until each has imported what it needs."""
        for future in [self._executor.submit(build_all, [], self.options)
                       for _ in range(self.processes)]:
            future.result()

    def submit(self, jobs: list[CaseJob], options: GeneratorOptions | None = None) -> Future:
        """A Future of each job's cases (see :func:`build_cases`)."""
        return self._executor.submit(build_all, jobs, options or self.options)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
