"""The generator: deterministic, valid by construction, and shaped like real test programs."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections import Counter

import onnx
import pytest
import torch
from onnx.reference import ReferenceEvaluator

from fuzzer.graph.export_torch import to_module
from fuzzer.generation.generator import GeneratorOptions, generate_case, generate_graph
from fuzzer.graph.values import to_torch
from tests.helpers import ROOT

VALIDITY_GRAPHS = 300


def test_same_seed_gives_byte_identical_onnx():
    # The input search stops at its work bound, not its CPU-time budget (which a loaded machine
    # or a cold first evaluation can spend first), so that the inputs are reproducible too.
    options = GeneratorOptions(nodes=10, input_budget=60.0)
    for seed in range(20):
        first, second = generate_case(seed, options), generate_case(seed, options)
        assert first.model == second.model
        assert all((first.inputs[k] == second.inputs[k]).all() for k in first.inputs)
    assert generate_case(1, options).model != generate_case(2, options).model


def test_onnx_bytes_are_identical_in_another_process():
    code = ("import hashlib; from fuzzer.generation.generator import generate_case\n"
            "print(' '.join(hashlib.sha256(generate_case(s).model).hexdigest() for s in range(5)))")
    other = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert other.stdout.split() == [hashlib.sha256(generate_case(s).model).hexdigest() for s in range(5)]


def test_generated_models_are_valid_and_run_on_the_reference_evaluator():
    failures = []
    for seed in range(VALIDITY_GRAPHS):
        case = generate_case(seed)
        try:
            model = onnx.load_from_string(case.model)
            onnx.checker.check_model(model, full_check=True)
            ReferenceEvaluator(model).run(None, dict(case.inputs))
        except Exception as error:  # noqa: BLE001 - collected and reported below
            failures.append(f"seed {seed}: {type(error).__name__}: {str(error)[:200]}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("seed", range(10))
def test_torch_module_runs_with_declared_types(seed):
    case = generate_case(seed)
    with torch.no_grad():
        outputs = to_module(case.graph)(*(to_torch(case.inputs[i.name]) for i in case.graph.inputs))
    for name, tensor in zip(case.graph.outputs, outputs):
        declared = case.graph.types[name]
        assert tuple(tensor.shape) == declared.shape
        assert str(tensor.dtype) == f"torch.{declared.dtype.value}"


def test_graphs_have_requested_size_several_inputs_and_outputs_and_fan_out():
    assert all(len(generate_graph(seed, GeneratorOptions(nodes=7, exact_size=True)).nodes) == 7
               for seed in range(30))
    graphs = [generate_graph(seed, GeneratorOptions(nodes=10)) for seed in range(100)]
    sizes = Counter(len(g.nodes) for g in graphs)
    assert set(sizes) <= set(range(1, 11)) and sizes[10] >= 45 and len(sizes) >= 6  # sizes 1..N
    backward = sum(any(n.outputs[0].startswith("x") for n in g.nodes) for g in graphs)
    assert backward >= 30  # nodes inserted before an input, computing it
    assert sum(len(g.inputs) >= 2 for g in graphs) >= 70
    assert sum(len(g.outputs) >= 2 for g in graphs) >= 70
    assert sum(any(len(c) >= 2 for c in g.consumers.values()) for g in graphs) >= 50  # fan-out
    assert sum(bool(g.weights) for g in graphs) >= 50
    operators = Counter(node.op for g in graphs for node in g.nodes)
    assert len(operators) >= 60


def test_flop_budget_bounds_every_graph():
    from fuzzer.generation.generator import estimated_flops
    from fuzzer.graph.ops import get_spec

    options = GeneratorOptions(nodes=10, max_flops=50_000, ops=frozenset({"MatMul", "Conv", "Add", "Gemm"}))
    for seed in range(30):
        graph = generate_graph(seed, options)
        total = sum(estimated_flops(get_spec(n.op), tuple(graph.types[i] for i in n.inputs), n.output_types)
                    for n in graph.nodes)
        assert total <= 50_000


def test_options_restrict_operators_and_dtypes():
    from fuzzer.graph.ir import DType

    options = GeneratorOptions(nodes=6, ops=frozenset({"Add", "Relu", "MatMul"}),
                               dtypes=frozenset({DType.float32}))
    for seed in range(20):
        graph = generate_graph(seed, options)
        assert {n.op for n in graph.nodes} <= {"Add", "Relu", "MatMul"}
        assert {i.type.dtype for i in graph.inputs} == {DType.float32}


def test_bad_options_are_rejected():
    with pytest.raises(ValueError, match="nodes"):
        GeneratorOptions(nodes=0)
    with pytest.raises(ValueError, match="NoSuchOp"):
        generate_graph(0, GeneratorOptions(ops=frozenset({"NoSuchOp"})))


def test_domain_operators_never_read_values_that_no_input_moves_outside_their_domain():
    """Trilu's zeros, Sign's steps and weights are pinned: Log reads none of them, Atanh (whose
    domain holds zero) no Sign and no weight, yet both still appear."""
    from fuzzer.graph.ir import DType

    options = GeneratorOptions(nodes=8, ops=frozenset({"Trilu", "Sign", "Where", "Log", "Atanh", "Greater"}),
                               dtypes=frozenset({DType.float32, DType.bool}))
    domain_nodes = 0
    for seed in range(150):
        graph = generate_graph(seed, options)
        producers = {name: node.op for node in graph.nodes for name in node.outputs}
        weights = {w.name for w in graph.weights}
        for node in graph.nodes:
            if node.op in ("Log", "Atanh"):
                domain_nodes += 1
                pinned = ("Trilu", "Sign") if node.op == "Log" else ("Sign",)
                assert producers.get(node.inputs[0]) not in pinned, f"seed {seed}:\n{graph}"
                assert node.inputs[0] not in weights
    assert domain_nodes >= 50


def test_a_seed_gives_the_same_graphs_whatever_the_string_hash_seed() -> None:
    """Lanes, case builders and resumed runs are other processes, each with its own hash seed."""
    script = ("import hashlib\nfrom fuzzer.generation.generator import GeneratorOptions, generate_graph\n"
              "options = GeneratorOptions(control_flow=0.2, dynamic=0.2)\n"
              "print(hashlib.sha1(''.join(generate_graph(s, options).content_hash for s in range(150)).encode())"
              ".hexdigest())")
    digests = {subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                              env={**os.environ, "PYTHONHASHSEED": str(hash_seed)}).stdout
               for hash_seed in (1, 2, 3)}
    assert len(digests) == 1
