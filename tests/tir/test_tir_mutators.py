"""Seeds are valid and match numpy; IR mutators keep programs valid, are deterministic and round-trip."""

from __future__ import annotations

import random

import numpy as np
import pytest

pytest.importorskip("tvm")

import tvm  # noqa: E402
import tvm_ffi  # noqa: E402

from fuzzer.tir import mutators, seeds  # noqa: E402
from fuzzer.tir.case import ANY_MUTATOR  # noqa: E402

SEEDS = 24


@pytest.fixture(scope="module")
def functions() -> list:
    """TE seeds of every family and every TVMScript seed."""
    found = [seeds.build_seed({"source": "script", "name": name}) for name in sorted(seeds.SCRIPTS)]
    for index in range(SEEDS):
        spec = seeds.random_seed_spec(random.Random(index), relax_share=0.0, script_share=0.0)
        found.append(seeds.build_seed(spec))
    return found


@pytest.mark.parametrize("name", sorted(mutators.MUTATORS))
def test_every_mutant_is_well_formed_and_in_bounds(functions: list, name: str) -> None:
    mutated = 0
    for index, function in enumerate(functions):
        try:
            mutant = mutators.mutate(function, name, random.Random(index))
        except mutators.NotApplicable:
            continue
        mutators.check_valid(mutant)  # raises InvalidMutant
        assert not tvm_ffi.structural_equal(mutant, function)
        mutated += 1
    assert mutated > 0, f"{name} found no site in any seed"


def test_chains_of_mutations_stay_valid(functions: list) -> None:
    for index, function in enumerate(functions):
        rng = random.Random(index)
        steps = [(ANY_MUTATOR, rng.getrandbits(32)) for _ in range(6)]
        mutant, applied = mutators.apply_mutations(function, steps)
        mutators.check_valid(mutant)
        assert all(name in mutators.MUTATORS for name, _ in applied)


def test_named_steps_replay_the_mutator_a_seed_picked(functions: list) -> None:
    steps = [(ANY_MUTATOR, seed) for seed in range(8)]
    mutant, applied = mutators.apply_mutations(functions[3], steps)
    again, applied_again = mutators.apply_mutations(functions[3], applied)
    assert applied_again == applied
    assert tvm_ffi.structural_equal(mutant, again)


def test_mutants_round_trip_through_tvmscript(functions: list) -> None:
    for index, function in enumerate(functions[:12]):
        mutant, _ = mutators.apply_mutations(function, [(ANY_MUTATOR, index * 7 + k) for k in range(4)])
        parsed = tvm.script.from_source(mutant.script())
        assert tvm_ffi.structural_equal(parsed, mutant, map_free_vars=True)


def test_out_of_bounds_mutant_is_rejected() -> None:
    function = seeds.build_seed({"source": "script", "name": "guarded_transpose"})

    def shift(node, mutator):
        if isinstance(node, tvm.ir.TensorLoad):
            return tvm.tirx.BufferLoad(node.source, [index + 1 for index in node.indices])
        return mutator.default_mutate(node)

    with pytest.raises(mutators.InvalidMutant):
        mutators.check_valid(function.with_body(tvm_ffi.structural_mutate(function.body, shift)))


def test_relax_seeds_are_valid_and_numpy_references_agree_with_tvm() -> None:
    from fuzzer.tir import pipelines, runtime

    built = fused = 0
    for index in range(16):
        spec = seeds.random_seed_spec(random.Random(index), relax_share=1.0)
        try:
            function = seeds.build_seed(spec)
        except seeds.SeedUnavailable:
            continue
        mutators.check_valid(function)
        built += 1
        fused += "fuse" in spec["relax_passes"]
    assert built >= 8 and fused >= 2
    for index in range(12):
        spec = seeds.random_seed_spec(random.Random(index), relax_share=0.0, script_share=0.0)
        function = seeds.build_seed(spec)
        arguments = runtime.random_arguments(function, index)
        actual = runtime.run(pipelines.build(function, None), arguments)
        for name, expected in seeds.numpy_reference(spec, arguments).items():
            tolerance = 2e-2 if expected.dtype.name == "float16" else 1e-4
            np.testing.assert_allclose(actual[name].astype("float64"), expected.astype("float64"),
                                       rtol=tolerance, atol=tolerance)
