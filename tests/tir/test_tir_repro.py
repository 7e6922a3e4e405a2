"""Repro scripts: Relax ones carry the constants that TVMScript leaves to ``metadata``, TIR ones the float64
constants it cannot parse, both checked before writing; TIR ones of scheduling failures show the failing step."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from fuzzer.execution.isolation import worker_environment
from fuzzer.tir import relax_pipelines
from fuzzer.tir.pipelines import default_pipeline
from fuzzer.tir.repro import DryRun, metadata_constants, parsable, relax_module_source, repro_script

pytestmark = pytest.mark.skipif(importlib.util.find_spec("tvm") is None, reason="apache-tvm is not installed")


def module_of(graph_seed: int):
    module, _ = relax_pipelines.relax_module({"source": relax_pipelines.SOURCE, "graph_seed": graph_seed, "nodes": 6})
    return module


def importable_module(graph_seed: int):
    """The seed's module, or None where TVM fails to import its graph (a bug of its own)."""
    try:
        return module_of(graph_seed)
    except Exception:  # noqa: BLE001 - TVM's frontend raises its own error types
        return None


def constant_dtypes(module) -> list[str]:
    return [str(constant.ty.dtype) for constant in metadata_constants(module)]


@pytest.mark.parametrize("dtypes", [["float32"], ["bfloat16"], ["int32"], ["float16"]])
def test_the_module_source_rebuilds_the_module_with_its_constants(dtypes) -> None:
    import tvm_ffi

    module = next((m for m in map(importable_module, range(200)) if m and set(dtypes) <= set(constant_dtypes(m))),
                  None)
    assert module is not None, f"no seed graph below 200 has {dtypes} constants"
    scope: dict = {}
    exec(relax_module_source(module.script(), module), scope)  # noqa: S102
    assert tvm_ffi.structural_equal(scope["MODULE"], module)


def test_a_script_of_another_module_is_refused() -> None:
    with pytest.raises(ValueError, match="different module"):
        relax_module_source(module_of(2).script(), module_of(4))


SOFTMAX = {"source": "te", "family": "softmax", "dtype": "float64", "shape": [2, 5]}  # max from -1.797e308


def softmax_record(trace: list) -> tuple[dict, dict]:
    from fuzzer.tir import runtime, seeds

    function = seeds.build_seed(SOFTMAX)
    record = {"seed_spec": SOFTMAX, "mutations": [], "script": function.script(),
              "variant": {"trace": trace, "pipeline": default_pipeline()}}
    return record, runtime.random_arguments(function, 0)


def run_script(tmp_path, text: str) -> subprocess.CompletedProcess:
    path = tmp_path / "repro.py"
    path.write_text(text)
    return subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=180,
                          env=worker_environment())


def test_float64_literals_beyond_float32_are_written_so_that_tvmscript_parses_them(tmp_path) -> None:
    import tvm
    import tvm_ffi
    from tvm import te, tirx

    data = te.placeholder((4,), "float64", name="A")
    function = te.create_prim_func([data, te.compute((4,), lambda i: te.max(data[i], tirx.const(-1e300, "float64")))])
    with pytest.raises(Exception, match="exceeds minimum of float32"):
        tvm.script.from_source(function.script())
    source = parsable(function.script())
    assert 'T.FloatImm("float64", -1e+300)' in source and "T.float32(" not in source
    assert tvm_ffi.structural_equal(tvm.script.from_source(source), function)
    record, inputs = softmax_record([{"primitive": "split", "block": "softmax", "loop": 1, "factors": [None, 2]}])
    script = repro_script(record, inputs)
    assert 'T.FloatImm("float64", -1.7976931348623157e+308)' in script
    done = run_script(tmp_path, script)
    assert done.returncode == 0, done.stderr[-2000:]  # the default pipeline: no difference
    other, _ = softmax_record([])
    other["script"] = function.script()
    with pytest.raises(ValueError, match="different function"):
        repro_script(other, inputs)


def test_a_failure_while_scheduling_is_replayed_up_to_the_failing_step(tmp_path) -> None:
    import tvm
    import tvm_ffi

    from fuzzer.tir.schedules import apply_step

    split = {"primitive": "split", "block": "softmax", "loop": 1, "factors": [None, 2]}
    failing = {"primitive": "compute_inline", "block": "softmax"}  # an output block: TVM refuses
    record, inputs = softmax_record([split, failing])
    script = repro_script(record, inputs, schedule_fails=True)
    assert "sch.split(loop=" in script and "rv0 = sch.get_sblock('softmax')\n    sch.compute_inline(rv0)" in script
    done = run_script(tmp_path, script)
    assert done.returncode == 1 and "scheduling fails: ScheduleError" in done.stdout, done.stderr[-2000:]
    schedule = tvm.s_tir.Schedule(tvm.script.from_source(parsable(record["script"])))
    dry_run = DryRun(schedule)
    apply_step(dry_run, {"primitive": "transform_layout", "block": "shifted", "buffer": 0})
    assert dry_run.lines[-1] == "sch.transform_layout(rv0, ('write', 0), reversed_axes)"
    assert dry_run.helpers[0].startswith("def reversed_axes(")
    assert tvm_ffi.structural_equal(schedule.mod["main"], tvm.script.from_source(parsable(record["script"])))
