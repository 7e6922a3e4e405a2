"""Standalone reproduction scripts for TIR findings: TVM and numpy only, no tcfuzz.

The script holds the mutant's TVMScript, the schedule as the Python that TVM's own
``Schedule.trace.as_python()`` prints, the pass pipeline as constructor calls, and the
inputs; it builds the mutant with TVM's default pipeline and with the variant, runs both
and prints the largest difference (or the error). Making one imports TVM (to parse and
schedule), but builds nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from corpus.store import RunStore
from fuzzer.tir.pipelines import CATALOG, PassSpec, default_pipeline

_TEMPLATE = '''"""Reproduction of tcfuzz TIR finding {finding_id}: {summary}"""
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


def execute(function, pipeline_name, config, opt_level):
    target = tvm.target.Target({{"kind": "llvm", "opt-level": opt_level}})
    with tvm.transform.PassContext(opt_level=3, config=config):
        library = tvm.tirx.build(function, target=target, pipeline=pipeline_name)
    tensors = [tvm.runtime.tensor(np.array(value, dtype=dtype)) for value, dtype in INPUTS.values()]
    library["main"](*tensors)
    return [tensor.numpy() for tensor in tensors]


function = tvm.script.from_source(SOURCE)
expected = execute(function, "default", {{"tirx.disable_assert": True}}, 0)
tvm.tirx.register_tir_pipeline("repro", pipeline)
actual = execute(schedule(function), "repro", {config!r}, {opt_level!r})
for name, want, got in zip(INPUTS, expected, actual):
    if not np.allclose(want.astype("float64"), got.astype("float64"), rtol=1e-3, atol=1e-4, equal_nan=True):
        print(f"{{name}} differs:\\n expected {{want.ravel()[:16]}}\\n got      {{got.ravel()[:16]}}")
'''


def _array_line(name: str, value: np.ndarray) -> str:
    dtype = "float32" if value.dtype.name == "bfloat16" else value.dtype.name
    return f"    {name!r}: ({value.astype(dtype).tolist()!r}, {dtype!r}),"


def _pass_line(entry: Mapping[str, Any], catalog: Mapping[str, PassSpec]) -> str:
    constructor = catalog[entry["name"]].constructor
    arguments = ", ".join(repr(argument) for argument in entry["args"])
    if ":" in constructor:
        module_name, _, attribute = constructor.partition(":")
        return f"        __import__({module_name!r}, fromlist=[{attribute!r}]).{attribute}({arguments}),"
    return f"        tvm.{constructor}({arguments}),"


def repro_script(record: Mapping[str, Any], inputs: Mapping[str, np.ndarray], summary: str = "",
                 finding_id: int = 0, catalog: Mapping[str, PassSpec] = CATALOG) -> str:
    """The reproduction script of a stored TIR finding record (see ``TirCampaign.record``)."""
    import tvm

    from fuzzer.tir.schedules import replay_schedule

    variant = record["variant"] or {"trace": [], "pipeline": default_pipeline()}
    schedule = replay_schedule(tvm.script.from_source(record["script"]), variant["trace"] or [])
    spec = variant["pipeline"]
    return _TEMPLATE.format(
        finding_id=finding_id, summary=summary.replace('"""', "'"), source=record["script"],
        inputs="\n".join(_array_line(name, value) for name, value in inputs.items()),
        schedule="\n".join(f"    {line}" for line in schedule.trace.as_python()) or "    pass",
        passes="\n".join(_pass_line(entry, catalog) for entry in spec["passes"]),
        config=spec["config"], opt_level=spec["llvm_opt_level"])


def write_repro(run_dir: Path, finding_id: int, path: Path, catalog: Mapping[str, PassSpec] = CATALOG) -> None:
    """Write the reproduction script of finding ``finding_id`` of a TIR run to ``path``."""
    with RunStore.open(run_dir) as store:
        finding = next(f for f in store.findings() if f.id == finding_id)
        record = json.loads(store.get_blob(finding.artifacts["graph.json"]))
        inputs = store.load_inputs(finding_id)
    Path(path).write_text(repro_script(record, inputs, finding.summary, finding_id, catalog))
