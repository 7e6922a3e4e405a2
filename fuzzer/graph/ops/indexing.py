"""Indexing operators: gathers, scatters, one-hot encoding, resizing, Compress and TfIdfVectorizer.

Indices are fixed weights (``Operand`` with values) drawn in range, and scatter targets are
unique, so every graph is valid and deterministic whatever the random inputs are.

Compress's output extent is the number of true conditions, known only from their values:
as Range's bounds, the condition is an IR attribute (a constant bool input in ONNX), so the
IR knows the extent while the data stays a run-time value.

TfIdfVectorizer counts the n-grams of a fixed pool (integers; the IR has no strings) in its
int32 or int64 input. ONNX's output is always float32; the IR's ``output_dtype`` (float32, its
default, the only one exported) lets the float64 judge promote it. The reference evaluator and
onnxruntime index ``weights`` by output position, ONNX's text by pool position: proposals
with weights map the pool's n-grams to the outputs in order, so both readings agree. IDF and
TFIDF always have weights: the reference evaluator fails without them.
"""

from __future__ import annotations

import math
import random
from typing import Any, Mapping, Sequence

import numpy as np

from fuzzer.graph.ir import ALL_DTYPES, FLOATS, FRESH, INTS, NUMERIC, DType, Node, TensorType
from fuzzer.graph.ops.spec import (ANCHOR, F, Family, OnnxBuilder, OnnxForm, Operand, OpSpec, Proposal,
                                   constant_input, normalize_axis, torch)
from fuzzer.graph.rejected import ShapeError, Unsatisfiable
from fuzzer.graph.ops.shape import one_type
from fuzzer.graph.values import torch_dtype

INDEX_DTYPES = (DType.int32, DType.int64)
# OneHot's values take no bfloat16 (opset 17); bool values break the reference evaluator,
# which computes ``onehot * (on - off) + off``.
ONE_HOT_VALUE_DTYPES = NUMERIC - {DType.bfloat16}
# torch interpolates integers only as uint8, and uint8 only with nearest: other integer
# dtypes have no torch kernel, and torch's integer linear/cubic rounding is not ONNX's.
RESIZE_DTYPES = FLOATS | {DType.uint8}
REDUCTIONS = ("none", "add", "mul")
REDUCIBLE = NUMERIC - {DType.int8, DType.uint8}


def numpy_gen(rng: random.Random) -> np.random.Generator:
    return np.random.default_rng(rng.getrandbits(32))


def maybe_negative(gen: np.random.Generator, positions: np.ndarray, dims: Any) -> np.ndarray:
    """In-range positions, some written as their negative equivalent (position - dim)."""
    return np.where(gen.random(positions.shape) < 0.3, positions - dims, positions)


def in_range(gen: np.random.Generator, shape: Sequence[int], dim: int, dtype: DType) -> np.ndarray:
    return gen.integers(-dim, dim, size=tuple(shape)).astype(dtype.numpy)


def wrapped(indices, dim: int):
    """ONNX negative indices count from the back; torch wants them non-negative int64."""
    indices = indices.long()
    return torch.where(indices < 0, indices + dim, indices)


def axis_attr(rng: random.Random, axis: int, rank: int, allow_minus_one: bool = True) -> dict[str, int]:
    """The axis attribute, sometimes negative, sometimes left to its default of 0."""
    if axis == 0 and rng.random() < 0.3:
        return {}
    negative = rng.random() < 0.4 and (allow_minus_one or axis != rank - 1)
    return {"axis": axis - rank if negative else axis}


def check_indices(indices: TensorType, allowed: Sequence[DType] = INDEX_DTYPES) -> None:
    if indices.dtype not in allowed:
        raise ShapeError(f"indices must be {' or '.join(d.value for d in allowed)}, got {indices}")


def fixed(values: np.ndarray) -> Operand:
    """An operand whose contents are ``values`` (a weight)."""
    return Operand(TensorType(DType.from_numpy(values.dtype), tuple(values.shape)), values)


# ---------------------------------------------------------------- Gather, GatherElements


def propose_gather(rng: random.Random, anchor: TensorType) -> Proposal:
    axis = rng.randrange(anchor.rank)
    index_rank = rng.randint(0, min(2, 5 - anchor.rank))  # output rank stays within 4
    shape = [rng.randint(1, 4) for _ in range(index_rank)]
    values = in_range(numpy_gen(rng), shape, anchor.shape[axis], rng.choice(INDEX_DTYPES))
    return Proposal(axis_attr(rng, axis, anchor.rank), (ANCHOR, fixed(values)))


def infer_gather(types, attrs):
    data, indices = types
    check_indices(indices)
    axis = normalize_axis(attrs.get("axis", 0), data.rank)
    return one_type(data.dtype, data.shape[:axis] + indices.shape + data.shape[axis + 1:])


def torch_gather(xs, attrs):
    data, indices = xs
    axis = normalize_axis(attrs.get("axis", 0), data.dim())
    # index_select, not data[indices]: a 0-d index would become a data-dependent .item()
    # under torch.compile.
    chosen = torch.index_select(data, axis, wrapped(indices, data.shape[axis]).reshape(-1))
    return chosen.reshape(tuple(data.shape[:axis]) + tuple(indices.shape) + tuple(data.shape[axis + 1:]))


def element_index_shape(rng: random.Random, anchor: TensorType, axis: int, longest: int,
                        shorter: bool) -> list[int]:
    """An indices shape with up to ``longest`` along ``axis`` and, off it, the data's dims
    or (``shorter``) dims no longer than the data's."""
    return [rng.randint(1, longest) if a == axis else rng.randint(1, d) if shorter else d
            for a, d in enumerate(anchor.shape)]


def element_axis(rng: random.Random, anchor: TensorType, gatherable: bool) -> tuple[int, dict[str, int]]:
    """An axis and its attribute for GatherElements/ScatterElements. ``gatherable`` works
    around the reference evaluator's GatherElements, which misreads axis -1 and takes at
    most 32 positions along the axis (np.choose)."""
    axes = [a for a, d in enumerate(anchor.shape) if d <= 32 or not gatherable]
    if not axes:
        raise Unsatisfiable("every dim exceeds 32")
    axis = rng.choice(axes)
    return axis, axis_attr(rng, axis, anchor.rank, allow_minus_one=not gatherable)


def propose_gather_elements(rng: random.Random, anchor: TensorType) -> Proposal:
    """Off the axis the indices match the data's dims: ONNX allows shorter ones, but the
    reference evaluator rejects them."""
    axis, attrs = element_axis(rng, anchor, gatherable=True)
    shape = element_index_shape(rng, anchor, axis, 6, shorter=False)
    values = in_range(numpy_gen(rng), shape, anchor.shape[axis], rng.choice(INDEX_DTYPES))
    return Proposal(attrs, (ANCHOR, fixed(values)))


def check_element_indices(data: TensorType, indices: TensorType, axis: int, scatter: bool) -> None:
    """GatherElements/ScatterElements indices: the data's rank; off the axis, the data's
    dims (gather) or no longer (scatter, where they are no longer along it either)."""
    check_indices(indices)
    fits = all(i <= d if scatter else a == axis or i == d
               for a, (i, d) in enumerate(zip(indices.shape, data.shape)))
    if indices.rank != data.rank or not fits:
        raise ShapeError(f"indices {indices} do not fit data {data} on axis {axis}")


def infer_gather_elements(types, attrs):
    data, indices = types
    axis = normalize_axis(attrs.get("axis", 0), data.rank)
    check_element_indices(data, indices, axis, scatter=False)
    return one_type(data.dtype, indices.shape)


def torch_gather_elements(xs, attrs):
    data, indices = xs
    axis = normalize_axis(attrs.get("axis", 0), data.dim())
    return torch.gather(data, axis, wrapped(indices, data.shape[axis]))


# ---------------------------------------------------------------- GatherND


def propose_gather_nd(rng: random.Random, anchor: TensorType) -> Proposal:
    batch_dims = rng.randint(0, 1) if anchor.rank >= 2 else 0
    depth = rng.randint(1, anchor.rank - batch_dims)  # coordinates per index tuple
    kept = anchor.rank - batch_dims - depth
    middle = [rng.randint(1, 4) for _ in range(rng.randint(0, min(2 - batch_dims, 4 - batch_dims - kept)))]
    shape = [*anchor.shape[:batch_dims], *middle, depth]
    dims = np.asarray(anchor.shape[batch_dims:batch_dims + depth])
    gen = numpy_gen(rng)
    values = maybe_negative(gen, (gen.random(shape) * dims).astype(np.int64), dims)
    attrs = {"batch_dims": batch_dims} if batch_dims or rng.random() < 0.3 else {}
    return Proposal(attrs, (ANCHOR, fixed(values)))


def infer_gather_nd(types, attrs):
    data, indices = types
    batch_dims = attrs.get("batch_dims", 0)
    check_indices(indices, (DType.int64,))
    if indices.rank < 1 + batch_dims or indices.shape[:batch_dims] != data.shape[:batch_dims] \
            or not 1 <= indices.shape[-1] <= data.rank - batch_dims:
        raise ShapeError(f"GatherND indices {indices} do not fit data {data} with batch_dims {batch_dims}")
    return one_type(data.dtype, indices.shape[:-1] + data.shape[batch_dims + indices.shape[-1]:])


def nd_coordinates(data, indices, batch_dims: int) -> tuple:
    """Advanced-indexing tensors (batch positions first) that select ``indices``' targets.

    Each carries an extra leading dimension of 1, so that no index is 0-d (torch.compile
    turns a 0-d index into a data-dependent ``.item()``); results gain that dimension too.
    """
    coords = [wrapped(indices[..., j], data.shape[batch_dims + j]).unsqueeze(0)
              for j in range(indices.shape[-1])]
    if batch_dims:
        batch = torch.arange(data.shape[0], device=data.device).reshape(1, -1, *[1] * (indices.dim() - 2))
        coords.insert(0, batch)
    return tuple(coords)


def torch_gather_nd(xs, attrs):
    data, indices = xs
    return data[nd_coordinates(data, indices, attrs.get("batch_dims", 0))][0]


# ---------------------------------------------------------------- ScatterElements, ScatterND


def reduction_attr(rng: random.Random, dtype: DType) -> dict[str, str]:
    """Reductions only where the pre-16 lowering's Add and Mul take the dtype (not bool,
    whose add the reference evaluator reads as or, nor int8/uint8 before opset 14)."""
    reduction = rng.choice(REDUCTIONS) if dtype in REDUCIBLE else "none"
    return {} if reduction == "none" and rng.random() < 0.5 else {"reduction": reduction}


def propose_scatter_elements(rng: random.Random, anchor: TensorType) -> Proposal:
    """Along the axis, each line of indices holds distinct positions (unique targets).
    Before opset 16 a reduction lowers through GatherElements, so its indices then meet
    the reference evaluator's GatherElements limits."""
    reduction = reduction_attr(rng, anchor.dtype)
    gatherable = reduction.get("reduction", "none") != "none"
    axis, attrs = element_axis(rng, anchor, gatherable)
    dim = anchor.shape[axis]
    shape = element_index_shape(rng, anchor, axis, dim, shorter=not gatherable)
    gen = numpy_gen(rng)
    keys = gen.random([dim if a == axis else d for a, d in enumerate(shape)])
    positions = np.take(np.argsort(keys, axis=axis), range(shape[axis]), axis=axis)
    values = maybe_negative(gen, positions, dim).astype(rng.choice(INDEX_DTYPES).numpy)
    return Proposal({**attrs, **reduction}, (ANCHOR, fixed(values), Operand(anchor.with_shape(shape))))


def colliding_elements(types: tuple[TensorType, ...], values: tuple[np.ndarray | None, ...],
                       attrs: Mapping[str, Any]) -> str | None:
    """Two constant indices of a ScatterElements without reduction that target one element
    (negative ones count from the end): which update lands there ONNX leaves undefined."""
    data, indices = types[0], values[1]
    if indices is None or attrs.get("reduction", "none") != "none":
        return None
    axis = normalize_axis(attrs.get("axis", 0), data.rank)
    targets = np.indices(indices.shape).reshape(indices.ndim, -1)
    targets[axis] = indices.reshape(-1) % data.shape[axis]
    if len(np.unique(targets, axis=1).T) < targets.shape[1]:
        return f"two of its indices target one element of {data} along axis {axis}"
    return None


def colliding_rows(types: tuple[TensorType, ...], values: tuple[np.ndarray | None, ...],
                   attrs: Mapping[str, Any]) -> str | None:
    """Two constant index rows of a ScatterND without reduction that name one slice."""
    data, indices = types[0], values[1]
    if indices is None or attrs.get("reduction", "none") != "none":
        return None
    depth = indices.shape[-1]
    rows = indices.reshape(-1, depth) % np.asarray(data.shape[:depth])
    if len(np.unique(rows, axis=0)) < len(rows):
        return f"two of its index rows name one slice of {data}"
    return None


def infer_scatter_elements(types, attrs):
    data, indices, updates = types
    axis = normalize_axis(attrs.get("axis", 0), data.rank)
    check_element_indices(data, indices, axis, scatter=True)
    check_updates(data, updates, indices.shape, attrs)
    return (data,)


def check_updates(data: TensorType, updates: TensorType, shape: tuple[int, ...],
                  attrs: Mapping[str, Any]) -> None:
    if updates != data.with_shape(shape):
        raise ShapeError(f"updates {updates} must be {data.dtype.value}{list(shape)}")
    if attrs.get("reduction", "none") not in REDUCTIONS:
        raise ShapeError(f"reduction {attrs['reduction']!r} is not one of {REDUCTIONS}")


def torch_scatter_elements(xs, attrs):
    data, indices, updates = xs
    axis = normalize_axis(attrs.get("axis", 0), data.dim())
    indices = wrapped(indices, data.shape[axis])
    reduction = attrs.get("reduction", "none")
    if reduction == "none":
        return torch.scatter(data, axis, indices, updates)
    return torch.scatter_reduce(data, axis, indices, updates, {"add": "sum", "mul": "prod"}[reduction])


def propose_scatter_nd(rng: random.Random, anchor: TensorType) -> Proposal:
    depth = rng.randint(1, anchor.rank)
    space = anchor.shape[:depth]
    count = rng.randint(1, min(math.prod(space), 6))
    batches = [[count]] + [[]] * (count == 1)
    if anchor.rank - depth <= 2:  # updates stay within rank 4
        batches += [[f, count // f] for f in range(1, count + 1) if count % f == 0]
    batch = rng.choice(batches)
    gen = numpy_gen(rng)
    flat = gen.choice(math.prod(space), size=count, replace=False)
    positions = np.stack(np.unravel_index(flat, space), axis=-1)
    values = maybe_negative(gen, positions, np.asarray(space)).astype(np.int64).reshape(*batch, depth)
    updates = Operand(anchor.with_shape((*batch, *anchor.shape[depth:])))
    return Proposal(reduction_attr(rng, anchor.dtype), (ANCHOR, fixed(values), updates))


def infer_scatter_nd(types, attrs):
    data, indices, updates = types
    check_indices(indices, (DType.int64,))
    if indices.rank < 1 or not 1 <= indices.shape[-1] <= data.rank:
        raise ShapeError(f"ScatterND indices {indices} do not fit data {data}")
    check_updates(data, updates, indices.shape[:-1] + data.shape[indices.shape[-1]:], attrs)
    return (data,)


def torch_scatter_nd(xs, attrs):
    data, indices, updates = xs
    coords = nd_coordinates(data, indices, 0)
    reduction = attrs.get("reduction", "none")
    combine = {"none": lambda old, new: new, "add": torch.add, "mul": torch.mul}[reduction]
    return data.index_put(coords, combine(data[coords], updates.unsqueeze(0)))


def lower_scatter(gather: str):
    """Scatter reductions are attributes from opset 16. With unique targets, a reduction is
    a gather, an Add or Mul, and a plain scatter, which is how older opsets get it."""
    def lowering(builder: OnnxBuilder, node: Node) -> None:
        attrs = dict(node.attr)
        reduction = attrs.pop("reduction", "none") if builder.opset < 16 else "none"
        data, indices, updates = node.inputs
        if reduction != "none":
            gathered, combined = builder.temporary(), builder.temporary()
            builder.node(gather, [data, indices], [gathered],
                         **{k: v for k, v in attrs.items() if k == "axis"})
            builder.node({"add": "Add", "mul": "Mul"}[reduction], [gathered, updates], [combined])
            updates = combined
        builder.node(node.op, [data, indices, updates], node.outputs, **attrs)
    return lowering


# ---------------------------------------------------------------- OneHot


def propose_one_hot(rng: random.Random, anchor: TensorType) -> Proposal:
    """The anchor is the indices; out-of-range ones give an all-off row. Integer indices
    only: the reference evaluator compares float indices without the int64 cast that ONNX
    prescribes, and casting NaN or infinity to an integer is undefined."""
    dtype = rng.choice(sorted(ONE_HOT_VALUE_DTYPES, key=lambda d: d.value))
    pair = rng.sample(range(-4, 8), 2)
    if dtype is DType.uint8:  # the reference computes on - off: keep it from wrapping
        pair = sorted(abs(v) for v in pair)
    values = np.asarray(pair, dtype=dtype.numpy)
    if dtype.is_float:
        values = values + np.asarray(rng.choice([0.0, 0.5]), dtype=dtype.numpy)
    attrs: dict[str, Any] = {"depth": rng.randint(1, 8)}
    if rng.random() < 0.7:
        attrs["axis"] = rng.randint(-anchor.rank - 1, anchor.rank)
    return Proposal(attrs, (ANCHOR, fixed(values)))


def infer_one_hot(types, attrs):
    indices, values = types
    if indices.dtype not in INTS or values.shape != (2,) \
            or values.dtype not in ONE_HOT_VALUE_DTYPES or attrs["depth"] < 1:
        raise ShapeError(f"OneHot needs integer indices, two values and a positive depth, "
                         f"got {indices}, {values}, depth {attrs['depth']}")
    shape = list(indices.shape)
    shape.insert(normalize_axis(attrs.get("axis", -1), indices.rank + 1), attrs["depth"])
    return one_type(values.dtype, shape)


def lower_one_hot(builder: OnnxBuilder, node: Node) -> None:
    attrs = dict(node.attr)
    depth = builder.constant(np.asarray(attrs.pop("depth"), dtype=np.int64))
    builder.node("OneHot", [node.inputs[0], depth, node.inputs[1]], node.outputs, **attrs)


def torch_one_hot(xs, attrs):
    indices, values = xs
    depth = attrs["depth"]
    axis = normalize_axis(attrs.get("axis", -1), indices.dim() + 1)
    hot = (wrapped(indices, depth).unsqueeze(-1) == torch.arange(depth, device=indices.device)).movedim(-1, axis)
    return torch.where(hot, values[1], values[0])


# ---------------------------------------------------------------- Resize

# Each (mode, coordinate_transformation_mode, nearest_mode) has a torch equivalent:
#   nearest  asymmetric          floor               -> "nearest"
#   nearest  half_pixel          round_prefer_ceil   -> "nearest-exact"
#   nearest  half_pixel          round_prefer_floor  -> "nearest-exact" when no scale is
#            below 1 (then no source coordinate falls on a tie)
#   linear/cubic  half_pixel     -> align_corners=False;  align_corners -> align_corners=True
# pytorch_half_pixel equals half_pixel when every resized output dim exceeds 1. Not covered
# (no torch equivalent): the other nearest combinations, asymmetric linear/cubic,
# tf_crop_and_resize, half_pixel_symmetric (opset 19), exclude_outside, cubic_coeff_a other
# than -0.75, and the opset-18 antialias, axes and keep_aspect_ratio_policy.
POWER_OF_TWO_FACTORS = (0.25, 0.5, 1.0, 2.0, 4.0)
SMOOTH_FACTORS = (0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0)


def propose_resize(rng: random.Random, anchor: TensorType) -> Proposal:
    modes = ["nearest"] if anchor.dtype.is_int else ["nearest", "linear"] + ["cubic"] * (anchor.rank == 4)
    mode = rng.choice(modes)
    # Power-of-two factors where rounding would show: nearest picks (torch multiplies by
    # the reciprocal scale) and float64 cubic (the reference computes cubic weights in
    # float32, exactly only for such factors).
    exact = mode == "nearest" or (mode == "cubic" and anchor.dtype is DType.float64)
    spatial = anchor.shape[2:]
    factors = [rng.choice(POWER_OF_TWO_FACTORS if exact else SMOOTH_FACTORS) for _ in spatial]
    if rng.random() < 0.5:
        out = [math.floor(d * f) for d, f in zip(spatial, factors)]
        if any(o == d and f != 1 for d, f, o in zip(spatial, factors, out)):
            raise Unsatisfiable("torch copies a dim whose size does not change, whatever the scale")
        scaled = {"scales": (1.0, 1.0, *factors)}
        integral = all(d * f == o for d, f, o in zip(spatial, factors, out))
    else:
        out = [d * f if exact else rng.randint(1, 2 * d + 2) for d, f in zip(spatial, factors)]
        if any(o != int(o) for o in out):
            raise Unsatisfiable("explicit sizes must keep a power-of-two ratio")
        scaled, integral = {"sizes": (*anchor.shape[:2], *map(int, out))}, True
    if min(out) < 1:
        raise Unsatisfiable("resize to an empty tensor")
    transforms = ["half_pixel"] + ["pytorch_half_pixel"] * (min(out) > 1)
    nearest_mode = None
    if mode == "nearest":
        pairs = [("asymmetric", "floor")] + [(t, "round_prefer_ceil") for t in transforms]
        pairs += [(t, "round_prefer_floor") for t in transforms if min(factors) >= 1]
        transform, nearest_mode = rng.choice(pairs)
    else:  # align_corners uses the output size, not the scale: torch needs them to agree
        transform = rng.choice(transforms + ["align_corners"] * (integral and not exact))
    attrs: dict[str, Any] = {**scaled, "mode": mode, "coordinate_transformation_mode": transform}
    if nearest_mode:
        attrs["nearest_mode"] = nearest_mode
    defaults = {"mode": "nearest", "coordinate_transformation_mode": "half_pixel",
                "nearest_mode": "round_prefer_floor"}
    return Proposal({k: v for k, v in attrs.items() if defaults.get(k) != v or rng.random() < 0.5})


def infer_resize(types, attrs):
    x = types[0]
    if x.rank not in (3, 4) or ("scales" in attrs) == ("sizes" in attrs):
        raise ShapeError(f"Resize takes rank 3 or 4 and one of scales or sizes, got {x}, {attrs}")
    if "sizes" in attrs:
        shape = tuple(attrs["sizes"])
    else:
        shape = tuple(math.floor(d * np.float32(s)) for d, s in zip(x.shape, attrs["scales"]))
        if attrs["scales"][:2] != (1.0, 1.0):
            raise ShapeError("Resize scales batch and channel by 1 only")
    if len(shape) != x.rank or shape[:2] != x.shape[:2]:
        raise ShapeError(f"Resize to {shape} must keep the rank and the batch and channel dims of {x}")
    return one_type(x.dtype, shape)


def lower_resize(builder: OnnxBuilder, node: Node) -> None:
    attrs = dict(node.attr)
    if "scales" in attrs:
        inputs = ["", builder.constant(np.asarray(attrs.pop("scales"), dtype=np.float32))]
    else:
        inputs = ["", "", builder.constant(np.asarray(attrs.pop("sizes"), dtype=np.int64))]
    builder.node("Resize", [node.inputs[0], *inputs], node.outputs, **attrs)


def torch_resize(xs, attrs):
    x = xs[0]
    mode = attrs.get("mode", "nearest")
    transform = attrs.get("coordinate_transformation_mode", "half_pixel")
    if "sizes" in attrs:
        target = {"size": tuple(attrs["sizes"][2:])}
    else:
        target = {"scale_factor": tuple(float(np.float32(s)) for s in attrs["scales"][2:])}
    if mode == "nearest":
        return F.interpolate(x, mode="nearest" if transform == "asymmetric" else "nearest-exact", **target)
    torch_mode = {(3, "linear"): "linear", (4, "linear"): "bilinear", (4, "cubic"): "bicubic"}[x.dim(), mode]
    return F.interpolate(x, mode=torch_mode, align_corners=transform == "align_corners", **target)


def resize_skipping_zero_taps(xs, attrs):
    """The float64 judge's Resize: linear and cubic as F.interpolate weighs the taps, axis by axis
    (each weight matrix is the identity interpolated), leaving out every tap of weight exactly 0.
    Compilers skip such taps, while 0 * Inf in F.interpolate makes a NaN of an Inf next door."""
    x = xs[0]
    mode = attrs.get("mode", "nearest")
    if mode == "nearest":
        return torch_resize(xs, attrs)
    for axis in range(2, x.dim()):
        size = x.shape[axis]
        one_axis = {"sizes": (1, 1, attrs["sizes"][axis], 1)} if "sizes" in attrs else \
            {"scales": (1.0, 1.0, attrs["scales"][axis], 1.0)}
        identity = torch.eye(size, dtype=x.dtype, device=x.device).reshape(size, 1, size, 1)
        weights = torch_resize([identity], {**attrs, **one_axis})[:, 0, :, 0]  # [input, output] positions
        x = _weighted_taps(x.movedim(axis, -1), weights).movedim(-1, axis)
    return x


def _weighted_taps(x, weights):
    """``x @ weights`` over the last axis of ``x``, summing only the taps of nonzero weight (at
    most a few per output position: the work and memory stay those of the output)."""
    nonzero = weights != 0
    taps = int(nonzero.sum(0).max())
    positions = torch.argsort(nonzero.to(torch.int8), dim=0, descending=True, stable=True)[:taps]  # [taps, out]
    tap_weights = torch.gather(weights, 0, positions)
    result = torch.zeros((*x.shape[:-1], weights.shape[1]), dtype=x.dtype, device=x.device)
    for position, weight in zip(positions, tap_weights):
        result = result + torch.where(weight != 0, x[..., position] * weight, 0)
    return result


# ---------------------------------------------------------------- ReverseSequence


def propose_reverse_sequence(rng: random.Random, anchor: TensorType) -> Proposal:
    """sequence_lens in [1, time]: each batch entry's leading steps reverse."""
    batch_axis = rng.randint(0, 1)
    batch, time = anchor.shape[batch_axis], anchor.shape[1 - batch_axis]
    lengths = np.asarray([rng.randint(1, time) for _ in range(batch)], dtype=np.int64)
    return Proposal({"batch_axis": batch_axis, "time_axis": 1 - batch_axis},
                    (ANCHOR, Operand(TensorType(DType.int64, (batch,)), lengths)))


def infer_reverse_sequence(types: tuple[TensorType, ...], attrs: Mapping[str, Any]) -> tuple[TensorType, ...]:
    x, lengths = types
    if {attrs.get("batch_axis", 1), attrs.get("time_axis", 0)} != {0, 1} or x.rank < 2 \
            or lengths.dtype is not DType.int64 or lengths.shape != (x.shape[attrs.get("batch_axis", 1)],):
        raise ShapeError(f"ReverseSequence needs batch and time axes 0 and 1 and int64 [batch] lengths, got {x}")
    return (x,)


def reverse_sequence(xs, attrs):
    x, lengths = xs
    batch_axis, time_axis = attrs.get("batch_axis", 1), attrs.get("time_axis", 0)
    steps = torch.arange(x.shape[time_axis], device=x.device)
    index = torch.where(steps < lengths[:, None], lengths[:, None] - 1 - steps, steps)  # [batch, time]
    if batch_axis == 1:
        index = index.T
    return torch.gather(x, time_axis, index.reshape(*index.shape, *(1,) * (x.dim() - 2)).expand(x.shape))


# ---------------------------------------------------------------- Compress


COMPUTED_CONDITION_SHARE = 0.5  # Compress nodes whose condition is a value: they keep a run-time extent


def propose_compress(rng: random.Random, anchor: TensorType) -> Proposal:
    """A condition at most as long as the axis (or the flattened input): a bool value in
    ``COMPUTED_CONDITION_SHARE`` of proposals (the slices kept are a run-time extent), else a
    constant with a true element."""
    attrs: dict[str, Any] = {}
    extent = anchor.numel
    if anchor.rank and rng.random() < 0.7:
        axis = rng.randrange(anchor.rank)
        extent = anchor.shape[axis]
        attrs["axis"] = axis - anchor.rank if rng.random() < 0.3 else axis
    if extent < 1:
        raise Unsatisfiable(f"Compress keeps at least one of the input's {extent} slices")
    length = rng.randint(1, extent) if rng.random() < 0.3 else extent
    if rng.random() < COMPUTED_CONDITION_SHARE:
        return Proposal(attrs, (ANCHOR, Operand(TensorType(DType.bool, (length,)))))
    condition = [int(rng.random() < 0.6) for _ in range(length)]
    condition[rng.randrange(length)] = 1
    attrs["condition"] = tuple(condition)
    return Proposal(attrs)


def infer_compress(types: tuple[TensorType, ...], attrs: Mapping[str, Any]) -> tuple[TensorType, ...]:
    """A constant condition keeps as many slices as it has true elements; a bool vector's
    (a second input) keeps a run-time extent of at most its length."""
    x = types[0]
    if len(types) == 2:
        condition = types[1]
        if condition.dtype is not DType.bool or condition.rank != 1 or condition.runtime or "condition" in attrs:
            raise ShapeError(f"Compress takes a condition that is a bool vector of fixed length, got {condition}")
        length, kept = condition.shape[0], None
    else:
        values = tuple(attrs["condition"])
        if len(types) != 1 or not values or any(c not in (0, 1) for c in values):
            raise ShapeError(f"Compress takes one input and a non-empty 0/1 condition, got {types} and {values}")
        length, kept = len(values), sum(bool(c) for c in values)
    runtime = ((0, FRESH),) if kept is None else ()
    if "axis" not in attrs:
        if length > x.numel:
            raise ShapeError(f"Compress condition of {length} is longer than the flattened {x}")
        return (TensorType(x.dtype, (length if kept is None else kept,), runtime),)
    axis = normalize_axis(attrs["axis"], x.rank)
    if x.rank == 0 or length > x.shape[axis]:
        raise ShapeError(f"Compress condition of {length} is longer than axis {axis} of {x}")
    shape = (*x.shape[:axis], length if kept is None else kept, *x.shape[axis + 1:])
    return (TensorType(x.dtype, shape, tuple((axis, symbol) for _, symbol in runtime)),)


def torch_compress(xs, attrs):
    x = xs[0]
    if "axis" in attrs:
        axis = attrs["axis"] % x.dim()
    else:
        x, axis = x.reshape(-1), 0
    if len(xs) == 2:
        kept = torch.nonzero(xs[1]).reshape(-1)
    else:
        kept = torch.tensor([i for i, c in enumerate(attrs["condition"]) if c], dtype=torch.int64, device=x.device)
    return torch.index_select(x, axis, kept)


def lower_compress(builder: OnnxBuilder, node: Node) -> None:
    if len(node.inputs) == 2:
        builder.node("Compress", list(node.inputs), node.outputs, **node.attr)
        return
    attrs = {k: v for k, v in node.attr.items() if k != "condition"}
    condition = builder.constant(np.asarray(node.attr["condition"], dtype=bool))
    builder.node("Compress", [node.inputs[0], condition], node.outputs, **attrs)


# ---------------------------------------------------------------- TfIdfVectorizer

TFIDF_MODES = ("TF", "IDF", "TFIDF")


def propose_tfidf(rng: random.Random, anchor: TensorType) -> Proposal:
    """A pool of distinct n-grams of small integers, as random inputs and indices hold."""
    low = rng.randint(1, 3)
    high = rng.randint(low, 3)
    pool: list[int] = []
    counts = []
    total = 0
    for size in range(1, high + 1):
        counts.append(len(pool))
        wanted = rng.randint(0 if size < low else 1, 8 if size == 1 else 4)
        grams = {tuple(rng.randint(-2, 3) for _ in range(size)) for _ in range(wanted)}
        for gram in sorted(grams):
            pool.extend(gram)
        total += len(grams)
    attrs: dict[str, Any] = {"min_gram_length": low, "max_gram_length": high, "max_skip_count": rng.randint(0, 2),
                             "mode": rng.choice(TFIDF_MODES), "ngram_counts": tuple(counts),
                             "pool_int64s": tuple(pool)}
    if attrs["mode"] != "TF":  # the reference evaluator fails on IDF and TFIDF without weights
        attrs["ngram_indexes"] = tuple(range(total))
        attrs["weights"] = tuple(rng.randint(1, 12) / 4 for _ in range(total))
    else:
        attrs["ngram_indexes"] = tuple(rng.sample(range(total + rng.randint(0, 2)), total))
    return Proposal(attrs)


def tfidf_grams(attrs: Mapping[str, Any]) -> list[tuple[tuple[int, ...], int]]:
    """The pool's n-grams that count (of length min_gram_length to max_gram_length), each with
    its output position; raises ShapeError for a pool that does not split into n-grams."""
    pool, counts, indexes = tuple(attrs["pool_int64s"]), tuple(attrs["ngram_counts"]), tuple(attrs["ngram_indexes"])
    bounds = (*counts, len(pool))
    grams: list[tuple[tuple[int, ...], int]] = []
    position = 0
    for size, (start, end) in enumerate(zip(bounds, bounds[1:]), start=1):
        if end < start or (end - start) % size:
            raise ShapeError(f"TfIdfVectorizer ngram_counts {counts} do not split a pool of {len(pool)}")
        for first in range(start, end, size):
            if position >= len(indexes):
                raise ShapeError("TfIdfVectorizer has fewer ngram_indexes than n-grams in its pool")
            if attrs["min_gram_length"] <= size <= attrs["max_gram_length"]:
                grams.append((pool[first:first + size], indexes[position]))
            position += 1
    if position != len(indexes) or len({gram for gram, _ in grams}) != len(grams):
        raise ShapeError("TfIdfVectorizer needs one output position for each n-gram of its pool, "
                         "and distinct n-grams")
    return grams


def infer_tfidf(types: tuple[TensorType, ...], attrs: Mapping[str, Any]) -> tuple[TensorType, ...]:
    x = types[0]
    if len(types) != 1 or x.dtype not in INDEX_DTYPES or x.rank not in (1, 2):
        raise ShapeError(f"TfIdfVectorizer takes one int32 or int64 [C] or [N, C] input, got {types}")
    if attrs.get("mode") not in TFIDF_MODES or not 1 <= attrs["min_gram_length"] <= attrs["max_gram_length"] \
            or attrs["max_skip_count"] < 0 or len(attrs["ngram_counts"]) > attrs["max_gram_length"]:
        raise ShapeError(f"TfIdfVectorizer attributes are inconsistent: {dict(attrs)}")
    tfidf_grams(attrs)
    size = max(attrs["ngram_indexes"], default=-1) + 1
    if size < 1 or min(attrs["ngram_indexes"]) < 0 or ("weights" in attrs and len(attrs["weights"]) != size):
        raise ShapeError(f"TfIdfVectorizer needs output positions and one weight for each: {dict(attrs)}")
    dtype = DType(attrs.get("output_dtype", "float32"))
    if not dtype.is_float:
        raise ShapeError(f"TfIdfVectorizer output_dtype {dtype.value} is not a float")
    return (TensorType(dtype, (*x.shape[:-1], size)),)


def tfidf_vectorizer(xs, attrs):
    """Per row, how often each n-gram occurs: unigrams once, longer n-grams once for each
    skip distance from 1 to max_skip_count + 1; then TF, IDF or TFIDF weighting."""
    x = xs[0]
    rows = x.reshape(-1, x.shape[-1])
    length = rows.shape[1]
    size = max(attrs["ngram_indexes"]) + 1
    counts = [torch.zeros(rows.shape[0], dtype=torch.int64, device=x.device) for _ in range(size)]
    for gram, out in tfidf_grams(attrs):
        for distance in range(1, attrs["max_skip_count"] + 2 if len(gram) > 1 else 2):
            starts = length - (len(gram) - 1) * distance
            if starts < 1:
                break
            hit = torch.ones(rows.shape[0], starts, dtype=torch.bool, device=x.device)
            for k, value in enumerate(gram):
                hit = hit & (rows[:, k * distance:k * distance + starts] == value)
            counts[out] = counts[out] + hit.sum(dim=1)
    dtype = torch_dtype(DType(attrs.get("output_dtype", "float32")))
    frequency = torch.stack(counts, dim=1).to(dtype)
    weights = torch.tensor(attrs.get("weights", (1.0,) * size), dtype=dtype, device=x.device)
    if attrs["mode"] == "IDF":
        frequency = torch.where(frequency > 0, weights, torch.zeros_like(frequency))
    elif attrs["mode"] == "TFIDF":
        frequency = frequency * weights
    return frequency.reshape(*x.shape[:-1], size)


def lower_tfidf(builder: OnnxBuilder, node: Node) -> None:
    attrs = node.attr
    if attrs.pop("output_dtype", "float32") != "float32":
        raise ShapeError("ONNX TfIdfVectorizer has float32 outputs only")
    builder.node("TfIdfVectorizer", node.inputs, node.outputs, **attrs)


# Index operands are drawn in range of the data's shape: mutants keep the input types (fixed_input_types).
SPECS = [
    OpSpec("Gather", Family.INDEXING, ALL_DTYPES, infer_gather, torch_gather, propose_gather, ranks=(1, 4),
           exact=True, fixed_input_types=True),
    OpSpec("GatherElements", Family.INDEXING, ALL_DTYPES, infer_gather_elements, torch_gather_elements,
           propose_gather_elements, ranks=(1, 4), exact=True, fixed_input_types=True),
    OpSpec("GatherND", Family.INDEXING, ALL_DTYPES, infer_gather_nd, torch_gather_nd, propose_gather_nd,
           ranks=(1, 4), exact=True, fixed_input_types=True),
    OpSpec("ScatterElements", Family.INDEXING, ALL_DTYPES, infer_scatter_elements, torch_scatter_elements,
           propose_scatter_elements, ranks=(1, 4), onnx=lower_scatter("GatherElements"), exact=True,
           fixed_input_types=True, constants_rule=colliding_elements),
    OpSpec("ScatterND", Family.INDEXING, ALL_DTYPES, infer_scatter_nd, torch_scatter_nd, propose_scatter_nd,
           ranks=(1, 4), onnx=lower_scatter("GatherND"), exact=True, fixed_input_types=True,
           constants_rule=colliding_rows),
    OpSpec("OneHot", Family.INDEXING, INTS, infer_one_hot, torch_one_hot,
           propose_one_hot, ranks=(1, 3), onnx=lower_one_hot, exact=True,
           onnx_form=constant_input("depth", scalar=True)),
    OpSpec("Resize", Family.INDEXING, RESIZE_DTYPES, infer_resize, torch_resize, propose_resize,
           ranks=(3, 4), onnx=lower_resize, reference=resize_skipping_zero_taps,
           onnx_form=OnnxForm(constant_inputs={1: "roi", 2: "scales", 3: "sizes"})),
    OpSpec("ReverseSequence", Family.INDEXING, ALL_DTYPES - {DType.bfloat16}, infer_reverse_sequence, reverse_sequence,
           propose_reverse_sequence, ranks=(2, 4), keeps_values=True, steering=(0,), exact=True,
           fixed_input_types=True),
    # bfloat16 Compress: ONNX types it from opset 11 without bfloat16.
    OpSpec("Compress", Family.INDEXING, ALL_DTYPES - {DType.bfloat16}, infer_compress, torch_compress, propose_compress,
           ranks=(1, 4), onnx=lower_compress, keeps_values=True, steering=(0,), exact=True,
           onnx_form=constant_input("condition", value_inputs=frozenset({"condition"}))),
    # output_dtype is the IR's alone (see the module docstring); the output counts n-grams.
    OpSpec("TfIdfVectorizer", Family.INDEXING, frozenset(INDEX_DTYPES), infer_tfidf, tfidf_vectorizer, propose_tfidf,
           ranks=(1, 2), onnx=lower_tfidf, steering=(), exact=True, dtype_attr=("output_dtype", "float32")),
]
