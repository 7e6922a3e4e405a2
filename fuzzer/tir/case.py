"""A TIR test case as plain data: what a worker needs to rebuild, mutate and build it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

import numpy as np

ANY_MUTATOR = "any"  # a mutation step whose seed picks the mutator; workers report the name


@dataclass(frozen=True)
class Variant:
    """One way to build the mutant: a schedule and a pass pipeline.

    ``trace`` replays recorded schedule steps; when it is None, the worker draws
    ``schedule_steps`` random steps from ``schedule_seed`` and reports the trace it drew.
    """

    pipeline: Mapping[str, Any]
    trace: tuple[Mapping[str, Any], ...] | None = None
    schedule_seed: int = 0
    schedule_steps: int = 0


@dataclass(frozen=True)
class TirCase:
    """A seed PrimFunc, the IR mutations applied to it, and the variants to build.

    ``inputs`` holds the value of every buffer parameter; when empty, the worker draws
    them from ``seed``.
    """

    __test__ = False  # not a pytest class

    seed_spec: Mapping[str, Any]
    mutations: tuple[tuple[str, int], ...]
    variants: tuple[Variant, ...]
    seed: int
    index: int = 0
    inputs: Mapping[str, np.ndarray] = field(default_factory=dict)
    diagnose: bool = False  # only mutate and schedule, build nothing: how a crashed case got there
    step_log: str | None = None  # a file that receives each schedule step before it runs

    def recipe(self) -> dict:
        """The JSON-serializable description of the case, inputs excluded."""
        return {"seed_spec": dict(self.seed_spec), "mutations": [list(step) for step in self.mutations],
                "variants": [asdict(variant) for variant in self.variants], "seed": self.seed}


def trace_from_log(text: str) -> list[dict]:
    """The steps a ``step_log`` shows: every accepted one, then the one that was running.

    The worker writes each step as a JSON line before running it and ``ok`` after TVM
    accepts it; a step that TVM rejects is followed by the next step's line instead.
    """
    trace, pending = [], None
    for line in text.splitlines():
        if line == "ok" and pending is not None:
            trace.append(pending)
            pending = None
        elif line.startswith("{"):
            pending = json.loads(line)
    return trace + ([pending] if pending is not None else [])


def encode_json(value: Any) -> np.ndarray:
    """``value`` as JSON in a uint8 array: how a worker returns text among its outputs."""
    return np.frombuffer(json.dumps(value, sort_keys=True).encode(), dtype=np.uint8).copy()


def decode_json(array: np.ndarray) -> Any:
    return json.loads(np.asarray(array, dtype=np.uint8).tobytes().decode())
