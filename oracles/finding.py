"""Findings: what an oracle reports as a likely compiler bug."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Mapping

from fuzzer.execution.outcome import Stage


class FindingKind(enum.Enum):
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


@dataclass(frozen=True)
class Finding:
    kind: FindingKind
    backends: tuple[str, ...]  # the backends blamed
    stage: Stage
    summary: str  # one line for a human
    details: Mapping[str, Any] = field(default_factory=dict)  # JSON-serializable evidence
    signature: str = ""  # deduplication key (see triage.signature)
