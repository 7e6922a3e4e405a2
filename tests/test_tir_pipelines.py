"""Pass pipelines as data: the default spec is TVM's pipeline, mutations keep it buildable."""

from __future__ import annotations

import random

import numpy as np
import pytest

pytest.importorskip("tvm")

from fuzzer.tir import pipelines, runtime, seeds  # noqa: E402


@pytest.fixture(scope="module")
def matmul():
    return seeds.build_seed({"source": "te", "family": "matmul", "dtype": "float32", "m": 5, "n": 7, "k": 6,
                             "batch": 0, "bias": True, "relu": True})


def outputs(function, spec, instruments=()):
    library = pipelines.build(function, spec, instruments=instruments)
    return runtime.run(library, runtime.random_arguments(function, 0))


def test_the_default_spec_builds_what_tvm_builds(matmul) -> None:
    for name, value in outputs(matmul, None).items():
        np.testing.assert_array_equal(outputs(matmul, pipelines.default_pipeline())[name], value)


def test_mutated_pipelines_build_and_keep_essential_passes_in_order(matmul) -> None:
    essential = [p["name"] for p in pipelines.default_pipeline()["passes"] if not pipelines.CATALOG[p["name"]].phases]
    mutation = pipelines.PipelineMutation()
    reference = outputs(matmul, None)
    for seed in range(12):
        spec = mutation.mutate(pipelines.default_pipeline(), random.Random(seed), 6)
        assert [p["name"] for p in spec["passes"] if not pipelines.CATALOG[p["name"]].phases] == essential
        for name, value in outputs(matmul, spec).items():
            np.testing.assert_allclose(value, reference[name], rtol=1e-5, atol=1e-6)


def test_pass_effects_name_the_passes_that_changed_the_ir_and_idle_ones_can_go(matmul) -> None:
    spec = pipelines.default_pipeline()
    effects = pipelines.pass_effects(spec)
    full = outputs(matmul, spec, [effects])
    names = [entry.split(":")[1] for entry in effects.changed]
    assert "s_tir.LowerOpaqueBlock" in names and "tirx.FlattenBuffer" in names
    shrunk = pipelines.PipelineMutation().without_idle_passes(spec, effects.changed)
    assert len(shrunk["passes"]) < len(spec["passes"])
    for name, value in outputs(matmul, shrunk).items():
        np.testing.assert_array_equal(value, full[name])


def test_the_default_relax_spec_builds_what_tvm_builds_and_mutants_agree() -> None:
    from fuzzer.tir import relax_pipelines

    module, arguments = relax_pipelines.relax_module({"graph_seed": 11, "nodes": 6})  # builds in TVM 0.27
    reference = relax_pipelines.run(relax_pipelines.build(module, None), module, arguments)
    default = relax_pipelines.default_relax_pipeline()
    for name, value in relax_pipelines.run(relax_pipelines.build(module, default), module, arguments).items():
        np.testing.assert_array_equal(value, reference[name])
    essential = [p["name"] for p in default["passes"] if not relax_pipelines.CATALOG[p["name"]].phases]
    mutation = relax_pipelines.relax_mutation()
    for seed in range(6):
        spec = mutation.mutate(default, random.Random(seed), 4)
        assert [p["name"] for p in spec["passes"] if not relax_pipelines.CATALOG[p["name"]].phases] == essential
        for name, value in relax_pipelines.run(relax_pipelines.build(module, spec), module, arguments).items():
            np.testing.assert_allclose(value, reference[name], rtol=1e-5, atol=1e-6)
