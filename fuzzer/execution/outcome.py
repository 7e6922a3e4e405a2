"""What one backend did with one test case: plain values passed between processes."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np


class Status(enum.Enum):
    OK = "ok"
    UNSUPPORTED = "unsupported"  # a documented limitation: never a finding
    ERROR = "error"  # the backend raised an exception it should not have
    CRASH = "crash"  # the worker process died (signal or exit)
    HANG = "hang"  # the per-test timeout expired
    OOM = "oom"  # the worker exceeded its memory limit


class Stage(enum.StrEnum):
    GENERATE = "generate"
    EXPORT = "export"
    PREPARE = "prepare"
    COMPILE = "compile"
    RUN = "run"
    COMPARE = "compare"


@dataclass(frozen=True)
class Outcome:
    backend: str
    status: Status
    stage: Stage | None = None
    outputs: Mapping[str, np.ndarray] = field(default_factory=dict)
    error_type: str = ""  # exception class name, or signal name for a crash
    message: str = ""
    traceback: str = ""
    stderr_tail: str = ""
    exit_signal: int | None = None
    seconds: float = 0.0
    coverage: frozenset[int] = frozenset()  # fuzzer.campaign.coverage bits new to the worker (with --coverage)
    effects: tuple[str, ...] = ()  # rewrites the optimizer applied, "family:name" (Backend.effects)
    # A timed pair's warm runs by side, the optimized side first (fuzzer.execution.backends.timed).
    run_seconds: Mapping[str, tuple[float, ...]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status is Status.OK
