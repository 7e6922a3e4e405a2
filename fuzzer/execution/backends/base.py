"""The backend interface: one small class per compiler configuration.

A backend runs inside an isolated worker process (``fuzzer.execution.worker``). Its module must
import nothing heavy at import time: ``setup`` does that once per worker. Each test then
goes through ``prepare`` (convert the test case into the compiler's input form),
``compile`` and ``run``; the stage an exception escapes from is recorded.

A backend whose compiler has optimizations that can be turned off one by one implements
``optimizations`` and ``without`` (and optionally ``levels`` and ``describe_culprit``):
culprit search (``triage.culprit``) then names the one that causes a finding.
"""

from __future__ import annotations

import importlib.metadata
import time
import traceback
from typing import Any, Callable, ClassVar, Collection, Iterator, Mapping, Sequence

import numpy as np

from fuzzer.graph.case import TestCase
from fuzzer.execution.outcome import Outcome, Stage, Status

ReportStage = Callable[[int | str, Stage], None]  # (position in the batch or "*", stage)


class Unsupported(Exception):
    """Raised by a backend for a documented limitation: never reported as a bug."""


class Backend:
    name: ClassVar[str]
    description: ClassVar[str]
    requires: ClassVar[tuple[str, ...]] = ()  # distributions that must be installed
    device: ClassVar[str] = "cpu"
    batch_size: ClassVar[int] = 4  # cases per batch that execute_batch handles best (fewer pipe round trips)
    is_reference: ClassVar[bool] = False  # an oracle's reference (e.g. float64), not a compiler
    # The compiler this backend configures: bugs are counted per compiler, not per configuration.
    family: ClassVar[str] = ""  # "" : the backend's own name
    # "target": a compiler under test; "judge": a reference that decides who is wrong, whose
    # own defects are reference issues, not compiler bugs.
    role: ClassVar[str] = "target"
    optimizing: ClassVar[bool] = True  # whether this configuration runs the compiler's optimizer
    # Its run-time checks of argument types, as (regular expression of the error, the type kind it
    # catches): such an error is the wrong shape or dtype it caught, which other configurations return.
    type_checks: ClassVar[tuple[tuple[str, str], ...]] = ()
    # The same compiler's configuration with its optimizer off, on the same device and frontend,
    # that the optimization-level and performance oracles compare this one with ("": none).
    baseline: ClassVar[str] = ""
    timeout_factor: ClassVar[float] = 1.0  # compilers that legitimately take longer get more time
    # Source files (fnmatch patterns) of the compiler's Python code that coverage feedback
    # measures in the worker (``fuzzer.campaign.coverage``); empty: nothing is measured.
    coverage_include: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def missing(cls) -> str | None:
        """Why this backend cannot run here (without importing it), or None."""
        for distribution in cls.requires:
            try:
                importlib.metadata.version(distribution)
            except importlib.metadata.PackageNotFoundError:
                return f"package {distribution!r} is not installed (pip install {distribution})"
        return None

    @classmethod
    def compiler_name(cls) -> str:
        return cls.family or cls.name

    @classmethod
    def versions(cls) -> dict[str, str]:
        return {d: importlib.metadata.version(d) for d in cls.requires}

    def setup(self) -> None:
        """Heavy imports and one-time initialization, in the worker process."""

    def prepare(self, case: TestCase) -> Any:
        return case

    def compile(self, prepared: Any) -> Any:
        raise NotImplementedError

    def effects(self) -> tuple[str, ...]:
        """The rewrites the optimizer applied in the last ``compile``, each once, named
        ``family:rewrite`` (``ort:MatMulAddFusion``, ``tvm:FuseOps``); none by default."""
        return ()

    def run(self, compiled: Any, inputs: Mapping[str, np.ndarray]) -> Sequence[np.ndarray]:
        """Outputs in the order of ``output_names``."""
        raise NotImplementedError

    def output_names(self, case: Any) -> list[str]:
        """Names of the outputs ``run`` returns, in order (a graph's outputs by default)."""
        return list(case.output_types())

    def is_unsupported(self, error: BaseException) -> bool:
        """Whether ``error`` is a documented limitation rather than a bug."""
        return isinstance(error, Unsupported)

    def execute(self, case: Any, report_stage: Callable[[Stage], None]) -> Outcome:
        """Run one case through prepare, compile and run; every failure becomes an Outcome."""
        return self.compile_and_run(case, report_stage)[0]

    def compile_and_run(self, case: Any, report_stage: Callable[[Stage], None]) -> tuple[Outcome, Any]:
        """``execute``'s Outcome, and the compiled program for further runs (None when it failed)."""
        started = time.perf_counter()
        stage = Stage.PREPARE
        effects: tuple[str, ...] = ()  # kept when running fails: the rewrites did fire
        compiled = None
        try:
            report_stage(stage)
            prepared = self.prepare(case)
            stage = Stage.COMPILE
            report_stage(stage)
            compiled = self.compile(prepared)
            effects = self.effects()
            stage = Stage.RUN
            report_stage(stage)
            results = list(self.run(compiled, case.inputs))
            names = self.output_names(case)
            if len(results) != len(names):
                raise RuntimeError(f"backend returned {len(results)} outputs, expected {len(names)}")
            return Outcome(self.name, Status.OK, Stage.RUN,
                           {name: np.asarray(result) for name, result in zip(names, results)},
                           seconds=time.perf_counter() - started, effects=effects), compiled
        except MemoryError as error:
            return Outcome(self.name, Status.OOM, stage, error_type="MemoryError", message=str(error),
                           seconds=time.perf_counter() - started, effects=effects), None
        except Exception as error:  # noqa: BLE001 - every backend failure becomes an Outcome
            status = Status.UNSUPPORTED if self.is_unsupported(error) else Status.ERROR
            return Outcome(self.name, status, stage, error_type=type(error).__name__,
                           message=str(error)[:4000], traceback=traceback.format_exc()[-6000:],
                           seconds=time.perf_counter() - started, effects=effects), None

    def execute_batch(self, cases: Sequence[Any], report_stage: ReportStage) -> Iterator[tuple[int, Outcome]]:
        """Outcomes of several cases, each yielded as soon as it is known.

        Case by case by default; a backend whose compiles carry a large fixed cost
        (torch.compile with aot-eager) packs the batch into one program instead, reporting
        whole-batch stages with ``"*"``.
        """
        for position, case in enumerate(cases):
            yield position, self.execute(case, lambda stage, p=position: report_stage(p, stage))

    def repro_artifact(self, case: Any) -> bytes:
        """The bytes a reproduction script embeds and passes to ``run_backend``: the ONNX model
        by default; a backend with another input form (a torch program) overrides this."""
        return case.model

    @classmethod
    def repro_source(cls) -> str:
        """Python source defining ``run_backend(model: bytes, inputs: dict) -> list[ndarray]``,
        where ``model`` is ``repro_artifact(case)`` and ``inputs`` are in graph-input order.

        It is this backend's part of a standalone reproduction script: it may import only
        numpy and the compiler under test, never tcfuzz.
        """
        raise NotImplementedError(f"backend {cls.name} cannot emit a reproduction fragment yet")

    # ------------------------------------------------------------------ optimizations (culprit search)

    def optimizations(self, case: TestCase) -> Sequence[str]:
        """The optimizations this configuration may apply to ``case``, named as ``without`` takes
        them (called after ``setup``; it may compile). Empty by default: nothing to bisect."""
        return ()

    @classmethod
    def without(cls, disabled: Collection[str], level: str | None = None) -> type[Backend]:
        """This configuration, under its own name, with the optimizations ``disabled`` turned off
        and at ``level`` (one of ``levels()``; None: its own). Implementing it opts a backend
        into culprit search; by default a backend has nothing to turn off."""
        raise TypeError(f"backend {cls.name} has no optimizations that tcfuzz can turn off")

    @classmethod
    def levels(cls) -> Sequence[str]:
        """Coarse optimization levels up to this configuration's own, the first applying none,
        that culprit search tries (lowest first) before single optimizations; none by default."""
        return ()

    @classmethod
    def describe_culprit(cls, name: str) -> tuple[str, str]:
        """The knob that turns the optimization or level ``name`` off, and a sentence blaming it."""
        return "optimization", f"{cls.name} optimization {name}: turning it off alone makes the finding vanish"

    @classmethod
    def variant(cls, disabled: Collection[str], /, **attributes: Any) -> type[Backend]:
        """A subclass under this backend's name with the class ``attributes``, described as having
        ``disabled`` off: what ``without`` returns."""
        description = f"{cls.description}, with {', '.join(disabled) or 'nothing'} off"
        return type(f"{cls.__name__}Configured", (cls,), {"description": description, **attributes})


REQUIRED_METHODS = ("compile", "run")


def check_backend_class(target: str, candidate: Any) -> type[Backend]:
    """Reject a registration that is not a usable Backend, naming what is wrong."""
    if not (isinstance(candidate, type) and issubclass(candidate, Backend)):
        raise TypeError(f"backend {target} is not a subclass of fuzzer.execution.backends.base.Backend")
    for attribute in ("name", "description"):
        if not isinstance(getattr(candidate, attribute, None), str):
            raise TypeError(f"backend {target} lacks the class attribute {attribute!r}")
    for method in REQUIRED_METHODS:
        if getattr(candidate, method) is getattr(Backend, method):
            raise TypeError(f"backend {target} ({candidate.name}) does not implement {method}()")
    return candidate
