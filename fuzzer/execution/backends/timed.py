"""Timed pairs: one compiler's optimized configuration and its baseline, timed in one worker.

``timed/NAME`` (``load_backend``) hosts backend ``NAME`` and its ``baseline`` (the same
compiler with its optimizer off) in one process pinned to one CPU, with one intra-op thread
each. For a test it compiles both, runs each once to warm up, then runs them alternately
``repeats`` times on the same inputs, so that both sides see the same machine. The Outcome
carries the optimized side's outputs and every warm run's seconds (``Outcome.run_seconds``);
a side that fails returns its own Outcome, named after that side. The performance oracle
(:mod:`oracles.performance`) compares the medians.
"""

from __future__ import annotations

import os
import time
from functools import cache
from typing import Any, Callable, ClassVar

from fuzzer.execution.backends.base import Backend
from fuzzer.execution.outcome import Outcome, Stage, Status

TIMED_PREFIX = "timed/"
REPEATS = 5  # warm runs of each side
SIDE_BUDGET = 2.0  # seconds of warm runs per side, after which fewer repeats are enough
MIN_REPEATS = 3


def pin_to_one_cpu() -> None:
    """Keep this process, and every thread it starts, on one CPU (the last one it may use)."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TVM_NUM_THREADS"):
        os.environ[variable] = "1"


@cache
def timed(optimized: type[Backend]) -> type[Backend]:
    """The timed pair of ``optimized`` and its baseline; TypeError when it has no baseline."""
    from fuzzer.execution.backends import load_backend

    if not optimized.baseline:
        raise TypeError(f"backend {optimized.name} has no baseline configuration to be timed against")
    baseline = load_backend(optimized.baseline)

    class TimedPair(Backend):
        name = f"{TIMED_PREFIX}{optimized.name}"
        description = f"{optimized.name} timed against {baseline.name}, one CPU, {REPEATS} warm runs each"
        requires = tuple(dict.fromkeys(optimized.requires + baseline.requires))
        family = optimized.compiler_name()
        device = optimized.device
        batch_size = 1
        timeout_factor = 2 * max(optimized.timeout_factor, baseline.timeout_factor)
        sides: ClassVar[tuple[type[Backend], type[Backend]]] = (optimized, baseline)

        @classmethod
        def missing(cls) -> str | None:
            return optimized.missing() or baseline.missing()

        @classmethod
        def versions(cls) -> dict[str, str]:
            return {**baseline.versions(), **optimized.versions()}

        def setup(self) -> None:
            pin_to_one_cpu()
            self.backends = [side() for side in self.sides]
            for backend in self.backends:
                backend.setup()
            if "torch" in self.requires:
                import torch

                torch.set_num_threads(1)

        def execute(self, case: Any, report_stage: Callable[[Stage], None]) -> Outcome:
            compiled, first = [], []
            for backend in self.backends:  # compiled, and run once: every later run is warm
                outcome, program = backend.compile_and_run(case, report_stage)
                if not outcome.ok:
                    return outcome
                first.append(outcome)
                compiled.append(program)
            report_stage(Stage.RUN)
            seconds: list[list[float]] = [[], []]
            for repeat in range(REPEATS):
                if repeat >= MIN_REPEATS and max(sum(side) for side in seconds) > SIDE_BUDGET:
                    break
                for side, (backend, program) in enumerate(zip(self.backends, compiled)):
                    started = time.perf_counter()
                    backend.run(program, case.inputs)
                    seconds[side].append(time.perf_counter() - started)
            names = [backend.name for backend in self.backends]
            return Outcome(self.name, Status.OK, Stage.RUN, first[0].outputs, seconds=sum(map(sum, seconds)),
                           run_seconds={name: tuple(side) for name, side in zip(names, seconds)})

    TimedPair.__name__ = TimedPair.__qualname__ = f"Timed{optimized.__name__.replace('-', '_')}"
    return TimedPair
