"""Operators of constants: Constant, and NonZero, Unique and NonMaxSuppression, whose output
extents only their inputs' values give.

In their constant form, as Range's bounds, those inputs are constants the IR holds in
attributes (NonZero's and Unique's as Constant's ``value``, ``shape`` and ``dtype``;
NonMaxSuppression's boxes, scores and thresholds): the nodes have no inputs, the IR knows
every extent, the ONNX lowerings pass the constants as initializers, the anchor only picks a
dtype and the torch lowerings compute from the attributes alone.

NonZero also reads a value (its anchor): then its count is a run-time extent
(``TensorType.runtime``), at most the input's size, which only extent-free operators read on.
"""

from __future__ import annotations

import math
import random
from typing import Any, Mapping, Sequence

import numpy as np

from fuzzer.graph.ir import ALL_DTYPES, FRESH, DType, Node, TensorType
from fuzzer.graph.ops.spec import Family, OnnxBuilder, OnnxForm, OpSpec, Proposal, torch
from fuzzer.graph.rejected import ShapeError, Unsatisfiable
from fuzzer.graph.values import torch_dtype

NON_ZERO_DTYPES = ALL_DTYPES
UNIQUE_DTYPES = ALL_DTYPES - {DType.bfloat16}  # ONNX types Unique (opset 11) without bfloat16


# ---------------------------------------------------------------- Constant


def propose_constant(rng: random.Random, anchor: TensorType) -> Proposal:
    """The anchor only picks the dtype: a small tensor whose elements (row-major) and shape
    are attributes, lowered to ONNX Constant's ``value`` tensor. Floats are multiples of 1/4 in
    [-2, 2], as random inputs (exact in every float dtype), integers in [-8, 8] (uint8 from 0)."""
    shape = tuple(rng.randint(1, 4) for _ in range(rng.randint(0, 2)))
    dtype = anchor.dtype
    low = 0 if dtype in (DType.uint8, DType.bool) else -8

    def value() -> float | int:
        if dtype is DType.bool:
            return rng.randint(0, 1)
        return rng.randint(-8, 8) / 4 if dtype.is_float else rng.randint(low, 8)

    return Proposal({"value": tuple(value() for _ in range(math.prod(shape))), "shape": shape,
                     "dtype": dtype.value}, ())


def infer_constant(types: tuple[TensorType, ...], attrs: Mapping[str, Any]) -> tuple[TensorType, ...]:
    shape, value = tuple(attrs["shape"]), tuple(attrs["value"])
    if types or DType(attrs["dtype"]) not in ALL_DTYPES or len(value) != math.prod(shape) \
            or min(shape, default=1) < 1:
        raise ShapeError(f"Constant takes no inputs and a value of its shape {shape} and a dtype, got {types} "
                         f"and {len(value)} {attrs['dtype']} elements")
    return (TensorType(DType(attrs["dtype"]), shape),)


def torch_constant(xs, attrs):
    return torch.tensor(attrs["value"], dtype=torch_dtype(DType(attrs["dtype"]))).reshape(attrs["shape"])


def lower_constant(builder: OnnxBuilder, node: Node) -> None:
    from onnx import numpy_helper

    value = np.asarray(node.attr["value"], dtype=DType(node.attr["dtype"]).numpy).reshape(node.attr["shape"])
    builder.node("Constant", [], node.outputs, value=numpy_helper.from_array(value))

# ---------------------------------------------------------------- NonZero, Unique of constants


def constant_array(attrs: Mapping[str, Any]) -> np.ndarray:
    """The constant that ``value``, ``shape`` and ``dtype`` describe (Constant, NonZero, Unique)."""
    return np.asarray(attrs["value"], dtype=DType(attrs["dtype"]).numpy).reshape(attrs["shape"])


def small_values(rng: random.Random, dtype: DType, count: int) -> tuple[float | int, ...]:
    """``count`` values of few distinct choices, zero among them: multiples of 1/2 in [-2, 2]
    for floats, integers in [-3, 3] (from 0 for uint8), 0 and 1 for bool."""
    if dtype is DType.bool:
        return tuple(rng.randint(0, 1) for _ in range(count))
    low = 0 if dtype is DType.uint8 else -3
    return tuple(rng.randint(low, 3) / (2 if dtype.is_float else 1) for _ in range(count))


DATA_SHARE = 0.5  # NonZero nodes that read their anchor (a run-time count), where it has a rank


def propose_non_zero(rng: random.Random, anchor: TensorType) -> Proposal:
    """Of the anchor, in ``DATA_SHARE`` of proposals where it has a rank and integers or bools
    (which float values are zero, rounding decides: ONNX Runtime flushes a float16 Softmax's
    subnormals to zero, torch keeps them); else of a constant whose dtype the anchor picks,
    with some element non-zero (an empty output would follow from an all-zero constant)."""
    if anchor.rank and not anchor.dtype.is_float and rng.random() < DATA_SHARE:
        return Proposal({})
    shape = tuple(rng.randint(1, 4) for _ in range(rng.randint(1, 3)))
    value = list(small_values(rng, anchor.dtype, math.prod(shape)))
    if not any(value):
        value[rng.randrange(len(value))] = 1
    return Proposal({"value": tuple(value), "shape": shape, "dtype": anchor.dtype.value}, ())


def check_constant_input(op: str, types: tuple[TensorType, ...], attrs: Mapping[str, Any],
                         dtypes: frozenset[DType]) -> np.ndarray:
    shape, value = tuple(attrs["shape"]), tuple(attrs["value"])
    if types or DType(attrs["dtype"]) not in dtypes or len(value) != math.prod(shape) or not shape \
            or min(shape) < 1:
        raise ShapeError(f"{op} takes its input as a value of its shape {shape} (rank 1 or more) and a dtype, "
                         f"got inputs {types} and {len(value)} {attrs['dtype']} elements")
    return constant_array(attrs)


def infer_non_zero(types: tuple[TensorType, ...], attrs: Mapping[str, Any]) -> tuple[TensorType, ...]:
    if types:  # of a value: as many indices as it has elements, at most
        if len(types) != 1 or not types[0].rank or attrs:
            raise ShapeError(f"NonZero reads one value of rank 1 or more and no attributes, got {types} and {attrs}")
        return (TensorType(DType.int64, (types[0].rank, types[0].numel), ((1, FRESH),)),)
    array = check_constant_input("NonZero", types, attrs, NON_ZERO_DTYPES)
    return (TensorType(DType.int64, (array.ndim, int(np.count_nonzero(array)))),)


def torch_non_zero(xs, attrs):
    if xs:
        return torch.nonzero(xs[0]).T.contiguous()
    return torch.tensor(np.stack(np.nonzero(constant_array(attrs))).astype(np.int64))


def lower_non_zero(builder: OnnxBuilder, node: Node) -> None:
    builder.node("NonZero", list(node.inputs) or [builder.constant(constant_array(node.attr))], node.outputs)


def propose_unique(rng: random.Random, anchor: TensorType) -> Proposal:
    """A vector with repeats (the anchor only picks the dtype); the reference evaluator's
    unsorted Unique takes the first occurrences along axis 0 of the unflattened input, right
    for vectors only."""
    count = rng.randint(1, 12)
    attrs: dict[str, Any] = {"value": small_values(rng, anchor.dtype, count), "shape": (count,),
                             "dtype": anchor.dtype.value}
    if rng.random() < 0.7:
        attrs["sorted"] = rng.randint(0, 1)
    return Proposal(attrs, ())


def unique(attrs: Mapping[str, Any]) -> tuple[np.ndarray, ...]:
    """Unique's outputs, ONNX's way: values, first indices, inverse indices, counts; in
    ascending order, or with ``sorted=0`` in order of first occurrence."""
    array = constant_array(attrs)
    values, first, inverse, counts = np.unique(array, return_index=True, return_inverse=True, return_counts=True)
    if not attrs.get("sorted", 1):
        order = np.argsort(first, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        values, first, inverse, counts = values[order], first[order], rank[inverse.reshape(-1)], counts[order]
    return values, first.astype(np.int64), inverse.reshape(-1).astype(np.int64), counts.astype(np.int64)


def infer_unique(types: tuple[TensorType, ...], attrs: Mapping[str, Any]) -> tuple[TensorType, ...]:
    array = check_constant_input("Unique", types, attrs, UNIQUE_DTYPES)
    if array.ndim != 1 or attrs.get("sorted", 1) not in (0, 1):
        raise ShapeError(f"Unique takes a constant vector and sorted 0 or 1, got shape {array.shape}")
    kept = len(np.unique(array))
    return (TensorType(DType(attrs["dtype"]), (kept,)), TensorType(DType.int64, (kept,)),
            TensorType(DType.int64, (array.size,)), TensorType(DType.int64, (kept,)))


def torch_unique(xs, attrs):
    values, first, inverse, counts = unique(attrs)
    return (torch.tensor(values.astype(np.float64) if values.dtype.kind == "f" else values,
                         dtype=torch_dtype(DType(attrs["dtype"]))),
            torch.tensor(first), torch.tensor(inverse), torch.tensor(counts))


def lower_unique(builder: OnnxBuilder, node: Node) -> None:
    attrs = {k: v for k, v in node.attr.items() if k == "sorted"}
    builder.node("Unique", [builder.constant(constant_array(node.attr))], node.outputs, **attrs)


# ---------------------------------------------------------------- NonMaxSuppression of constants

NMS_MARGIN = 1e-3  # how far every IoU keeps from iou_threshold, so float32 rounding decides nothing


def nms_corners(box: Sequence[float], center_point_box: int) -> tuple[float, float, float, float]:
    """A box as (y_min, x_min, y_max, x_max)."""
    if center_point_box:
        x, y, width, height = box
        return y - height / 2, x - width / 2, y + height / 2, x + width / 2
    return min(box[0], box[2]), min(box[1], box[3]), max(box[0], box[2]), max(box[1], box[3])


def nms_iou(first: Sequence[float], second: Sequence[float], center_point_box: int) -> float:
    a, b = nms_corners(first, center_point_box), nms_corners(second, center_point_box)
    height = min(a[2], b[2]) - max(a[0], b[0])
    width = min(a[3], b[3]) - max(a[1], b[1])
    if height <= 0 or width <= 0:
        return 0.0
    inter = height * width
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def nms_arrays(attrs: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    batches, classes, count = attrs["shape"]
    return (np.asarray(attrs["boxes"], np.float64).reshape(batches, count, 4),
            np.asarray(attrs["scores"], np.float64).reshape(batches, classes, count))


def propose_nms(rng: random.Random, anchor: TensorType) -> Proposal:
    """Boxes of integer corners (or centres and extents) on a small grid, distinct scores per
    class in eighths, a score threshold between eighths and an IoU threshold clear of every IoU;
    the anchor picks nothing (the boxes are float32)."""
    batches, classes, count = rng.randint(1, 2), rng.randint(1, 3), rng.randint(1, 6)
    center = rng.randint(0, 1)
    boxes = []
    for _ in range(batches * count):
        y, x, height, width = rng.randint(0, 5), rng.randint(0, 5), rng.randint(1, 4), rng.randint(1, 4)
        if center:
            boxes.append((x + width / 2, y + height / 2, width, height))
        elif rng.random() < 0.2:  # the other diagonal
            boxes.append((y + height, x, y, x + width))
        else:
            boxes.append((y, x, y + height, x + width))
    scores = [k / 8 for _ in range(batches * classes) for k in rng.sample(range(16), count)]
    ious = [nms_iou(boxes[b * count + i], boxes[b * count + j], center)
            for b in range(batches) for i in range(count) for j in range(i)]
    for _ in range(20):
        threshold = round(rng.uniform(0.05, 0.9), 4)
        if all(abs(iou - threshold) > NMS_MARGIN for iou in ious):
            break
    else:
        raise Unsatisfiable("no IoU threshold keeps clear of the boxes' IoUs")
    attrs: dict[str, Any] = {"boxes": tuple(v for box in boxes for v in box), "scores": tuple(scores),
                             "shape": (batches, classes, count), "iou_threshold": threshold,
                             "max_output_boxes_per_class": rng.randint(1, count + 1)}
    if center:
        attrs["center_point_box"] = 1
    best = int(max(scores[:count]) * 8)
    if best and rng.random() < 0.5:  # below the first class's best score, so some box is selected
        attrs["score_threshold"] = rng.randrange(best) / 8 + 1 / 16
    return Proposal(attrs, ())


def non_max_suppression(attrs: Mapping[str, Any]) -> np.ndarray:
    """[batch, class, box] of each selected box: per batch and class, boxes in descending score
    (above score_threshold), each kept unless its IoU with a kept one exceeds iou_threshold."""
    boxes, scores = nms_arrays(attrs)
    center = attrs.get("center_point_box", 0)
    selected = []
    for batch in range(boxes.shape[0]):
        for cls in range(scores.shape[1]):
            row = scores[batch, cls]
            order = [int(i) for i in np.argsort(-row, kind="stable")
                     if "score_threshold" not in attrs or row[i] > attrs["score_threshold"]]
            kept: list[int] = []
            for index in order:
                if len(kept) >= attrs["max_output_boxes_per_class"]:
                    break
                if all(nms_iou(boxes[batch, index], boxes[batch, other], center) <= attrs["iou_threshold"]
                       for other in kept):
                    kept.append(index)
                    selected.append((batch, cls, index))
    return np.asarray(selected, np.int64).reshape(-1, 3)


def infer_nms(types: tuple[TensorType, ...], attrs: Mapping[str, Any]) -> tuple[TensorType, ...]:
    batches, classes, count = attrs["shape"]
    if types or len(attrs["boxes"]) != batches * count * 4 or len(attrs["scores"]) != batches * classes * count \
            or min(attrs["shape"]) < 1 or attrs["max_output_boxes_per_class"] < 1 \
            or attrs.get("center_point_box", 0) not in (0, 1):
        raise ShapeError(f"NonMaxSuppression takes no inputs, [B, N, 4] boxes and [B, C, N] scores of shape "
                         f"[B, C, N] = {attrs['shape']} and a positive max_output_boxes_per_class")
    return (TensorType(DType.int64, (len(non_max_suppression(attrs)), 3)),)


def torch_nms(xs, attrs):
    return torch.tensor(non_max_suppression(attrs))


def lower_nms(builder: OnnxBuilder, node: Node) -> None:
    boxes, scores = nms_arrays(node.attr)
    inputs = [builder.constant(boxes.astype(np.float32)), builder.constant(scores.astype(np.float32)),
              builder.constant(np.asarray([node.attr["max_output_boxes_per_class"]], np.int64)),
              builder.constant(np.asarray([node.attr["iou_threshold"]], np.float32))]
    if "score_threshold" in node.attr:
        inputs.append(builder.constant(np.asarray([node.attr["score_threshold"]], np.float32)))
    attrs = {"center_point_box": node.attr["center_point_box"]} if "center_point_box" in node.attr else {}
    builder.node("NonMaxSuppression", inputs, node.outputs, **attrs)


# Unique and NonMaxSuppression hold their inputs' values as attributes, which ONNX import cannot
# read back from a model's constants (it reads every NonZero as one of a value).
HELD_INPUTS = OnnxForm(not_imported="tcfuzz holds its inputs as attributes of the node; ONNX import does not "
                                    "fold constants into them")

SPECS = [
    # The IR holds Constant's value tensor as its elements, shape and dtype; tcfuzz reads ONNX
    # Constant nodes as weights, so no ONNX form is needed.
    OpSpec("Constant", Family.CONSTANTS, ALL_DTYPES, infer_constant, torch_constant, propose_constant,
           onnx=lower_constant, exact=True, dtype_attr=("dtype", None)),
    # Unique's float values follow the float64 judge through the dtype attribute; NonZero's
    # int64 indices need not. The input search cannot steer which indices a count gives.
    OpSpec("NonZero", Family.CONSTANTS, NON_ZERO_DTYPES, infer_non_zero, torch_non_zero, propose_non_zero,
           onnx=lower_non_zero, exact=True, constant_result=True, steering=(), value_range=(0.0, math.inf)),
    OpSpec("Unique", Family.CONSTANTS, UNIQUE_DTYPES, infer_unique, torch_unique, propose_unique, onnx=lower_unique,
           exact=True, dtype_attr=("dtype", None), onnx_form=HELD_INPUTS, constant_result=True),
    # The reference evaluator fails without max_output_boxes_per_class (ONNX's default 0 selects nothing).
    OpSpec("NonMaxSuppression", Family.CONSTANTS, frozenset({DType.float32}), infer_nms, torch_nms, propose_nms,
           onnx=lower_nms, exact=True, onnx_form=HELD_INPUTS, constant_result=True),
]
