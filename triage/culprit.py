"""Which optimization causes a finding: bisect a compiler's optimizations until one is named.

The backend owns its optimizations (``fuzzer.execution.backends.base``): ``optimizations(case)``
names those that may apply to a case, ``without(off, level)`` is the configuration with some
of them turned off, ``levels()`` are coarse levels to try first, and ``describe_culprit``
says how a culprit is reported. Any backend implementing ``without``, a plugin included,
gets culprit search; for ONNX Runtime it bisects the graph transformers at the lowest
optimization level that still shows the finding, for TVM its passes, for Inductor its config
switches.

A candidate configuration is named as a backend plugin,
``triage.culprit:{"backend": "ort-all", "off": [...], "level": ...}``, which this module's
``__getattr__`` turns into the backend's ``without``, a backend under the same name, so a
configured backend is judged by the same oracles, runs in the same isolated workers and
gives the same signatures. The candidates come from the backend itself, probed in a
subprocess, since compiling the case may crash. Bisection keeps the half whose disabling
clears the finding; a configuration that breaks the build (a required pass) is split
further rather than trusted.
"""

from __future__ import annotations

import enum
import json
import pickle
import subprocess
import sys
import time
from dataclasses import dataclass
from functools import cache
from typing import Callable, Mapping, Sequence

from fuzzer.store import StoredFinding
from fuzzer.execution.backends import load_backend
from fuzzer.execution.backends.base import Backend
from fuzzer.execution.isolation import worker_environment
from fuzzer.graph.case import TestCase
from triage.reproducibility import backend_specs, finding_backends, shows

PLUGIN_MODULE = __name__
PROBE_TIMEOUT = 300.0
MAX_TESTS = 24  # candidate configurations one bisection may run


@dataclass(frozen=True)
class Culprit:
    backend: str
    knob: str  # what was turned (describe_culprit): disabled_optimizers, graph_optimization_level, disabled_pass, ...
    value: str  # the optimizer, level, pass or config flag
    description: str


class Verdict(enum.Enum):
    SHOWS = "shows"  # the finding's signature came back
    CLEARED = "cleared"  # the backend ran and nothing was found against it
    INVALID = "invalid"  # another finding on the backend: the configuration itself broke it


# ---------------------------------------------------------------- configured backends


def tunable(backend: type[Backend]) -> bool:
    """Whether ``backend`` can turn optimizations off (implements ``Backend.without``)."""
    return backend.without.__func__ is not Backend.without.__func__


def configured(backend: str, off: Sequence[str] = (), level: str | None = None) -> str:
    """The plugin name of ``backend`` with the optimizations ``off`` turned off (and at
    optimization ``level``, one of its ``levels()``)."""
    spec = {"backend": backend, "off": list(off), **({"level": level} if level else {})}
    return f"{PLUGIN_MODULE}:{json.dumps(spec, separators=(',', ':'))}"


@cache
def configured_class(backend: str, off: tuple[str, ...], level: str | None) -> type[Backend]:
    """The class :func:`configured` names."""
    return load_backend(backend).without(off, level)


def __getattr__(name: str) -> type[Backend]:
    """``triage.culprit:{json}`` names a configured backend (see :func:`configured`)."""
    if not name.startswith("{"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    spec = json.loads(name)
    return configured_class(spec["backend"], tuple(spec["off"]), spec.get("level"))


# ---------------------------------------------------------------- candidates


def probe_candidates(backend: str, case: TestCase) -> list[str]:
    """The optimizations of ``backend`` that could cause a finding on ``case``, found in a
    subprocess (``python -m triage.culprit``) so that a crashing compile cannot take us down."""
    result = subprocess.run([sys.executable, "-m", PLUGIN_MODULE, backend], input=pickle.dumps(case),
                            capture_output=True, env=worker_environment(), timeout=PROBE_TIMEOUT)
    if result.returncode != 0:
        return []
    return json.loads(result.stdout.decode().strip().splitlines()[-1])


def candidates_here(backend_name: str, case: TestCase) -> list[str]:
    """:func:`probe_candidates`, in this process."""
    backend = load_backend(backend_name)()
    backend.setup()
    return list(backend.optimizations(case))


# ---------------------------------------------------------------- bisection


Judge = Callable[[Sequence[str], str | None], Verdict]  # (optimizations off, level) -> verdict


def evaluation_judge(config: Mapping, case: TestCase, stored: StoredFinding) -> Judge:
    """Judge a configuration of the blamed backend by re-running ``case`` in fresh isolated workers."""
    from triage.rerun import Evaluator

    backend, signature = backend_specs(config)[stored.backends[0]], stored.signature
    others = finding_backends(config, stored)

    def judge(off: Sequence[str], level: str | None) -> Verdict:
        variant = configured(backend, off, level)
        backends = [{backend: variant, f"timed/{backend}": f"timed/{variant}"}.get(name, name) for name in others]
        with Evaluator.from_config(dict(config), backends) as evaluator:
            findings = evaluator.evaluate(case)
        if shows(findings, signature):
            return Verdict.SHOWS
        return Verdict.INVALID if any(stored.backends[0] in f.backends for f in findings) else Verdict.CLEARED

    return judge


def isolate(candidates: Sequence[str], clears: Callable[[Sequence[str]], Verdict], budget: list[int]) -> str | None:
    """One candidate whose turning off alone clears the finding, found by halving; None when
    no single one does or the test budget (``budget[0]``, decremented) runs out."""
    if len(candidates) == 1:
        return candidates[0] if _spend(budget) and clears(candidates) is Verdict.CLEARED else None
    middle = len(candidates) // 2
    for half in (candidates[:middle], candidates[middle:]):
        if not _spend(budget):
            return None
        verdict = clears(half)
        if verdict is Verdict.CLEARED or verdict is Verdict.INVALID:
            if (found := isolate(half, clears, budget)) is not None:
                return found
    return None


def _spend(budget: list) -> bool:
    """Take one test from ``budget`` (``[tests]`` or ``[tests, deadline]``, a monotonic time)."""
    budget[0] -= 1
    return budget[0] >= 0 and (len(budget) < 2 or time.monotonic() < budget[1])


def bisect(backend: str, case: TestCase, judge: Judge, max_tests: int = MAX_TESTS,
           candidates: Callable[[str, TestCase], list[str]] = probe_candidates,
           seconds: float | None = None) -> Culprit | None:
    """The optimization of ``backend`` responsible for the finding ``judge`` looks for,
    within ``max_tests`` candidate builds and ``seconds`` (no limit when None)."""
    base = load_backend(backend)
    if not tunable(base):
        return None
    budget = [max_tests] if seconds is None else [max_tests, time.monotonic() + seconds]
    level, lowest = None, None
    if levels := base.levels():
        for level in levels:
            if not _spend(budget):
                return None
            if judge((), level) is Verdict.SHOWS:
                break
        else:
            return None  # gone at every level: not deterministic enough to bisect
        if level == levels[0]:
            return None  # present without optimizations: a kernel, not an optimizer
        if level != levels[-1]:
            lowest = blame(backend, level, level)
    names = candidates(configured(backend, (), level), case)
    found = isolate(names, lambda off: judge(off, level), budget) if names else None
    return lowest if found is None else blame(backend, found, level)


def blame(backend: str, name: str, level: str | None) -> Culprit:
    """The optimization or level ``name`` of ``backend`` (searched at ``level``) as a Culprit."""
    at_level = configured_class(backend, (), level)
    knob, description = at_level.describe_culprit(name)
    return Culprit(at_level.name, knob, name, description)


def find_culprit(config: Mapping, case: TestCase, stored: StoredFinding,
                 max_tests: int = MAX_TESTS, seconds: float | None = None) -> Culprit | None:
    """The optimization of the blamed backend that causes ``stored`` on ``case`` (the
    finding's test case, or its reduction), from re-runs with optimizations turned off,
    within ``seconds`` (no limit when None)."""
    return bisect(backend_specs(config)[stored.backends[0]], case, evaluation_judge(config, case, stored), max_tests,
                  seconds=seconds)


def main(argv: list[str]) -> int:
    """``python -m triage.culprit BACKEND`` < pickled TestCase: print the candidates as JSON."""
    case = pickle.loads(sys.stdin.buffer.read())
    print(json.dumps(candidates_here(argv[0], case)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
