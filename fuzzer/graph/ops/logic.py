"""Logic: boolean operators, comparisons, Where, NaN/infinity tests and casts."""

from __future__ import annotations

from dataclasses import replace
import random
from typing import Any, Callable, Mapping

import numpy as np

from fuzzer.graph.ir import ALL_DTYPES, FLOATS, NUMERIC, DType, Node, TensorType
from fuzzer.graph.ops.activation import bfloat16_via_float32
from fuzzer.graph.ops.elementwise import broadcast_types
from fuzzer.graph.ops.spec import (ANCHOR, Family, OnnxBuilder, OnnxLowering, Operand, OpSpec, Proposal, broadcast,
                                   broadcastable_shape, lower_as_is, torch)
from fuzzer.graph.rejected import ShapeError
from fuzzer.graph.values import torch_dtype

BOOL = frozenset({DType.bool})
CAST_TARGETS = sorted(ALL_DTYPES, key=lambda d: d.value)  # sorted: set order varies by process
MAX_RANK = 4


def co_broadcast_shape(rng: random.Random, shape: tuple[int, ...]) -> tuple[int, ...]:
    """A shape that broadcasts with ``shape`` both ways: besides staying within it, it may
    stretch its unit dimensions and add leading axes (the result grows)."""
    other = broadcastable_shape(rng, shape)
    if rng.random() < 0.6:
        return other
    offset = len(shape) - len(other)
    stretched = [rng.randint(2, 4) if shape[offset + k] == 1 and rng.random() < 0.5 else d
                 for k, d in enumerate(other)]
    leading = []
    if offset == 0:  # only a full-rank shape can take leading axes
        leading = [rng.randint(1, 4) for _ in range(rng.randint(0, max(0, MAX_RANK - len(shape))))]
    return tuple(leading + stretched)


def propose_operands(*slots: DType | None) -> Callable[[random.Random, TensorType], Proposal]:
    """Operands of the given dtypes (None: the anchor's) co-broadcasting with the anchor,
    which takes a random slot among the None ones."""
    def propose(rng: random.Random, anchor: TensorType) -> Proposal:
        operands: list[Operand | None] = [
            Operand(TensorType(dtype or anchor.dtype, co_broadcast_shape(rng, anchor.shape))) for dtype in slots]
        operands[rng.choice([k for k, dtype in enumerate(slots) if dtype is None])] = ANCHOR
        return Proposal({}, tuple(operands))
    return propose


def require_bool(types: tuple[TensorType, ...]) -> None:
    if any(t.dtype is not DType.bool for t in types):
        raise ShapeError(f"inputs must be bool, got {', '.join(map(str, types))}")


def logical_types(types: tuple[TensorType, ...], attrs: Mapping[str, Any]) -> tuple[TensorType, ...]:
    require_bool(types)
    return broadcast_types(types, attrs)


def comparison_types(types: tuple[TensorType, ...], attrs: Mapping[str, Any]) -> tuple[TensorType, ...]:
    return (broadcast_types(types, attrs)[0].with_dtype(DType.bool),)


def flag_types(types: tuple[TensorType, ...], attrs: Mapping[str, Any]) -> tuple[TensorType, ...]:
    return (types[0].with_dtype(DType.bool),)


def binary(name: str, dtypes: frozenset[DType], function: Callable[[Any, Any], Any], **options: Any) -> OpSpec:
    """A broadcasting binary op: logical (bool -> bool) when ``dtypes`` is BOOL, else a comparison."""
    infer = logical_types if dtypes == BOOL else comparison_types
    return OpSpec(name, Family.LOGIC, dtypes, infer, lambda xs, attrs: function(*xs), propose_operands(None, None),
                  **options)


def or_equal(strict: str) -> OnnxLowering:
    """LessOrEqual/GreaterOrEqual gained bfloat16 in opset 16. A lowering cannot see input
    dtypes, so before opset 16 every dtype uses the ONNX function body Or(strict, Equal)."""
    def lower(builder: OnnxBuilder, node: Node) -> None:
        if builder.opset >= 16:
            return lower_as_is(builder, node)
        ordered, equal = builder.temporary(), builder.temporary()
        builder.node(strict, node.inputs, [ordered])
        builder.node("Equal", node.inputs, [equal])
        builder.node("Or", [ordered, equal], node.outputs)
    return lower


# ---------------------------------------------------------------- Where


def where_types(types: tuple[TensorType, ...], attrs: Mapping[str, Any]) -> tuple[TensorType, ...]:
    condition, x, y = types
    require_bool((condition,))
    dtype = broadcast_types((x, y), attrs)[0].dtype
    return (TensorType(dtype, broadcast(*(t.shape for t in types))),)


# ---------------------------------------------------------------- IsInf


def propose_is_inf(rng: random.Random, anchor: TensorType) -> Proposal:
    return Proposal({key: rng.randint(0, 1) for key in ("detect_negative", "detect_positive")
                     if rng.random() < 0.75})


def is_inf(xs, attrs):
    x = xs[0]
    return ((torch.isneginf(x) & bool(attrs.get("detect_negative", 1)))
            | (torch.isposinf(x) & bool(attrs.get("detect_positive", 1))))


# ---------------------------------------------------------------- Cast, CastLike

# ONNX leaves float -> integer casts undefined for out-of-range values, NaN and infinities.
# Such casts therefore never read computed values: their input is a fresh weight of the
# anchor's type holding in-range values (the anchor itself goes unused).
SAFE_INT_RANGES = {DType.uint8: (0, 255), DType.int8: (-128, 127),
                   DType.int32: (-1024, 1024), DType.int64: (-1024, 1024)}  # bounds exact in every float dtype


def in_range_values(rng: random.Random, source: TensorType, target: DType) -> np.ndarray:
    """Floats that truncate into ``target``'s range: half small (fractions near zero), half wide."""
    gen = np.random.default_rng(rng.getrandbits(32))
    low, high = SAFE_INT_RANGES[target]
    small = gen.uniform(max(low, -4), min(high, 4), size=source.shape)
    wide = gen.uniform(low, high, size=source.shape)
    # Rounding to the source dtype cannot leave [low, high]: both bounds are representable.
    return np.where(gen.random(source.shape) < 0.5, small, wide).astype(source.dtype.numpy)


def cast_source(rng: random.Random, anchor: TensorType, target: DType) -> Operand | None:
    if anchor.dtype.is_float and target.is_int:
        return Operand(anchor, in_range_values(rng, anchor, target))
    return ANCHOR


def propose_cast(rng: random.Random, anchor: TensorType) -> Proposal:
    target = rng.choice(CAST_TARGETS)
    return Proposal({"to": target.value}, (cast_source(rng, anchor, target),))


def propose_cast_like(rng: random.Random, anchor: TensorType) -> Proposal:
    target = rng.choice(CAST_TARGETS)
    like = Operand(TensorType(target, broadcastable_shape(rng, anchor.shape)))  # only its dtype matters
    return Proposal({}, (cast_source(rng, anchor, target), like))


def cast_types(types: tuple[TensorType, ...], attrs: Mapping[str, Any]) -> tuple[TensorType, ...]:
    return (types[0].with_dtype(DType(attrs["to"])),)


def cast_onnx(builder: OnnxBuilder, node: Node) -> None:
    builder.node("Cast", node.inputs, node.outputs, to=DType(node.attr["to"]).onnx)


def cast(xs, attrs):
    return xs[0].to(torch_dtype(DType(attrs["to"])))


SPECS = [
    binary("And", BOOL, lambda a, b: torch.logical_and(a, b), commutative=True),
    binary("Or", BOOL, lambda a, b: torch.logical_or(a, b), commutative=True),
    binary("Xor", BOOL, lambda a, b: torch.logical_xor(a, b), commutative=True),
    OpSpec("Not", Family.LOGIC, BOOL, logical_types, lambda xs, attrs: torch.logical_not(xs[0])),
    binary("Equal", ALL_DTYPES, lambda a, b: torch.eq(a, b), commutative=True),
    binary("Less", NUMERIC, lambda a, b: torch.lt(a, b)),
    binary("Greater", NUMERIC, lambda a, b: torch.gt(a, b)),
    binary("LessOrEqual", NUMERIC, lambda a, b: torch.le(a, b), onnx=or_equal("Less")),
    binary("GreaterOrEqual", NUMERIC, lambda a, b: torch.ge(a, b), onnx=or_equal("Greater")),
    OpSpec("Where", Family.LOGIC, ALL_DTYPES, where_types, lambda xs, attrs: torch.where(*xs),
           propose_operands(DType.bool, None, None), onnx=bfloat16_via_float32(16, operands=(1, 2)),
           keeps_values=True, steering=(1, 2), exact=True),  # the condition selects, it moves no value
    OpSpec("IsNaN", Family.LOGIC, FLOATS, flag_types, lambda xs, attrs: torch.isnan(xs[0])),
    # IsInf gained float16 and bfloat16 only in opset 20.
    OpSpec("IsInf", Family.LOGIC, frozenset({DType.float32, DType.float64}), flag_types, is_inf, propose_is_inf),
    OpSpec("Cast", Family.LOGIC, ALL_DTYPES, cast_types, cast, propose_cast, onnx=cast_onnx, exact=True,
           dtype_attr=("to", None)),
    OpSpec("CastLike", Family.LOGIC, ALL_DTYPES, lambda types, attrs: (types[0].with_dtype(types[1].dtype),),
           lambda xs, attrs: xs[0].to(xs[1].dtype), propose_cast_like, since=15, type_only=(1,), exact=True),
]
# Each of these operators works elementwise: it takes values whose extents only the run gives.
SPECS = [replace(spec, extent_free=True) for spec in SPECS]
