"""The TIR campaign finds a planted miscompilation, shrinks and replays it, survives crashes, and writes
repro scripts of scheduling failures."""

from __future__ import annotations

import ctypes
import importlib.util
import json
import subprocess
import sys

import pytest

from fuzzer.store import RunStore
from fuzzer.execution.isolation import worker_environment
from fuzzer.tir import relax_pipelines
from fuzzer.tir.backend import TirBuild
from fuzzer.tir.campaign import TirOptions, culprit, replay, run_tir_campaign
from fuzzer.tir.case import Variant
from fuzzer.tir.pipelines import CATALOG, FLAT, PassSpec, default_pipeline
from fuzzer.tir.repro import write_repro
from triage.bugs import run_bugs
from triage.db import Status
from triage.pipeline import triage_run

# Workers import this module to load its backends: it must not import TVM itself, or
# every worker restart would pay for importing torch, which TVM pulls in when it can.
pytestmark = pytest.mark.skipif(importlib.util.find_spec("tvm") is None, reason="apache-tvm is not installed")

PLANTED = "tcfuzz.PlantedPlusToMinus"


def plus_to_minus():
    """A pass that miscompiles on purpose: the first store of a sum stores a difference."""
    import tvm
    import tvm_ffi

    @tvm.tirx.transform.prim_func_pass(opt_level=0, name=PLANTED)
    def transform(function, module, context):
        rewritten = []

        def rewrite(node, mutator):
            if not rewritten and isinstance(node, tvm.tirx.BufferStore) and isinstance(node.value, tvm.tirx.Add):
                rewritten.append(node)
                return tvm.tirx.BufferStore(node.buffer, tvm.tirx.Sub(node.value.a, node.value.b), node.indices)
            return mutator.default_mutate(node)

        return function.with_body(tvm_ffi.structural_mutate(function.body, rewrite))

    return transform


def planted_pipeline() -> dict:
    spec = default_pipeline()
    position = [p["name"] for p in spec["passes"]].index("tirx.FlattenBuffer") + 1
    spec["passes"].insert(position, {"name": PLANTED, "args": []})
    return spec


class PlantedTirBuild(TirBuild):
    name = "tvm-tir-planted"
    catalog = {**CATALOG, PLANTED: PassSpec(f"{__name__}:plus_to_minus", phases=(FLAT,))}
    base_pipeline = staticmethod(planted_pipeline)


class CrashingTirBuild(TirBuild):
    name = "tvm-tir-crashing"

    def prepare(self, case):
        if case.index % 2 == 1 and not case.diagnose:
            ctypes.string_at(0)  # segfault
        return super().prepare(case)


class FailingScheduleBuild(TirBuild):
    """Each random schedule ends by inlining the function's last block, its output: TVM refuses."""

    name = "tvm-tir-failing-schedule"

    def schedule(self, function, variant, log):
        from tvm.s_tir import Schedule

        program = super().schedule(function, variant, log)
        blocks = self.schedules.blocks(Schedule(function))
        if variant.trace is not None or program.error is not None or not blocks:
            return program
        trace = (*program.trace, {"primitive": "compute_inline", "block": blocks[-1].name_hint})
        return super().schedule(function, Variant(variant.pipeline, trace), log)


def test_a_planted_miscompilation_is_found_shrunk_and_replayed(tmp_path) -> None:
    options = TirOptions(backend=f"{__name__}:PlantedTirBuild", variants=2, relax_share=0.0, max_mutations=1,
                         max_schedule_steps=3, minimize_runs=24, minimize_share=1.0)
    summary = run_tir_campaign(tmp_path / "run", seed=5, max_tests=8, options=options)
    assert summary.cases == 4
    with RunStore.open(tmp_path / "run") as store:
        shrunk = [(f, record) for f in store.findings("mismatch")
                  if (record := json.loads(store.get_blob(f.artifacts["graph.json"])))["shrunk"]]
        assert shrunk, [f.summary for f in store.findings()]
        finding, record = shrunk[0]
        script = store.get_blob(finding.artifacts["model.onnx"]).decode()
    assert finding.backends == ("tvm-tir:pipeline",) and record["script"] == script and "def main" in script
    variant = record["variant"]
    assert variant["trace"] == []  # the schedule did not matter
    assert culprit(variant) == f"|+{PLANTED}"  # only the planted pass matters; the other passes are put back
    again = replay(tmp_path / "run", finding.id)
    assert again.difference is not None and again.failure is None
    script = tmp_path / "repro.py"
    write_repro(tmp_path / "run", finding.id, script, PlantedTirBuild.catalog)
    assert_reproduces(script)


def assert_reproduces(script) -> None:
    """The script needs only TVM, numpy and the planted pass (in this module), and exits 1 showing the bug."""
    text = script.read_text()
    assert not any(f"{word} {package}" in text for word in ("import", "from") for package in ("fuzzer", "corpus"))
    standalone = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=180,
                                cwd=script.parent, env=worker_environment())  # the planted pass lives in this module
    assert standalone.returncode == 1 and "differs" in standalone.stdout, standalone.stderr[-2000:]


def test_the_repro_script_of_a_failure_while_scheduling_replays_the_failing_step(tmp_path) -> None:
    options = TirOptions(backend=f"{__name__}:FailingScheduleBuild", variants=1, relax_share=0.0, max_mutations=1,
                         max_schedule_steps=0, minimize_runs=4, minimize_share=1.0)
    run_tir_campaign(tmp_path / "run", seed=2, max_tests=2, options=options)
    with RunStore.open(tmp_path / "run") as store:
        finding = next(f for f in store.findings("error") if f.stage == "prepare")
    script = tmp_path / "repro.py"
    write_repro(tmp_path / "run", finding.id, script)
    assert "sch.compute_inline(rv0)" in script.read_text()
    standalone = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=180,
                                env=worker_environment())
    assert standalone.returncode == 1 and "scheduling fails: ScheduleError" in standalone.stdout, \
        standalone.stderr[-2000:]


def test_triage_gives_each_tir_bug_a_verified_script(tmp_path) -> None:
    options = TirOptions(backend=f"{__name__}:FailingScheduleBuild", variants=1, relax_share=0.0, max_mutations=1,
                         max_schedule_steps=0, minimize_runs=4, minimize_share=1.0)
    run_tir_campaign(tmp_path / "run", seed=2, max_tests=2, options=options)
    summary = triage_run(tmp_path / "run")
    assert not summary.count(Status.TRIAGE_FAILED)
    with RunStore.open(tmp_path / "run", read_only=True) as store:
        bugs = run_bugs(store)
    scheduling = [bug for bug in bugs if bug.kind == "error" and "scheduleerror" in bug.fingerprints[0]]
    assert scheduling and all(bug.verified and bug.repro and bug.compiler == "tvm" for bug in scheduling), bugs


def test_the_campaign_survives_crashing_workers(tmp_path) -> None:
    """The first crash is blamed; blaming spends all the (zero) shrink time, so the second is not."""
    options = TirOptions(backend=f"{__name__}:CrashingTirBuild", variants=2, relax_share=0.0,
                         max_schedule_steps=2, minimize_share=0.0)
    summary = run_tir_campaign(tmp_path / "run", seed=1, max_tests=8, options=options)
    assert summary.cases == 4 and summary.restarts >= 2
    with RunStore.open(tmp_path / "run") as store:
        crashes = sorted(store.findings("crash"), key=lambda f: f.test_index)
        assert [(f.test_index, f.backends) for f in crashes] == [(1, ("tvm-tir:default",)), (3, ("tvm-tir:case",))]
        assert all(f.stage == "prepare" and "SIGSEGV" in f.summary for f in crashes)
        assert store.progress().next_index == 4


RELAX_PLANTED = "tcfuzz.PlantedPlusOne"


def plus_one():
    """A pass that miscompiles on purpose: in each PrimFunc, the first store of a float stores
    one more (integers are left alone: they may be indices)."""
    import tvm
    import tvm_ffi

    @tvm.tirx.transform.prim_func_pass(opt_level=0, name=RELAX_PLANTED)
    def transform(function, module, context):
        rewritten = []

        def rewrite(node, mutator):
            if not rewritten and isinstance(node, tvm.tirx.BufferStore) \
                    and str(node.value.ty.dtype).startswith("float"):
                rewritten.append(node)
                one = tvm.tirx.const(1, str(node.value.ty.dtype))
                return tvm.tirx.BufferStore(node.buffer, tvm.tirx.Add(node.value, one), node.indices)
            return mutator.default_mutate(node)

        return function.with_body(tvm_ffi.structural_mutate(function.body, rewrite))

    return transform


def planted_relax_pipeline() -> dict:
    """The default Relax pipeline with ``plus_one`` run on every legalized PrimFunc."""
    spec = relax_pipelines.default_relax_pipeline()
    position = [p["name"] for p in spec["passes"]].index("LegalizeOps") + 1
    spec["passes"].insert(position, {"name": RELAX_PLANTED, "args": []})
    return spec


class PlantedRelaxBuild(TirBuild):
    name = "tvm-tir-relax-planted"
    relax_catalog = {**relax_pipelines.CATALOG,
                     RELAX_PLANTED: PassSpec(f"{__name__}:plus_one", phases=(relax_pipelines.LEGALIZED,))}
    relax_base_pipeline = staticmethod(planted_relax_pipeline)


def test_a_planted_relax_pass_bug_is_found_shrunk_and_replayed(tmp_path) -> None:
    options = TirOptions(backend=f"{__name__}:PlantedRelaxBuild", variants=2, relax_pipeline_share=1.0,
                         max_pipeline_edits=2, minimize_runs=24, minimize_share=1.0)
    summary = run_tir_campaign(tmp_path / "run", seed=3, max_tests=16, options=options)
    assert summary.cases == 8
    with RunStore.open(tmp_path / "run") as store:
        shrunk = [(f, record) for f in store.findings("mismatch")
                  if (record := json.loads(store.get_blob(f.artifacts["graph.json"])))["shrunk"]]
        assert shrunk, [f.summary for f in store.findings()]
        finding, record = shrunk[0]
    assert finding.backends == ("tvm-tir:pipeline",) and record["seed_spec"]["source"] == relax_pipelines.SOURCE
    assert "def main" in record["script"] and record["mutations"] == []
    assert 'metadata["ir.GenericConst"]' in record["script"]  # constants the printed module leaves out
    pipeline = record["variant"]["pipeline"]
    assert pipeline["kind"] == "relax" and culprit(record["variant"]) == f"|+{RELAX_PLANTED}"
    again = replay(tmp_path / "run", finding.id)
    assert again.difference is not None and again.failure is None
    script = tmp_path / "repro.py"
    write_repro(tmp_path / "run", finding.id, script, relax_catalog=PlantedRelaxBuild.relax_catalog)
    assert "def pipeline(target)" in script.read_text()
    assert_reproduces(script)
