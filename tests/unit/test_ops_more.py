"""RoiAlign, MaxUnpool, DeformConv, Compress, Constant, NonZero, Unique, NonMaxSuppression and
TfIdfVectorizer: each is generated, promoted for the float64 judge, and pinned by hand-computed
cases that run_both also checks against the ONNX reference evaluator (test_ops.py checks them
on generated graphs)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fuzzer.generation.generator import GeneratorOptions, generate_graph
from fuzzer.graph.export_onnx import DEFAULT_OPSET
from fuzzer.graph.ir import DType, TensorType, Weight
from fuzzer.graph.ops import Family, all_specs, get_spec
from fuzzer.graph.rejected import ShapeError
from tests.helpers import assert_judged_in_float64, single_node

NEW_OPERATORS = {"RoiAlign": Family.SAMPLING, "DeformConv": Family.SAMPLING, "MaxUnpool": Family.POOLING,
                 "Compress": Family.INDEXING, "TfIdfVectorizer": Family.INDEXING, "Constant": Family.CONSTANTS,
                 "NonZero": Family.CONSTANTS, "Unique": Family.CONSTANTS, "NonMaxSuppression": Family.CONSTANTS}


def options(op: str, nodes: int = 3) -> GeneratorOptions:
    return GeneratorOptions(nodes=nodes, ops=frozenset({op}), opset=max(DEFAULT_OPSET, get_spec(op).since))


def single(op: str, inputs: list[np.ndarray], attrs: dict, weights: tuple[np.ndarray, ...] = (), opset: int = 20):
    """One node of ``op`` on graph inputs and then weights (arrays), checked against the reference."""
    return single_node(op, inputs, attrs, tuple(Weight.from_array(f"w{k}", np.asarray(a))
                                                for k, a in enumerate(weights)), opset)


def test_new_operators_are_registered_in_their_families():
    assert {op: get_spec(op).family for op in NEW_OPERATORS} == NEW_OPERATORS
    assert {s.name for s in all_specs() if s.family is Family.CONSTANTS} == {"Constant", "NonZero", "Unique",
                                                                            "NonMaxSuppression"}


@pytest.mark.parametrize("op", sorted(NEW_OPERATORS))
def test_each_new_operator_is_generated(op):
    found = sum(any(node.op == op for node in generate_graph(seed, options(op)).nodes) for seed in range(10))
    assert found >= 8, f"{op} in {found} of 10 graphs"


@pytest.mark.parametrize("op", sorted(NEW_OPERATORS))
def test_each_new_operator_is_promoted_for_the_float64_judge(op):
    """Float outputs become float64 (TfIdfVectorizer and Constant through their dtype
    attribute), and the judge's torch evaluation runs."""
    for seed in range(3):
        assert_judged_in_float64(generate_graph(seed, options(op)), seed)


# --- RoiAlign --------------------------------------------------------------------------


IMAGE = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)  # value 4 * y + x at (y, x)


def roi_align(box, mode: str, **attrs) -> np.ndarray:
    attrs = {"output_height": 1, "output_width": 1, "sampling_ratio": 1, "mode": mode,
             "coordinate_transformation_mode": "output_half_pixel", **attrs}
    return single("RoiAlign", [IMAGE], attrs, (np.asarray([box], np.float32), np.zeros(1, np.int64)))[0]


def test_roi_align_averages_bilinear_samples():
    # One sample at the box centre (1.5, 1.5): bilinear 4 * 1.5 + 1.5.
    assert roi_align([0, 0, 3, 3], "avg").item() == pytest.approx(7.5)
    # 2 x 2 bins of one sample each at 0.75 and 2.25 on both axes.
    out = roi_align([0, 0, 3, 3], "avg", output_height=2, output_width=2)
    np.testing.assert_allclose(out[0, 0], [[3.75, 5.25], [9.75, 11.25]], rtol=1e-6)
    # half_pixel shifts the box by half a pixel: the centre moves to (1.0, 1.0).
    assert roi_align([0, 0, 3, 3], "avg", coordinate_transformation_mode="half_pixel").item() == pytest.approx(5.0)


def test_roi_align_max_takes_the_largest_weighted_corner():
    # ONNX's (and onnxruntime's) max mode: max(0.25 * 5, 0.25 * 6, 0.25 * 9, 0.25 * 10), not 7.5.
    assert roi_align([0, 0, 3, 3], "max").item() == pytest.approx(2.5)


def test_roi_align_reads_the_batch_index_and_spatial_scale():
    images = np.stack([IMAGE[0], IMAGE[0] + 100])
    attrs = {"output_height": 1, "output_width": 1, "sampling_ratio": 1, "spatial_scale": 0.5,
             "coordinate_transformation_mode": "output_half_pixel"}
    out = single("RoiAlign", [images], attrs, (np.asarray([[0, 0, 6, 6], [0, 0, 6, 6]], np.float32),
                                               np.asarray([1, 0], np.int64)))[0]
    np.testing.assert_allclose(out.reshape(-1), [107.5, 7.5], rtol=1e-6)


def test_roi_align_refuses_batch_indices_that_are_not_int64():
    x = TensorType(DType.float32, (1, 1, 4, 4))
    with pytest.raises(ShapeError, match="int64 batch indices"):
        get_spec("RoiAlign").infer((x, x.with_shape((1, 4)), TensorType(DType.int32, (1,))), {"sampling_ratio": 1})


# --- MaxUnpool ---------------------------------------------------------------------------


def test_max_unpool_writes_each_value_at_its_flat_index():
    x = np.asarray([[[[1, 2], [3, 4]]], [[[5, 6], [7, 8]]]], np.float32)
    indices = np.asarray([[[[0, 3], [9, 15]]], [[[16, 21], [26, 31]]]], np.int64)  # batch 1 starts at 16
    out = single("MaxUnpool", [x], {"kernel_shape": (2, 2), "strides": (2, 2)}, (indices,))[0]
    assert out.shape == (2, 1, 4, 4)
    expected = np.zeros(32, np.float32)
    expected[indices.reshape(-1)] = x.reshape(-1)
    np.testing.assert_array_equal(out.reshape(-1), expected)


def test_max_unpool_output_shape_follows_pads():
    x = TensorType(DType.float32, (1, 2, 3))
    assert get_spec("MaxUnpool").infer((x, x.with_dtype(DType.int64)), {"kernel_shape": (3,), "strides": (2,),
                                                                       "pads": (1, 0)})[0].shape == (1, 2, 6)


def test_max_unpool_indices_are_distinct_and_in_their_plane():
    for seed in range(10):
        graph = generate_graph(seed, options("MaxUnpool", nodes=1))
        weights = {w.name: w.array for w in graph.weights}
        for node in graph.nodes:
            if node.op == "MaxUnpool":
                indices = weights[node.inputs[1]]
                plane = int(np.prod(node.output_types[0].shape[2:]))
                flat = indices.reshape(-1, int(np.prod(indices.shape[2:])))
                assert all(len(set(row)) == len(row) for row in flat)
                assert all((row // plane == k).all() for k, row in enumerate(flat))


# --- DeformConv --------------------------------------------------------------------------


def test_deform_conv_with_zero_offsets_is_a_convolution():
    gen = np.random.default_rng(0)
    x = gen.standard_normal((1, 2, 4, 5)).astype(np.float32)
    w = gen.standard_normal((3, 2, 2, 2)).astype(np.float32)
    offset = np.zeros((1, 8, 3, 2), np.float32)
    attrs = {"kernel_shape": (2, 2), "strides": (1, 2), "pads": (0, 0, 0, 0)}
    out = single("DeformConv", [x, w, offset], attrs)[0]
    expected = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), stride=(1, 2)).numpy()
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


def test_deform_conv_samples_at_the_offset_with_zeros_outside():
    x = np.arange(9, dtype=np.float32).reshape(1, 1, 3, 3)
    w = np.ones((1, 1, 1, 1), np.float32)
    offset = np.zeros((1, 2, 3, 3), np.float32)
    offset[0, 1] = 1.0  # every tap one pixel to the right
    offset[0, 0, 0, 0] = 0.5  # and the first half a pixel down
    out = single("DeformConv", [x, w, offset], {"kernel_shape": (1, 1)})[0][0, 0]
    np.testing.assert_allclose(out, [[2.5, 2, 0], [4, 5, 0], [7, 8, 0]], rtol=1e-6)


# --- Compress ----------------------------------------------------------------------------


def test_compress_keeps_the_slices_whose_condition_holds():
    x = np.arange(12, dtype=np.int64).reshape(3, 4)
    assert single("Compress", [x], {"condition": (1, 0, 1), "axis": 0})[0].tolist() == [[0, 1, 2, 3], [8, 9, 10, 11]]
    assert single("Compress", [x], {"condition": (0, 1), "axis": -1})[0].tolist() == [[1], [5], [9]]
    # Without an axis the input is flattened; a short condition drops the rest.
    assert single("Compress", [x], {"condition": (1, 0, 0, 1, 1)})[0].tolist() == [0, 3, 4]


def test_compress_refuses_a_condition_longer_than_its_axis():
    with pytest.raises(ShapeError, match="longer than axis"):
        get_spec("Compress").infer((TensorType(DType.float32, (2, 3)),), {"condition": (1, 1, 1), "axis": 0})


# --- Constant ----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [DType.float16, DType.float32, DType.int8, DType.bool])
def test_constant_holds_its_value_shape_and_dtype(dtype):
    attrs = {"value": (1, 0, 1, 1, 0, 1), "shape": (2, 3), "dtype": dtype.value}
    out = single("Constant", [], attrs)[0]
    assert out.dtype == dtype.numpy
    np.testing.assert_array_equal(out, np.asarray([[1, 0, 1], [1, 0, 1]], dtype.numpy))


# --- NonZero and Unique of constants ----------------------------------------------------


def test_non_zero_lists_the_coordinates_of_non_zero_elements():
    attrs = {"value": (0, 1.5, 0, -2, 0, 0.5), "shape": (2, 3), "dtype": "float32"}
    assert get_spec("NonZero").infer((), attrs) == (TensorType(DType.int64, (2, 3)),)
    assert single("NonZero", [], attrs)[0].tolist() == [[0, 1, 1], [1, 0, 2]]


def test_unique_sorted_and_in_order_of_first_occurrence():
    attrs = {"value": (2, 1, 2, 3, 1, 2), "shape": (6,), "dtype": "int64"}
    values, first, inverse, counts = single("Unique", [], attrs)
    assert (values.tolist(), first.tolist(), inverse.tolist(), counts.tolist()) == (
        [1, 2, 3], [1, 0, 3], [1, 0, 1, 2, 0, 1], [2, 3, 1])
    values, first, inverse, counts = single("Unique", [], {**attrs, "sorted": 0})
    assert (values.tolist(), first.tolist(), inverse.tolist(), counts.tolist()) == (
        [2, 1, 3], [0, 1, 3], [0, 1, 0, 2, 1, 0], [3, 2, 1])


def test_non_max_suppression_keeps_boxes_in_score_order_unless_they_overlap():
    # Box 1 (score 0.875) first; box 0 overlaps it with IoU 6 / 12 and goes; box 2 is apart.
    boxes = (0, 0, 3, 3, 0, 1, 3, 4, 10, 10, 12, 12)
    attrs = {"boxes": boxes, "scores": (0.5, 0.875, 0.25), "shape": (1, 1, 3), "max_output_boxes_per_class": 3}
    assert single("NonMaxSuppression", [], {**attrs, "iou_threshold": 0.4})[0].tolist() == [[0, 0, 1], [0, 0, 2]]
    # An IoU of 4.5 / 13.5 keeps box 0 under a threshold of 0.4; 0.3 removes it.
    wide = {**attrs, "boxes": (0, 0, 3, 3, 0, 1.5, 3, 4.5, 10, 10, 12, 12)}
    assert single("NonMaxSuppression", [], {**wide, "iou_threshold": 0.4})[0].tolist() == [[0, 0, 1], [0, 0, 0],
                                                                                             [0, 0, 2]]
    assert single("NonMaxSuppression", [], {**wide, "iou_threshold": 0.3})[0].tolist() == [[0, 0, 1], [0, 0, 2]]
    # A score threshold drops box 2; max_output_boxes_per_class stops after the first.
    assert single("NonMaxSuppression", [], {**attrs, "iou_threshold": 0.4, "score_threshold": 0.3})[0].tolist() \
        == [[0, 0, 1]]
    assert single("NonMaxSuppression", [], {**attrs, "iou_threshold": 0.4, "max_output_boxes_per_class": 1})[0] \
        .tolist() == [[0, 0, 1]]


def test_non_max_suppression_reads_centre_boxes():
    # [x_centre, y_centre, width, height]: [0, 3] x [0, 3] and [1, 4] x [0, 3], IoU 6 / 12.
    attrs = {"boxes": (1.5, 1.5, 3, 3, 2.5, 1.5, 3, 3), "scores": (0.25, 0.5), "shape": (1, 1, 2),
             "max_output_boxes_per_class": 2, "iou_threshold": 0.3, "center_point_box": 1}
    assert single("NonMaxSuppression", [], attrs)[0].tolist() == [[0, 0, 1]]


def test_unique_takes_vectors_only():
    with pytest.raises(ShapeError, match="constant vector"):
        get_spec("Unique").infer((), {"value": (1, 2, 2, 1), "shape": (2, 2), "dtype": "int64"})


# --- TfIdfVectorizer ---------------------------------------------------------------------

# Unigrams 1 and 2, bigrams (1, 2) and (3, 2), in that order.
POOL = {"min_gram_length": 1, "max_gram_length": 2, "ngram_counts": (0, 2), "pool_int64s": (1, 2, 1, 2, 3, 2),
        "ngram_indexes": (0, 1, 2, 3)}


def test_tfidf_counts_unigrams_once_and_bigrams_at_each_skip():
    x = np.asarray([1, 2, 1, 3, 2], np.int64)
    # Skip 0 only: (1, 2) once, (3, 2) once.
    assert single("TfIdfVectorizer", [x], {**POOL, "mode": "TF", "max_skip_count": 0})[0].tolist() == [2, 2, 1, 1]
    # Skip 1 adds (1, 2) at positions 2 and 4; unigrams are not counted again.
    assert single("TfIdfVectorizer", [x], {**POOL, "mode": "TF", "max_skip_count": 1})[0].tolist() == [2, 2, 2, 1]


def test_tfidf_weights_rows_and_output_positions():
    x = np.asarray([[1, 2, 1, 3, 2], [3, 3, 3, 3, 3]], np.int32)
    weights = {"weights": (0.5, 1.0, 2.0, 4.0)}
    idf = single("TfIdfVectorizer", [x], {**POOL, **weights, "mode": "IDF", "max_skip_count": 1})[0]
    assert idf.tolist() == [[0.5, 1.0, 2.0, 4.0], [0, 0, 0, 0]]
    tfidf = single("TfIdfVectorizer", [x], {**POOL, **weights, "mode": "TFIDF", "max_skip_count": 1})[0]
    assert tfidf.tolist() == [[1.0, 2.0, 4.0, 4.0], [0, 0, 0, 0]]
    # ngram_indexes place each n-gram's count; unnamed positions stay zero.
    moved = single("TfIdfVectorizer", [x], {**POOL, "mode": "TF", "max_skip_count": 0, "ngram_indexes": (4, 0, 2, 1)})
    assert moved[0].tolist() == [[2, 1, 1, 0, 2], [0, 0, 0, 0, 0]]


def test_tfidf_output_dtype_is_the_irs_alone():
    x = TensorType(DType.int64, (5,))
    attrs = {**POOL, "mode": "TF", "max_skip_count": 0}
    assert get_spec("TfIdfVectorizer").infer((x,), attrs)[0] == TensorType(DType.float32, (4,))
    assert get_spec("TfIdfVectorizer").infer((x,), {**attrs, "output_dtype": "float64"})[0].dtype is DType.float64
    with pytest.raises(ShapeError, match="do not split"):
        get_spec("TfIdfVectorizer").infer((x,), {**attrs, "ngram_counts": (0, 3)})


@pytest.mark.parametrize("op", sorted(s.name for s in all_specs() if s.constant_result))
def test_constant_result_operators_are_buffers_that_torch_compile_traces(op):
    """NonZero, Unique, NonMaxSuppression and MelWeightMatrix compute in numpy from their
    attributes: the module holds their results, so Dynamo traces the graph in one piece."""
    from fuzzer.graph.export_torch import to_module
    from fuzzer.graph.values import random_inputs, to_torch

    graph = generate_graph(0, options(op, nodes=2))
    module = to_module(graph)
    assert any(name.startswith("constant") for name, _ in module.named_buffers())
    inputs = random_inputs(graph, 0)
    arguments = [to_torch(inputs[i.name]) for i in graph.inputs]
    torch._dynamo.reset()
    compiled = torch.compile(module, backend="aot_eager", fullgraph=True)
    with torch.no_grad():
        for got, want in zip(compiled(*arguments), module(*arguments)):
            assert torch.equal(got, want) or torch.allclose(got, want, equal_nan=True)
