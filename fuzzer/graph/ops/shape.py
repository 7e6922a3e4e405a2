"""Shape and layout operators: reshaping, permuting, joining, splitting, slicing, padding, cropping,
and the operators that make tensors from shapes.

Shapes, axes, sizes and pads are IR attributes; ONNX takes most of them as inputs, so the
lowerings turn them into int64 constants.
"""

from __future__ import annotations

import math
import random
from fractions import Fraction
from typing import Any, Mapping, Sequence

import numpy as np

from fuzzer.graph.ir import ALL_DTYPES, DType, Node, TensorType
from fuzzer.graph.ops.spec import (ANCHOR, F, Family, OnnxBuilder, OnnxForm, Operand, OpSpec, Proposal, broadcast,
                                   constant_input, normalize_axis, same_as_first, torch)
from fuzzer.graph.rejected import ShapeError, Unsatisfiable
from fuzzer.graph.values import torch_dtype

INT64_MAX = 2**63 - 1
INT64_MIN = -2**63
# ConstantOfShape's value tensor takes no bfloat16 before opset 20.
CONSTANT_DTYPES = ALL_DTYPES - {DType.bfloat16}
RANGE_DTYPES = frozenset({DType.float32, DType.float64, DType.int32, DType.int64})


def int64s(values: Sequence[int]) -> np.ndarray:
    return np.asarray(values, dtype=np.int64).reshape(len(values))


def signed_axis(rng: random.Random, axis: int, rank: int) -> int:
    """``axis`` written as itself or as its negative equivalent."""
    return axis - rank if rng.random() < 0.4 else axis


def one_type(dtype: DType, shape: Sequence[int]) -> tuple[TensorType, ...]:
    return (TensorType(dtype, tuple(int(d) for d in shape)),)


def with_constants(*names: str):
    """An ONNX lowering that passes the named IR attributes, where present, as int64
    constant inputs (absent ones are trailing optional inputs)."""
    def lowering(builder: OnnxBuilder, node: Node) -> None:
        attrs = dict(node.attr)
        constants = [builder.constant(int64s(attrs.pop(name))) for name in names if name in attrs]
        builder.node(node.op, [*node.inputs, *constants], node.outputs, **attrs)
    return lowering


# ---------------------------------------------------------------- Reshape, Flatten


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def random_factors(rng: random.Random, numel: int, rank: int) -> list[int]:
    """``rank`` positive dims whose product is ``numel`` (which must be 1 for rank 0)."""
    if rank == 0:
        return []
    dims = []
    for _ in range(rank - 1):
        dims.append(rng.choice([d for d in divisors(numel) if d <= 12]))
        numel //= dims[-1]
    dims.append(numel)
    rng.shuffle(dims)
    return dims


def keeping_dtype(shape_of):
    """An ``infer`` that keeps the dtype and takes the shape from ``shape_of(shape, attrs)``."""
    return lambda types, attrs: one_type(types[0].dtype, shape_of(types[0].shape, attrs))


def reshaped_to(shape_of):
    """A torch lowering that reshapes to ``shape_of(shape, attrs)``."""
    return lambda xs, attrs: torch.reshape(xs[0], shape_of(tuple(xs[0].shape), attrs))


def reshape_target(shape: Sequence[int], attrs: Mapping[str, Any]) -> tuple[int, ...]:
    """ONNX Reshape: 0 copies the input dim (unless allowzero), one -1 takes the rest."""
    target = attrs["shape"]
    dims = list(target)
    for axis, dim in enumerate(dims):
        if dim == 0 and not attrs.get("allowzero", 0):
            if axis >= len(shape):
                raise ShapeError(f"reshape entry 0 at axis {axis} has no input dim to copy")
            dims[axis] = shape[axis]
    if dims.count(-1) > 1 or any(d < -1 for d in dims):
        raise ShapeError(f"invalid reshape target {tuple(target)}")
    known = math.prod([d for d in dims if d != -1])  # a list: torch.compile cannot trace generators here
    numel = math.prod(shape)
    if -1 in dims:
        if known == 0 or numel % known:
            raise ShapeError(f"cannot infer -1 in {tuple(target)} for shape {tuple(shape)}")
        dims[dims.index(-1)] = numel // known
    if math.prod(dims) != numel:
        raise ShapeError(f"cannot reshape {tuple(shape)} to {tuple(target)}")
    return tuple(dims)


def propose_reshape(rng: random.Random, anchor: TensorType) -> Proposal:
    """A target that often keeps leading input dims (which 0 entries may then copy)."""
    kept = rng.randint(1, anchor.rank) if anchor.rank and rng.random() < 0.4 else 0
    rest = math.prod(anchor.shape[kept:])
    rank = 0 if rest == 1 and rng.random() < 0.2 else rng.randint(kept < 4, 4 - kept)
    target = [*anchor.shape[:kept], *random_factors(rng, rest, rank)]
    if target and rng.random() < 0.5:
        target[rng.randrange(len(target))] = -1
    for axis in range(min(len(target), anchor.rank)):
        if target[axis] == anchor.shape[axis] and rng.random() < 0.3:
            target[axis] = 0
    attrs: dict[str, Any] = {"shape": tuple(target)}
    if 0 not in target and rng.random() < 0.3:
        attrs["allowzero"] = 1  # same meaning as 0 when no entry is 0
    return Proposal(attrs)


def lower_reshape(builder: OnnxBuilder, node: Node) -> None:
    attrs = dict(node.attr)
    shape = builder.constant(int64s(attrs.pop("shape")))
    if builder.opset < 14:
        attrs.pop("allowzero", None)  # absent before opset 14; only 1 with no 0 entries
    builder.node("Reshape", [node.inputs[0], shape], node.outputs, **attrs)


def flatten_target(shape: Sequence[int], attrs: Mapping[str, Any]) -> tuple[int, int]:
    axis = attrs.get("axis", 1)
    axis = axis + len(shape) if axis < 0 else axis
    if not 0 <= axis <= len(shape):
        raise ShapeError(f"flatten axis {axis} is out of range for rank {len(shape)}")
    return math.prod(shape[:axis]), math.prod(shape[axis:])


def propose_flatten(rng: random.Random, anchor: TensorType) -> Proposal:
    if rng.random() < 0.2:
        return Proposal({})  # default axis 1
    return Proposal({"axis": rng.randint(-anchor.rank, anchor.rank)})


# ---------------------------------------------------------------- Squeeze, Unsqueeze, Transpose


def propose_squeeze(rng: random.Random, anchor: TensorType) -> Proposal:
    ones = [axis for axis, dim in enumerate(anchor.shape) if dim == 1]
    if not ones:
        raise Unsatisfiable("Squeeze needs a dim of size 1")
    if rng.random() < 0.25:
        return Proposal({})  # no axes: squeeze every dim of size 1
    axes = rng.sample(ones, rng.randint(1, len(ones)))
    return Proposal({"axes": tuple(signed_axis(rng, a, anchor.rank) for a in axes)})


def squeeze_axes(shape: Sequence[int], attrs: Mapping[str, Any]) -> set[int]:
    if "axes" not in attrs:
        return {axis for axis, dim in enumerate(shape) if dim == 1}
    axes = {normalize_axis(a, len(shape)) for a in attrs["axes"]}
    if len(axes) != len(attrs["axes"]) or any(shape[a] != 1 for a in axes):
        raise ShapeError(f"Squeeze axes {attrs['axes']} must be distinct dims of size 1 in {shape}")
    return axes


def infer_squeeze(types, attrs):
    x = types[0]
    axes = squeeze_axes(x.shape, attrs)
    return one_type(x.dtype, [d for axis, d in enumerate(x.shape) if axis not in axes])


def torch_squeeze(xs, attrs):
    return torch.squeeze(xs[0], tuple(sorted(squeeze_axes(xs[0].shape, attrs))))


def propose_unsqueeze(rng: random.Random, anchor: TensorType) -> Proposal:
    out_rank = anchor.rank + rng.randint(1, 4 - anchor.rank)
    axes = rng.sample(range(out_rank), out_rank - anchor.rank)
    return Proposal({"axes": tuple(signed_axis(rng, a, out_rank) for a in axes)})


def unsqueeze_axes(rank: int, axes: Sequence[int]) -> list[int]:
    out_rank = rank + len(axes)
    normalized = sorted(normalize_axis(a, out_rank) for a in axes)
    if len(set(normalized)) != len(normalized):
        raise ShapeError(f"Unsqueeze axes {tuple(axes)} repeat")
    return normalized


def infer_unsqueeze(types, attrs):
    x = types[0]
    shape = list(x.shape)
    for axis in unsqueeze_axes(x.rank, attrs["axes"]):
        shape.insert(axis, 1)
    return one_type(x.dtype, shape)


def torch_unsqueeze(xs, attrs):
    result = xs[0]
    for axis in unsqueeze_axes(result.dim(), attrs["axes"]):
        result = result.unsqueeze(axis)
    return result


def transpose_perm(rank: int, attrs: Mapping[str, Any]) -> tuple[int, ...]:
    perm = tuple(attrs.get("perm", range(rank - 1, -1, -1)))
    if sorted(perm) != list(range(rank)):
        raise ShapeError(f"perm {perm} is not a permutation of rank {rank}")
    return perm


def propose_transpose(rng: random.Random, anchor: TensorType) -> Proposal:
    if rng.random() < 0.2:
        return Proposal({})  # default: reverse the dims
    return Proposal({"perm": tuple(rng.sample(range(anchor.rank), anchor.rank))})


def infer_transpose(types, attrs):
    x = types[0]
    return one_type(x.dtype, [x.shape[a] for a in transpose_perm(x.rank, attrs)])


# ---------------------------------------------------------------- Expand, Tile, Concat, Split


def propose_expand(rng: random.Random, anchor: TensorType) -> Proposal:
    """A target shape (possibly shorter than the input) that broadcasts with the anchor."""
    length = rng.randint(0, 4)
    shape = []
    for position in range(length):
        axis = anchor.rank - length + position
        dim = anchor.shape[axis] if axis >= 0 else 1
        shape.append(rng.randint(1, 4) if dim == 1 else rng.choice([dim, 1]))
    return Proposal({"shape": tuple(shape)})


def infer_expand(types, attrs):
    x = types[0]
    return one_type(x.dtype, broadcast(x.shape, tuple(attrs["shape"])))


def propose_tile(rng: random.Random, anchor: TensorType) -> Proposal:
    return Proposal({"repeats": tuple(rng.choice([1, 1, 2, 3]) for _ in anchor.shape)})


def infer_tile(types, attrs):
    x = types[0]
    if len(attrs["repeats"]) != x.rank or min(attrs["repeats"], default=1) < 0:
        raise ShapeError(f"repeats {attrs['repeats']} do not fit rank {x.rank}")
    return one_type(x.dtype, [d * r for d, r in zip(x.shape, attrs["repeats"])])


def propose_concat(rng: random.Random, anchor: TensorType) -> Proposal:
    axis = rng.randrange(anchor.rank)
    others = []
    for _ in range(rng.randint(1, 3)):
        shape = list(anchor.shape)
        shape[axis] = rng.randint(1, 6)
        others.append(Operand(anchor.with_shape(shape)))
    inputs: list[Operand | None] = [ANCHOR, *others]
    rng.shuffle(inputs)
    return Proposal({"axis": signed_axis(rng, axis, anchor.rank)}, tuple(inputs))


def infer_concat(types, attrs):
    first = types[0]
    axis = normalize_axis(attrs["axis"], first.rank)
    for t in types:
        if t.dtype != first.dtype or t.rank != first.rank or any(
                a != b for i, (a, b) in enumerate(zip(t.shape, first.shape)) if i != axis):
            raise ShapeError(f"Concat inputs {', '.join(map(str, types))} differ off axis {axis}")
    shape = list(first.shape)
    shape[axis] = sum(t.shape[axis] for t in types)
    return one_type(first.dtype, shape)


def even_split(dim: int, parts: int) -> list[int]:
    """Opset-18 ``num_outputs`` sizes: chunks of ceil(dim / parts), the last one smaller."""
    chunk = -(-dim // parts)
    sizes = [chunk] * (parts - 1) + [dim - chunk * (parts - 1)]
    if sizes[-1] < 1:
        raise ShapeError(f"{dim} cannot be split into {parts} non-empty chunks")
    return sizes


def split_sizes(shape: Sequence[int], attrs: Mapping[str, Any]) -> list[int]:
    dim = shape[normalize_axis(attrs.get("axis", 0), len(shape))]
    if "num_outputs" in attrs:
        return even_split(dim, attrs["num_outputs"])
    sizes = list(attrs["split"])
    if sum(sizes) != dim or min(sizes) < 0:
        raise ShapeError(f"split sizes {tuple(sizes)} do not add up to {dim}")
    return sizes


def propose_split(rng: random.Random, anchor: TensorType) -> Proposal:
    axis = rng.randrange(anchor.rank)
    dim = anchor.shape[axis]
    attrs: dict[str, Any] = {} if axis == 0 and rng.random() < 0.3 else {
        "axis": signed_axis(rng, axis, anchor.rank)}
    if rng.random() < 0.5:
        parts = rng.choice([p for p in range(1, min(dim, 4) + 1)
                            if -(-dim // p) * (p - 1) < dim])
        attrs["num_outputs"] = parts
    else:
        cuts = sorted(rng.sample(range(1, dim), rng.randint(0, min(dim - 1, 3))))
        attrs["split"] = tuple(b - a for a, b in zip([0, *cuts], [*cuts, dim]))
    return Proposal(attrs)


def infer_split(types, attrs):
    x = types[0]
    axis = normalize_axis(attrs.get("axis", 0), x.rank)
    shapes = []
    for size in split_sizes(x.shape, attrs):
        shape = list(x.shape)
        shape[axis] = size
        shapes.append(x.with_shape(shape))
    return tuple(shapes)


def lower_split(builder: OnnxBuilder, node: Node) -> None:
    """``num_outputs`` is an attribute from opset 18; before, an even split needs no sizes
    input and an uneven one spells the sizes out."""
    attrs = dict(node.attr)
    inputs = list(node.inputs)
    if "split" in attrs:
        inputs.append(builder.constant(int64s(attrs.pop("split"))))
    elif builder.opset < 18:
        attrs.pop("num_outputs")
        axis = normalize_axis(attrs.get("axis", 0), node.output_types[0].rank)
        sizes = [t.shape[axis] for t in node.output_types]
        if len(set(sizes)) > 1:
            inputs.append(builder.constant(int64s(sizes)))
    builder.node("Split", inputs, node.outputs, **attrs)


def torch_split(xs, attrs):
    x = xs[0]
    return torch.split(x, split_sizes(x.shape, attrs), dim=attrs.get("axis", 0))


# ---------------------------------------------------------------- Slice, Pad


def slice_range(dim: int, start: int, end: int, step: int) -> range:
    """ONNX Slice clamping is Python's: negative ends count from the back, then clamp."""
    return range(*slice(start, end, step).indices(dim))


def slice_params(shape: Sequence[int], attrs: Mapping[str, Any]) -> dict[int, range]:
    starts, ends = attrs["starts"], attrs["ends"]
    axes = attrs.get("axes", tuple(range(len(starts))))
    steps = attrs.get("steps", (1,) * len(starts))
    if not len(starts) == len(ends) == len(axes) == len(steps) or 0 in steps:
        raise ShapeError("Slice starts, ends, axes and steps must match in length; steps nonzero")
    normalized = [normalize_axis(a, len(shape)) for a in axes]
    if len(set(normalized)) != len(normalized):
        raise ShapeError(f"Slice axes {axes} repeat")
    return {axis: slice_range(shape[axis], start, end, step)
            for axis, start, end, step in zip(normalized, starts, ends, steps)}


def slice_endpoint(rng: random.Random, dim: int) -> int:
    if rng.random() < 0.15:
        return rng.choice([INT64_MAX, INT64_MIN, 1000, -1000])
    return rng.randint(-dim - 2, dim + 2)


def propose_slice(rng: random.Random, anchor: TensorType) -> Proposal:
    axes = rng.sample(range(anchor.rank), rng.randint(1, anchor.rank))
    starts, ends, steps = [], [], []
    for axis in axes:
        dim = anchor.shape[axis]
        for _ in range(20):
            step = rng.choice([1, 1, 2, 3, -1, -2])
            start, end = slice_endpoint(rng, dim), slice_endpoint(rng, dim)
            if len(slice_range(dim, start, end, step)):
                break
        else:
            raise Unsatisfiable("no non-empty slice found")
        starts.append(start)
        ends.append(end)
        steps.append(step)
    attrs: dict[str, Any] = {"starts": tuple(starts), "ends": tuple(ends)}
    if axes != list(range(len(axes))) or rng.random() < 0.7:
        attrs["axes"] = tuple(signed_axis(rng, a, anchor.rank) for a in axes)
    if set(steps) != {1} or rng.random() < 0.5:
        attrs["steps"] = tuple(steps)
    return Proposal(attrs)


def infer_slice(types, attrs):
    x = types[0]
    ranges = slice_params(x.shape, attrs)
    return one_type(x.dtype, [len(ranges[a]) if a in ranges else d for a, d in enumerate(x.shape)])


def lower_slice(builder: OnnxBuilder, node: Node) -> None:
    attrs = node.attr
    count = len(attrs["starts"])
    values = [attrs["starts"], attrs["ends"]]
    if "axes" in attrs or "steps" in attrs:  # steps is the last input: axes must come first
        values.append(attrs.get("axes", tuple(range(count))))
    if "steps" in attrs:
        values.append(attrs["steps"])
    builder.node("Slice", [node.inputs[0], *map(builder.constant, map(int64s, values))], node.outputs)


def torch_slice(xs, attrs):
    result = xs[0]
    for axis, positions in slice_params(result.shape, attrs).items():
        result = result.index_select(axis, torch.tensor(list(positions), dtype=torch.int64, device=result.device))
    return result


PAD_MODES = ("constant", "reflect", "edge")


def propose_pad(rng: random.Random, anchor: TensorType) -> Proposal:
    mode = rng.choice(PAD_MODES)
    # Reflection cannot reach past the opposite edge; the reference evaluator rejects
    # negative pads (np.pad), so pads stay non-negative.
    pads = [rng.randint(0, min(3, d - 1) if mode == "reflect" else 3) for d in anchor.shape * 2]
    attrs: dict[str, Any] = {"pads": tuple(pads)}
    if mode != "constant" or rng.random() < 0.5:
        attrs["mode"] = mode
    inputs: tuple[Operand | None, ...] = (ANCHOR,)
    if mode == "constant" and rng.random() < 0.5:
        inputs = (ANCHOR, Operand(anchor.with_shape(())))
    return Proposal(attrs, inputs)


def pad_widths(shape: Sequence[int], attrs: Mapping[str, Any]) -> list[tuple[int, int]]:
    pads = attrs["pads"]
    if len(pads) != 2 * len(shape) or min(pads, default=0) < 0:
        raise ShapeError(f"pads {pads} do not fit rank {len(shape)}")
    widths = list(zip(pads[:len(shape)], pads[len(shape):]))
    if attrs.get("mode", "constant") == "reflect" and any(
            max(w) >= d for w, d in zip(widths, shape) if max(w) > 0):
        raise ShapeError(f"reflect pads {pads} must be smaller than the dims {tuple(shape)}")
    return widths


def infer_pad(types, attrs):
    x = types[0]
    if len(types) > 1 and (types[1].dtype != x.dtype or types[1].rank != 0):
        raise ShapeError(f"constant_value {types[1]} must be a {x.dtype.value} scalar")
    widths = pad_widths(x.shape, attrs)
    return one_type(x.dtype, [d + b + e for d, (b, e) in zip(x.shape, widths)])


def torch_pad(xs, attrs):
    """Gather along each axis with an index map; constant mode masks the outside."""
    result = xs[0]
    mode = attrs.get("mode", "constant")
    value = xs[1] if len(xs) > 1 else torch.zeros((), dtype=result.dtype, device=result.device)
    for axis, (begin, end) in enumerate(pad_widths(result.shape, attrs)):
        dim = result.shape[axis]
        positions = torch.arange(-begin, dim + end, device=result.device)
        if mode == "reflect":
            positions = torch.where(positions < 0, -positions, positions)
            positions = torch.where(positions >= dim, 2 * (dim - 1) - positions, positions)
        inside = (positions >= 0) & (positions < dim)
        result = result.index_select(axis, positions.clamp(0, dim - 1))
        if mode == "constant":
            mask = inside.reshape([-1 if a == axis else 1 for a in range(result.dim())])
            result = torch.where(mask, result, value)
    return result


def lower_pad(builder: OnnxBuilder, node: Node) -> None:
    attrs = dict(node.attr)
    pads = builder.constant(int64s(attrs.pop("pads")))
    builder.node("Pad", [node.inputs[0], pads, *node.inputs[1:]], node.outputs, **attrs)


# ---------------------------------------------------------------- DepthToSpace, SpaceToDepth


def propose_depth_to_space(rng: random.Random, anchor: TensorType) -> Proposal:
    blocks = [b for b in (2, 3) if anchor.shape[1] % (b * b) == 0]
    if not blocks:
        raise Unsatisfiable("channels are not a multiple of a square block size")
    attrs: dict[str, Any] = {"blocksize": rng.choice(blocks)}
    if rng.random() < 0.7:
        attrs["mode"] = rng.choice(["DCR", "CRD"])
    return Proposal(attrs)


def infer_depth_to_space(types, attrs):
    x = types[0]
    n, c, h, w = x.shape
    b = attrs["blocksize"]
    if c % (b * b):
        raise ShapeError(f"channels {c} are not a multiple of blocksize² {b * b}")
    return one_type(x.dtype, (n, c // (b * b), h * b, w * b))


def torch_depth_to_space(xs, attrs):
    x = xs[0]
    n, c, h, w = x.shape
    b = attrs["blocksize"]
    if attrs.get("mode", "DCR") == "CRD":
        return F.pixel_shuffle(x, b)
    blocks = x.reshape(n, b, b, c // (b * b), h, w).permute(0, 3, 4, 1, 5, 2)
    return blocks.reshape(n, c // (b * b), h * b, w * b)


def propose_space_to_depth(rng: random.Random, anchor: TensorType) -> Proposal:
    blocks = [b for b in (2, 3) if anchor.shape[2] % b == 0 and anchor.shape[3] % b == 0]
    if not blocks:
        raise Unsatisfiable("height and width share no block size")
    return Proposal({"blocksize": rng.choice(blocks)})


def infer_space_to_depth(types, attrs):
    x = types[0]
    n, c, h, w = x.shape
    b = attrs["blocksize"]
    if h % b or w % b:
        raise ShapeError(f"height {h} and width {w} must be multiples of blocksize {b}")
    return one_type(x.dtype, (n, c * b * b, h // b, w // b))


def torch_space_to_depth(xs, attrs):
    x = xs[0]
    n, c, h, w = x.shape
    b = attrs["blocksize"]
    blocks = x.reshape(n, c, h // b, b, w // b, b).permute(0, 3, 5, 1, 2, 4)
    return blocks.reshape(n, c * b * b, h // b, w // b)


# ---------------------------------------------------------------- Shape, Size


def shape_slice(shape: Sequence[int], attrs: Mapping[str, Any]) -> list[int]:
    return list(shape)[slice(attrs.get("start", 0), attrs.get("end", INT64_MAX))]


def propose_shape(rng: random.Random, anchor: TensorType) -> Proposal:
    rank = anchor.rank
    attrs: dict[str, Any] = {}
    if rng.random() < 0.6:
        attrs["start"] = rng.randint(-rank - 1, rank - 1)
    if rng.random() < 0.5:
        attrs["end"] = rng.randint(-rank, rank + 1)
    if not shape_slice(anchor.shape, attrs):
        raise Unsatisfiable(f"Shape start/end {attrs} select no dim")
    return Proposal(attrs)


def infer_shape(types, attrs):
    return one_type(DType.int64, [len(shape_slice(types[0].shape, attrs))])


def lower_shape(builder: OnnxBuilder, node: Node) -> None:
    """start/end are Shape attributes from opset 15; before, a Slice does the same clamping."""
    attrs = node.attr
    if builder.opset >= 15 or not attrs:
        builder.node("Shape", node.inputs, node.outputs, **attrs)
        return
    full = builder.temporary()
    builder.node("Shape", node.inputs, [full])
    bounds = [builder.constant(int64s([attrs.get(n, d)])) for n, d in (("start", 0), ("end", INT64_MAX))]
    builder.node("Slice", [full, *bounds], node.outputs)


# ---------------------------------------------------------------- Range, ConstantOfShape, Trilu


def range_length(start: float, limit: float, delta: float) -> int:
    return max(math.ceil(Fraction(limit - start) / Fraction(delta)), 0)


def propose_range(rng: random.Random, anchor: TensorType) -> Proposal:
    """The anchor only picks the dtype: Range's output length depends on its input values,
    so start, limit and delta are attributes (constants), and the node has no inputs.
    Float values are multiples of 1/4 so every implementation computes the same length."""
    count = rng.randint(1, 12)
    start = rng.randint(-8, 8)
    if anchor.dtype.is_float:
        delta = rng.choice([0.25, 0.5, 1.0, 1.5, 2.0, 3.0]) * rng.choice([-1, 1])
        limit = start + (count - rng.choice([0.0, 0.5])) * delta
        start = float(start)
    else:
        delta = rng.choice([1, 2, 3, 5]) * rng.choice([-1, 1])
        limit = start + (count - 1) * delta + rng.randint(1, abs(delta)) * (1 if delta > 0 else -1)
    return Proposal({"start": start, "limit": limit, "delta": delta, "dtype": anchor.dtype.value}, ())


def infer_range(types, attrs):
    dtype = DType(attrs["dtype"])
    if dtype not in RANGE_DTYPES or types or attrs["delta"] == 0:
        raise ShapeError(f"Range needs no inputs, a nonzero delta and one of {sorted(d.value for d in RANGE_DTYPES)}")
    return one_type(dtype, [range_length(attrs["start"], attrs["limit"], attrs["delta"])])


def lower_range(builder: OnnxBuilder, node: Node) -> None:
    dtype = DType(node.attr["dtype"]).numpy
    bounds = [builder.constant(np.asarray(node.attr[n], dtype=dtype)) for n in ("start", "limit", "delta")]
    builder.node("Range", bounds, node.outputs)


def torch_range(xs, attrs):
    return torch.arange(attrs["start"], attrs["limit"], attrs["delta"], dtype=torch_dtype(DType(attrs["dtype"])))


def propose_constant_of_shape(rng: random.Random, anchor: TensorType) -> Proposal:
    """IR ConstantOfShape takes the shape *of its input tensor*: Shape -> ConstantOfShape."""
    if rng.random() < 0.2:
        return Proposal({})  # default value: float32 zero
    dtype = rng.choice(sorted(CONSTANT_DTYPES, key=lambda d: d.value))
    if dtype is DType.bool:
        value: float | int = rng.randint(0, 1)
    elif dtype.is_float:
        value = rng.choice([0.0, 1.0, -1.5, 0.25, 3.0])
    else:
        value = rng.randint(0 if dtype is DType.uint8 else -8, 8)
    return Proposal({"dtype": dtype.value, "value": value})


def constant_dtype(attrs: Mapping[str, Any]) -> DType:
    return DType(attrs.get("dtype", "float32"))


def infer_constant_of_shape(types, attrs):
    dtype = constant_dtype(attrs)
    if dtype not in CONSTANT_DTYPES:
        raise ShapeError(f"ConstantOfShape cannot make {dtype.value}")
    return one_type(dtype, types[0].shape)


def lower_constant_of_shape(builder: OnnxBuilder, node: Node) -> None:
    from onnx import numpy_helper

    shape = builder.temporary()
    builder.node("Shape", node.inputs, [shape])
    attrs = {}
    if "value" in node.attr:
        value = np.asarray([node.attr["value"]], dtype=constant_dtype(node.attr).numpy)
        attrs["value"] = numpy_helper.from_array(value, "value")
    builder.node("ConstantOfShape", [shape], node.outputs, **attrs)


def torch_constant_of_shape(xs, attrs):
    return torch.full(tuple(xs[0].shape), attrs.get("value", 0), dtype=torch_dtype(constant_dtype(attrs)),
                      device=xs[0].device)


def propose_trilu(rng: random.Random, anchor: TensorType) -> Proposal:
    attrs: dict[str, Any] = {}
    if rng.random() < 0.7:
        attrs["upper"] = rng.randint(0, 1)
    if rng.random() < 0.7:
        height, width = anchor.shape[-2:]
        attrs["k"] = rng.randint(-height - 1, width + 1)
    return Proposal(attrs)


def lower_trilu(builder: OnnxBuilder, node: Node) -> None:
    attrs = dict(node.attr)
    inputs = list(node.inputs)
    if "k" in attrs:
        inputs.append(builder.constant(np.asarray(attrs.pop("k"), dtype=np.int64)))
    builder.node("Trilu", inputs, node.outputs, **attrs)


def torch_trilu(xs, attrs):
    function = torch.triu if attrs.get("upper", 1) else torch.tril
    return function(xs[0], attrs.get("k", 0))


# ---------------------------------------------------------------- EyeLike, CenterCropPad

EYE_DTYPES = ALL_DTYPES - {DType.bfloat16}


def propose_eye_like(rng: random.Random, anchor: TensorType) -> Proposal:
    return Proposal({"k": rng.randint(-anchor.shape[0], anchor.shape[1])} if rng.random() < 0.7 else {})


def torch_eye_like(xs, attrs):
    rows, columns = xs[0].shape
    k = attrs.get("k", 0)
    row = torch.arange(rows, device=xs[0].device).unsqueeze(1)
    return (torch.arange(columns, device=xs[0].device) - row == k).to(xs[0].dtype)


def centered_window(have: int, want: int) -> slice:
    """The centered ``min(have, want)`` positions out of ``max(have, want)``, odd extra at the end."""
    start = abs(have - want) // 2
    return slice(start, start + min(have, want))


def propose_center_crop_pad(rng: random.Random, anchor: TensorType) -> Proposal:
    axes = sorted(rng.sample(range(anchor.rank), rng.randint(1, anchor.rank)))
    shape = tuple(max(1, anchor.shape[a] + rng.randint(-3, 3)) for a in axes)
    if len(axes) == anchor.rank and rng.random() < 0.5:
        return Proposal({"shape": shape})
    return Proposal({"shape": shape, "axes": tuple(signed_axis(rng, a, anchor.rank) for a in axes)})


def center_crop_pad_shape(shape: Sequence[int], attrs: Mapping[str, Any]) -> list[int]:
    axes = [normalize_axis(a, len(shape)) for a in attrs.get("axes", range(len(shape)))]
    if len(axes) != len(attrs["shape"]) or len(set(axes)) != len(axes) or min(attrs["shape"], default=1) < 1:
        raise ShapeError(f"CenterCropPad needs one positive size per distinct axis, got {dict(attrs)}")
    result = list(shape)
    for axis, size in zip(axes, attrs["shape"]):
        result[axis] = size
    return result


def torch_center_crop_pad(xs, attrs):
    x = xs[0]
    shape = center_crop_pad_shape(x.shape, attrs)
    result = torch.zeros(shape, dtype=x.dtype, device=x.device)
    crop = tuple(centered_window(want, have) if have > want else slice(None) for have, want in zip(x.shape, shape))
    pad = tuple(centered_window(have, want) if want > have else slice(None) for have, want in zip(x.shape, shape))
    result[pad] = x[crop]
    return result


SPECS = [
    OpSpec("Reshape", Family.SHAPE, ALL_DTYPES, keeping_dtype(reshape_target), reshaped_to(reshape_target),
           propose_reshape, onnx=lower_reshape, keeps_values=True, exact=True, onnx_form=constant_input("shape")),
    OpSpec("Flatten", Family.SHAPE, ALL_DTYPES, keeping_dtype(flatten_target), reshaped_to(flatten_target),
           propose_flatten, ranks=(1, 4), keeps_values=True, exact=True),
    OpSpec("Squeeze", Family.SHAPE, ALL_DTYPES, infer_squeeze, torch_squeeze, propose_squeeze,
           ranks=(1, 4), onnx=with_constants("axes"), keeps_values=True, exact=True, onnx_form=constant_input("axes"),
           extent_free=True),
    OpSpec("Unsqueeze", Family.SHAPE, ALL_DTYPES, infer_unsqueeze, torch_unsqueeze, propose_unsqueeze,
           ranks=(0, 3), onnx=with_constants("axes"), keeps_values=True, exact=True, onnx_form=constant_input("axes"),
           extent_free=True),
    OpSpec("Transpose", Family.SHAPE, ALL_DTYPES, infer_transpose,
           lambda xs, a: xs[0].permute(transpose_perm(xs[0].dim(), a)), propose_transpose, ranks=(1, 4),
           keeps_values=True, exact=True, extent_free=True),
    OpSpec("Expand", Family.SHAPE, ALL_DTYPES, infer_expand,
           lambda xs, a: torch.broadcast_to(xs[0], broadcast(tuple(xs[0].shape), a["shape"])),
           propose_expand, onnx=with_constants("shape"), keeps_values=True, exact=True,
           onnx_form=constant_input("shape")),
    OpSpec("Tile", Family.SHAPE, ALL_DTYPES, infer_tile, lambda xs, a: torch.tile(xs[0], a["repeats"]),
           propose_tile, ranks=(1, 4), onnx=with_constants("repeats"), keeps_values=True, exact=True,
           onnx_form=constant_input("repeats")),
    OpSpec("Concat", Family.SHAPE, ALL_DTYPES, infer_concat, lambda xs, a: torch.cat(xs, a["axis"]),
           propose_concat, ranks=(1, 4), keeps_values=True, exact=True),
    OpSpec("Split", Family.SHAPE, ALL_DTYPES, infer_split, torch_split, propose_split, ranks=(1, 4),
           onnx=lower_split, keeps_values=True, exact=True, onnx_form=constant_input("split")),
    OpSpec("Slice", Family.SHAPE, ALL_DTYPES, infer_slice, torch_slice, propose_slice, ranks=(1, 4),
           onnx=lower_slice, keeps_values=True, exact=True,
           onnx_form=OnnxForm(constant_inputs={1: "starts", 2: "ends", 3: "axes", 4: "steps"})),
    OpSpec("Pad", Family.SHAPE, ALL_DTYPES, infer_pad, torch_pad, propose_pad, ranks=(1, 4), onnx=lower_pad,
           exact=True, onnx_form=constant_input("pads")),
    OpSpec("DepthToSpace", Family.SHAPE, ALL_DTYPES, infer_depth_to_space, torch_depth_to_space,
           propose_depth_to_space, ranks=(4, 4), keeps_values=True, exact=True),
    OpSpec("SpaceToDepth", Family.SHAPE, ALL_DTYPES, infer_space_to_depth, torch_space_to_depth,
           propose_space_to_depth, ranks=(4, 4), keeps_values=True, exact=True),
    OpSpec("Shape", Family.SHAPE, ALL_DTYPES, infer_shape,
           lambda xs, a: torch.tensor(shape_slice(xs[0].shape, a), dtype=torch.int64, device=xs[0].device),
           propose_shape, ranks=(1, 4), onnx=lower_shape, type_only=(0,)),
    OpSpec("Size", Family.SHAPE, ALL_DTYPES, lambda types, a: one_type(DType.int64, ()),
           lambda xs, a: torch.tensor(xs[0].numel(), dtype=torch.int64, device=xs[0].device), type_only=(0,)),
    OpSpec("Range", Family.SHAPE, RANGE_DTYPES, infer_range, torch_range, propose_range, onnx=lower_range,
           exact=True, dtype_attr=("dtype", None)),
    OpSpec("ConstantOfShape", Family.SHAPE, ALL_DTYPES, infer_constant_of_shape, torch_constant_of_shape,
           propose_constant_of_shape, onnx=lower_constant_of_shape, type_only=(0,), exact=True,
           dtype_attr=("dtype", "float32")),
    OpSpec("Trilu", Family.SHAPE, ALL_DTYPES, same_as_first, torch_trilu, propose_trilu,
           ranks=(2, 4), onnx=lower_trilu, since=14, keeps_values=True, pinned=lambda types, attrs: (0.0, 0.0),
           exact=True, onnx_form=constant_input("k", scalar=True)),
    OpSpec("EyeLike", Family.SHAPE, EYE_DTYPES, same_as_first, torch_eye_like, propose_eye_like, ranks=(2, 2),
           type_only=(0,), pinned=lambda types, attrs: (0.0, 1.0), exact=True),
    OpSpec("CenterCropPad", Family.SHAPE, ALL_DTYPES, keeping_dtype(center_crop_pad_shape), torch_center_crop_pad,
           propose_center_crop_pad, ranks=(1, 4), onnx=with_constants("shape"), since=18, exact=True,
           onnx_form=constant_input("shape")),
]
