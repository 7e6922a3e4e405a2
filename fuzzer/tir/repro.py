"""Standalone reproduction scripts for TIR and Relax-pipeline findings: TVM and numpy only, no tcfuzz.

A TIR script holds the mutant's TVMScript, the schedule as the Python that TVM's own
``Schedule.trace.as_python()`` prints, the pass pipeline as constructor calls, and the
inputs; it builds the mutant with TVM's default pipeline and with the variant, runs both
and prints the first difference. When the finding failed while scheduling, the script
only schedules: the failing step, which TVM's trace never records, is written out call by
call (``DryRun``). TVMScript parses literals through float32, so float64 constants beyond
its range are written as ``T.FloatImm`` (``parsable``); the parsed source is checked to be
the mutant rebuilt from its seed and mutations. A Relax-pipeline script holds the Relax module's
TVMScript, the values of the constants that TVMScript leaves to ``metadata`` (TVM 0.27
crashes printing or serializing them), the mutated Relax pass list as constructor calls
and the inputs, and compares TVM's default llvm pipeline with it. Either exits 1 when the
difference or the error reproduces, 0 otherwise. Making one imports TVM (to parse, check
and schedule), but builds nothing.
"""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from fuzzer.store import RunStore
from fuzzer.execution.outcome import Stage
from fuzzer.tir import relax_pipelines
from fuzzer.tir.pipelines import CATALOG, PassSpec, default_pipeline
from oracles.signature import headline

FLOAT32_MAX = float(np.finfo(np.float32).max)
_FLOAT64_LITERAL = re.compile(r"T\.float64\((-?\d+(?:\.\d*)?(?:e[-+]?\d+)?)\)")

_TEMPLATE = '''"""Reproduction of tcfuzz TIR finding {finding_id}: {summary}"""
from __future__ import annotations

import ml_dtypes
import numpy as np
import tvm
from tvm.s_tir import pipeline as s_tir_pipeline

SOURCE = {source!r}
INPUTS = {{
{inputs}
}}


def schedule(function):
    sch = tvm.s_tir.Schedule(function)
{schedule}
    return sch.mod["main"]


def pipeline():
    passes = [
{passes}
    ]

    @tvm.transform.module_pass(opt_level=0, name="repro_pipeline")
    def run(module, context):
        return tvm.ir.transform.Sequential(passes)(module)

    return run, s_tir_pipeline.finalize_host_passes, s_tir_pipeline.finalize_device_passes


{guards}


def execute(function, pipeline_name, config, opt_level):
    """Build and run ``function``; each argument lies between guard zones that catch writes outside it."""
    target = tvm.target.Target({{"kind": "llvm", "opt-level": opt_level}})
    with tvm.transform.PassContext(opt_level=3, config=config):
        library = tvm.tirx.build(function, target=target, pipeline=pipeline_name)
    values = {{name: np.array(value, dtype=dtype) for name, (value, dtype) in INPUTS.items()}}
    buffers = {{name: guarded(value) for name, value in values.items()}}
    library["main"](*(tensor for _, _, tensor in buffers.values()))
    return [checked(name, allocation, copy, values[name].dtype) for name, (allocation, copy, _) in buffers.items()]


function = tvm.script.from_source(SOURCE)
{main}'''

_BUILD = '''try:
    expected = execute(function, "default", {{"tirx.disable_assert": True}}, 0)
except Exception as error:  # the default pipeline is the side that fails
    print(f"the default pipeline fails: {{type(error).__name__}}: {{error}}")
    print("REPRODUCED")
    raise SystemExit(1)
NAMES = list(INPUTS)
tvm.tirx.register_tir_pipeline("repro", pipeline)
try:
    actual = execute(schedule(function), "repro", {config!r}, {opt_level!r})
except Exception as error:
    print(f"the variant fails: {{type(error).__name__}}: {{error}}")
    print("REPRODUCED")
    raise SystemExit(1)
'''

_SCHEDULE_ONLY = '''try:
    schedule(function)
except Exception as error:
    print(f"scheduling fails: {type(error).__name__}: {error}")
    print("REPRODUCED")
    raise SystemExit(1)
print("scheduling succeeds")
'''

_COMPARE = '''differs = False
for name, want, got in zip(NAMES, expected, actual):
    if want.shape != got.shape or not np.allclose(want.astype("float64"), got.astype("float64"), rtol=1e-3,
                                                  atol=1e-4, equal_nan=True):
        differs = True
        print(f"{name} differs:\\n expected {want.ravel()[:16]}\\n got      {got.ravel()[:16]}")
print("REPRODUCED" if differs else "not reproduced")
raise SystemExit(1 if differs else 0)
'''

# Builds MODULE from the printed TVMScript and the constants it leaves to ``metadata``;
# ``relax_repro_script`` runs it to check that MODULE is the finding's module.
_RELAX_MODULE = '''import numpy as np
import tvm
from tvm import relax
from tvm.script import ir as I, relax as R, tirx as T

nan, inf = float("nan"), float("inf")  # as lists of floats print them
SOURCE = {source!r}
CONSTANTS = [
{constants}
]
METADATA = {{"ir.GenericConst": [relax.const(value, dtype) for value, dtype in CONSTANTS]}}
MODULE = tvm.script.from_source(SOURCE, extra_vars={{"I": I, "R": R, "T": T, "metadata": METADATA}})
'''

_RELAX_TEMPLATE = '''"""Reproduction of tcfuzz Relax-pipeline finding {finding_id}: {summary}"""
{module}
INPUTS = {{
{inputs}
}}
NAMES = [f"out{{index}}" for index in range(64)]


def pipeline(target):
    passes = [
{passes}
    ]

    @tvm.transform.module_pass(opt_level=0, name="repro_relax_pipeline")
    def run(module, context):
        with target:
            return tvm.ir.transform.Sequential(passes)(module)

    return run


def flatten(value):
    if isinstance(value, tvm.runtime.Tensor):
        return [value.numpy()]
    if isinstance(value, tvm.runtime.ShapeTuple):
        return [np.array(value, dtype=np.int64)]
    return [array for item in value for array in flatten(item)]


def execute(make_pipeline, config, opt_level):
    target = tvm.target.Target({{"kind": "llvm", "opt-level": opt_level}})
    with tvm.transform.PassContext(opt_level=3, config=config):
        executable = tvm.compile(MODULE, target=target, relax_pipeline=make_pipeline(target))
    machine = relax.VirtualMachine(executable, tvm.cpu())
    return flatten(machine["main"](*[tvm.runtime.tensor(np.array(value, dtype=dtype))
                                     for value, dtype in INPUTS.values()]))


expected = execute(relax.get_default_pipeline, {{"tirx.disable_assert": True}}, 0)
try:
    actual = execute(pipeline, {config!r}, {opt_level!r})
except Exception as error:
    print(f"the mutated pipeline fails: {{type(error).__name__}}: {{error}}")
    print("REPRODUCED")
    raise SystemExit(1)
if len(actual) != len(expected):
    print(f"{{len(expected)}} outputs expected, {{len(actual)}} computed")
    print("REPRODUCED")
    raise SystemExit(1)
{compare}'''


def _literal(value: np.ndarray) -> str:
    """``(values, dtype)``: nested Python lists (bfloat16 as exact float32 values) and the dtype's name."""
    listed = value.astype("float32") if value.dtype.name == "bfloat16" else value
    return f"({listed.tolist()!r}, {value.dtype.name!r})"


def _array_line(name: str, value: np.ndarray) -> str:
    return f"    {name!r}: {_literal(value)},"


def _pass_line(entry: Mapping[str, Any], catalog: Mapping[str, PassSpec]) -> str:
    constructor = catalog[entry["name"]].constructor
    arguments = ", ".join(repr(argument) for argument in entry["args"])
    if ":" in constructor:
        module_name, _, attribute = constructor.partition(":")
        return f"        __import__({module_name!r}, fromlist=[{attribute!r}]).{attribute}({arguments}),"
    return f"        tvm.{constructor}({arguments}),"


def parsable(script: str) -> str:
    """``script`` with the float64 literals that TVMScript cannot parse (beyond float32's range) as ``T.FloatImm``."""
    def rewrite(literal: re.Match) -> str:
        value = float(literal[1])
        return f'T.FloatImm("float64", {value!r})' if abs(value) > FLOAT32_MAX else literal[0]

    return _FLOAT64_LITERAL.sub(rewrite, script)


def mutant_source(record: Mapping[str, Any]) -> tuple[str, Any]:
    """The mutant's TVMScript as TVMScript parses it, and the function it parses to; ValueError
    unless that is the mutant rebuilt from the record's seed and mutations."""
    import tvm
    import tvm_ffi

    from fuzzer.tir.mutators import apply_mutations
    from fuzzer.tir.seeds import build_seed

    if not record["script"]:
        raise ValueError("the finding holds no TVMScript: its whole case failed, blamed on no variant")
    source = parsable(record["script"])
    try:
        function = tvm.script.from_source(source)
    except Exception as error:  # noqa: BLE001 - the printer has bugs of its own
        raise ValueError(f"the mutant's TVMScript does not parse back: {type(error).__name__}: "
                         f"{headline(str(error))}") from None
    mutant, _ = apply_mutations(build_seed(record["seed_spec"]), [tuple(step) for step in record["mutations"]])
    if not tvm_ffi.structural_equal(function, mutant, map_free_vars=True):
        raise ValueError("the mutant's TVMScript parses back to a different function: "
                         f"{tvm_ffi.get_first_structural_mismatch(function, mutant, map_free_vars=True)}")
    return source, function


class DryRun:
    """Stands for a Schedule while one step runs: it writes down the step's calls as Python,
    runs its lookups on ``schedule`` and never its primitive (the step that fails)."""

    LOOKUPS = ("get_sblock", "get_loops")
    INSPECTIONS = ("get", "mod")  # read the state; no part of the step's Python

    def __init__(self, schedule: Any) -> None:
        self.schedule = schedule
        self.lines: list[str] = []
        self.helpers: list[str] = []  # sources of the functions passed as arguments
        self.named: list[tuple[Any, str]] = []

    def __getattr__(self, attribute: str) -> Any:
        target = getattr(self.schedule, attribute)
        if attribute in self.INSPECTIONS:
            return target
        return lambda *arguments: self.call(attribute, target, arguments)

    def call(self, attribute: str, target: Callable, arguments: Sequence[Any]) -> Any:
        text = f"sch.{attribute}({', '.join(map(self.render, arguments))})"
        if attribute not in self.LOOKUPS:
            self.lines.append(text)
            return None
        name = f"rv{len(self.named)}"
        self.lines.append(f"{name} = {text}")
        result = target(*arguments)
        self.named += [(result, name)] + [(item, f"{name}[{index}]") for index, item in
                                          enumerate(result if isinstance(result, list) else [])]
        return result

    def render(self, value: Any) -> str:
        if isinstance(value, (list, tuple)):
            items = ", ".join(map(self.render, value))
            return f"[{items}]" if isinstance(value, list) else f"({items}{',' if len(value) == 1 else ''})"
        if callable(value):
            self.helpers += inspect.getsource(value).splitlines()
            return value.__name__
        return next((name for known, name in self.named if hasattr(value, "same_as") and value.same_as(known)),
                    repr(value))


def schedule_python(function: Any, trace: Sequence[dict], fails: bool) -> list[str]:
    """Python that schedules ``function`` by ``trace``: TVM's own for the steps it accepts and, when
    the trace ``fails``, the calls of the step that fails (the last, or an earlier one that raises)."""
    import tvm

    from fuzzer.tir.schedules import apply_step

    schedule = tvm.s_tir.Schedule(function)
    steps = list(trace)
    failing = steps.pop() if fails and steps else None
    for step in steps:
        try:
            apply_step(schedule, step)
        except Exception:
            if not fails:
                raise
            failing = step
            break
    accepted, dry_run = list(schedule.trace.as_python()), DryRun(schedule)
    if failing is not None:
        try:
            apply_step(dry_run, failing)
        except Exception:  # noqa: BLE001 - a lookup failed: its line, written down, fails the same way
            pass
    return [*accepted, *dry_run.helpers, *dry_run.lines]


def guard_source() -> str:
    """The Python of the campaign's guarded buffers (``fuzzer.tir.runtime``), for a standalone script."""
    from fuzzer.tir import runtime

    constants = f"GUARD_BYTE = {runtime.GUARD_BYTE:#x}\nALIGNMENT = {runtime.ALIGNMENT}\n"
    parts = (runtime.OutOfBoundsWrite, runtime.guard_bytes, runtime.guarded, runtime.checked)
    return constants + "\n\n" + "\n\n".join(inspect.getsource(part).rstrip() for part in parts)


def repro_script(record: Mapping[str, Any], inputs: Mapping[str, np.ndarray], summary: str = "",
                 finding_id: int = 0, catalog: Mapping[str, PassSpec] = CATALOG, *,
                 schedule_fails: bool = False) -> str:
    """The reproduction script of a stored TIR finding record (see ``TirCampaign.record``);
    ``schedule_fails``: the finding failed while scheduling, and the script only schedules."""
    variant = record["variant"] or {"trace": [], "pipeline": default_pipeline()}
    source, function = mutant_source(record)
    schedule = schedule_python(function, variant["trace"] or [], schedule_fails)
    spec = variant["pipeline"]
    main = _SCHEDULE_ONLY if schedule_fails else \
        _BUILD.format(config=spec["config"], opt_level=spec["llvm_opt_level"]) + _COMPARE
    return _TEMPLATE.format(
        guards=guard_source(), finding_id=finding_id, summary=summary.replace('"""', "'"), source=source,
        inputs="\n".join(_array_line(name, value) for name, value in inputs.items()),
        schedule="\n".join(f"    {line}" for line in schedule) or "    pass",
        passes="\n".join(_pass_line(entry, catalog) for entry in spec["passes"]), main=main)


def metadata_constants(module: Any) -> list[Any]:
    """The constants of ``module`` that its TVMScript prints as ``metadata["ir.GenericConst"][i]``, by ``i``."""
    import tvm
    import tvm_ffi

    found: list = []

    def keep(constant: Any) -> None:
        if "metadata" in constant.script() and not any(constant.same_as(seen) for seen in found):
            found.append(constant)

    tvm_ffi.structural_walk(module, (tvm.ir.GenericConst, keep), order="pre")
    return found


def relax_module_source(script: str, module: Any) -> str:
    """Python that sets ``MODULE`` to ``module`` from its TVMScript ``script``: checked, or ValueError."""
    import tvm_ffi

    constants = "\n".join(f"    {_literal(constant.value.numpy())}," for constant in metadata_constants(module))
    source = _RELAX_MODULE.format(source=parsable(script), constants=constants)
    scope: dict = {}
    try:
        exec(compile(source, "<relax repro module>", "exec"), scope)  # noqa: S102 - our own template
    except Exception as error:  # noqa: BLE001 - the printer has bugs of its own
        raise ValueError(f"the Relax module's TVMScript does not parse back: {type(error).__name__}: "
                         f"{headline(str(error))}") from None
    if not tvm_ffi.structural_equal(scope["MODULE"], module):
        raise ValueError("the Relax module's TVMScript parses back to a different module: "
                         f"{tvm_ffi.get_first_structural_mismatch(scope['MODULE'], module)}")
    return source


def relax_repro_script(record: Mapping[str, Any], inputs: Mapping[str, np.ndarray], summary: str = "",
                       finding_id: int = 0, catalog: Mapping[str, PassSpec] = relax_pipelines.CATALOG) -> str:
    """The reproduction script of a stored Relax-pipeline finding record; ValueError when its
    module's TVMScript does not parse back to the module."""
    module, _ = relax_pipelines.relax_module(record["seed_spec"])
    spec = record["variant"]["pipeline"]
    return _RELAX_TEMPLATE.format(
        finding_id=finding_id, summary=summary.replace('"""', "'"),
        module=relax_module_source(record["script"], module),
        inputs="\n".join(_array_line(p.name, inputs[p.name]) for p in module["main"].params),
        passes="\n".join(_pass_line(entry, catalog) for entry in spec["passes"]),
        config=spec["config"], opt_level=spec["llvm_opt_level"], compare=_COMPARE)


def write_repro(run_dir: Path, finding_id: int, path: Path, catalog: Mapping[str, PassSpec] = CATALOG,
                relax_catalog: Mapping[str, PassSpec] = relax_pipelines.CATALOG) -> None:
    """Write the reproduction script of finding ``finding_id`` of a TIR run to ``path``.

    ``catalog`` and ``relax_catalog`` name the passes of TIR and Relax pipelines (plugins included).
    """
    with RunStore.open(run_dir) as store:
        finding = next(f for f in store.findings() if f.id == finding_id)
        record = json.loads(store.load_graph_json(finding))
        inputs = store.load_inputs(finding_id)
    if record["seed_spec"]["source"] == relax_pipelines.SOURCE:
        script = relax_repro_script(record, inputs, finding.summary, finding_id, relax_catalog)
    else:
        scheduling = finding.stage == Stage.PREPARE.value and bool((record["variant"] or {}).get("trace"))
        script = repro_script(record, inputs, finding.summary, finding_id, catalog, schedule_fails=scheduling)
    Path(path).write_text(script)
