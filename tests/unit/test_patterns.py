"""The pattern library: every template and a near-miss of each give valid graphs; malformed
templates are refused in one line; the generator and the mutator insert patterns."""

from __future__ import annotations

import itertools
import random
import warnings

import numpy as np
import onnx
import pytest
from onnx.reference import ReferenceEvaluator

from fuzzer.generation.generator import GeneratorOptions, GraphBuilder, generated
from fuzzer.generation.mutate import MUTATORS, admit
from fuzzer.generation.patterns import (PATTERNS, Miss, Pattern, PatternError, Step, available, check_pattern,
                                        instantiate)
from fuzzer.generation.profiles import PROFILES
from fuzzer.graph.export_onnx import to_onnx
from fuzzer.graph.rejected import Unsatisfiable
from fuzzer.graph.values import random_inputs

OPTIONS = GeneratorOptions(input_budget=None)
USABLE = [p for p in PATTERNS if available(p, OPTIONS.opset, None)]


def assert_valid(graph) -> None:
    model = to_onnx(graph)
    onnx.checker.check_model(model, full_check=True)
    onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        outputs = ReferenceEvaluator(model).run(None, random_inputs(graph, 0))
    assert [np.shape(o) for o in outputs] == [graph.types[name].shape for name in graph.outputs]


def built(pattern: Pattern, near_miss: bool, profile: str, seed: int, output_share: float = 0.2):
    """A graph holding one instance of ``pattern`` alone, or None when its sizes do not fit;
    ``output_share``: the chance that each intermediate value is also a graph output."""
    options = GeneratorOptions(input_budget=None, near_miss_share=float(near_miss),
                               output_share=output_share).profiled(PROFILES[profile])
    builder = GraphBuilder(random.Random(seed), options, profile=PROFILES[profile])
    for _ in range(20):
        try:
            instance = instantiate(pattern, builder.rng, builder.profile, options.max_dim, options.max_elements,
                                   builder.values, builder.fresh_name, near_miss, options.dtypes, options.opset)
            builder.commit(instance)
            return builder.graph(), instance
        except Unsatisfiable:
            continue
    return None


@pytest.mark.parametrize("pattern", USABLE, ids=[p.name for p in USABLE])
def test_every_template_and_its_near_misses_give_valid_graphs(pattern):
    made = [built(pattern, near_miss, profile, seed)
            for near_miss, profile, seed in itertools.product((False, True), ("small", "vector"), range(6))]
    assert any(m is not None and m[1].miss is None for m in made), "the pattern itself never fits"
    assert any(m is not None and m[1].miss is not None for m in made), "no near-miss fits"
    for m in made:
        if m is not None:
            assert_valid(m[0])


def test_the_library_targets_optimizers_and_has_the_main_families():
    names = {p.name for p in PATTERNS}
    assert {"matmul_add", "gemm_activation", "conv_batchnorm_relu", "gelu_decomposition", "layernorm_decomposition",
            "attention", "skip_layernorm", "cast_chain", "slice_concat_space_to_depth", "pad_conv"} <= names
    assert all(":" in target for p in PATTERNS for target in p.targets)


def test_templates_with_missing_operators_are_skipped():
    missing = Pattern("ghost", ("x:Y",), {"x": "A"}, (Step("NoSuchOperator", "x", "y"),))
    assert not available(missing, 17, None)


@pytest.mark.parametrize("pattern, field", [
    (Pattern("p", (), {"x": "A"}, (Step("Relu", "x", "y"),)), "targets"),
    (Pattern("p", ("a:b",), {"x": "A"}, (Step("Relu", "z", "y"),)), "steps[0].inputs"),
    (Pattern("p", ("a:b",), {"x": "A B-"}, (Step("Relu", "x", "y"),)), "x.shape"),
    (Pattern("p", ("a:b",), {"x": "A"}, (Step("Relu", "x", "y"),), misses=(Miss("m", ops={3: "Abs"}),)),
     "misses.m"),
])
def test_malformed_templates_are_refused_naming_entry_and_field(pattern, field):
    with pytest.raises(PatternError) as error:
        check_pattern(pattern)
    message = str(error.value)
    assert "\n" not in message and "patterns.py" in message and "'p'" in message and field in message


def test_generator_inserts_patterns_in_their_share_deterministically():
    options = GeneratorOptions(pattern_share=1.0, input_budget=None)
    made = [generated(seed, options) for seed in range(30)]
    assert sum(bool(m.patterns) for m in made) >= 20
    assert any("~" in name for m in made for name in m.patterns)
    assert [generated(seed, options) for seed in range(5)] == made[:5]
    for m in made[:10]:
        assert_valid(m.graph)


def test_the_mutator_inserts_a_valid_pattern():
    host = generated(3, OPTIONS).graph
    mutants = []
    for seed in range(10):
        try:
            mutant = MUTATORS["insert_pattern"](host, random.Random(seed), OPTIONS, ())
            admit(mutant, host, OPTIONS)
        except Unsatisfiable:
            continue
        mutants.append(mutant)
    assert mutants and all(len(m.nodes) > len(host.nodes) for m in mutants)
    assert_valid(mutants[0])


def test_a_graph_holds_up_to_max_patterns_deterministically():
    options = GeneratorOptions(pattern_share=1.0, max_patterns=3, input_budget=None)
    made = [generated(seed, options) for seed in range(30)]
    counts = [len(m.patterns) for m in made]
    assert max(counts) > 1 and all(count <= 3 for count in counts)
    assert [generated(seed, options) for seed in range(5)] == made[:5]
    for m in made[:10]:
        assert_valid(m.graph)
    with pytest.raises(ValueError, match="max_patterns"):
        GeneratorOptions(max_patterns=0)

# Templates aimed at ONNX Runtime's CPU fusions, and the graph transformer each must make fire
# (verified: one instance alone in a graph, ORT_ENABLE_ALL, the transformer's INFO log line).
ORT_TARGETS = {
    "layernorm_decomposition": "LayerNormFusionL1", "rms_norm": "SimplifiedLayerNormFusion",
    "bias_gelu": "BiasGeluFusion", "tanh_gelu": "FastGeluFusion", "matmul_transposed_operand": "MatmulTransposeFusion",
    "gather_each_index": "GatherSliceToSplitFusion", "dynamic_quantized_matmul": "DynamicQuantizeMatMulFusion",
    "integer_matmul_rescale": "MatMulIntegerToFloatFusion", "conv_residual_relu": "ConvAddActivationFusion",
    "relu_quantize": "Level2_RuleBasedTransformer", "bias_skip_layernorm": "BiasSkipLayerNormFusion",
    "transpose_quantize": "QDQPropagationTransformer",
}
BY_NAME = {p.name: p for p in PATTERNS}


@pytest.mark.parametrize("name", sorted(ORT_TARGETS))
def test_each_ort_template_exports_a_valid_model_at_the_campaign_opset(name):
    pattern = BY_NAME[name]
    assert available(pattern, OPTIONS.opset, None) and f"ort:{ORT_TARGETS[name]}" in pattern.targets
    made = built(pattern, False, "small", 0)
    assert made is not None and made[1].miss is None
    onnx.checker.check_model(to_onnx(made[0]), full_check=True)


def test_ort_templates_make_their_transformers_fire():
    """Each instance, its intermediate values consumed only inside it (ORT fuses no node whose
    result is also a graph output), makes its transformer fire when this ORT version has it."""
    pytest.importorskip("onnxruntime")
    from fuzzer.execution.backends import load_backend

    backend = load_backend("ort-all")()
    backend.setup()
    for name in ("rms_norm", "tanh_gelu", "matmul_transposed_operand", "dynamic_quantized_matmul",
                 "conv_residual_relu", "relu_quantize", "bias_skip_layernorm", "gather_each_index"):
        for seed in range(2):
            graph = built(BY_NAME[name], False, "small", seed, output_share=0.0)[0]
            backend.session(to_onnx(graph).SerializeToString(), capture=True)
            if ORT_TARGETS[name] in backend.applied:  # a transformer this ONNX Runtime version has
                assert ORT_TARGETS[name] in backend.fired, f"{name} (seed {seed}): only {backend.fired} fired"


# Eliminations that ONNX Runtime's level-1 rule-based transformer applies (one log line for all
# its rules); each reads a computed value, as ORT removes no node that reads a graph input.
RULE_BASED = ("expand_identity", "noop_arithmetic", "identity_dropout", "reciprocal_mul", "relu_clip")


def test_elimination_templates_make_the_rule_based_transformer_fire():
    pytest.importorskip("onnxruntime")
    from fuzzer.execution.backends import load_backend

    backend = load_backend("ort-all")()
    backend.setup()
    for name in RULE_BASED:
        assert any(target.startswith("ort:") for target in BY_NAME[name].targets)
        graph = built(BY_NAME[name], False, "small", 0, output_share=0.0)[0]
        backend.session(to_onnx(graph).SerializeToString(), capture=True)
        assert "Level1_RuleBasedTransformer" in backend.fired, f"{name}: only {backend.fired} fired"
