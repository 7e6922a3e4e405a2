"""Activation and logic operators beyond test_ops.py: every opset 13..21 (where the
lowerings change), bfloat16, multi-node graphs, and hand-built edge cases."""

from __future__ import annotations

import itertools
import random

import numpy as np
import onnx
import pytest

from fuzzer.graph.export_onnx import SUPPORTED_OPSETS, to_onnx
from fuzzer.generation.generator import GeneratorOptions, generate_case
from fuzzer.graph.ir import ALL_DTYPES, DType, Graph, Input, Node, TensorType, Weight
from fuzzer.graph.ops import Family, all_specs, get_spec
from fuzzer.graph.ops.logic import SAFE_INT_RANGES
from fuzzer.graph.rejected import ShapeError
from tests.helpers import run_both

SPECS = [s for s in all_specs() if s.family in (Family.ACTIVATION, Family.LOGIC)]


@pytest.mark.parametrize("op", sorted(s.name for s in SPECS))
def test_every_opset_and_dtype(op: str) -> None:
    since = get_spec(op).since
    for opset, seed in itertools.product(range(max(since, SUPPORTED_OPSETS.start), SUPPORTED_OPSETS.stop), range(3)):
        case = generate_case(seed, GeneratorOptions(nodes=3, ops=frozenset({op}), opset=opset, dtypes=ALL_DTYPES))
        run_both(case.graph, dict(case.inputs), opset)


def single(op: str, inputs: list[np.ndarray], attrs: dict, weights: tuple[Weight, ...] = ()) -> tuple[Graph, dict]:
    graph_inputs = tuple(Input(f"x{k}", TensorType(DType.from_numpy(a.dtype), a.shape)) for k, a in enumerate(inputs))
    names = tuple(i.name for i in graph_inputs) + tuple(w.name for w in weights)
    types = tuple(i.type for i in graph_inputs) + tuple(w.type for w in weights)
    node = Node(op, names, ("y",), tuple(get_spec(op).infer(types, attrs)), tuple(attrs.items()))
    return Graph(graph_inputs, weights, (node,), ("y",)), {i.name: a for i, a in zip(graph_inputs, inputs)}


@pytest.mark.parametrize("opset", [13, 16, 21])
@pytest.mark.parametrize("min_form, max_form", list(itertools.product(["absent", "attribute", "operand"], repeat=2)))
def test_clip_bound_forms(min_form: str, max_form: str, opset: int) -> None:
    """Every mix of absent, attribute and operand bounds, including min > max."""
    x = np.linspace(-2, 2, 9, dtype=np.float32)
    attrs, operands = {}, []
    for bound, form, value in (("min", min_form, 0.5), ("max", max_form, -0.25)):
        if form == "attribute":
            attrs[bound] = value
        elif form == "operand":
            operands.append((bound, np.array(value, np.float32)))
    if operands:
        attrs["bound_operands"] = ",".join(bound for bound, _ in operands)
    graph, inputs = single("Clip", [x, *(v for _, v in operands)], attrs)
    clip_inputs = list(to_onnx(graph, opset).graph.node[-1].input)
    if max_form == "absent":
        assert len(clip_inputs) == (1 if min_form == "absent" else 2)
    elif min_form == "absent":
        assert clip_inputs[1] == ""
    run_both(graph, inputs, opset)


@pytest.mark.parametrize("opset", list(SUPPORTED_OPSETS))
def test_types_added_after_opset_13_lower_everywhere(opset: int) -> None:
    """bfloat16 LeakyRelu/PRelu/Where/LessOrEqual (opset 16) and integer Relu (opset 14)."""
    gen = np.random.default_rng(opset)
    x = gen.uniform(-2, 2, (3, 4)).astype(DType.bfloat16.numpy)
    y = gen.uniform(-2, 2, (4,)).astype(DType.bfloat16.numpy)
    run_both(*single("LeakyRelu", [x], {"alpha": 0.25}), opset)
    run_both(*single("PRelu", [x, y], {}), opset)
    run_both(*single("Where", [x > 0, x, y], {}), opset)
    run_both(*single("LessOrEqual", [x, y], {}), opset)
    run_both(*single("GreaterOrEqual", [x, x], {}), opset)
    run_both(*single("Relu", [np.arange(-3, 3, dtype=np.int8)], {}), opset)


def test_clip_rejects_mismatched_bounds() -> None:
    clip = get_spec("Clip")
    x = TensorType(DType.float32, (3,))
    with pytest.raises(ShapeError):
        clip.infer((x, x.with_shape(())), {"min": 0.5, "bound_operands": "min"})
    with pytest.raises(ShapeError):
        clip.infer((x, x.with_shape(()), x.with_shape(())), {"bound_operands": "max,min"})
    with pytest.raises(ShapeError):
        clip.infer((x, TensorType(DType.float64, ())), {"bound_operands": "max"})


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_hardmax_ties_pick_the_first_maximum(dtype) -> None:
    x = np.array([[1, 3, 3, 0], [2, 2, 2, 2], [0, -1, 0, -1]], dtype=dtype)
    for axis in (0, 1, -1):
        run_both(*single("Hardmax", [x], {"axis": axis}), opset=13)


def test_nan_and_infinity_handling() -> None:
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.5, -1.5], np.float32)
    for op, attrs in [("IsNaN", {}), ("IsInf", {}), ("IsInf", {"detect_negative": 0}),
                      ("IsInf", {"detect_positive": 0, "detect_negative": 1}),
                      ("ThresholdedRelu", {"alpha": -2.0}), ("Relu", {}), ("LeakyRelu", {"alpha": 0.5}),
                      ("HardSigmoid", {}), ("Cast", {"to": "bool"}), ("Cast", {"to": "float16"})]:
        run_both(*single(op, [x], attrs), opset=17)


@pytest.mark.parametrize("op", ["Equal", "Less", "LessOrEqual", "GreaterOrEqual", "And", "Where"])
def test_comparisons_and_logic_reject_mixed_dtypes(op: str) -> None:
    spec = get_spec(op)
    a, b = TensorType(DType.float32, (2, 3)), TensorType(DType.float64, (3,))
    types = (TensorType(DType.bool, (3,)), a, b) if op == "Where" else (a, b)
    with pytest.raises(ShapeError):
        spec.infer(types, {})


def test_comparisons_broadcast_both_ways() -> None:
    equal = get_spec("Equal")
    assert equal.infer((TensorType(DType.int8, (3, 1)), TensorType(DType.int8, (2, 1, 4))), {}) == \
        (TensorType(DType.bool, (2, 3, 4)),)
    where = get_spec("Where")
    assert where.infer((TensorType(DType.bool, (5, 1, 1)), TensorType(DType.int64, (1, 3)),
                        TensorType(DType.int64, (2, 1))), {}) == (TensorType(DType.int64, (5, 2, 3)),)


def test_prelu_slope_broadcasts_only_to_x() -> None:
    with pytest.raises(ShapeError):
        get_spec("PRelu").infer((TensorType(DType.float32, (3, 1)), TensorType(DType.float32, (1, 4))), {})


@pytest.mark.parametrize("op", ["Cast", "CastLike"])
def test_float_to_int_casts_only_read_in_range_weights(op: str) -> None:
    found = 0
    for seed in range(60):
        graph = generate_case(seed, GeneratorOptions(nodes=4, ops=frozenset({op}), opset=21,
                                                     dtypes=ALL_DTYPES)).graph
        weights = {w.name: w for w in graph.weights}
        for node in graph.nodes:
            source, target = graph.types[node.inputs[0]].dtype, node.output_types[0].dtype
            if source.is_float and target.is_int:
                low, high = SAFE_INT_RANGES[target]
                values = weights[node.inputs[0]].array.astype(np.float64)
                assert np.isfinite(values).all() and low <= values.min() and values.max() <= high
                found += 1
    assert found > 5


def test_cast_attribute_is_the_dtype_name() -> None:
    rng = random.Random(0)
    proposal = get_spec("Cast").propose(rng, TensorType(DType.int32, (2,)))
    assert DType(proposal.attrs["to"]).value == proposal.attrs["to"]
    graph, _ = single("Cast", [np.zeros(2, np.int32)], {"to": "bfloat16"})
    assert to_onnx(graph).graph.node[0].attribute[0].i == onnx.TensorProto.BFLOAT16
