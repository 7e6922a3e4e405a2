"""The real-world seed blocks: valid, within the generator's budgets, equal on the ONNX
reference evaluator and torch, shipped as up-to-date ONNX files that import faithfully."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx.reference import ReferenceEvaluator

from fuzzer.graph.onnx_import import load_onnx_graph
from corpus.seeds import SEED_DIRECTORY, seed_graphs
from corpus.seeds.build import write_seeds
from fuzzer.graph.export_onnx import to_onnx
from fuzzer.graph.export_torch import to_module
from fuzzer.generation.generator import GeneratorOptions
from fuzzer.generation.mutate import admit
from fuzzer.graph.values import random_inputs, to_numpy, to_torch

SEEDS = seed_graphs()


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_seed_runs_on_the_reference_evaluator_and_matches_torch(name):
    graph = SEEDS[name]
    admit(graph, graph, GeneratorOptions())
    model = to_onnx(graph)
    onnx.checker.check_model(model, full_check=True)
    inputs = random_inputs(graph, 0)
    expected = ReferenceEvaluator(model).run(None, inputs)
    actual = to_module(graph)(*(to_torch(inputs[i.name]) for i in graph.inputs))
    for reference, value in zip(expected, actual):
        np.testing.assert_allclose(to_numpy(value), reference, rtol=1e-4, atol=1e-5)


def test_seeds_cover_the_blocks_named_in_their_definitions():
    ops = {name: {node.op for node in graph.nodes} for name, graph in SEEDS.items()}
    assert {"Conv", "BatchNormalization", "Relu", "Add"} <= ops["residual_block"]
    assert any(n.op == "Conv" and n.attr["group"] > 1 for n in SEEDS["depthwise_separable_block"].nodes)
    assert ({"MatMul", "Reshape", "Transpose", "Softmax", "LayerNormalization", "Erf"}
            <= ops["transformer_encoder_block"])
    assert {"Gemm", "Relu", "Softmax"} <= ops["mlp_head"]
    assert {"GlobalAveragePool", "Sigmoid", "Mul"} <= ops["squeeze_excite_block"]


def test_shipped_onnx_files_are_current_and_import_faithfully(tmp_path):
    write_seeds(tmp_path)
    for name, graph in SEEDS.items():
        shipped = SEED_DIRECTORY / f"{name}.onnx"
        assert shipped.read_bytes() == (tmp_path / shipped.name).read_bytes(), \
            f"{shipped} is stale: run python -m corpus.seeds.build"
        imported = load_onnx_graph(shipped)
        inputs = random_inputs(graph, 1)
        expected = ReferenceEvaluator(to_onnx(graph)).run(None, inputs)
        actual = ReferenceEvaluator(to_onnx(imported)).run(None, inputs)
        assert all(np.array_equal(a, b) for a, b in zip(expected, actual))
