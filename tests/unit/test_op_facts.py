"""Operator facts live on the specs, checked at registration; rejections are their own hierarchy.

The fact table below is the one the oracles, mutators, input search and ONNX import kept as
name sets of their own before the facts moved onto ``OpSpec``: it pins that every consumer
still sees the same operators.
"""

from __future__ import annotations

import ast
import importlib
import random
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

import fuzzer.generation.generator as generator
import fuzzer.generation.mutate as mutation
import oracles.rules as guards
from fuzzer.generation.generator import GeneratorOptions, generate_graph
from fuzzer.graph.ir import DType, Graph, Input, Node, TensorType, infer_outputs
from fuzzer.graph.ops import Family, SpecError, all_specs, get_spec, group, operators, registry
from fuzzer.graph.ops.spec import DomainKind, OnnxForm, check_spec
from fuzzer.graph.rejected import InvalidGraph, Rejected, ShapeError, Unsatisfiable
from tests.helpers import ROOT

F32 = TensorType(DType.float32, (2, 3))

FACTS = {
    "exact": {"Identity", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Expand", "Tile", "Concat",
              "Split", "Slice", "Pad", "DepthToSpace", "SpaceToDepth", "Gather", "GatherElements", "GatherND",
              "ScatterElements", "ScatterND", "OneHot", "Range", "ConstantOfShape", "Trilu", "Where", "Relu", "Abs",
              "Neg", "Sign", "Floor", "Ceil", "Round", "Max", "Min", "Clip", "ReduceMax", "ReduceMin", "MaxPool",
              "GlobalMaxPool", "Hardmax", "Cast", "CastLike", "TopK", "Dropout", "EyeLike", "CenterCropPad",
              "ReverseSequence", "MaxUnpool", "Compress", "Constant", "TfIdfVectorizer", "NonZero", "Unique",
              "NonMaxSuppression", "SequenceAt", "SequenceInsert", "SequenceErase", "ConcatFromSequence",
              "SplitToSequence"},
    "ties": {"ArgMax", "ArgMin", "TopK", "Hardmax"},
    "min_max": {"Max", "Min", "ReduceMax", "ReduceMin", "MaxPool", "GlobalMaxPool", "Clip", "Relu"},
    "zero_sign": {"Div", "Reciprocal", "Pow"},
    "integer_arithmetic": {"Add", "Sub", "Mul", "Div", "Neg", "Abs", "Sum", "Pow", "PRelu", "ReduceSum", "ReduceProd",
                           "ReduceSumSquare", "ReduceL1", "CumSum", "MatMul", "Gemm", "Einsum"},
    "float32_constants": {"LeakyRelu", "Elu", "Selu", "Celu", "HardSigmoid", "HardSwish", "Gelu", "ThresholdedRelu",
                          "Gemm", "BatchNormalization", "InstanceNormalization", "LayerNormalization", "LRN", "Shrink",
                          "GroupNormalization", "MeanVarianceNormalization"},
    "commutative": {"Add", "Mul", "Equal", "And", "Or", "Xor", "Sum", "Mean", "Max", "Min", "BitwiseAnd", "BitwiseOr",
                    "BitwiseXor"},
    "largest_first": {"Sum", "Mean"},
    "fixed_input_types": {"Gather", "GatherElements", "GatherND", "ScatterElements", "ScatterND", "Sum", "Mean", "Max",
                          "Min", "MaxPool", "AveragePool", "LRN", "ReverseSequence", "NegativeLogLikelihoodLoss",
                          "SoftmaxCrossEntropyLoss", "MaxUnpool", "RoiAlign"},
    "straight_through": {"Floor", "Ceil", "Round", "Sign"},
}
REDUCES = {"ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceLogSum",
           "ReduceLogSumExp", "ReduceSumSquare"}


# --- every fact is read from the spec ---------------------------------------------------


@pytest.mark.parametrize("fact", sorted(FACTS))
def test_each_fact_names_the_operators_its_consumers_relied_on(fact):
    assert operators(lambda spec: getattr(spec, fact)) == FACTS[fact]


WINDOWS = ("HannWindow", "HammingWindow", "BlackmanWindow")  # ONNX takes their size as a constant input
MEL = ("num_mel_bins", "dft_length", "sample_rate", "lower_edge_hertz", "upper_edge_hertz")  # constant inputs 0-4


def test_valued_facts_are_read_from_the_spec():
    assert {s.name: s.dtype_attr for s in all_specs() if s.dtype_attr} == {
        "Cast": ("to", None), "Range": ("dtype", None), "ConstantOfShape": ("dtype", "float32"),
        **{window: ("output_datatype", "float32") for window in ("HannWindow", "HammingWindow", "BlackmanWindow")},
        "MelWeightMatrix": ("output_datatype", "float32"), "Constant": ("dtype", None),
        "TfIdfVectorizer": ("output_dtype", "float32"), "Unique": ("dtype", None)}
    assert {s.name: s.domain.kind for s in all_specs() if s.domain and s.domain.kind is not DomainKind.VALUES} == {
        "Pow": DomainKind.POWER_BASE, "ReduceLogSum": DomainKind.SUMS}
    constant_inputs = {s.name: dict(s.onnx_form.constant_inputs) for s in all_specs() if s.onnx_form.constant_inputs}
    assert constant_inputs == {
        "Reshape": {1: "shape"}, "Expand": {1: "shape"}, "Tile": {1: "repeats"}, "Squeeze": {1: "axes"},
        "Unsqueeze": {1: "axes"}, "Split": {1: "split"}, "Pad": {1: "pads"}, "TopK": {1: "k"}, "CumSum": {1: "axis"},
        "Trilu": {1: "k"}, "OneHot": {1: "depth"}, "Slice": {1: "starts", 2: "ends", 3: "axes", 4: "steps"},
        "Resize": {1: "roi", 2: "scales", 3: "sizes"}, "CenterCropPad": {1: "shape"},
        **{op: {1: "axes"} for op in REDUCES}, **{op: {0: "size"} for op in WINDOWS},
        "DFT": {2: "axis"}, "STFT": {1: "frame_step", 3: "frame_length"}, "MelWeightMatrix": dict(enumerate(MEL)),
        "Col2Im": {1: "image_shape", 2: "block_shape"}, "AffineGrid": {1: "size"}, "Compress": {1: "condition"}}
    assert {(s.name, name) for s in all_specs() for name in s.onnx_form.scalar_inputs} == {
        ("TopK", "k"), ("CumSum", "axis"), ("Trilu", "k"), ("OneHot", "depth"), *((op, "size") for op in WINDOWS),
        ("DFT", "axis"), ("STFT", "frame_step"), ("STFT", "frame_length"), *(("MelWeightMatrix", name) for name in MEL)}
    assert {(s.name, name) for s in all_specs() for name in s.onnx_form.dropped} == {
        ("BatchNormalization", "momentum"), ("LayerNormalization", "stash_type"), ("GroupNormalization", "stash_type")}
    assert get_spec("Gemm").onnx_form.defaults == {"alpha": 1.0, "beta": 1.0, "transA": 0, "transB": 0}
    assert {s.name: s.onnx_form.window for s in all_specs() if s.onnx_form.window} == {
        "Conv": ("strides", "dilations", "group"),
        "ConvTranspose": ("strides", "dilations", "group", "pads", "output_padding"),
        "MaxPool": ("strides", "dilations"), "AveragePool": ("strides",), "LpPool": ("strides",)}


def test_families_are_an_enum_naming_the_defining_module():
    for family in Family:
        assert all(spec.family is family for spec in importlib.import_module(f"fuzzer.graph.ops.{family.value}").SPECS)
    assert {s.name for s in all_specs() if s.family is Family.CONTROL} == {"If", "Loop", "Scan"}


# --- the registry rejects inconsistent specs -------------------------------------------


@pytest.mark.parametrize("op, change, named", [
    ("Max", dict(integer_arithmetic=True), "min_max and integer_arithmetic"),
    ("Relu", dict(float32_constants=True), "exact and float32_constants"),
    ("CastLike", dict(steering=(1,)), "steering (1,) and type_only (1,)"),
    ("TopK", dict(onnx_form=OnnxForm(constant_inputs={1: "k"}, scalar_inputs=frozenset({"axis"}))),
     "onnx_form.scalar_inputs"),
    ("Conv", dict(onnx_form=OnnxForm(window=("strides", "kernel_shape"))), "onnx_form.window"),
    ("LayerNormalization", dict(onnx_form=OnnxForm(defaults={"stash_type": 1}, dropped=frozenset({"stash_type"}))),
     "onnx_form.dropped and onnx_form.defaults"),
    ("Range", dict(dtype_attr=("dtype", "float128")), "dtype_attr"),
])
def test_check_spec_names_the_operator_and_the_contradicting_fields(op, change, named):
    spec = get_spec(op)
    check_spec(spec, spec.family)
    with pytest.raises(SpecError, match=f"operator {op}: ") as raised:
        check_spec(replace(spec, **change), spec.family)
    assert named in str(raised.value)


def test_registry_rejects_an_inconsistent_spec_as_it_loads(monkeypatch):
    elementwise = sys.modules["fuzzer.graph.ops.elementwise"]
    broken = replace(get_spec("Add"), name="BrokenAdd", min_max=True)
    monkeypatch.setattr(elementwise, "SPECS", [*elementwise.SPECS, broken])
    with pytest.raises(SpecError, match="operator BrokenAdd: min_max and integer_arithmetic"):
        registry.__wrapped__()
    monkeypatch.setattr(elementwise, "SPECS", [*elementwise.SPECS[:-1], replace(get_spec("Add"), family=Family.LOGIC)])
    with pytest.raises(SpecError, match="operator Add: family is Family.LOGIC"):
        registry.__wrapped__()


def test_a_group_naming_an_unregistered_operator_is_rejected():
    assert group("casts", ["Cast", "CastLike"]) == {"Cast", "CastLike"}
    with pytest.raises(SpecError, match="group casts names NoSuchCast, not a registered operator"):
        group("casts", ["Cast", "NoSuchCast"])


# --- layering --------------------------------------------------------------------------


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at module or function level."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.add(node.module or "")
    return found


def test_ir_imports_no_operator_and_operators_import_no_generator_or_exporter():
    assert not {m for m in imported_modules(ROOT / "fuzzer/graph/ir.py") if m.startswith("fuzzer.graph.ops")}
    for path in (ROOT / "fuzzer/graph/ops").glob("*.py"):
        bad = {m for m in imported_modules(path)
               if m.startswith("fuzzer.generation") or m.startswith("fuzzer.graph.export")}
        assert not bad, f"{path.name} imports {bad}"
    code = ("import sys; from fuzzer.graph.ops import registry; registry(); "
            "print(sorted(m for m in sys.modules if m.startswith(('fuzzer.generation', 'fuzzer.graph.export'))))")
    loaded = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"


# --- the rejection hierarchy -----------------------------------------------------------


def test_rejections_are_their_own_hierarchy_and_no_value_error():
    for kind in (Unsatisfiable, InvalidGraph, ShapeError):
        assert issubclass(kind, Rejected)
        assert not issubclass(kind, ValueError)
    assert not issubclass(Rejected, ValueError)


def test_shape_rules_reject_with_shape_error_and_validation_with_invalid_graph():
    with pytest.raises(ShapeError, match="do not broadcast"):
        get_spec("Add").infer((F32, F32.with_shape((4,))), {})
    with pytest.raises(ShapeError, match="does not fit the node: ValueError"):
        infer_outputs("Gather", (F32,), {})
    with pytest.raises(ShapeError, match="does not fit the node: KeyError"):
        infer_outputs("ReduceSum", (F32,), {})
    with pytest.raises(InvalidGraph, match="do not broadcast"):
        Graph((Input("x", F32), Input("y", F32.with_shape((4,)))), (),
              (Node("Add", ("x", "y"), ("z",), (F32,)),), ("z",))


def broken_spec(error: Exception):
    def propose(rng, anchor):
        raise error
    return replace(get_spec("Relu"), propose=propose)


def test_a_type_error_in_a_generator_step_is_not_swallowed(monkeypatch):
    monkeypatch.setattr(generator, "eligible_specs", lambda opset, dtypes, ops: [broken_spec(TypeError("a bug"))])
    with pytest.raises(TypeError, match="a bug"):
        generate_graph(0, GeneratorOptions(nodes=3))
    monkeypatch.setattr(generator, "eligible_specs", lambda opset, dtypes, ops: [broken_spec(ShapeError("refused"))])
    with pytest.raises(Unsatisfiable, match="no node could be generated"):
        generate_graph(0, GeneratorOptions(nodes=3))


def test_a_type_error_in_a_mutator_is_not_swallowed(monkeypatch):
    graph = generate_graph(1, GeneratorOptions(nodes=4))

    def mutator(error: Exception):
        def mutate(graph, rng, options, donors):
            raise error
        return mutate

    monkeypatch.setattr(mutation, "MUTATORS",
                        {"rejects": mutator(InvalidGraph("no")), "breaks": mutator(KeyError("x"))})
    with pytest.raises(KeyError):
        mutation.mutate(graph, random.Random(0))
    monkeypatch.setattr(mutation, "MUTATORS", {"rejects": mutator(InvalidGraph("no"))})
    with pytest.raises(Unsatisfiable, match="no mutator applies"):
        mutation.mutate(graph, random.Random(0))


def test_a_guard_rule_that_raises_is_counted_not_silently_skipped(monkeypatch):
    def count(node, values, types):
        raise ArithmeticError("cannot judge")

    rule = guards.Rule("always-fails", None, "a rule that cannot judge", count)
    monkeypatch.setattr(guards, "RULES", (rule,))
    monkeypatch.setattr(guards, "SKIPPED", guards.SKIPPED.copy())
    graph = Graph((Input("x", F32),), (), (Node("Relu", ("x",), ("y",), (F32,)),), ("y",))
    flags = guards.node_flags(graph, {})
    assert flags.tolist() == [[0]]
    assert guards.SKIPPED["always-fails"] == 1
