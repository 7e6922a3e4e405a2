"""Which optimization causes a finding: bisect a compiler's optimizations until one is named.

A candidate configuration is a backend with some optimizations turned off. It is named as a
backend plugin, ``triage.culprit:{"backend": "ort-all", "off": [...], "level": ...}``, which
this module's ``__getattr__`` turns into a subclass of the backend that keeps the backend's
name, so a configured backend is judged by the same oracles, runs in the same isolated
workers and gives the same signatures. What "off" means depends on the compiler:

* ONNX Runtime: first the lowest graph optimization level that still shows the finding, then
  the graph transformers (``disabled_optimizers``) that changed this graph at that level;
* TVM Relax: the Relax and TIR passes (``PassContext(disabled_pass=...)``) that changed the
  module while it was built;
* Inductor: ``torch._inductor.config`` switches that turn one optimization off.

The candidates come from the compiler itself (ORT's verbose log of transformers that
modified the graph; a TVM pass instrument), probed in a subprocess, since compiling the case
may crash. Bisection keeps the half whose disabling clears the finding; a configuration
that breaks the build (a required pass) is split further rather than trusted.
"""

from __future__ import annotations

import enum
import json
import os
import pickle
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from functools import cache
from typing import Any, Callable, Mapping, Sequence

from fuzzer.store import StoredFinding
from fuzzer.execution.backends import load_backend
from fuzzer.execution.backends.base import Backend
from fuzzer.execution.isolation import worker_environment
from fuzzer.execution.outcome import TestCase
from triage.reproducibility import backend_specs, finding_backends, shows

PLUGIN_MODULE = __name__
PROBE_TIMEOUT = 300.0
MAX_TESTS = 24  # candidate configurations one bisection may run

# Inductor switches that each turn one optimization off (flag -> value that disables it).
INDUCTOR_OFF: Mapping[str, Any] = {
    "epilogue_fusion": False,
    "pattern_matcher": False,
    "max_fusion_size": 1,  # no fusion at all
    "split_reductions": False,
    "reorder_for_locality": False,
    "cpp.simdlen": 1,  # no vectorization in the C++ backend
    "comprehensive_padding": False,
    "shape_padding": False,
    "batch_fusion": False,
    "loop_ordering_after_fusion": False,
    "fallback_random": True,  # random ops as in eager mode
}
_ORT_MODIFIED = re.compile(r"GraphTransformer (\S+) modified: 1")


@dataclass(frozen=True)
class Culprit:
    backend: str
    knob: str  # what was turned: disabled_optimizers, graph_optimization_level, disabled_pass, inductor_config
    value: str  # the optimizer, level, pass or config flag
    description: str


class Verdict(enum.Enum):
    SHOWS = "shows"  # the finding's signature came back
    CLEARED = "cleared"  # the backend ran and nothing was found against it
    INVALID = "invalid"  # another finding on the backend: the configuration itself broke it


# ---------------------------------------------------------------- configured backends


def family(backend: type[Backend]) -> str:
    from fuzzer.execution.backends.onnxruntime import OnnxRuntime
    from fuzzer.execution.backends.torch_compile import TorchCompile
    from fuzzer.execution.backends.tvm_relax import TvmRelax

    if issubclass(backend, OnnxRuntime):
        return "ort"
    if issubclass(backend, TvmRelax):
        return "tvm"
    if issubclass(backend, TorchCompile) and backend.compiler == "inductor":
        return "inductor"
    return ""


def configured(backend: str, off: Sequence[str] = (), level: str | None = None) -> str:
    """The plugin name of ``backend`` with the optimizations ``off`` turned off (and, for
    ONNX Runtime, at graph optimization ``level``)."""
    spec = {"backend": backend, "off": list(off), **({"level": level} if level else {})}
    return f"{PLUGIN_MODULE}:{json.dumps(spec, separators=(',', ':'))}"


class _OrtConfigured:
    off: tuple[str, ...] = ()
    level_override: str | None = None

    def setup(self) -> None:
        super().setup()
        if self.level_override:
            from fuzzer.execution.backends.onnxruntime import LEVELS

            self.options.graph_optimization_level = getattr(
                self.ort.GraphOptimizationLevel, LEVELS[self.level_override])

    def compile(self, model: bytes) -> Any:
        return self.ort.InferenceSession(model, self.options, providers=[self.provider],
                                         disabled_optimizers=list(self.off))


class _InductorConfigured:
    off: tuple[str, ...] = ()

    def setup(self) -> None:
        super().setup()
        import torch._inductor.config as inductor_config

        for flag in self.off:
            *path, leaf = flag.split(".")
            target = inductor_config
            for part in path:
                target = getattr(target, part)
            setattr(target, leaf, INDUCTOR_OFF[flag])


_MIXINS = {"ort": (_OrtConfigured,), "inductor": (_InductorConfigured,)}  # TVM: its own disabled_pass


@cache
def configured_class(backend: str, off: tuple[str, ...], level: str | None) -> type[Backend]:
    base = load_backend(backend)
    kind = family(base)
    if not kind:
        raise TypeError(f"backend {backend} has no optimizations that tcfuzz can turn off")
    attributes = {"off": off, "__module__": PLUGIN_MODULE,
                  "description": f"{base.description}, with {', '.join(off) or 'nothing'} off"}
    if level:
        attributes["level_override"] = level
    if kind == "tvm":
        attributes["disabled_pass"] = base.disabled_pass + off
    return type(f"{base.__name__}Configured", (*_MIXINS.get(kind, ()), base), attributes)


def __getattr__(name: str) -> type[Backend]:
    """``triage.culprit:{json}`` names a configured backend (see :func:`configured`)."""
    if not name.startswith("{"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    spec = json.loads(name)
    return configured_class(spec["backend"], tuple(spec["off"]), spec.get("level"))


# ---------------------------------------------------------------- candidates


def ort_transformers(backend: Any, case: TestCase) -> list[str]:
    """The graph transformers that modified this model, from ORT's verbose log."""
    options = backend.options
    options.log_severity_level, options.log_verbosity_level = 0, 1
    with tempfile.TemporaryFile() as log:
        saved = os.dup(2)
        os.dup2(log.fileno(), 2)
        try:
            backend.ort.InferenceSession(case.model, options, providers=[backend.provider])
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        log.seek(0)
        text = log.read().decode(errors="replace")
    return list(dict.fromkeys(_ORT_MODIFIED.findall(text)))


def tvm_passes(backend: Any, case: TestCase) -> list[str]:
    """The Relax and TIR passes that changed the module while ``backend`` built it, exactly as
    the backend builds it (its pipeline, PassContext config, target and device)."""
    from fuzzer.execution.backends.tvm_relax import compile_relax, pass_change_recorder

    changed: list[str] = []
    module, _ = backend.prepare(case)
    compile_relax(module, instruments=(pass_change_recorder(changed.append),), **backend.knobs())
    return list(dict.fromkeys(changed))


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
    kind = family(type(backend))
    if kind == "ort":
        return ort_transformers(backend, case)
    if kind == "tvm":
        return tvm_passes(backend, case)
    return list(INDUCTOR_OFF) if kind == "inductor" else []


# ---------------------------------------------------------------- bisection


Judge = Callable[[Sequence[str], str | None], Verdict]  # (optimizations off, ORT level) -> verdict


def evaluation_judge(config: Mapping, case: TestCase, stored: StoredFinding) -> Judge:
    """Judge a configuration of the blamed backend by re-running ``case`` in fresh isolated workers."""
    from triage.rerun import Evaluator

    backend, signature = backend_specs(config)[stored.backends[0]], stored.signature
    others = finding_backends(config, stored)

    def judge(off: Sequence[str], level: str | None) -> Verdict:
        variant = configured(backend, off, level)
        backends = [variant if name == backend else name for name in others]
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
    kind = family(base)
    if not kind:
        return None
    budget = [max_tests] if seconds is None else [max_tests, time.monotonic() + seconds]
    level, lowest = None, None
    if kind == "ort":
        from fuzzer.execution.backends.onnxruntime import LEVELS

        levels = list(LEVELS)[: list(LEVELS).index(base.level) + 1]
        for level in levels:
            if not _spend(budget):
                return None
            if judge((), level) is Verdict.SHOWS:
                break
        else:
            return None  # gone at every level: not deterministic enough to bisect
        if level == "none":
            return None  # present without graph optimizations: a kernel, not an optimizer
        if level != base.level:
            lowest = Culprit(base.name, "graph_optimization_level", level,
                             f"appears at ONNX Runtime level {level} ({LEVELS[level]})")
    names = candidates(configured(backend, (), level), case)
    found = isolate(names, lambda off: judge(off, level), budget) if names else None
    return lowest if found is None else Culprit(base.name, *_knob(kind, found, level))


def _knob(kind: str, name: str, level: str | None) -> tuple[str, str, str]:
    if kind == "ort":
        return ("disabled_optimizers", name, f"ONNX Runtime graph transformer {name} (level {level}): "
                "disabling it alone makes the finding vanish")
    if kind == "tvm":
        return ("disabled_pass", name, f"TVM pass {name}: building without it alone makes the finding vanish")
    return ("inductor_config", name, f"torch._inductor.config.{name} = {INDUCTOR_OFF[name]!r} alone "
            "makes the finding vanish")


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
