"""Hand-built edge cases for the bitwise, quantization and signal operators and the other
operators added with them; test_ops.py checks each against ONNX on generated graphs."""

from __future__ import annotations

import numpy as np
import pytest

from fuzzer.graph.ir import DType, Graph, Input, Node, TensorType, Weight
from fuzzer.graph.ops import Family, all_specs, get_spec
from fuzzer.graph.rejected import ShapeError
from tests.helpers import run_both, single_node as _single_node, weight
def single(op: str, inputs: list[np.ndarray], attrs: dict, weights: tuple[Weight, ...] = (), opset: int = 21):
    return _single_node(op, inputs, attrs, weights, opset)


def test_new_families_are_registered():
    families = {s.name: s.family for s in all_specs()}
    assert {op for op, f in families.items() if f is Family.BITWISE} == {
        "BitwiseAnd", "BitwiseOr", "BitwiseXor", "BitwiseNot", "BitShift"}
    assert {op for op, f in families.items() if f is Family.QUANTIZATION} == {
        "QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "MatMulInteger", "QLinearMatMul",
        "ConvInteger", "QLinearConv"}
    assert {op for op, f in families.items() if f is Family.SIGNAL} == {"HannWindow", "HammingWindow", "BlackmanWindow"}


@pytest.mark.parametrize("direction", ["LEFT", "RIGHT"])
def test_bit_shift_every_amount_below_the_width(direction):
    x = np.arange(0, 256, 17, dtype=np.uint8)
    amounts = weight("w", np.arange(x.size, dtype=np.uint8) % 8)
    single("BitShift", [x], {"direction": direction}, (amounts,))


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int32, np.int64])
def test_bitwise_on_extreme_values(dtype):
    info = np.iinfo(dtype)
    a = np.array([info.min, info.max, 0, -1 if info.min else 1], dtype=dtype)
    for op in ("BitwiseAnd", "BitwiseOr", "BitwiseXor"):
        single(op, [a, a[::-1].copy()], {})
    single("BitwiseNot", [a], {})


def test_quantize_rounds_half_to_even_and_saturates():
    x = np.array([-300.0, -0.5, 0.5, 1.5, 2.5, 127.5, 300.0], dtype=np.float32)
    scale = weight("s", np.asarray(1.0, np.float32))
    for dtype in (np.int8, np.uint8):
        zero = weight("z", np.asarray(1, dtype))
        single("QuantizeLinear", [x], {}, (scale, zero))


def test_dynamic_quantize_of_a_constant_tensor():
    single("DynamicQuantizeLinear", [np.zeros((3,), np.float32)], {})
    single("DynamicQuantizeLinear", [np.array([-1.0, 0.25, 3.0], np.float32)], {})


def qlinear_matmul_tie(zero_point: int) -> tuple[np.ndarray, tuple[Weight, ...]]:
    """QLinearMatMul of [[3]] and [[1]] at scale ratio 0.5: 1.5 before rounding."""
    one = np.asarray(1.0, np.float32)
    return np.array([[3]], np.uint8), (
        weight("as", one), weight("az", np.asarray(0, np.uint8)), weight("b", np.array([[1]], np.uint8)),
        weight("bs", np.asarray(0.5, np.float32)), weight("bz", np.asarray(0, np.uint8)), weight("ys", one),
        weight("yz", np.asarray(zero_point, np.uint8)))


@pytest.mark.parametrize("zero_point", [0, 1, 2])
def test_qlinear_matmul_rounds_before_adding_the_zero_point(zero_point):
    """ONNX: saturate(round(x / y_scale) + y_zero_point), half to even: round(1.5) = 2."""
    a, weights = qlinear_matmul_tie(zero_point)
    assert single("QLinearMatMul", [a], {}, weights)[0].tolist() == [[2 + zero_point]]


def test_onnx_runtime_and_the_reference_evaluator_round_a_qlinear_matmul_tie_apart():
    """The evidence of the known judge defect: onnx.reference adds an odd zero point first."""
    onnxruntime = pytest.importorskip("onnxruntime")
    from onnx.reference import ReferenceEvaluator

    from fuzzer.graph.export_onnx import to_onnx_bytes
    from oracles.judge_defects import known_defect

    a, weights = qlinear_matmul_tie(1)
    types = (TensorType(DType.uint8, (1, 1)),) + tuple(w.type for w in weights)
    node = Node("QLinearMatMul", ("x0",) + tuple(w.name for w in weights), ("y",),
                get_spec("QLinearMatMul").infer(types, {}))
    model = to_onnx_bytes(Graph((Input("x0", types[0]),), weights, (node,), ("y",)), 21)
    ort = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, {"x0": a})[0]
    reference = ReferenceEvaluator(model).run(None, {"x0": a})[0]
    assert (ort.tolist(), reference.tolist()) == ([[3]], [[2]])
    assert known_defect("onnx-ref", ("QLinearMatMul",), "uint8") is not None


def test_quantized_convolutions_refuse_padding():
    x = TensorType(DType.uint8, (1, 1, 4, 4))
    w = TensorType(DType.uint8, (1, 1, 3, 3))
    with pytest.raises(ShapeError, match="no padding"):
        get_spec("ConvInteger").infer((x, w), {"pads": (1, 1, 1, 1), "group": 1, "strides": (1, 1),
                                               "dilations": (1, 1)})


@pytest.mark.parametrize("op", ["HannWindow", "HammingWindow", "BlackmanWindow"])
@pytest.mark.parametrize("periodic", [0, 1])
def test_windows(op, periodic):
    outputs = get_spec(op).infer((), {"size": 7, "output_datatype": "float64", "periodic": periodic})
    graph = Graph((), (), (Node(op, (), ("y",), outputs, (("size", 7), ("output_datatype", "float64"),
                                                          ("periodic", periodic))),), ("y",))
    run_both(graph, {}, 17)


def test_center_crop_pad_crops_and_pads_odd_extents_like_the_reference():
    x = np.arange(30, dtype=np.float32).reshape(5, 6)
    single("CenterCropPad", [x], {"shape": (2, 9)})
    single("CenterCropPad", [x], {"shape": (8,), "axes": (-2,)})


def test_reverse_sequence_with_batch_first():
    x = np.arange(24, dtype=np.int32).reshape(3, 4, 2)
    lengths = weight("l", np.array([1, 4, 2], np.int64))
    single("ReverseSequence", [x], {"batch_axis": 0, "time_axis": 1}, (lengths,))


def test_lp_normalization_of_a_zero_vector_is_zero():
    single("LpNormalization", [np.array([[0.0, 0.0], [3.0, 4.0]], np.float32)], {"axis": 1, "p": 2})


def test_det_of_singular_and_batched_matrices():
    single("Det", [np.array([[[1.0, 2.0], [2.0, 4.0]], [[2.0, 0.0], [0.0, 3.0]]], np.float64)], {})


def test_eye_like_off_diagonals():
    for k in (-3, -1, 0, 2, 5):
        single("EyeLike", [np.zeros((3, 4), np.int32)], {"k": k})
