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
    return runtime.run(pipelines.build(function, spec, instruments=instruments), runtime.random_arguments(function, 0))


def test_the_default_spec_builds_what_tvm_builds(matmul) -> None:
    import tvm

    with tvm.transform.PassContext(opt_level=3, config=pipelines.REFERENCE_CONFIG):
        library = tvm.tirx.build(matmul, target=tvm.target.Target({"kind": "llvm", "opt-level": 0}))
    expected = runtime.run(library["main"], runtime.random_arguments(matmul, 0))
    for spec in (None, pipelines.default_pipeline()):
        for name, value in outputs(matmul, spec).items():
            np.testing.assert_array_equal(value, expected[name])


def test_functions_linked_together_compute_what_each_computes_alone(matmul) -> None:
    """One library for several pipelines: each entry as built alone, whatever the PassContext configs."""
    import tvm

    mutation = pipelines.PipelineMutation()
    specs = {f"v{seed}": mutation.mutate(pipelines.default_pipeline(), random.Random(seed), 6) for seed in range(6)}
    for seed, spec in enumerate(specs.values()):
        spec["llvm_opt_level"] = 0
        pipelines.randomize_config(spec["config"], random.Random(seed))
        spec["config"]["tirx.disable_assert"] = seed % 2 == 0
    lowered = {name: pipelines.lower(matmul, spec) for name, spec in specs.items()}
    together = pipelines.link(lowered, 0)
    arguments = runtime.random_arguments(matmul, 0)
    for name, spec in specs.items():
        with tvm.transform.PassContext(opt_level=3, config=spec["config"]):
            alone = tvm.tirx.build(matmul, tvm.target.Target({"kind": "llvm", "opt-level": 0}),
                                   pipelines.register(spec))
        expected = runtime.run(alone["main"], arguments)
        for buffer, value in runtime.run(together[name], arguments).items():
            np.testing.assert_array_equal(value, expected[buffer])
        asserts = [line for line in lowered[name].script().splitlines() if line.lstrip().startswith("assert ")]
        assert bool(asserts) != spec["config"]["tirx.disable_assert"], name


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

    module, arguments = relax_pipelines.relax_module({"graph_seed": 38, "nodes": 6})  # builds in TVM 0.27
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


def test_mutations_never_break_the_pass_orders_tvm_relies_on() -> None:
    """Relax: FuseTIR directly follows FuseOps, dataflow-only passes precede ToNonDataflow; TIR: VerifyVTCMLimit
    precedes LowerVtcmAlloc. Phases alone allow edits that break them."""
    from fuzzer.tir import relax_pipelines

    fuse = pipelines.OrderConstraint("FuseOps", "FuseTIR", adjacent=True)
    assert fuse.holds(["FuseOps", "FuseTIR", "FuseOps", "FuseTIR"]) and fuse.holds(["FoldConstant"])
    assert not fuse.holds(["FuseOps", "FoldConstant", "FuseTIR"]) and not fuse.holds(["FuseTIR", "FuseOps"])
    kinds = [(relax_pipelines.relax_mutation(), relax_pipelines.default_relax_pipeline(), relax_pipelines.ORDER),
             (pipelines.PipelineMutation(), pipelines.default_pipeline(), pipelines.ORDER)]
    for mutation, default, order in kinds:
        assert not pipelines.order_violations(default["passes"], order)
        unconstrained = pipelines.PipelineMutation(mutation.catalog, mutation.phases, ())
        broken = 0
        for seed in range(1000):
            edits = random.Random(-seed).randint(1, 8)
            spec = mutation.mutate(default, random.Random(seed), edits)
            assert not pipelines.order_violations(spec["passes"], order), (seed, [p["name"] for p in spec["passes"]])
            free = unconstrained.mutate(default, random.Random(seed), edits)
            broken += bool(pipelines.order_violations(free["passes"], order))
        assert broken > 10, default.get("kind", "tir")


def test_mutations_keep_to_pipelines_tvm_supports_on_cpu() -> None:
    """Required passes stay, passes that cannot run twice never do, and GPU or accelerator
    lowering passes are never added to a CPU pipeline (they only ever appear where the
    default pipeline has them)."""
    mutation, default = pipelines.PipelineMutation(), pipelines.default_pipeline()
    default_names = [p["name"] for p in default["passes"]]
    required = {n for n, s in pipelines.CATALOG.items() if s.required}
    once = {n for n, s in pipelines.CATALOG.items() if not s.repeatable}
    device_only = {n for n, s in pipelines.CATALOG.items() if s.device_only}
    assert "tirx.StorageRewrite" in required & once and "s_tir.InferFragment" in device_only
    assert "s_tir.InstrumentBoundCheckers" not in pipelines.CATALOG  # it changes what a program does on purpose
    for seed in range(500):
        names = [p["name"] for p in mutation.mutate(default, random.Random(seed), 1 + seed % 8)["passes"]]
        assert required <= set(names), seed
        assert all(names.count(n) <= 1 for n in once), seed
        assert all(names.count(n) <= default_names.count(n) for n in device_only), seed


OUT_OF_BOUNDS = '''
@T.prim_func
def main(A: T.Buffer((4,), "bfloat16"), B: T.Buffer((4,), "float32")):
    wide = T.decl_buffer((8,), "float32", data=B.data)
    for i in range(5):
        wide[i] = T.Cast("float32", A[0])
'''


def test_a_write_outside_an_argument_is_caught_in_the_function_that_made_it() -> None:
    """Guard zones turn a heap-corrupting write (a crash much later, anywhere) into an error of this run."""
    import ml_dtypes
    import tvm

    library = tvm.tirx.build(tvm.script.from_source(OUT_OF_BOUNDS),
                             target="llvm")
    arguments = {"A": np.ones(4, dtype=ml_dtypes.bfloat16), "B": np.zeros(4, dtype="float32")}
    with pytest.raises(runtime.OutOfBoundsWrite, match="outside buffer 'B' \\(past its end\\)"):
        runtime.run(library, arguments)
    arguments["B"] = np.zeros(5, dtype="float32")[:4]  # a view: run copies it into its own guarded buffer
    with pytest.raises(runtime.OutOfBoundsWrite):
        runtime.run(library, arguments)
