"""Linear algebra: matrix products, convolutions and Einsum.

Also home of the sliding-window geometry (:func:`sliding_axes`, :func:`pad_to_windows`)
that Conv shares with the pooling operators.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from fuzzer.graph.ir import FLOATS, DType, TensorType
from fuzzer.graph.ops.spec import (ANCHOR, F, Family, OnnxForm, Operand, OpSpec, Proposal, broadcast,
                                   broadcastable_shape, torch)
from fuzzer.graph.rejected import ShapeError, Unsatisfiable

MATMUL_DTYPES = FLOATS | {DType.int32, DType.int64}
CONV_DTYPES = FLOATS - {DType.bfloat16}  # bfloat16 Conv and ConvTranspose arrive in opset 22
EINSUM_DTYPES = (FLOATS - {DType.bfloat16}) | {DType.int8, DType.uint8, DType.int32, DType.int64}
MAX_CHANNELS = 8
MAX_KERNEL = 3
AUTO_PADS = ("NOTSET", "NOTSET", "NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")
FLOAT_SCALES = (1.0, -1.0, 0.5, 2.0, 0.0, 1.5, -0.25)
INT_SCALES = (1.0, -1.0, 2.0, 0.0)  # Gemm on integers: only integral alpha and beta are well defined
EINSUM_LETTERS = "abcdefgh"


def same_dtype(types: Sequence[TensorType]) -> None:
    if len({t.dtype for t in types}) != 1:
        raise ShapeError(f"inputs must share one dtype, got {', '.join(map(str, types))}")


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


# ---------------------------------------------------------------- sliding windows


@dataclass(frozen=True)
class Axis:
    """One spatial axis of a sliding-window operator, with explicit pads and output size."""

    size: int
    kernel: int
    stride: int
    dilation: int
    begin: int
    end: int
    out: int

    @property
    def span(self) -> int:
        return (self.kernel - 1) * self.dilation + 1

    @property
    def extent(self) -> int:
        """The padded length that the output windows cover exactly."""
        return (self.out - 1) * self.stride + self.span


def sliding_axes(spatial: Sequence[int], kernel: Sequence[int], attrs: Mapping[str, Any],
                 ceil_mode: bool = False) -> tuple[Axis, ...]:
    """Resolve strides, dilations, pads and auto_pad to explicit per-axis geometry (ONNX rules)."""
    rank = len(spatial)
    strides = attrs.get("strides", (1,) * rank)
    dilations = attrs.get("dilations", (1,) * rank)
    pads = attrs.get("pads", (0,) * 2 * rank)
    auto_pad = attrs.get("auto_pad", "NOTSET")
    if not len(kernel) == len(strides) == len(dilations) == rank or len(pads) != 2 * rank:
        raise ShapeError(f"window attributes {dict(attrs)} do not fit {rank} spatial axes")
    axes = []
    for i, size in enumerate(spatial):
        stride = strides[i]
        span = (kernel[i] - 1) * dilations[i] + 1
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            out = -(-size // stride)
            total = max(0, (out - 1) * stride + span - size)
            begin = total // 2 if auto_pad == "SAME_UPPER" else total - total // 2
            end = total - begin
        elif auto_pad == "VALID":
            begin = end = 0
            out = -(-(size - span + 1) // stride)
        elif auto_pad == "NOTSET":
            begin, end = pads[i], pads[i + rank]
            room = size + begin + end - span
            out = (-(-room // stride) if ceil_mode else room // stride) + 1
        else:
            raise ShapeError(f"unknown auto_pad {auto_pad!r}")
        if out < 1 or size + begin + end < span:
            raise ShapeError(f"window span {span} exceeds padded axis {size + begin + end}")
        axes.append(Axis(size, kernel[i], stride, dilations[i], begin, end, out))
    return tuple(axes)


def pad_to_windows(x, axes: Sequence[Axis], fill: float):
    """``x`` padded (or cropped) on its spatial axes to exactly what the windows cover."""
    pad: list[int] = []
    for axis in reversed(axes):
        pad += [axis.begin, max(0, axis.extent - axis.size - axis.begin)]
    x = F.pad(x, pad, value=fill)
    for dim, axis in enumerate(axes, start=2):
        x = x.narrow(dim, 0, axis.extent)
    return x


def random_window(rng: random.Random, spatial: Sequence[int]) -> tuple[tuple[int, ...], ...]:
    """Random (kernel, strides, dilations) whose dilated kernels fit the unpadded axes."""
    dilations = tuple(rng.choice((1, 1, 2)) for _ in spatial)
    kernel = tuple(rng.randint(1, max(1, min(MAX_KERNEL, (size - 1) // d + 1)))
                   for size, d in zip(spatial, dilations))
    strides = tuple(rng.randint(1, 3) for _ in spatial)
    return kernel, strides, dilations


# ---------------------------------------------------------------- MatMul and Gemm


def matmul_shape(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    """numpy.matmul shape rules: 1-D operands are promoted, then the promoted axis dropped."""
    if not a or not b:
        raise ShapeError("MatMul operands must have rank 1 or more")
    left = a if len(a) > 1 else (1, *a)
    right = b if len(b) > 1 else (*b, 1)
    if left[-1] != right[-2]:
        raise ShapeError(f"MatMul contracts {left[-1]} against {right[-2]}")
    shape = (*broadcast(left[:-2], right[:-2]), left[-2], right[-1])
    if len(a) == 1:
        shape = shape[:-2] + shape[-1:]
    if len(b) == 1:
        shape = shape[:-1]
    return shape


def infer_matmul(types: tuple[TensorType, ...], attrs: Mapping[str, Any]) -> tuple[TensorType, ...]:
    same_dtype(types)
    return (types[0].with_shape(matmul_shape(types[0].shape, types[1].shape)),)


def partner_batch(rng: random.Random, batch: tuple[int, ...], rank: int) -> tuple[int, ...]:
    """Batch dims of ``rank`` axes that broadcast against ``batch`` (either side may stretch)."""
    dims = []
    for i in range(rank):
        aligned = len(batch) - rank + i
        if aligned < 0:
            dims.append(rng.randint(1, 3))
        elif batch[aligned] == 1:
            dims.append(rng.choice((1, rng.randint(1, 4))))
        else:
            dims.append(batch[aligned] if rng.random() < 0.7 else 1)
    return tuple(dims)


def propose_matmul(rng: random.Random, anchor: TensorType) -> Proposal:
    anchor_left = rng.random() < 0.5
    k = anchor.shape[-1] if anchor_left or anchor.rank == 1 else anchor.shape[-2]
    rank = rng.randint(1, 4)
    if rank == 1:
        shape: tuple[int, ...] = (k,)
    else:
        free = rng.randint(1, 6)
        shape = (*partner_batch(rng, anchor.shape[:-2], rank - 2), *((k, free) if anchor_left else (free, k)))
    other = Operand(anchor.with_shape(shape))
    return Proposal({}, (ANCHOR, other) if anchor_left else (other, ANCHOR))


def gemm_dims(a: tuple[int, ...], b: tuple[int, ...], attrs: Mapping[str, Any]) -> tuple[int, int]:
    if len(a) != 2 or len(b) != 2:
        raise ShapeError("Gemm operands A and B must be matrices")
    m, k = a[::-1] if attrs["transA"] else a
    k_b, n = b[::-1] if attrs["transB"] else b
    if k != k_b:
        raise ShapeError(f"Gemm contracts {k} against {k_b}")
    return m, n


def infer_gemm(types: tuple[TensorType, ...], attrs: Mapping[str, Any]) -> tuple[TensorType, ...]:
    same_dtype(types)
    m, n = gemm_dims(types[0].shape, types[1].shape, attrs)
    if len(types) == 3 and broadcast(types[2].shape, (m, n)) != (m, n):
        raise ShapeError(f"Gemm C {types[2]} does not broadcast to [{m},{n}]")
    return (types[0].with_shape((m, n)),)


def propose_gemm(rng: random.Random, anchor: TensorType) -> Proposal:
    trans_a, trans_b = rng.randint(0, 1), rng.randint(0, 1)
    anchor_is_a = rng.random() < 0.6
    if anchor_is_a:
        m, k = anchor.shape[::-1] if trans_a else anchor.shape
        n = rng.randint(1, 6)
    else:
        k, n = anchor.shape[::-1] if trans_b else anchor.shape
        m = rng.randint(1, 6)
    a = anchor.with_shape((k, m) if trans_a else (m, k))
    b = anchor.with_shape((n, k) if trans_b else (k, n))
    inputs: list[Operand | None] = [ANCHOR, Operand(b)] if anchor_is_a else [Operand(a), ANCHOR]
    if rng.random() < 0.7:
        inputs.append(Operand(anchor.with_shape(broadcastable_shape(rng, (m, n)))))
    scales = FLOAT_SCALES if anchor.dtype.is_float else INT_SCALES
    return Proposal({"alpha": rng.choice(scales), "beta": rng.choice(scales),
                     "transA": trans_a, "transB": trans_b}, tuple(inputs))


def gemm(xs, attrs):
    a = xs[0].mT if attrs["transA"] else xs[0]
    b = xs[1].mT if attrs["transB"] else xs[1]
    product = torch.matmul(a, b)
    alpha, beta = (attrs["alpha"], attrs["beta"]) if product.is_floating_point() else \
        (int(attrs["alpha"]), int(attrs["beta"]))
    result = product * alpha
    if len(xs) == 3 and beta != 0:  # beta == 0 ignores C, NaN and Inf included (as torch.addmm)
        result = result + xs[2] * beta
    return result


# ---------------------------------------------------------------- Conv and ConvTranspose


def infer_conv(types: tuple[TensorType, ...], attrs: Mapping[str, Any]) -> tuple[TensorType, ...]:
    same_dtype(types)
    x, w = types[0], types[1]
    group = attrs["group"]
    if x.rank < 3 or w.rank != x.rank or x.shape[1] != w.shape[1] * group or w.shape[0] % group:
        raise ShapeError(f"Conv weight {w} does not fit input {x} with group {group}")
    if len(types) == 3 and types[2].shape != (w.shape[0],):
        raise ShapeError(f"Conv bias {types[2]} must have shape [{w.shape[0]}]")
    if tuple(attrs.get("kernel_shape", w.shape[2:])) != w.shape[2:]:
        raise ShapeError(f"kernel_shape {attrs['kernel_shape']} differs from the weight's {w.shape[2:]}")
    axes = sliding_axes(x.shape[2:], w.shape[2:], attrs)
    return (x.with_shape((x.shape[0], w.shape[0], *(a.out for a in axes))),)


def propose_conv(rng: random.Random, anchor: TensorType) -> Proposal:
    channels, spatial = anchor.shape[1], anchor.shape[2:]
    if channels > MAX_CHANNELS:
        raise Unsatisfiable(f"Conv keeps to {MAX_CHANNELS} input channels")
    group = rng.choice(divisors(channels))
    out_channels = group * rng.randint(1, MAX_CHANNELS // group)
    kernel, strides, dilations = random_window(rng, spatial)
    attrs: dict[str, Any] = {"auto_pad": rng.choice(AUTO_PADS), "dilations": dilations,
                             "group": group, "strides": strides}
    if attrs["auto_pad"] == "NOTSET":
        attrs["pads"] = tuple(rng.randint(0, 2) for _ in range(2 * len(spatial)))
    if rng.random() < 0.5:
        attrs["kernel_shape"] = kernel
    inputs: tuple[Operand | None, ...] = (
        ANCHOR, Operand(anchor.with_shape((out_channels, channels // group, *kernel))))
    if rng.random() < 0.6:
        inputs += (Operand(anchor.with_shape((out_channels,))),)
    return Proposal(attrs, inputs)


def conv(xs, attrs):
    x, w, *bias = xs
    axes = sliding_axes(tuple(x.shape[2:]), tuple(w.shape[2:]), attrs)
    function = getattr(F, f"conv{len(axes)}d")
    return function(pad_to_windows(x, axes, 0.0), w, bias[0] if bias else None,
                    stride=attrs["strides"], dilation=attrs["dilations"], groups=attrs["group"])


def infer_conv_transpose(types: tuple[TensorType, ...], attrs: Mapping[str, Any]) -> tuple[TensorType, ...]:
    same_dtype(types)
    x, w = types[0], types[1]
    group, spatial = attrs["group"], x.rank - 2
    if x.rank < 3 or w.rank != x.rank or w.shape[0] != x.shape[1] or x.shape[1] % group:
        raise ShapeError(f"ConvTranspose weight {w} does not fit input {x} with group {group}")
    out_channels = w.shape[1] * group
    if len(types) == 3 and types[2].shape != (out_channels,):
        raise ShapeError(f"ConvTranspose bias {types[2]} must have shape [{out_channels}]")
    strides, dilations, pads = attrs["strides"], attrs["dilations"], attrs["pads"]
    out = []
    for i, size in enumerate(x.shape[2:]):
        if not 0 <= attrs["output_padding"][i] < max(strides[i], dilations[i]):
            raise ShapeError("output_padding must be smaller than the stride or the dilation")
        span = (w.shape[2 + i] - 1) * dilations[i] + 1
        out.append(strides[i] * (size - 1) + attrs["output_padding"][i] + span - pads[i] - pads[i + spatial])
    if min(out) < 1:
        raise ShapeError(f"ConvTranspose output shape {out} is empty")
    return (x.with_shape((x.shape[0], out_channels, *out)),)


def propose_conv_transpose(rng: random.Random, anchor: TensorType) -> Proposal:
    channels, spatial = anchor.shape[1], anchor.shape[2:]
    if channels > MAX_CHANNELS:
        raise Unsatisfiable(f"ConvTranspose keeps to {MAX_CHANNELS} input channels")
    # The reference evaluator gets grouped ConvTranspose right only when it is depthwise with
    # one output channel per group and no bias: it slices W by output instead of input
    # channels, writes one channel per group and adds B[0] to every group.
    group = rng.choice((1, channels))
    per_group = 1 if group > 1 else rng.randint(1, MAX_CHANNELS)
    kernel, strides, dilations = random_window(rng, spatial)
    spans = [(k - 1) * d + 1 for k, d in zip(kernel, dilations)]
    attrs: dict[str, Any] = {
        "dilations": dilations, "group": group, "strides": strides,
        "output_padding": tuple(rng.randrange(s) for s in strides),
        "pads": tuple(rng.randint(0, min(2, span - 1)) for span in spans * 2)}
    if rng.random() < 0.5:
        attrs["kernel_shape"] = kernel
    inputs: tuple[Operand | None, ...] = (ANCHOR, Operand(anchor.with_shape((channels, per_group, *kernel))))
    if group == 1 and rng.random() < 0.6:
        inputs += (Operand(anchor.with_shape((per_group,))),)
    return Proposal(attrs, inputs)


def conv_transpose(xs, attrs):
    """The unpadded transposed convolution, then the pads cropped off both ends."""
    x, w, *bias = xs
    spatial = x.dim() - 2
    function = getattr(F, f"conv_transpose{spatial}d")
    full = function(x, w, bias[0] if bias else None, stride=attrs["strides"],
                    output_padding=attrs["output_padding"], groups=attrs["group"],
                    dilation=attrs["dilations"])
    pads = attrs["pads"]
    crop: list[int] = []
    for i in reversed(range(spatial)):
        crop += [-pads[i], -pads[i + spatial]]
    return F.pad(full, crop)


# ---------------------------------------------------------------- Einsum


def einsum_shape(equation: str, shapes: Sequence[tuple[int, ...]]) -> tuple[int, ...]:
    """Explicit (``->``) and implicit Einsum output shapes; no ellipsis."""
    inputs, arrow, output = equation.partition("->")
    terms = inputs.split(",")
    if len(terms) != len(shapes):
        raise ShapeError(f"equation {equation!r} has {len(terms)} operands, got {len(shapes)}")
    sizes: dict[str, int] = {}
    for term, shape in zip(terms, shapes):
        if len(term) != len(shape) or not all(c.isascii() and c.isalpha() for c in term):
            raise ShapeError(f"term {term!r} does not label shape {shape}")
        for letter, dim in zip(term, shape):
            if sizes.setdefault(letter, dim) != dim:
                raise ShapeError(f"label {letter!r} is both {sizes[letter]} and {dim}")
    if not arrow:
        counts = Counter("".join(terms))
        output = "".join(sorted(c for c, n in counts.items() if n == 1))
    if len(set(output)) != len(output) or any(c not in sizes for c in output):
        raise ShapeError(f"output {output!r} of {equation!r} is not a set of input labels")
    return tuple(sizes[c] for c in output)


def infer_einsum(types: tuple[TensorType, ...], attrs: Mapping[str, Any]) -> tuple[TensorType, ...]:
    same_dtype(types)
    return (types[0].with_shape(einsum_shape(attrs["equation"], [t.shape for t in types])),)


def propose_einsum(rng: random.Random, anchor: TensorType) -> Proposal:
    """Unary: transpose or reduce. Binary: (batched) matmul, outer, elementwise or dot product."""
    labels = rng.sample(EINSUM_LETTERS, anchor.rank)
    if rng.random() < 0.35:
        kept = rng.sample(labels, rng.randint(0, anchor.rank))
        return Proposal({"equation": f"{''.join(labels)}->{''.join(kept)}"})
    shared = rng.sample(labels, rng.randint(0, anchor.rank))
    fresh = rng.sample([c for c in EINSUM_LETTERS if c not in labels], rng.randint(0 if shared else 1, 2))
    other_labels = shared + fresh
    rng.shuffle(other_labels)
    sizes = {**dict(zip(labels, anchor.shape)), **{c: rng.randint(1, 5) for c in fresh}}
    other = Operand(anchor.with_shape(tuple(sizes[c] for c in other_labels)))
    operands = [(labels, ANCHOR, anchor.shape), (other_labels, other, other.type.shape)]
    if rng.random() < 0.5:
        operands.reverse()
    terms = ",".join("".join(term) for term, _, _ in operands)
    if rng.random() < 0.2:
        equation = terms  # implicit output: the labels seen once, sorted
    else:
        contracted = set(rng.sample(shared, rng.randint(0, len(shared))))
        output = [c for c in labels if c not in contracted] + fresh
        if rng.random() < 0.5:
            rng.shuffle(output)
        equation = f"{terms}->{''.join(output)}"
    if len(einsum_shape(equation, [shape for _, _, shape in operands])) > 4:
        raise Unsatisfiable("Einsum output rank is above 4")
    return Proposal({"equation": equation}, tuple(operand for _, operand, _ in operands))


def einsum(xs, attrs):
    return torch.einsum(attrs["equation"], *xs).to(xs[0].dtype)  # torch sums integers in int64


# ---------------------------------------------------------------- Det


def infer_det(types: tuple[TensorType, ...], attrs: Mapping[str, Any]) -> tuple[TensorType, ...]:
    x = types[0]
    if x.rank < 2 or x.shape[-1] != x.shape[-2]:
        raise ShapeError(f"Det needs square matrices, got {x}")
    return (x.with_shape(x.shape[:-2]),)


def propose_det(rng: random.Random, anchor: TensorType) -> Proposal:
    """A non-square anchor goes unused: a fresh input of its batch and last extent takes its place."""
    if anchor.shape[-1] == anchor.shape[-2]:
        return Proposal({})
    return Proposal({}, (Operand(anchor.with_shape((*anchor.shape[:-2], anchor.shape[-1], anchor.shape[-1]))),))


SPECS = [
    OpSpec("MatMul", Family.LINALG, MATMUL_DTYPES, infer_matmul, lambda xs, a: torch.matmul(*xs),
           propose_matmul, ranks=(1, 4), integer_arithmetic=True, accumulates=True),
    OpSpec("Gemm", Family.LINALG, MATMUL_DTYPES, infer_gemm, gemm, propose_gemm, ranks=(2, 2), integer_arithmetic=True,
           float32_constants=True, accumulates=True,
           onnx_form=OnnxForm(defaults={"alpha": 1.0, "beta": 1.0, "transA": 0, "transB": 0})),
    OpSpec("Conv", Family.LINALG, CONV_DTYPES, infer_conv, conv, propose_conv, ranks=(3, 4), accumulates=True,
           onnx_form=OnnxForm(window=("strides", "dilations", "group"))),
    OpSpec("ConvTranspose", Family.LINALG, CONV_DTYPES, infer_conv_transpose, conv_transpose,
           propose_conv_transpose, ranks=(3, 4), accumulates=True,
           onnx_form=OnnxForm(window=("strides", "dilations", "group", "pads", "output_padding"))),
    OpSpec("Einsum", Family.LINALG, EINSUM_DTYPES, infer_einsum, einsum,
           propose_einsum, ranks=(1, 4), integer_arithmetic=True, accumulates=True),
    # float16 Det: torch has no half-precision kernel for it.
    OpSpec("Det", Family.LINALG, frozenset({DType.float32, DType.float64}), infer_det,
           lambda xs, a: torch.linalg.det(xs[0]), propose_det, ranks=(2, 4)),
]
