"""Image sampling: GridSample and AffineGrid (opset 20), Col2Im (opset 18), RoiAlign (opset 16)
and DeformConv (opset 19), all 2-D.

GridSample reads a fresh grid of random coordinates: many fall outside [-1, 1], which
exercises the padding modes. Its spec starts at opset 20, which renamed the modes linear
and cubic: the reference evaluator knows only those names, so GridSample-16's bilinear and
bicubic fail there. Col2Im's image and block shapes are constant inputs in ONNX (the IR's
attributes); its input is drawn to fit them (the anchor only picks the dtype and batch when
its own shape does not fit).

RoiAlign's boxes are fixed weights inside the image (multiples of a quarter, exact in every
float dtype) and its batch indices fixed in-range int64 weights; ``sampling_ratio`` is always
set: its default 0 derives the sample count from the box values, which a lowering would read
on the host. Its max mode is ONNX's (and onnxruntime's): the maximum over the samples of the
largest of the four weighted corners, not the maximum of interpolated values. DeformConv
samples like GridSample with align_corners=1 and zero padding; the reference evaluator
normalizes by the image extent minus one, so both spatial extents are at least 2.
"""

from __future__ import annotations

import math
import random
from typing import Any, Mapping

import numpy as np

from fuzzer.graph.ir import DType, Node, TensorType
from fuzzer.graph.ops.indexing import numpy_gen
from fuzzer.graph.ops.linalg import MAX_CHANNELS, divisors, same_dtype
from fuzzer.graph.ops.spec import (ANCHOR, F, Family, OnnxBuilder, OnnxForm, Operand, OpSpec, Proposal,
                                   constant_input, torch)
from fuzzer.graph.rejected import ShapeError, Unsatisfiable

SAMPLING_DTYPES = frozenset({DType.float16, DType.float32, DType.float64})
GRID_MODES = {"linear": "bilinear", "nearest": "nearest", "cubic": "bicubic"}  # ONNX's name -> torch's
AFFINE_GRID_DTYPES = frozenset({DType.float32})
PADDING_MODES = ("zeros", "border", "reflection")


# ---------------------------------------------------------------- GridSample


def propose_grid_sample(rng: random.Random, anchor: TensorType) -> Proposal:
    attrs: dict[str, Any] = {}
    for name, choices in (("mode", tuple(GRID_MODES)), ("padding_mode", PADDING_MODES), ("align_corners", (0, 1))):
        if rng.random() < 0.8:
            attrs[name] = rng.choice(choices)
    if attrs.get("padding_mode") == "reflection" and attrs.get("align_corners") and 1 in anchor.shape[2:]:
        # The reference evaluator reflects about an empty range there and divides by zero.
        attrs["padding_mode"] = "border"
    grid = anchor.with_shape((anchor.shape[0], rng.randint(1, 6), rng.randint(1, 6), 2))
    return Proposal(attrs, (ANCHOR, Operand(grid)))


def infer_grid_sample(types: tuple[TensorType, ...], attrs: Mapping[str, Any]) -> tuple[TensorType, ...]:
    x, grid = types
    if x.dtype not in SAMPLING_DTYPES or grid.dtype is not x.dtype or x.rank != 4 \
            or grid.shape[:1] + grid.shape[3:] != (x.shape[0], 2) or grid.rank != 4:
        raise ShapeError(f"GridSample takes a float [N, C, H, W] image and an [N, H_out, W_out, 2] grid, got {types}")
    if attrs.get("mode", "linear") not in GRID_MODES or attrs.get("padding_mode", "zeros") not in PADDING_MODES:
        raise ShapeError(f"GridSample mode or padding_mode is unknown: {dict(attrs)}")
    return (x.with_shape((*x.shape[:2], *grid.shape[1:3])),)


def grid_sample(xs, attrs):
    x, grid = xs
    work = x.float() if x.dtype == torch.float16 else x  # torch has no float16 grid_sample on the CPU
    result = F.grid_sample(work, grid.to(work.dtype), mode=GRID_MODES[attrs.get("mode", "linear")],
                           padding_mode=attrs.get("padding_mode", "zeros"),
                           align_corners=bool(attrs.get("align_corners", 0)))
    return result.to(x.dtype)


# ---------------------------------------------------------------- Col2Im


def col2im_blocks(attrs: Mapping[str, Any]) -> list[int]:
    """The number of block positions along each image axis."""
    image, block = attrs["image_shape"], attrs["block_shape"]
    rank = len(image)
    strides = attrs.get("strides", (1,) * rank)
    dilations = attrs.get("dilations", (1,) * rank)
    pads = attrs.get("pads", (0,) * 2 * rank)
    if not len(block) == len(strides) == len(dilations) == rank or len(pads) != 2 * rank:
        raise ShapeError(f"Col2Im attributes {dict(attrs)} do not fit {rank} image axes")
    counts = []
    for i in range(rank):
        span = (block[i] - 1) * dilations[i] + 1
        room = image[i] + pads[i] + pads[i + rank] - span
        if room < 0 or strides[i] < 1 or block[i] < 1:
            raise ShapeError(f"Col2Im block span {span} exceeds padded axis {image[i] + pads[i] + pads[i + rank]}")
        counts.append(room // strides[i] + 1)
    return counts


def propose_col2im(rng: random.Random, anchor: TensorType) -> Proposal:
    """2-D images: torch folds no others."""
    image = (rng.randint(1, 6), rng.randint(1, 6))
    dilations = tuple(rng.choice((1, 1, 2)) for _ in image)
    block = tuple(rng.randint(1, max(1, min(3, (size - 1) // d + 1))) for size, d in zip(image, dilations))
    attrs: dict[str, Any] = {"image_shape": image, "block_shape": block}
    if rng.random() < 0.6:
        attrs["strides"] = tuple(rng.randint(1, 3) for _ in image)
    if rng.random() < 0.5:
        attrs["dilations"] = dilations
    if rng.random() < 0.5:
        attrs["pads"] = tuple(rng.randint(0, 1) for _ in range(4))
    channels = rng.randint(1, 3)
    try:
        count = math.prod(col2im_blocks(attrs))
    except ShapeError as error:
        raise Unsatisfiable(str(error)) from None
    shape = (anchor.shape[0] if anchor.rank else 1, channels * math.prod(block), count)
    if anchor.shape == shape:
        return Proposal(attrs)
    return Proposal(attrs, (Operand(anchor.with_shape(shape)),))


def infer_col2im(types: tuple[TensorType, ...], attrs: Mapping[str, Any]) -> tuple[TensorType, ...]:
    x = types[0]
    counts = col2im_blocks(attrs)
    block = math.prod(attrs["block_shape"])
    if len(types) != 1 or x.dtype not in SAMPLING_DTYPES or x.rank != 3 or len(counts) != 2 \
            or x.shape[1] % block or x.shape[2] != math.prod(counts):
        raise ShapeError(f"Col2Im needs a float [N, C * {block}, {math.prod(counts)}] input for 2-D images, got {x}")
    return (x.with_shape((x.shape[0], x.shape[1] // block, *attrs["image_shape"])),)


def col2im(xs, attrs):
    x, rank = xs[0], 2
    pads = attrs.get("pads", (0,) * 2 * rank)
    if pads[:rank] != pads[rank:]:  # torch pads symmetrically: fold onto the larger canvas, then crop
        image = tuple(size + begin + end for size, begin, end in zip(attrs["image_shape"], pads[:rank], pads[rank:]))
        full = F.fold(x, image, attrs["block_shape"], dilation=attrs.get("dilations", (1,) * rank),
                      stride=attrs.get("strides", (1,) * rank))
        return full[:, :, pads[0]:pads[0] + attrs["image_shape"][0], pads[1]:pads[1] + attrs["image_shape"][1]]
    return F.fold(x, attrs["image_shape"], attrs["block_shape"], dilation=attrs.get("dilations", (1,) * rank),
                  padding=pads[:rank], stride=attrs.get("strides", (1,) * rank))


def lower_col2im(builder: OnnxBuilder, node: Node) -> None:
    attrs = {k: v for k, v in node.attr.items() if k not in ("image_shape", "block_shape")}
    inputs = [node.inputs[0], builder.constant(np.asarray(node.attr["image_shape"], np.int64)),
              builder.constant(np.asarray(node.attr["block_shape"], np.int64))]
    builder.node("Col2Im", inputs, node.outputs, **attrs)


# ---------------------------------------------------------------- AffineGrid


def propose_affine_grid(rng: random.Random, anchor: TensorType) -> Proposal:
    """2-D grids; the anchor is theta when it is [N, 2, 3], else only picks the dtype."""
    batch = anchor.shape[0] if anchor.rank == 3 else rng.randint(1, 3)
    attrs: dict[str, Any] = {"size": (batch, rng.randint(1, 4), rng.randint(1, 6), rng.randint(1, 6))}
    if rng.random() < 0.8:
        # With align_corners an extent of 1 is ambiguous: torch samples its centre 0, ONNX's
        # function -1 (linspace(-1, 1, 1)).
        attrs["align_corners"] = int(rng.random() < 0.5 and min(attrs["size"][2:]) > 1)
    if anchor.shape == (batch, 2, 3):
        return Proposal(attrs)
    return Proposal(attrs, (Operand(anchor.with_shape((batch, 2, 3))),))


def infer_affine_grid(types: tuple[TensorType, ...], attrs: Mapping[str, Any]) -> tuple[TensorType, ...]:
    theta, size = types[0], tuple(attrs["size"])
    if len(types) != 1 or theta.dtype not in SAMPLING_DTYPES or len(size) != 4 or theta.shape != (size[0], 2, 3) \
            or min(size) < 1:
        raise ShapeError(f"AffineGrid takes an [N, 2, 3] float theta and a positive size [N, C, H, W], "
                         f"got {theta} and {size}")
    return (theta.with_shape((size[0], size[2], size[3], 2)),)


def affine_grid(xs, attrs):
    theta = xs[0]
    work = theta.float() if theta.dtype == torch.float16 else theta
    return F.affine_grid(work, list(attrs["size"]), align_corners=bool(attrs.get("align_corners", 0))).to(theta.dtype)


def lower_affine_grid(builder: OnnxBuilder, node: Node) -> None:
    attrs = {k: v for k, v in node.attr.items() if k != "size"}
    size = builder.constant(np.asarray(node.attr["size"], np.int64))
    builder.node("AffineGrid", [node.inputs[0], size], node.outputs, **attrs)


# ---------------------------------------------------------------- RoiAlign

ROI_ALIGN_DTYPES = frozenset({DType.float16, DType.float32, DType.float64})
ROI_MODES = ("avg", "max")
ROI_TRANSFORMS = ("half_pixel", "output_half_pixel")


def propose_roi_align(rng: random.Random, anchor: TensorType) -> Proposal:
    """Boxes [x1, y1, x2, y2] inside the image once scaled, on a grid of quarters."""
    batch, _, height, width = anchor.shape
    if not anchor.numel:
        raise Unsatisfiable(f"RoiAlign samples a non-empty image, not {anchor}")
    gen = numpy_gen(rng)
    count = rng.randint(1, 4)
    scale = rng.choice((1.0, 1.0, 0.5, 2.0))
    boxes = np.empty((count, 4))
    for axis, size in ((0, width), (1, height)):
        low = gen.integers(0, 4 * size - 3, size=count) / 4  # in [0, size - 1], in image coordinates
        high = low + gen.integers(0, 4 * size - 4 * low + 1) / 4  # in [low, size]
        boxes[:, axis], boxes[:, axis + 2] = low, high
    rois = (boxes / scale).astype(anchor.dtype.numpy)
    indices = gen.integers(0, batch, size=count).astype(np.int64)
    attrs: dict[str, Any] = {"output_height": rng.randint(1, 4), "output_width": rng.randint(1, 4),
                             "sampling_ratio": rng.randint(1, 3), "spatial_scale": scale}
    if rng.random() < 0.8:
        attrs["mode"] = rng.choice(ROI_MODES)
    if rng.random() < 0.8:
        attrs["coordinate_transformation_mode"] = rng.choice(ROI_TRANSFORMS)
    return Proposal(attrs, (ANCHOR, Operand(anchor.with_shape((count, 4)), rois),
                            Operand(TensorType(DType.int64, (count,)), indices)))


def infer_roi_align(types: tuple[TensorType, ...], attrs: Mapping[str, Any]) -> tuple[TensorType, ...]:
    if len(types) != 3:
        raise ShapeError(f"RoiAlign takes an image, boxes and batch indices, got {types}")
    x, rois, indices = types
    if x.dtype not in ROI_ALIGN_DTYPES or x.rank != 4 or rois.dtype is not x.dtype or rois.rank != 2 \
            or rois.shape[1] != 4 or indices != TensorType(DType.int64, rois.shape[:1]):
        raise ShapeError(f"RoiAlign takes a float [N, C, H, W] image, [R, 4] boxes and [R] int64 batch indices, "
                         f"got {', '.join(map(str, types))}")
    if attrs.get("mode", "avg") not in ROI_MODES \
            or attrs.get("coordinate_transformation_mode", "half_pixel") not in ROI_TRANSFORMS:
        raise ShapeError(f"RoiAlign mode or coordinate_transformation_mode is unknown: {dict(attrs)}")
    if attrs.get("sampling_ratio", 0) < 1 or min(attrs.get("output_height", 1), attrs.get("output_width", 1)) < 1:
        raise ShapeError(f"RoiAlign needs a positive sampling_ratio and output extents: {dict(attrs)}")
    return (x.with_shape((rois.shape[0], x.shape[1], attrs.get("output_height", 1), attrs.get("output_width", 1))),)


def roi_samples(start, size, bins: int, ratio: int, extent: int):
    """Along one axis, per box: the samples' low and high neighbours, their weights, and
    whether each sample lies within [-1, extent] (ONNX's RoiAlign bilinear rule)."""
    step = size / bins
    bin_index = torch.arange(bins, device=start.device).repeat_interleave(ratio).to(start.dtype)
    within = (torch.arange(ratio, device=start.device).repeat(bins).to(start.dtype) + 0.5)
    at = start[:, None] + bin_index[None] * step[:, None] + within[None] * step[:, None] / ratio
    inside = (at >= -1.0) & (at <= extent)
    at = at.clamp(min=0)
    low = at.floor().long()
    edge = low >= extent - 1
    low = torch.where(edge, torch.full_like(low, extent - 1), low)
    high = torch.where(edge, low, low + 1)
    at = torch.where(edge, low.to(at.dtype), at)
    fraction = at - low.to(at.dtype)
    return low, high, 1.0 - fraction, fraction, inside


def roi_align(xs, attrs):
    x, rois, indices = xs
    _, channels, height, width = x.shape
    out_h, out_w = attrs.get("output_height", 1), attrs.get("output_width", 1)
    ratio = attrs["sampling_ratio"]
    half_pixel = attrs.get("coordinate_transformation_mode", "half_pixel") == "half_pixel"
    boxes = rois * attrs.get("spatial_scale", 1.0) - (0.5 if half_pixel else 0.0)
    size_w, size_h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    if not half_pixel:
        size_w, size_h = size_w.clamp(min=1.0), size_h.clamp(min=1.0)
    y_low, y_high, y_keep, y_take, y_in = roi_samples(boxes[:, 1], size_h, out_h, ratio, height)
    x_low, x_high, x_keep, x_take, x_in = roi_samples(boxes[:, 0], size_w, out_w, ratio, width)
    inside = (y_in[:, :, None] & x_in[:, None, :]).to(x.dtype)
    features = x[indices.long()].reshape(len(indices), channels, height * width)
    corners = []
    for rows, row_weight in ((y_low, y_keep), (y_high, y_take)):
        for cols, col_weight in ((x_low, x_keep), (x_high, x_take)):
            positions = (rows[:, :, None] * width + cols[:, None, :]).reshape(len(indices), 1, -1)
            values = features.gather(2, positions.expand(-1, channels, -1)).reshape(
                len(indices), channels, rows.shape[1], cols.shape[1])
            weight = row_weight[:, :, None] * col_weight[:, None, :] * inside
            corners.append(weight[:, None] * values)
    grid = (len(indices), channels, out_h, ratio, out_w, ratio)
    if attrs.get("mode", "avg") == "max":
        return torch.stack(corners).amax(dim=0).reshape(grid).amax(dim=(3, 5))
    return (corners[0] + corners[1] + corners[2] + corners[3]).reshape(grid).sum(dim=(3, 5)) / (ratio * ratio)


# ---------------------------------------------------------------- DeformConv

DEFORM_CONV_DTYPES = frozenset({DType.float32})
DEFORM_CONV_CALLS = 256


def deform_conv_out(x: TensorType, kernel: tuple[int, ...], attrs: Mapping[str, Any]) -> tuple[int, int]:
    out = []
    for i in range(2):
        span = (kernel[i] - 1) * attrs.get("dilations", (1, 1))[i] + 1
        padded = x.shape[2 + i] + attrs.get("pads", (0,) * 4)[i] + attrs.get("pads", (0,) * 4)[i + 2]
        out.append((padded - span) // attrs.get("strides", (1, 1))[i] + 1)
    if min(out) < 1:
        raise ShapeError(f"DeformConv kernel {kernel} does not fit the padded input {x}")
    return out[0], out[1]


def propose_deform_conv(rng: random.Random, anchor: TensorType) -> Proposal:
    channels, spatial = anchor.shape[1], anchor.shape[2:]
    if channels > MAX_CHANNELS or not anchor.numel:
        raise Unsatisfiable(f"DeformConv keeps to non-empty inputs of at most {MAX_CHANNELS} channels")
    if min(spatial) < 2:
        raise Unsatisfiable("the reference evaluator's DeformConv divides by each spatial extent minus one")
    group = rng.choice(divisors(channels))
    offset_group = rng.choice(divisors(channels))
    kernel = tuple(rng.randint(1, min(3, size)) for size in spatial)
    attrs: dict[str, Any] = {"kernel_shape": kernel, "group": group, "offset_group": offset_group}
    if rng.random() < 0.5:
        attrs["strides"] = tuple(rng.randint(1, 2) for _ in spatial)
    if rng.random() < 0.5:
        attrs["dilations"] = tuple(rng.randint(1, 2) for _ in spatial)
    if rng.random() < 0.5:
        attrs["pads"] = tuple(rng.randint(0, 1) for _ in range(4))
    try:
        out_h, out_w = deform_conv_out(anchor, kernel, attrs)
    except ShapeError as error:
        raise Unsatisfiable(str(error)) from None
    # The reference evaluator samples with one GridSample call per batch, output and input
    # channel and output position: keep that count within DEFORM_CONV_CALLS.
    per_group = min(MAX_CHANNELS // group, DEFORM_CONV_CALLS // (anchor.shape[0] * channels * out_h * out_w))
    if per_group < 1:
        raise Unsatisfiable(f"DeformConv on {anchor} would take the reference evaluator too long")
    out_channels = group * rng.randint(1, per_group)
    taps = kernel[0] * kernel[1]
    inputs: tuple[Operand | None, ...] = (
        ANCHOR, Operand(anchor.with_shape((out_channels, channels // group, *kernel))),
        Operand(anchor.with_shape((anchor.shape[0], offset_group * 2 * taps, out_h, out_w))))
    if rng.random() < 0.6:
        inputs += (Operand(anchor.with_shape((out_channels,))),)
        if rng.random() < 0.5:
            inputs += (Operand(anchor.with_shape((anchor.shape[0], offset_group * taps, out_h, out_w))),)
    return Proposal(attrs, inputs)


def infer_deform_conv(types: tuple[TensorType, ...], attrs: Mapping[str, Any]) -> tuple[TensorType, ...]:
    same_dtype(types)
    if not 3 <= len(types) <= 5:
        raise ShapeError(f"DeformConv takes X, W, offset and an optional bias and mask, got {types}")
    x, w, offset = types[:3]
    group, offset_group = attrs.get("group", 1), attrs.get("offset_group", 1)
    if x.dtype not in DEFORM_CONV_DTYPES | {DType.float64} or x.rank != 4 or w.rank != 4 or x.shape[1] % group \
            or x.shape[1] % offset_group or w.shape[1] * group != x.shape[1] or w.shape[0] % group:
        raise ShapeError(f"DeformConv weight {w} does not fit input {x} with group {group}, "
                         f"offset_group {offset_group}")
    kernel = tuple(attrs.get("kernel_shape", w.shape[2:]))
    if kernel != w.shape[2:] or min(x.shape[2:]) < 2:
        raise ShapeError(f"DeformConv kernel_shape {kernel} must match the weight {w} on an image of at least 2x2")
    out_h, out_w = deform_conv_out(x, kernel, attrs)
    taps = kernel[0] * kernel[1]
    if offset.shape != (x.shape[0], offset_group * 2 * taps, out_h, out_w) \
            or (len(types) > 3 and types[3].shape != (w.shape[0],)) \
            or (len(types) > 4 and types[4].shape != (x.shape[0], offset_group * taps, out_h, out_w)):
        raise ShapeError(f"DeformConv offset, bias or mask does not fit: {', '.join(map(str, types))}")
    return (x.with_shape((x.shape[0], w.shape[0], out_h, out_w)),)


def deform_conv(xs, attrs):
    """Bilinear samples of every tap at its offset position (GridSample, align_corners=1, zeros),
    times the mask, contracted with the weights group by group."""
    x, w, offset = xs[:3]
    bias, mask = (xs[3] if len(xs) > 3 else None), (xs[4] if len(xs) > 4 else None)
    batch, channels, height, width = x.shape
    kernel_h, kernel_w = w.shape[2:]
    out_h, out_w = offset.shape[2:]
    group, offset_group = attrs.get("group", 1), attrs.get("offset_group", 1)
    stride_h, stride_w = attrs.get("strides", (1, 1))
    dilation_h, dilation_w = attrs.get("dilations", (1, 1))
    pads = attrs.get("pads", (0,) * 4)
    offset = offset.reshape(batch, offset_group, kernel_h, kernel_w, 2, out_h, out_w)

    def positions(pad, stride, dilation, taps, outs, axis):
        base = (torch.arange(taps, device=x.device) * dilation)[:, None] \
            + (torch.arange(outs, device=x.device) * stride - pad)[None, :]
        shape = (1, 1, taps, 1, outs, 1) if axis == 0 else (1, 1, 1, taps, 1, outs)
        return base.to(x.dtype).reshape(shape) + offset[:, :, :, :, axis]

    rows = positions(pads[0], stride_h, dilation_h, kernel_h, out_h, 0)
    cols = positions(pads[1], stride_w, dilation_w, kernel_w, out_w, 1)
    grid = torch.stack((cols / (width - 1) * 2 - 1, rows / (height - 1) * 2 - 1), dim=-1)
    grid = grid.reshape(batch * offset_group, kernel_h * kernel_w * out_h, out_w, 2)
    images = x.reshape(batch * offset_group, channels // offset_group, height, width)
    samples = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    samples = samples.reshape(batch, offset_group, channels // offset_group, kernel_h, kernel_w, out_h, out_w)
    if mask is not None:
        samples = samples * mask.reshape(batch, offset_group, 1, kernel_h, kernel_w, out_h, out_w)
    samples = samples.reshape(batch, group, channels // group, kernel_h, kernel_w, out_h, out_w)
    weights = w.reshape(group, w.shape[0] // group, channels // group, kernel_h, kernel_w)
    result = torch.einsum("bgcklij,gockl->bgoij", samples, weights).reshape(batch, w.shape[0], out_h, out_w)
    return result if bias is None else result + bias.reshape(1, -1, 1, 1)


SPECS = [
    OpSpec("GridSample", Family.SAMPLING, SAMPLING_DTYPES, infer_grid_sample, grid_sample, propose_grid_sample,
           ranks=(4, 4), since=20),
    OpSpec("Col2Im", Family.SAMPLING, SAMPLING_DTYPES, infer_col2im, col2im, propose_col2im, ranks=(0, 4),
           onnx=lower_col2im, since=18,
           onnx_form=OnnxForm(constant_inputs={1: "image_shape", 2: "block_shape"})),
    # float16 and float64 AffineGrid: the reference evaluator returns float32 grids. Shape
    # inference still takes float64, for the float64 judge.
    OpSpec("AffineGrid", Family.SAMPLING, AFFINE_GRID_DTYPES, infer_affine_grid, affine_grid, propose_affine_grid,
           ranks=(0, 4), onnx=lower_affine_grid, since=20, onnx_form=constant_input("size")),
    # Boxes and batch indices are fixed in range: mutants keep the input types.
    OpSpec("RoiAlign", Family.SAMPLING, ROI_ALIGN_DTYPES, infer_roi_align, roi_align, propose_roi_align,
           ranks=(4, 4), since=16, fixed_input_types=True,
           onnx_form=OnnxForm(defaults={"mode": "avg", "coordinate_transformation_mode": "half_pixel",
                                        "output_height": 1, "output_width": 1, "spatial_scale": 1.0})),
    # float16 and float64 DeformConv: the reference evaluator samples through its GridSample, which
    # rounds sample coordinates to float32 (and accumulates float16 in float16). Shape inference
    # still takes float64, for the float64 judge.
    OpSpec("DeformConv", Family.SAMPLING, DEFORM_CONV_DTYPES, infer_deform_conv, deform_conv, propose_deform_conv,
           ranks=(4, 4), since=19),
]
