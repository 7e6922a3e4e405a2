"""The recurrent, spectral, sampling and loss operators: each is generated, and hand-computed
cases pin their lowerings (test_ops.py checks them against ONNX on generated graphs)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fuzzer.generation.generator import GeneratorOptions, generate_graph
from fuzzer.graph.export_onnx import DEFAULT_OPSET
from fuzzer.graph.export_torch import to_module
from fuzzer.graph.ir import DType, Graph, Input, Node, TensorType
from fuzzer.graph.ops import Family, all_specs, get_spec
from fuzzer.graph.rejected import ShapeError
from fuzzer.graph.values import to_numpy
from tests.helpers import run_both, single_node as single, weight

NEW_FAMILIES = {
    Family.RECURRENT: {"RNN", "GRU", "LSTM"},
    Family.SPECTRAL: {"DFT", "STFT", "MelWeightMatrix"},
    Family.SAMPLING: {"GridSample", "AffineGrid", "Col2Im", "RoiAlign", "DeformConv"},  # the last two: test_ops_more
    Family.LOSS: {"NegativeLogLikelihoodLoss", "SoftmaxCrossEntropyLoss"},
}
NEW_OPERATORS = sorted(set().union(*NEW_FAMILIES.values()))






def test_new_families_are_registered():
    for family, names in NEW_FAMILIES.items():
        assert {s.name for s in all_specs() if s.family is family} == names


@pytest.mark.parametrize("op", NEW_OPERATORS)
def test_each_new_operator_is_generated(op):
    options = GeneratorOptions(nodes=3, ops=frozenset({op}), opset=max(DEFAULT_OPSET, get_spec(op).since))
    found = sum(any(node.op == op for node in generate_graph(seed, options).nodes) for seed in range(10))
    assert found >= 8, f"{op} in {found} of 10 graphs"


# ---------------------------------------------------------------- recurrent


def test_rnn_by_hand_in_both_directions():
    x = np.array([[[1.0]], [[2.0]]], np.float32)  # [seq 2, batch 1, input 1]
    w = weight("w", np.full((2, 1, 1), 0.5, np.float32))
    r = weight("r", np.full((2, 1, 1), 1.0, np.float32))
    y, y_h = single("RNN", [x], {"hidden_size": 1, "direction": "bidirectional"}, (w, r))
    h1 = math.tanh(0.5)
    forward = [h1, math.tanh(1.0 + h1)]
    b1 = math.tanh(1.0)
    backward = [math.tanh(0.5 + b1), b1]
    np.testing.assert_allclose(y[:, 0, 0, 0], forward, rtol=1e-6)
    np.testing.assert_allclose(y[:, 1, 0, 0], backward, rtol=1e-6)
    np.testing.assert_allclose(y_h[:, 0, 0], [forward[-1], backward[0]], rtol=1e-6)


@pytest.mark.parametrize("linear_before_reset", [0, 1])
def test_gru_with_bias_and_batch_first_layout(linear_before_reset):
    gen = np.random.default_rng(0)
    x = gen.uniform(-1, 1, (2, 3, 4)).astype(np.float64)  # layout 1: [batch, seq, input]
    weights = (weight("w", gen.uniform(-1, 1, (1, 15, 4))), weight("r", gen.uniform(-1, 1, (1, 15, 5))),
               weight("b", gen.uniform(-1, 1, (1, 30))))
    y, y_h = single("GRU", [x], {"hidden_size": 5, "layout": 1, "linear_before_reset": linear_before_reset,
                                 "direction": "reverse"}, weights)
    assert y.shape == (2, 3, 1, 5) and y_h.shape == (2, 1, 5)
    np.testing.assert_array_equal(y[:, 0, 0], y_h[:, 0])  # reverse: the state after the first step


def test_lstm_last_output_is_the_hidden_state():
    gen = np.random.default_rng(1)
    x = gen.uniform(-1, 1, (4, 2, 3)).astype(np.float32)
    weights = (weight("w", gen.uniform(-1, 1, (1, 8, 3)).astype(np.float32)),
               weight("r", gen.uniform(-1, 1, (1, 8, 2)).astype(np.float32)))
    y, y_h, y_c = single("LSTM", [x], {"hidden_size": 2}, weights)
    np.testing.assert_array_equal(y[-1], y_h)
    assert np.all(np.abs(y_h) < np.abs(np.tanh(y_c)) + 1e-7)  # H = o * tanh(C), o in (0, 1)


# ---------------------------------------------------------------- spectral


def test_dft_of_an_impulse_is_flat_and_inverse_divides_by_n():
    x = np.zeros((1, 4, 1), np.float32)
    x[0, 0, 0] = 1.0
    (y,) = single("DFT", [x], {"axis": 1, "inverse": 0}, opset=17)
    np.testing.assert_allclose(y[0], [[1.0, 0.0]] * 4, atol=1e-7)
    (y,) = single("DFT", [x], {"axis": 1, "inverse": 1}, opset=17)
    np.testing.assert_allclose(y[0], [[0.25, 0.0]] * 4, atol=1e-7)
    (y,) = single("DFT", [x], {"axis": 1, "onesided": 1}, opset=17)
    assert y.shape == (1, 3, 2)


def test_dft_axis_becomes_an_input_in_opset_20():
    x = np.random.default_rng(2).uniform(-1, 1, (2, 3, 5, 2)).astype(np.float32)
    assert [n.op_type for n in single_model("DFT", x, {"axis": 2, "inverse": 1}, 20).graph.node] == ["DFT"]
    single("DFT", [x], {"axis": 2, "inverse": 1}, opset=20)


def single_model(op, x, attrs, opset):
    graph = Graph((Input("x", TensorType(DType.float32, x.shape)),), (),
                  (Node(op, ("x",), ("y",), get_spec(op).infer((TensorType(DType.float32, x.shape),), attrs),
                        tuple(attrs.items())),), ("y",))
    return run_both(graph, {"x": x}, opset)


def test_stft_frames_with_and_without_a_window():
    x = np.arange(8, dtype=np.float64).reshape(1, 8, 1)
    (y,) = single("STFT", [x], {"frame_step": 3, "frame_length": 2, "onesided": 1}, opset=17)
    # frames [0, 1], [3, 4], [6, 7]: the DC bin sums them, the Nyquist bin takes their difference
    np.testing.assert_allclose(y[0, :, :, 0], [[1.0, -1.0], [7.0, -1.0], [13.0, -1.0]], atol=1e-12)
    window = weight("w", np.array([1.0, 0.0, 2.0]))
    (y,) = single("STFT", [np.concatenate([x, x], axis=-1)], {"frame_step": 2, "onesided": 0}, (window,), opset=17)
    assert y.shape == (1, 3, 3, 2)


def test_stft_refuses_an_implicit_onesided():
    with pytest.raises(ShapeError, match="explicit onesided"):
        get_spec("STFT").infer((TensorType(DType.float32, (1, 8, 1)),), {"frame_step": 1, "frame_length": 4})


def test_mel_weight_matrix_triangles():
    attrs = {"num_mel_bins": 4, "dft_length": 16, "sample_rate": 8000, "lower_edge_hertz": 0.0,
             "upper_edge_hertz": 4000.0, "output_datatype": "float64"}
    outputs = get_spec("MelWeightMatrix").infer((), attrs)
    graph = Graph((), (), (Node("MelWeightMatrix", (), ("y",), outputs, tuple(attrs.items())),), ("y",))
    run_both(graph, {}, 17)
    with torch.no_grad():
        (matrix,) = to_module(graph)()
    matrix = to_numpy(matrix)
    assert matrix.shape == (9, 4) and matrix.max() == 1.0 and matrix.min() == 0.0


# ---------------------------------------------------------------- sampling


def test_grid_sample_at_the_corners():
    x = np.arange(4, dtype=np.float32).reshape(1, 1, 2, 2)
    grid = weight("g", np.array([[[[-1.0, -1.0], [1.0, 1.0], [0.0, 0.0]]]], np.float32))
    for mode in ("linear", "nearest", "cubic"):
        (y,) = single("GridSample", [x], {"mode": mode, "align_corners": 1}, (grid,))
        np.testing.assert_allclose(y[0, 0, 0, :2], [0.0, 3.0], atol=1e-6)
    (y,) = single("GridSample", [x], {"mode": "linear", "align_corners": 1}, (grid,))
    assert y[0, 0, 0, 2] == pytest.approx(1.5)


def test_affine_grid_identity():
    theta = np.array([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]], np.float32)
    (grid,) = single("AffineGrid", [theta], {"size": (1, 1, 2, 3), "align_corners": 1})
    np.testing.assert_allclose(grid[0, :, :, 0], [[-1.0, 0.0, 1.0]] * 2, atol=1e-7)
    np.testing.assert_allclose(grid[0, :, 0, 1], [-1.0, 1.0], atol=1e-7)


def test_col2im_sums_overlapping_blocks_with_asymmetric_pads():
    x = np.ones((1, 4, 4), np.float32)  # 2x2 blocks, 4 positions on a 3x3 image
    (y,) = single("Col2Im", [x], {"image_shape": (3, 3), "block_shape": (2, 2)}, opset=18)
    np.testing.assert_array_equal(y[0, 0], [[1, 2, 1], [2, 4, 2], [1, 2, 1]])
    x = np.arange(12, dtype=np.float32).reshape(1, 4, 3)  # pads: top 1, bottom 0 -> 3 rows of blocks, 1 column
    single("Col2Im", [x], {"image_shape": (3, 2), "block_shape": (2, 2), "pads": (1, 0, 0, 0)}, opset=18)


# ---------------------------------------------------------------- losses


def test_nll_mean_skips_the_ignored_class_and_weighs_the_rest():
    scores = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], np.float32)
    target = weight("t", np.array([2, 0], np.int64))
    weights = weight("c", np.array([0.5, 1.0, 2.0], np.float32))
    (loss,) = single("NegativeLogLikelihoodLoss", [scores], {"reduction": "mean"}, (target, weights))
    assert loss == pytest.approx(-(3.0 * 2.0 + 4.0 * 0.5) / 2.5)
    (loss,) = single("NegativeLogLikelihoodLoss", [scores], {"reduction": "none", "ignore_index": 0}, (target,))
    np.testing.assert_array_equal(loss, [-3.0, 0.0])


def test_softmax_cross_entropy_of_uniform_scores_is_log_c():
    scores = np.zeros((2, 4, 3), np.float64)
    target = weight("t", np.array([[0, 1, 2], [3, 3, 1]], np.int32))
    loss, log_prob = single("SoftmaxCrossEntropyLoss", [scores], {"reduction": "sum"}, (target,))
    assert loss == pytest.approx(6 * math.log(4))
    np.testing.assert_allclose(log_prob, -math.log(4))
