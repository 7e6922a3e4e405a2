"""Culprit bisection: the search, configured backends, and a planted optimizer bug named."""

from __future__ import annotations

import numpy as np
import pytest

from fuzzer.execution.backends import load_backend
from fuzzer.execution.backends.torch_compile import INDUCTOR_OFF
from triage.culprit import Verdict, candidates_here, configured, isolate
from tests.helpers import culprit_of, fusion_case

PLANTED = "tests.quality.planted_ort:PlantedFusion"


def test_isolate_finds_the_one_candidate_and_splits_around_required_ones():
    names = [f"pass{i}" for i in range(13)]

    def verdict(off):
        if "pass3" in off:  # required: turning it off breaks the build
            return Verdict.INVALID
        return Verdict.CLEARED if "pass9" in off else Verdict.SHOWS

    budget = [24]
    assert isolate(names, verdict, budget) == "pass9"
    assert budget[0] >= 0
    assert isolate(names, lambda off: Verdict.SHOWS, [24]) is None
    assert isolate(names, verdict, [2]) is None  # out of budget


def test_a_configured_backend_keeps_its_name_and_turns_optimizations_off():
    backend = load_backend(configured("ort-all", ["ConstantFolding"], "basic"))
    assert backend.name == "ort-all" and backend.disabled_optimizers == ("ConstantFolding",)
    instance = backend()
    instance.setup()
    assert instance.options.graph_optimization_level == instance.ort.GraphOptimizationLevel.ORT_ENABLE_BASIC


def test_the_planted_fusion_bug_is_blamed_on_matmul_add_fusion(tmp_path, monkeypatch):
    monkeypatch.setenv("TCFUZZ_CACHE_DIR", str(tmp_path / "cache"))
    case = fusion_case()
    assert "MatMulAddFusion" in candidates_here(configured(PLANTED, (), "basic"), case)
    culprit = culprit_of(tmp_path, case, PLANTED)
    assert culprit is not None
    assert (culprit.backend, culprit.knob, culprit.value) == (
        "planted-fusion", "disabled_optimizers", "MatMulAddFusion")


@pytest.mark.slow
def test_tvm_passes_are_probed_and_a_configured_build_skips_them():
    case = fusion_case()
    passes = candidates_here("tvm", case)
    assert "LegalizeOps" in passes and "sequential" not in passes
    backend = load_backend(configured("tvm", ["FuseOps", "FuseTIR"]))()
    backend.setup()
    outcome = backend.execute(case, lambda stage: None)
    assert outcome.ok, outcome.message
    expected = case.inputs["x"] @ case.graph.weights[0].array + case.graph.weights[1].array
    np.testing.assert_allclose(outcome.outputs["y"], expected, rtol=1e-5, atol=1e-5)


def test_a_configured_tvm_backend_keeps_its_build_and_skips_the_passes():
    backend = load_backend(configured("tvm-cuda", ["FuseOps", "FuseTIR"]))
    assert backend.name == "tvm-cuda" and backend.device == "cuda"
    assert backend.knobs() == {**load_backend("tvm-cuda").knobs(), "disabled_pass": ("FuseOps", "FuseTIR")}
    assert "disabled_pass=('FuseOps', 'FuseTIR')" in backend.repro_source()


@pytest.mark.slow
def test_inductor_switches_are_real_and_a_configured_inductor_compiles(monkeypatch):
    """Every switch is set (torch._inductor.config refuses unknown names) and the compile works.

    In this process, config restored after: a worker's log file would be named after the
    eleven switches, too long a name for the file system."""
    import torch
    import torch._inductor.config as inductor_config

    monkeypatch.setenv("TORCHINDUCTOR_FX_GRAPH_CACHE", "0")
    saved, threads = inductor_config.save_config(), torch.get_num_threads()
    try:
        backend = load_backend(configured("inductor", list(INDUCTOR_OFF)))()
        backend.setup()
        for flag, value in INDUCTOR_OFF.items():
            *path, leaf = flag.split(".")
            owner = inductor_config
            for part in path:
                owner = getattr(owner, part)
            assert getattr(owner, leaf) == value, flag
        case = fusion_case()
        outcome = backend.execute(case, lambda stage: None)
    finally:
        inductor_config.load_config(saved)
        torch.set_num_threads(threads)
        torch._dynamo.reset()
    assert outcome.ok, outcome.message
    expected = case.inputs["x"] @ case.graph.weights[0].array + case.graph.weights[1].array
    np.testing.assert_allclose(outcome.outputs["y"], expected, rtol=1e-5, atol=1e-5)
