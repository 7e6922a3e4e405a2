"""Pass pipelines as data: the default S-TIR lowering, mutated, registered and built.

A pipeline spec is ``{"passes": [{"name": "s_tir.LoopPartition", "args": []}, ...],
"config": {"tirx.UnrollLoop": {"auto_max_step": 16}, ...}, "llvm_opt_level": 0}``: the
passes, the PassContext configuration and the optimization level of LLVM code
generation (0 keeps builds fast; 3 lets LLVM exploit what TVM emits). Builds skip
assertions in code generation by default (``tirx.disable_assert``; the passes still see
them): JIT-compiling the argument checks of the packed API costs three times more than
the function itself. Names are the ones pass
instruments report. The catalog says, for each pass, how to construct it, which
arguments it may take, and in which *phases* it may run: ``schedulable`` (before
``s_tir.LowerInitBlock``), ``opaque`` (opaque blocks, between
``s_tir.ConvertBlocksToOpaque`` and ``s_tir.LowerOpaqueBlock``), ``flat`` (between
``tirx.FlattenBuffer`` and ``tirx.MakePackedAPI``) or ``scalar`` (the part of ``flat``
after ``tirx.VectorizeLoop``, for passes that require vectorized loops to be lowered).
Essential passes lower the IR from one phase to the next; a mutation never drops or
moves them. Facts on each optional pass keep mutated pipelines ones TVM supports: a
``required`` pass is never dropped, one that is not ``repeatable`` never runs twice, and
a ``device_only`` pass (GPU or accelerator lowering, a no-op on CPU) is never added.
Order constraints (``OrderConstraint``) state what phases cannot, such as a
pass that must directly follow another: a mutation that would break one is undone.
Drawing and mutating specs needs no TVM; ``build`` imports it.
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import json
import random
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

SCHEDULABLE, OPAQUE, FLAT, SCALAR = "schedulable", "opaque", "flat", "scalar"
# Each phase lies between two essential passes: (after this one, before that one).
PHASES = {SCHEDULABLE: (None, "s_tir.LowerInitBlock"),
          OPAQUE: ("s_tir.ConvertBlocksToOpaque", "s_tir.LowerOpaqueBlock"),
          FLAT: ("tirx.FlattenBuffer", "tirx.MakePackedAPI"),
          SCALAR: ("tirx.VectorizeLoop", "tirx.MakePackedAPI")}  # no vectorized loops left


@dataclass(frozen=True)
class PassSpec:
    constructor: str  # "s_tir.transform.LoopPartition" under tvm, or "module:function" for a plugin
    arguments: tuple[tuple, ...] = ((),)  # the argument lists it may take; the first is the default's
    phases: tuple[str, ...] = ()  # empty: essential, never moved, dropped or inserted
    required: bool = False  # later passes rely on it (evidence on its catalog line): never dropped
    repeatable: bool = True  # supports running twice: may be duplicated or inserted beside itself
    device_only: bool = False  # lowers GPU or accelerator constructs: a no-op on CPU, never inserted or repeated


@dataclass(frozen=True)
class OrderConstraint:
    """No ``first`` runs after a ``then``; when ``adjacent``, each ``first`` is directly followed by ``then``."""

    first: str
    then: str
    adjacent: bool = False

    def holds(self, names: Sequence[str]) -> bool:
        positions = [i for i, name in enumerate(names) if name == self.first]
        if self.adjacent:
            return all(names[i + 1:i + 2] == [self.then] for i in positions)
        return all(self.then not in names[:i] for i in positions)


def order_violations(passes: Sequence[Mapping[str, Any]], constraints: Sequence[OrderConstraint]
                     ) -> list[OrderConstraint]:
    """The constraints that the pass order of ``passes`` (spec entries) breaks."""
    names = [entry["name"] for entry in passes]
    return [constraint for constraint in constraints if not constraint.holds(names)]


def essential(constructor: str, *arguments: tuple) -> PassSpec:
    return PassSpec(constructor, arguments or ((),))


def optional(constructor: str, phases: tuple[str, ...], *arguments: tuple, **facts: bool) -> PassSpec:
    return PassSpec(constructor, arguments or ((),), phases, **facts)


def device(constructor: str, phases: tuple[str, ...], *arguments: tuple) -> PassSpec:
    return PassSpec(constructor, arguments or ((),), phases, device_only=True)


CATALOG: dict[str, PassSpec] = {
    # lowers loops to start at 0, which parallel and vectorized loops require
    "s_tir.CanonicalizeLoop": essential("s_tir.transform.CanonicalizeLoop"),
    "s_tir.LowerCrossThreadReduction": essential("s_tir.transform.LowerCrossThreadReduction"),
    "s_tir.LowerInitBlock": essential("s_tir.transform.LowerInitBlock"),
    "s_tir.PlanAndUpdateBufferAllocationLocation": essential("s_tir.transform.PlanAndUpdateBufferAllocationLocation"),
    "s_tir.ConvertBlocksToOpaque": essential("s_tir.transform.ConvertBlocksToOpaque"),
    "s_tir.LiftThreadBinding": device("s_tir.transform.LiftThreadBinding", (OPAQUE,)),
    "s_tir.ManifestSharedMemoryLocalStage": device("s_tir.transform.ManifestSharedMemoryLocalStage", (OPAQUE,)),
    "s_tir.CompactBufferAllocation": optional("s_tir.transform.CompactBufferAllocation", (OPAQUE,), (), (False,)),
    "s_tir.LowerAutoCopy": device("s_tir.transform.LowerAutoCopy", (OPAQUE,)),
    "s_tir.UnifyThreadBinding": device("s_tir.transform.UnifyThreadBinding", (OPAQUE,)),
    "s_tir.LowerMatchBuffer": essential("s_tir.transform.LowerMatchBuffer"),
    "s_tir.StmtSimplify": optional("s_tir.transform.StmtSimplify", (OPAQUE, FLAT)),
    "s_tir.InjectPermutedLayout": device("s_tir.transform.InjectPermutedLayout", (OPAQUE,)),
    "s_tir.AnnotateIrregularLoop": optional("s_tir.transform.AnnotateIrregularLoop", (OPAQUE,)),
    "s_tir.InjectSoftwarePipeline": device("s_tir.transform.InjectSoftwarePipeline", (OPAQUE,)),
    "s_tir.TransformMmaBufferLayout": device("s_tir.transform.TransformMmaBufferLayout", (OPAQUE,)),
    "s_tir.LowerOpaqueBlock": essential("s_tir.transform.LowerOpaqueBlock"),
    "tirx.FlattenBuffer": essential("tirx.transform.FlattenBuffer"),
    "tirx.BF16ComputeLegalize": essential("tirx.transform.BF16ComputeLegalize"),
    "tirx.NarrowDataType": optional("tirx.transform.NarrowDataType", (FLAT,), (32,), (16,), (64,)),
    "s_tir.LoopPartition": optional("s_tir.transform.LoopPartition", (FLAT,)),
    "tirx.VectorizeLoop": essential("tirx.transform.VectorizeLoop", (True,), (False,)),
    "s_tir.InjectVirtualThread": device("s_tir.transform.InjectVirtualThread", (SCALAR,)),
    "s_tir.InjectDoubleBuffer": optional("s_tir.transform.InjectDoubleBuffer", (SCALAR,), repeatable=False),
    # without it MakePackedAPI meets undefined variables; run twice, "Array declaration occurred multiple times"
    "tirx.StorageRewrite": optional("tirx.transform.StorageRewrite", (SCALAR,), required=True, repeatable=False),
    "s_tir.HoistIfThenElse": optional("s_tir.transform.HoistIfThenElse", (FLAT,), (), ("basic",)),
    "tirx.UnrollLoop": optional("tirx.transform.UnrollLoop", (FLAT,)),
    "s_tir.RenormalizeSplitPattern": optional("s_tir.transform.RenormalizeSplitPattern", (FLAT,)),
    "tirx.StmtSimplify": optional("tirx.transform.StmtSimplify", (FLAT,)),
    "tirx.RemoveNoOp": optional("tirx.transform.RemoveNoOp", (FLAT,)),
    "s_tir.RewriteUnsafeSelect": optional("s_tir.transform.RewriteUnsafeSelect", (FLAT,)),
    "tirx.CommonSubexprElim": optional("tirx.transform.CommonSubexprElim", (FLAT,)),
    "tirx.FP8ComputeLegalize": essential("tirx.transform.FP8ComputeLegalize"),
    "s_tir.VerifyVTCMLimit": device("s_tir.transform.VerifyVTCMLimit", (FLAT,)),
    "s_tir.LowerVtcmAlloc": device("s_tir.transform.LowerVtcmAlloc", (FLAT,)),
    "tirx.VerifyMemory": essential("tirx.transform.VerifyMemory"),
    "tirx.AnnotateEntryFunc": essential("tirx.transform.AnnotateEntryFunc"),
    "s_tir.ThreadSync": device("s_tir.transform.ThreadSync", (FLAT,), ("shared",), ("shared.dyn",), ("warp",)),
    "s_tir.InferFragment": device("s_tir.transform.InferFragment", (FLAT,)),
    "s_tir.LowerThreadAllreduce": device("s_tir.transform.LowerThreadAllreduce", (FLAT,)),
    "s_tir.MergeSharedMemoryAllocations": device("s_tir.transform.MergeSharedMemoryAllocations", (FLAT,)),
    "tirx.SplitHostDevice": essential("tirx.transform.SplitHostDevice"),
    "tirx.MakePackedAPI": essential("tirx.transform.MakePackedAPI"),
    "tirx.FP8StorageLegalize": essential("tirx.transform.FP8StorageLegalize"),
    "tirx.BF16StorageLegalize": essential("tirx.transform.BF16StorageLegalize"),
    # not in the default pipeline: only ever inserted
    "s_tir.HoistExpression": optional("s_tir.transform.HoistExpression", (FLAT,)),
    "s_tir.UseAssumeToReduceBranches": optional("s_tir.transform.UseAssumeToReduceBranches", (FLAT,)),
    "s_tir.RemoveStoreUndef": optional("s_tir.transform.RemoveStoreUndef", (FLAT,)),
    "tirx.ConvertSSA": optional("tirx.transform.ConvertSSA", (SCHEDULABLE, OPAQUE, FLAT)),
    "tirx.RemoveAssume": optional("tirx.transform.RemoveAssume", (FLAT,)),
    "tirx.SkipAssert": optional("tirx.transform.SkipAssert", (FLAT,)),
}

DEFAULT_PASSES = (
    "s_tir.CanonicalizeLoop", "s_tir.LowerCrossThreadReduction", "s_tir.LowerInitBlock",
    "s_tir.PlanAndUpdateBufferAllocationLocation", "s_tir.ConvertBlocksToOpaque", "s_tir.LiftThreadBinding",
    "s_tir.ManifestSharedMemoryLocalStage", "s_tir.CompactBufferAllocation", "s_tir.LowerAutoCopy",
    "s_tir.UnifyThreadBinding", "s_tir.LowerMatchBuffer", "s_tir.StmtSimplify", "s_tir.InjectPermutedLayout",
    "s_tir.AnnotateIrregularLoop", "s_tir.InjectSoftwarePipeline", "s_tir.TransformMmaBufferLayout",
    "s_tir.LowerOpaqueBlock", "tirx.FlattenBuffer", "tirx.BF16ComputeLegalize", "tirx.NarrowDataType",
    "s_tir.LoopPartition", "tirx.VectorizeLoop", "s_tir.InjectVirtualThread", "s_tir.InjectDoubleBuffer",
    "tirx.StorageRewrite", "s_tir.HoistIfThenElse", "tirx.UnrollLoop", "s_tir.RenormalizeSplitPattern",
    "tirx.StmtSimplify", "tirx.RemoveNoOp", "s_tir.RewriteUnsafeSelect", "tirx.CommonSubexprElim",
    "tirx.FP8ComputeLegalize", "s_tir.VerifyVTCMLimit", "s_tir.LowerVtcmAlloc", "tirx.VerifyMemory",
    "tirx.AnnotateEntryFunc", "s_tir.ThreadSync", "s_tir.ThreadSync", "s_tir.ThreadSync", "s_tir.InferFragment",
    "s_tir.LowerThreadAllreduce", "s_tir.MergeSharedMemoryAllocations", "tirx.SplitHostDevice",
    "tirx.MakePackedAPI", "tirx.FP8StorageLegalize", "tirx.BF16StorageLegalize",
)
# Pass orders TVM relies on that phases leave open (tvm/s_tir/pipeline.py).
ORDER = (OrderConstraint("s_tir.VerifyVTCMLimit", "s_tir.LowerVtcmAlloc"),)  # "must occur before"
_THREAD_SYNC_SCOPES = ("shared", "shared.dyn", "warp")
REFERENCE_CONFIG = {"tirx.disable_assert": True}
ENTRY_SYMBOL = "__tvm_ffi_main"  # the packed function MakePackedAPI makes of ``main``

# PassContext configuration each pipeline may randomize: key -> field -> choices
CONFIG_DOMAINS: dict[str, dict[str, tuple]] = {
    "tirx.UnrollLoop": {"auto_max_step": (0, 4, 16, 64), "auto_max_depth": (2, 8), "auto_max_extent": (0, 8, 32),
                        "explicit_unroll": (True, False), "unroll_local_access": (True, False)},
    "tirx.StmtSimplify": {"transitively_prove_inequalities": (True, False),
                          "convert_boolean_to_and_of_ors": (True, False),
                          "apply_constraints_to_boolean_branches": (True, False)},
    "tirx.RemoveNoOp": {"max_simplification_steps": (0, 100000)},  # a low limit is an error by design
    "s_tir.LoopPartition": {"partition_const_loop": (True, False), "no_unroll_loop_with_extent_one": (True, False),
                            "unroll_loop_with_partition_hint_no_interval": (True, False)},
    "s_tir.InjectDoubleBuffer": {"split_loop": (0, 1, 2)},
    "tirx.disable_assert": {"": (True, False)},
    "tirx.debug_keep_trivial_loop": {"": (True, False)},
}


def default_pipeline() -> dict:
    """The default ``s_tir`` pipeline of TVM 0.27 as a spec (CPU configuration)."""
    thread_sync = iter(_THREAD_SYNC_SCOPES)
    passes = [{"name": name, "args": [next(thread_sync)] if name == "s_tir.ThreadSync"
               else list(CATALOG[name].arguments[0])} for name in DEFAULT_PASSES]
    return {"passes": passes, "config": dict(REFERENCE_CONFIG), "llvm_opt_level": 0}


def spec_key(spec: Mapping[str, Any]) -> str:
    """A short content hash of a pipeline spec."""
    return hashlib.sha1(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------- mutation


@dataclass
class PipelineMutation:
    """Random edits of a spec; ``catalog`` may hold passes beyond the built-in ones,
    ``phases`` says between which essential passes each phase lies, and no edit breaks
    one of the ``constraints``."""

    catalog: Mapping[str, PassSpec] = field(default_factory=lambda: CATALOG)
    phases: Mapping[str, tuple[str | None, str]] = field(default_factory=lambda: PHASES)
    constraints: Sequence[OrderConstraint] = ORDER

    def keeps_order(self, before: Sequence[Mapping[str, Any]], after: Sequence[Mapping[str, Any]]) -> bool:
        """Whether the passes ``after`` an edit break no order constraint that those ``before`` keep."""
        return set(order_violations(after, self.constraints)) <= set(order_violations(before, self.constraints))

    def phase_bounds(self, passes: Sequence[dict], phase: str) -> tuple[int, int]:
        """Insertion positions [low, high] of ``phase`` in ``passes``."""
        names = [p["name"] for p in passes]
        after, before = self.phases[phase]
        return (0 if after is None else names.index(after) + 1), names.index(before)

    def optional_positions(self, passes: Sequence[dict]) -> list[int]:
        return [i for i, p in enumerate(passes) if self.catalog[p["name"]].phases]

    def insertable(self, name: str, passes: Sequence[dict]) -> bool:
        """Whether ``name`` may be added to ``passes``: a CPU pass, not repeated unless it supports that."""
        spec = self.catalog[name]
        return (bool(spec.phases) and not spec.device_only
                and (spec.repeatable or all(p["name"] != name for p in passes)))

    def insert_at_random(self, passes: list[dict], entry: dict, rng: random.Random) -> None:
        low, high = self.phase_bounds(passes, rng.choice(self.catalog[entry["name"]].phases))
        passes.insert(rng.randint(low, high), entry)

    def drop(self, passes: list[dict], rng: random.Random) -> bool:
        positions = [i for i in self.optional_positions(passes) if not self.catalog[passes[i]["name"]].required]
        if positions:
            del passes[rng.choice(positions)]
        return bool(positions)

    def duplicate(self, passes: list[dict], rng: random.Random) -> bool:
        positions = [i for i in self.optional_positions(passes) if self.insertable(passes[i]["name"], passes)]
        if positions:
            self.insert_at_random(passes, copy.deepcopy(passes[rng.choice(positions)]), rng)
        return bool(positions)

    def move(self, passes: list[dict], rng: random.Random) -> bool:
        positions = self.optional_positions(passes)
        if positions:
            self.insert_at_random(passes, passes.pop(rng.choice(positions)), rng)
        return bool(positions)

    def insert(self, passes: list[dict], rng: random.Random) -> bool:
        names = sorted(name for name in self.catalog if self.insertable(name, passes))
        if names:
            name = rng.choice(names)
            self.insert_at_random(passes, {"name": name, "args": list(rng.choice(self.catalog[name].arguments))}, rng)
        return bool(names)

    def change_arguments(self, passes: list[dict], rng: random.Random) -> bool:
        positions = [i for i, p in enumerate(passes) if len(self.catalog[p["name"]].arguments) > 1]
        if positions:
            entry = passes[rng.choice(positions)]
            entry["args"] = list(rng.choice(self.catalog[entry["name"]].arguments))
        return bool(positions)

    def mutate(self, spec: Mapping[str, Any], rng: random.Random, edits: int) -> dict:
        """``spec`` after ``edits`` random edits of its passes or configuration."""
        result = copy.deepcopy(dict(spec))
        operations = (self.drop, self.duplicate, self.move, self.insert, self.change_arguments)
        for _ in range(edits):
            if rng.random() < 0.1:
                result["llvm_opt_level"] = rng.choice((0, 3))
            elif rng.random() < 0.2:
                randomize_config(result["config"], rng)
            else:
                edited = copy.deepcopy(result["passes"])
                rng.choice(operations)(edited, rng)
                if self.keeps_order(result["passes"], edited):
                    result["passes"] = edited
        return result

    def without_idle_passes(self, spec: Mapping[str, Any], changed: Sequence[str]) -> dict:
        """``spec`` without the optional passes that did not change the IR.

        Dropping a pass that left the IR as it was gives every later pass the same
        input, so the shrunk pipeline lowers the function exactly as before.
        """
        changed_positions = set(changed)
        passes = [p for i, p in enumerate(spec["passes"])
                  if not self.catalog[p["name"]].phases or f"{i}:{p['name']}" in changed_positions]
        return {**copy.deepcopy(dict(spec)), "passes": passes}


def randomize_config(config: dict, rng: random.Random) -> None:
    key = rng.choice(sorted(CONFIG_DOMAINS))
    fields = CONFIG_DOMAINS[key]
    if "" in fields:
        config[key] = rng.choice(fields[""])
    else:
        config[key] = {name: rng.choice(choices) for name, choices in fields.items()}


# ---------------------------------------------------------------------------- building


def make_pass(entry: Mapping[str, Any], catalog: Mapping[str, PassSpec] = CATALOG) -> Any:
    """The tvm Pass an entry of a spec describes."""
    constructor = catalog[entry["name"]].constructor
    if ":" in constructor:
        module_name, _, attribute = constructor.partition(":")
        factory = getattr(importlib.import_module(module_name), attribute)
    else:
        import tvm

        factory = tvm
        for part in constructor.split("."):
            factory = getattr(factory, part)
    return factory(*entry["args"])


class PassEffects:
    """Records which passes of a pipeline changed the IR (use ``pass_effects`` to make one).

    Entries are ``"position:name"`` for passes of the spec (positions count from 0);
    the passes TVM runs around the spec (target binding, finalization) are ignored. A
    pass that returns the very module it got changed nothing; otherwise the modules are
    compared structurally.
    """

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        self.changed: list[str] = []
        self._position = 0
        self._modules: list[Any] = []  # one per pass running now: composite passes nest

    def run_before_pass(self, module: Any, info: Any) -> None:
        self._modules.append(module)

    def run_after_pass(self, module: Any, info: Any) -> None:
        import tvm_ffi

        before = self._modules.pop()
        if self._position < len(self.names) and info.name == self.names[self._position]:
            if not module.same_as(before) and not tvm_ffi.structural_equal(module, before):
                self.changed.append(f"{self._position}:{info.name}")
            self._position += 1


def pass_effects(spec: Mapping[str, Any]) -> PassEffects:
    """A PassEffects instrument for the passes of ``spec``."""
    import tvm

    return tvm.instrument.pass_instrument(PassEffects)([entry["name"] for entry in spec["passes"]])


def register(spec: Mapping[str, Any], catalog: Mapping[str, PassSpec] = CATALOG) -> str:
    """Register ``spec`` with ``tvm.tirx.register_tir_pipeline``; its pipeline name."""
    import tvm
    from tvm.s_tir import pipeline as s_tir_pipeline

    name = f"tcfuzz-{spec_key(spec)}"
    if name in tvm.tirx.compilation_pipeline.PIPELINE_MAP:
        return name
    passes = [make_pass(entry, catalog) for entry in spec["passes"]]

    def factory() -> tuple:
        @tvm.transform.module_pass(opt_level=0, name="tcfuzz_pipeline")
        def run(module: Any, context: Any) -> Any:
            return tvm.ir.transform.Sequential(passes)(module)

        return run, s_tir_pipeline.finalize_host_passes, s_tir_pipeline.finalize_device_passes

    tvm.tirx.register_tir_pipeline(name, factory)
    return name


def llvm_target(opt_level: int) -> Any:
    import tvm

    target = tvm.target.Target({"kind": "llvm", "opt-level": opt_level})
    return target.with_host(target)


def lower(function: Any, spec: Mapping[str, Any] | None, catalog: Mapping[str, PassSpec] = CATALOG,
          instruments: Sequence[Any] = ()) -> Any:
    """``function`` lowered for llvm through ``spec`` (None: TVM's default pipeline), ready for code generation.

    Does what ``tvm.tirx.build`` does before code generation, including the assertions
    it skips under ``tirx.disable_assert``, so that ``link`` can generate code for
    several lowered functions at once.
    """
    import tvm
    from tvm.tirx.build import split_host_device_mods

    config = dict(spec["config"] if spec else REFERENCE_CONFIG)
    passes, finalize_host_passes, _ = tvm.tirx.get_tir_pipeline(register(spec, catalog) if spec else "default")
    with tvm.transform.PassContext(opt_level=3, config=config, instruments=list(instruments)):
        module = tvm.tirx.transform.BindTarget(llvm_target(opt_level(spec)))(tvm.IRModule.from_expr(function))
        host, devices = split_host_device_mods(passes(module))
        if any(len(device.functions) for device in devices.values()):
            raise ValueError(f"lowering for llvm left device functions: {list(devices)}")
        host = finalize_host_passes()(host)
        return tvm.tirx.transform.SkipAssert()(host) if config.get("tirx.disable_assert") else host


def opt_level(spec: Mapping[str, Any] | None) -> int:
    return spec["llvm_opt_level"] if spec else 0


def link(modules: Mapping[str, Any], level: int) -> dict[str, Any]:
    """Machine code for lowered modules as one library (one JIT at LLVM level ``level``); their entries by name.

    Each module's entry (``main``) is renamed to the module's name; other functions keep
    their names, so modules with more than one function are linked alone. The code
    generator reads no PassContext configuration (``tirx.disable_assert`` took effect in
    ``lower``): every function is compiled as it would be alone.
    """
    import tvm

    functions = {}
    for name, module in modules.items():
        for variable, function in module.functions.items():
            if function.attrs.get("global_symbol") == ENTRY_SYMBOL:
                variable = tvm.ir.GlobalVar(name)
                function = function.with_attr("global_symbol", f"__tvm_ffi_{name}").without_attr("tirx.is_entry_func")
            functions[variable] = function
    with tvm.transform.PassContext(opt_level=3):
        library = tvm.get_global_func("target.build.llvm")(
            tvm.IRModule(functions, attrs=next(iter(modules.values())).attrs), llvm_target(level))
    return {name: library[name] for name in modules}


def build(function: Any, spec: Mapping[str, Any] | None, catalog: Mapping[str, PassSpec] = CATALOG,
          instruments: Sequence[Any] = ()) -> Any:
    """``main`` of ``function`` built for llvm through ``spec``; None: TVM's own default pipeline at LLVM -O0."""
    return link({"main": lower(function, spec, catalog, instruments)}, opt_level(spec))["main"]
