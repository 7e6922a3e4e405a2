"""Findings: what an oracle reports as a likely compiler bug, what a guard explains away, and
the verdict that holds both."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Mapping

from fuzzer.execution.outcome import Stage


class FindingKind(enum.StrEnum):
    CRASH = "crash"
    HANG = "hang"
    OOM = "oom"
    ERROR = "error"
    MISMATCH = "mismatch"
    SHAPE_MISMATCH = "shape_mismatch"
    DTYPE_MISMATCH = "dtype_mismatch"
    OPT_MISMATCH = "opt_mismatch"  # one compiler, optimizations off vs on (oracles.optlevel)
    METAMORPHIC = "metamorphic"  # one backend, a graph vs an equivalent rewrite (oracles.metamorphic)
    NONDETERMINISM = "nondeterminism"  # one backend, the same test twice (oracles.determinism)
    SLOWDOWN = "slowdown"  # one compiler, optimized slower than its baseline (oracles.performance)


@dataclass(frozen=True)
class Finding:
    kind: FindingKind
    backends: tuple[str, ...]  # the backends blamed
    stage: Stage
    summary: str  # one line for a human
    details: Mapping[str, Any] = field(default_factory=dict)  # JSON-serializable evidence
    signature: str = ""  # deduplication key (see oracles.signature)


@dataclass(frozen=True)
class Suppression:
    """A mismatch that a guard explains: not reported as a finding."""

    backend: str
    output: str
    reason: str  # one line for a human: what the guard saw
    guard: str = ""  # the guard's short name, for counting
    elements: int = 0  # how many mismatched elements it explains

    def to_dict(self) -> dict[str, object]:
        return {"backend": self.backend, "output": self.output, "guard": self.guard,
                "elements": self.elements, "reason": self.reason}


@dataclass(frozen=True)
class Verdict:
    """What the oracles decided for one test case."""

    findings: list[Finding] = field(default_factory=list)
    suppressions: list[Suppression] = field(default_factory=list)
