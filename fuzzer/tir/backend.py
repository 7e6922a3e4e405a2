"""The worker-side backend of TIR fuzzing: ``fuzzer.tir.backend:TirBuild``.

For one TirCase it builds the seed PrimFunc, applies the IR mutations, rejects an
invalid mutant (``Unsupported``: counted, never a finding), draws or replays each
variant's schedule, lowers the mutant with TVM's default pipeline (the reference) and
each variant with its pipeline, generates machine code for them together (one library
per LLVM level), and runs them all on the same arguments. A failure of
one variant is reported in the case's ``meta`` output rather than raised, so the other
variants still count. Outputs are named ``argument/P``, ``reference/P``, ``numpy/P``
(unmutated TE seeds), ``variant{k}/P`` for buffer parameter P, and ``meta`` (JSON).

A case whose seed source is ``relax-pipeline`` tests the Relax pipeline instead: its
"function" is the Relax module of a generated graph, its variants are mutated Relax
pipelines (no schedule, no IR mutation), its reference is TVM's default llvm pipeline,
and its outputs are ``main``'s results, named ``out0``, ``out1``….
"""

from __future__ import annotations

import os
import random
import sys
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Mapping, Sequence, TextIO

import numpy as np

from fuzzer.execution.backends.base import Backend, Unsupported
from fuzzer.tir.case import TirCase, Variant, encode_json
from fuzzer.tir import relax_pipelines
from fuzzer.tir.pipelines import CATALOG, PassSpec, default_pipeline

MAX_CACHED_SEEDS = 64


def error_record(stage: str, error: BaseException) -> dict:
    return {"stage": stage, "type": type(error).__name__, "message": str(error)[:4000],
            "traceback": traceback.format_exc()[-3000:]}


def printed(function: Any) -> str:
    try:
        return function.script()
    except Exception as error:  # noqa: BLE001 - the printer has bugs of its own
        return f"# the TVMScript printer failed: {type(error).__name__}: {str(error)[:500]}"


@dataclass
class Program:
    """One variant on its way through scheduling, building and running."""

    variant: Variant
    function: Any = None
    trace: list = field(default_factory=list)
    library: Any = None  # the built program: a PrimFunc's entry, or a Relax VM
    changed: list = field(default_factory=list)
    error: dict | None = None

    def report(self) -> dict:
        return {"trace": self.trace, "pipeline": self.variant.pipeline, "changed": self.changed,
                "error": self.error}


@dataclass
class Prepared:
    case: TirCase
    function: Any
    mutations: list  # the steps that changed the seed, with their mutators named
    arguments: dict[str, np.ndarray]
    programs: list[Program]
    reference: Any = None


class TirBuild(Backend):
    name = "tvm-tir"
    description = "TVM TIR: mutated PrimFuncs built with random schedules and pass pipelines"
    requires = ("apache-tvm",)
    catalog: ClassVar[Mapping[str, PassSpec]] = CATALOG  # passes pipeline mutation may use
    base_pipeline: ClassVar[Callable[[], dict]] = staticmethod(default_pipeline)  # what variants start from
    relax_catalog: ClassVar[Mapping[str, PassSpec]] = relax_pipelines.CATALOG  # the same for Relax pipelines
    relax_base_pipeline: ClassVar[Callable[[], dict]] = staticmethod(relax_pipelines.default_relax_pipeline)

    def setup(self) -> None:
        # tvm_ffi imports torch if it can, which triples the start of a worker (and a
        # worker restarts after every crash); nothing here needs torch.
        sys.modules.setdefault("torch", None)
        from fuzzer.tir import mutators, pipelines, runtime, schedules, seeds

        self.mutators, self.pipelines, self.runtime = mutators, pipelines, runtime
        self.schedules, self.seeds = schedules, seeds
        self._seed_cache: dict[str, Any] = {}
        self._names: list[str] = []

    def seed_function(self, spec: Mapping[str, Any]) -> Any:
        key = repr(sorted(spec.items()))
        if key not in self._seed_cache:
            if len(self._seed_cache) >= MAX_CACHED_SEEDS:
                self._seed_cache.pop(next(iter(self._seed_cache)))
            try:
                self._seed_cache[key] = self.seeds.build_seed(spec)
            except self.seeds.SeedUnavailable as error:
                raise Unsupported(str(error)) from None
        return self._seed_cache[key]

    def prepare(self, case: TirCase) -> Prepared:
        if case.seed_spec["source"] == relax_pipelines.SOURCE:
            return self.prepare_relax(case)
        function, mutations = self.mutators.apply_mutations(self.seed_function(case.seed_spec), case.mutations)
        try:
            self.mutators.check_valid(function)
        except self.mutators.InvalidMutant as error:
            raise Unsupported(f"invalid mutant: {error}") from None
        arguments = dict(case.inputs) or self.runtime.random_arguments(function, case.seed)
        with open(case.step_log or os.devnull, "w", buffering=1) as log:
            programs = [self.schedule(function, variant, log) for variant in case.variants]
        return Prepared(case, function, mutations, arguments, programs)

    def prepare_relax(self, case: TirCase) -> Prepared:
        try:
            module, arguments = relax_pipelines.relax_module(case.seed_spec)
        except Exception as error:  # noqa: BLE001 - the frontend rejects many graphs (tested elsewhere)
            raise Unsupported(f"graph {case.seed_spec['graph_seed']} does not import: {error}") from None
        return Prepared(case, module, [], dict(case.inputs) or arguments,
                        [Program(variant, module) for variant in case.variants])

    def execute_library(self, prepared: Prepared, library: Any) -> dict[str, np.ndarray]:
        if prepared.case.seed_spec["source"] == relax_pipelines.SOURCE:
            return relax_pipelines.run(library, prepared.function, prepared.arguments)
        return self.runtime.run(library, prepared.arguments)

    def schedule(self, function: Any, variant: Variant, log: TextIO) -> Program:
        program = Program(variant)
        try:
            if variant.trace is not None:
                program.trace = [dict(step) for step in variant.trace]
                program.function = self.schedules.replay(function, program.trace)
            else:
                program.function, program.trace = self.schedules.random_trace(
                    function, random.Random(variant.schedule_seed), variant.schedule_steps,
                    log=lambda line: log.write(line + "\n"))
        except self.schedules.ScheduleInternalError as error:
            program.trace = error.args[1]
            program.error = error_record("schedule", error.__cause__ or error)
        except Exception as error:  # noqa: BLE001 - a replayed step TVM now rejects
            program.error = error_record("schedule", error)
        return program

    def compile(self, prepared: Prepared) -> Prepared:
        if prepared.case.diagnose:
            return prepared
        if prepared.case.seed_spec["source"] == relax_pipelines.SOURCE:
            return self.compile_relax(prepared)
        lowered = {"reference": (self.pipelines.lower(prepared.function, None), 0)}
        for index, program in enumerate(prepared.programs):
            if program.error is not None:
                continue
            spec = program.variant.pipeline
            effects = self.pipelines.pass_effects(spec)
            try:
                lowered[f"variant{index}"] = (self.pipelines.lower(program.function, spec, self.catalog, [effects]),
                                              spec["llvm_opt_level"])
            except Exception as error:  # noqa: BLE001 - reported per variant
                program.error = error_record("compile", error)
            program.changed = effects.changed
        linked = self.link(lowered)
        prepared.reference = linked.pop("reference")
        for name, entry in linked.items():
            program = prepared.programs[int(name.removeprefix("variant"))]
            if isinstance(entry, dict):
                program.error = entry
            else:
                program.library = entry
        return prepared

    def link(self, lowered: Mapping[str, tuple[Any, int]]) -> dict[str, Any]:
        """The entry of each lowered module, or its ``compile`` error record; the reference's error is raised.

        Modules are code-generated together, one library per LLVM level (the JIT costs
        about as much per library as the builds); when a library fails, its modules are
        linked one by one so that the error names the module that caused it.
        """
        groups: dict[tuple, dict[str, Any]] = {}
        for name, (module, level) in lowered.items():
            groups.setdefault((level, name if len(module.functions) > 1 else ""), {})[name] = module
        linked: dict[str, Any] = {}
        for (level, _), group in groups.items():
            try:
                linked.update(self.pipelines.link(group, level))
                continue
            except Exception:  # noqa: BLE001 - blamed below
                pass
            for name, module in group.items():
                try:
                    linked.update(self.pipelines.link({name: module}, level))
                except Exception as error:  # noqa: BLE001 - reported per variant
                    if name == "reference":
                        raise
                    linked[name] = error_record("compile", error)
        return linked

    def compile_relax(self, prepared: Prepared) -> Prepared:
        module = prepared.function
        try:
            prepared.reference = relax_pipelines.build(module, None)
        except Exception as error:
            # the graph-level TVM backends (``tvm``) report what TVM's own pipeline cannot build
            raise Unsupported(f"TVM's default Relax pipeline cannot build this graph: {error}") from None
        for program in prepared.programs:
            effects = self.pipelines.pass_effects(program.variant.pipeline)
            try:
                program.library = relax_pipelines.build(module, program.variant.pipeline, self.relax_catalog,
                                                        [effects])
            except Exception as error:  # noqa: BLE001 - reported per variant
                program.error = error_record("compile", error)
            program.changed = effects.changed
        return prepared

    def run(self, prepared: Prepared, inputs: Mapping[str, np.ndarray]) -> Sequence[np.ndarray]:
        outputs = {f"argument/{name}": value for name, value in prepared.arguments.items()}
        case = prepared.case
        if not case.diagnose:
            outputs.update(self.named("reference", self.execute_library(prepared, prepared.reference)))
            if not case.mutations and (expected := self.seeds.numpy_reference(case.seed_spec, prepared.arguments)):
                outputs.update(self.named("numpy", expected))
        for index, program in enumerate(prepared.programs):
            if program.library is None:
                continue
            try:
                outputs.update(self.named(f"variant{index}", self.execute_library(prepared, program.library)))
            except Exception as error:  # noqa: BLE001 - reported per variant
                program.error = error_record("run", error)
        outputs["meta"] = encode_json({"script": printed(prepared.function), "mutations": prepared.mutations,
                                       "variants": [program.report() for program in prepared.programs]})
        self._names = list(outputs)
        return list(outputs.values())

    @staticmethod
    def named(prefix: str, arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {f"{prefix}/{name}": value for name, value in arrays.items()}

    def output_names(self, case: TirCase) -> list[str]:
        return self._names
