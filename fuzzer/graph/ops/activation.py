"""Activations: pointwise nonlinearities, the softmax family, Clip, Identity and Dropout (inference)."""

from __future__ import annotations

import math
import random
from dataclasses import replace
from typing import Any, Callable, Mapping

import numpy as np

from fuzzer.graph.ir import ALL_DTYPES, FLOATS, NUMERIC, SIGNED, DType, Node, TensorType
from fuzzer.graph.ops.spec import (ANCHOR, F, Family, Infer, OnnxBuilder, OnnxLowering, Operand, OpSpec, Pinned,
                                   Proposal, broadcast, broadcastable_shape, lower_as_is, normalize_axis,
                                   same_as_first, torch)
from fuzzer.graph.rejected import ShapeError

HALF_AND_UP = frozenset({DType.float16, DType.float32, DType.float64})  # schemas without bfloat16
OMIT_ATTR = 0.25  # chance to leave an optional attribute out (ONNX default applies)
NONNEGATIVE = (0.0, math.inf)
UNIT_INTERVAL = (0.0, 1.0)

Sampler = Callable[[random.Random, TensorType], Any]


def f32(value: float) -> float:
    """An ONNX default as ONNX stores it: a float32 attribute."""
    return float(np.float32(value))


def grid(low: float, high: float) -> Sampler:
    """Floats in [low, high] on a 1/16 grid: exact in every float dtype (bfloat16 included),
    so the IR, the float32 ONNX attribute and torch all use the same value."""
    return lambda rng, anchor: rng.randint(round(low * 16), round(high * 16)) / 16


def any_axis(rng: random.Random, anchor: TensorType) -> int:
    return rng.randint(-anchor.rank, anchor.rank - 1)


def bfloat16_via_float32(since: int, operands: tuple[int, ...] | None = None) -> OnnxLowering:
    """ONNX lowering for an op whose schema gained bfloat16 in opset ``since``: in older
    opsets a bfloat16 node runs in float32 between exact casts. ``operands`` are the
    input positions holding the bfloat16 values (default: all)."""
    def lower(builder: OnnxBuilder, node: Node) -> None:
        if node.output_types[0].dtype is not DType.bfloat16 or builder.opset >= since:
            return lower_as_is(builder, node)
        inputs = list(node.inputs)
        for position in operands if operands is not None else range(len(inputs)):
            inputs[position] = builder.temporary()
            builder.node("Cast", [node.inputs[position]], [inputs[position]], to=DType.float32.onnx)
        result = builder.temporary()
        builder.node(node.op, inputs, [result], **node.attr)
        builder.node("Cast", [result], node.outputs, to=DType.bfloat16.onnx)
    return lower


def activation(name: str, dtypes: frozenset[DType], function: Callable[..., Any], *,
               infer: Infer = same_as_first, since: int = 13, ranks: tuple[int, int] = (0, 4),
               onnx: OnnxLowering = lower_as_is, value_range: tuple[float, float] | None = None,
               pinned: Pinned | None = None, **attributes: tuple[Any, Sampler]) -> OpSpec:
    """A one-input op; ``attributes`` maps each optional ONNX attribute to its ONNX default
    and a sampler. ``function(x, **attributes)`` always receives every attribute."""
    def propose(rng: random.Random, anchor: TensorType) -> Proposal:
        return Proposal({key: sample(rng, anchor) for key, (_, sample) in attributes.items()
                         if rng.random() >= OMIT_ATTR})

    def lowering(xs, attrs):
        return function(xs[0], **{key: attrs.get(key, default) for key, (default, _) in attributes.items()})

    return OpSpec(name, Family.ACTIVATION, dtypes, infer, lowering, propose, ranks, onnx, since,
                  value_range=value_range, pinned=pinned, extent_free=True)


def along_axis(name: str, function: Callable[..., Any], value_range: tuple[float, float], single: float) -> OpSpec:
    """Softmax, LogSoftmax and Hardmax (opset-13 semantics: along the single axis ``axis``);
    along an axis of one element every output is ``single``."""
    def pinned(types: tuple[TensorType, ...], attrs: Mapping[str, Any]) -> tuple[float, float] | None:
        return (single, single) if types[0].shape[attrs.get("axis", -1)] == 1 else None

    def infer(types: tuple[TensorType, ...], attrs: Mapping[str, Any]) -> tuple[TensorType, ...]:
        if types[0].rank == 0:
            raise ShapeError(f"{name} needs an input of rank >= 1")
        normalize_axis(attrs.get("axis", -1), types[0].rank)
        return same_as_first(types, attrs)

    return replace(activation(name, FLOATS, function, infer=infer, ranks=(1, 4), value_range=value_range,
                              pinned=pinned, axis=(-1, any_axis)), extent_free=False)  # not elementwise


# ---------------------------------------------------------------- lowerings


def lower_relu(builder: OnnxBuilder, node: Node) -> None:
    """Relu gained integer types in opset 14; before, integer Relu is Max(X, 0)."""
    dtype = node.output_types[0].dtype
    if dtype.is_float or builder.opset >= 14:
        return lower_as_is(builder, node)
    builder.node("Max", [node.inputs[0], builder.constant(np.zeros((), dtype.numpy))], node.outputs)


def hard_sigmoid(x, alpha, beta):
    return torch.clamp(x * alpha + beta, 0, 1)


def hard_swish_onnx(xs, attrs):
    """HardSwish as ONNX defines it: x * HardSigmoid(x) with alpha 1/6 stored as float32. The
    float64 judge needs it: F.hardswish divides by 6 exactly, which near x = -3 differs from the
    float32 alpha far beyond float64 rounding."""
    x = xs[0]
    return x * hard_sigmoid(x, f32(1 / 6), 0.5)


def thresholded_relu(x, alpha):
    """ONNX: x where x > alpha, else 0 (NaN gives 0, unlike F.threshold)."""
    return torch.where(x > alpha, x, torch.zeros_like(x))


def hardmax(x, axis):
    """One-hot of the first maximum along ``axis``."""
    first_max = torch.argmax(x, dim=axis, keepdim=True)
    return torch.zeros_like(x).scatter_(axis, first_max, 1)


# ---------------------------------------------------------------- PRelu


def prelu_infer(types: tuple[TensorType, ...], attrs: Mapping[str, Any]) -> tuple[TensorType, ...]:
    x, slope = types
    if x.dtype is not slope.dtype:
        raise ShapeError(f"PRelu slope {slope} must have the dtype of X {x}")
    if broadcast(x.shape, slope.shape) != x.shape:
        raise ShapeError(f"PRelu slope {slope} must broadcast to X {x} (unidirectionally)")
    return (x,)


def propose_slope(rng: random.Random, anchor: TensorType) -> Proposal:
    return Proposal({}, (ANCHOR, Operand(anchor.with_shape(broadcastable_shape(rng, anchor.shape)))))


def prelu(xs, attrs):
    """ONNX: x where x >= 0, else slope * x (so 0 stays 0 whatever the slope, NaN and Inf included)."""
    x, slope = xs
    return torch.where(x < 0, x * slope, x)


# ---------------------------------------------------------------- Clip

# IR form: Clip(X, *operand bounds). Each bound is absent, an attribute ("min"/"max", a number
# lowered to an ONNX constant input) or an operand (a scalar of X's dtype, listed in
# "bound_operands", e.g. "max" or "min,max", in min-then-max order after X).
BOUNDS = ("min", "max")


def clip_bound_value(rng: random.Random, dtype: DType) -> int | float:
    if dtype.is_float:
        return grid(-2, 2)(rng, None)
    return rng.randint(0, 16) if dtype is DType.uint8 else rng.randint(-8, 8)


def propose_clip(rng: random.Random, anchor: TensorType) -> Proposal:
    attrs: dict[str, Any] = {}
    operands = []
    for bound in BOUNDS:
        form = rng.choice(["absent", "attribute", "attribute", "operand", "operand"])
        if form == "attribute":
            attrs[bound] = clip_bound_value(rng, anchor.dtype)
        elif form == "operand":
            operands.append(bound)
    if operands:
        attrs["bound_operands"] = ",".join(operands)
    return Proposal(attrs, (ANCHOR, *(Operand(anchor.with_shape(())) for _ in operands)))


def clip_bounds(attrs: Mapping[str, Any], inputs: list) -> dict[str, Any]:
    """Each present bound's source: ("attribute", value) or ("operand", inputs[k])."""
    names = [b for b in attrs.get("bound_operands", "").split(",") if b]
    if names != [b for b in BOUNDS if b in names] or len(names) != len(inputs) - 1:
        raise ShapeError(f"Clip with {len(inputs)} inputs has bound_operands {attrs.get('bound_operands')!r}")
    bounds = {bound: ("operand", value) for bound, value in zip(names, inputs[1:])}
    for bound in BOUNDS:
        if bound in attrs:
            if bound in bounds:
                raise ShapeError(f"Clip bound {bound!r} is both an attribute and an operand")
            bounds[bound] = ("attribute", attrs[bound])
    return bounds


def clip_infer(types: tuple[TensorType, ...], attrs: Mapping[str, Any]) -> tuple[TensorType, ...]:
    for bound, (form, value) in clip_bounds(attrs, list(types)).items():
        if form == "operand" and value != types[0].with_shape(()):
            raise ShapeError(f"Clip {bound} operand {value} must be a scalar of X's dtype")
        if form == "attribute" and not isinstance(value, float if types[0].dtype.is_float else int):
            raise ShapeError(f"Clip {bound} attribute {value!r} does not suit {types[0]}")
    return (types[0],)


def clip_onnx(builder: OnnxBuilder, node: Node) -> None:
    dtype = node.output_types[0].dtype
    bounds = clip_bounds(node.attr, list(node.inputs))
    inputs = [node.inputs[0]]
    for bound in BOUNDS:
        form, value = bounds.get(bound, (None, ""))
        inputs.append(builder.constant(np.array(value, dtype.numpy)) if form == "attribute" else value)
    while not inputs[-1]:  # trailing omitted inputs are dropped, inner ones stay ""
        inputs.pop()
    builder.node("Clip", inputs, node.outputs)


def clip(xs, attrs):
    x = xs[0]
    bounds = {bound: value if form == "operand" else torch.tensor(value, dtype=x.dtype, device=x.device)
              for bound, (form, value) in clip_bounds(attrs, xs).items()}
    return torch.clamp(x, **bounds) if bounds else x


# ---------------------------------------------------------------- registry

SELU_ALPHA, SELU_GAMMA = f32(1.67326319217681884765625), f32(1.05070102214813232421875)

def shrink(x, bias, lambd):
    """x + bias below -lambd, x - bias above lambd, zero between."""
    return torch.where(x < -lambd, x + bias, torch.where(x > lambd, x - bias, torch.zeros_like(x)))


SPECS = [
    replace(activation("Relu", SIGNED, lambda x: torch.relu(x), onnx=lower_relu, value_range=NONNEGATIVE),
            exact=True, min_max=True),
    replace(activation("LeakyRelu", FLOATS, lambda x, alpha: F.leaky_relu(x, alpha), onnx=bfloat16_via_float32(16),
                       alpha=(f32(0.01), grid(-1, 2))), float32_constants=True),
    OpSpec("PRelu", Family.ACTIVATION, FLOATS | {DType.int32, DType.int64}, prelu_infer, prelu, propose_slope,
           onnx=bfloat16_via_float32(16), integer_arithmetic=True, extent_free=True),
    replace(activation("Elu", HALF_AND_UP, lambda x, alpha: F.elu(x, alpha), alpha=(1.0, grid(0, 3))),
            float32_constants=True),
    replace(activation("Selu", HALF_AND_UP, lambda x, alpha, gamma: F.elu(x, alpha) * gamma,
                       pinned=lambda types, attrs: (0.0, 0.0) if attrs.get("gamma") == 0 else None,
                       alpha=(SELU_ALPHA, grid(0, 3)), gamma=(SELU_GAMMA, grid(0, 3))), float32_constants=True),
    # Celu's schema allows float32 only.
    replace(activation("Celu", frozenset({DType.float32}), lambda x, alpha: F.celu(x, alpha),
                       alpha=(1.0, grid(0.25, 3))), float32_constants=True),
    # Gelu and HardSwish: float32 coefficients (1/6) in their ONNX function bodies.
    replace(activation("Gelu", FLOATS, lambda x, approximate: F.gelu(x, approximate=approximate), since=20,
                       approximate=("none", lambda rng, anchor: rng.choice(["none", "tanh"]))), float32_constants=True),
    replace(activation("HardSigmoid", HALF_AND_UP, hard_sigmoid, value_range=UNIT_INTERVAL,
                       alpha=(f32(0.2), grid(-1, 1)), beta=(0.5, grid(-1, 1))), float32_constants=True),
    replace(activation("HardSwish", HALF_AND_UP, lambda x: F.hardswish(x), since=14), reference=hard_swish_onnx,
            float32_constants=True),
    activation("Mish", HALF_AND_UP, lambda x: F.mish(x), since=18),
    activation("Softplus", HALF_AND_UP, lambda x: F.softplus(x), value_range=NONNEGATIVE),
    # ranks: the reference evaluator's Softsign fails on rank-0 input.
    activation("Softsign", HALF_AND_UP, lambda x: F.softsign(x), ranks=(1, 4), value_range=(-1.0, 1.0)),
    activation("Sigmoid", FLOATS, lambda x: torch.sigmoid(x), value_range=UNIT_INTERVAL),
    activation("Tanh", FLOATS, lambda x: torch.tanh(x), value_range=(-1.0, 1.0)),
    along_axis("Softmax", lambda x, axis: torch.softmax(x, axis), UNIT_INTERVAL, 1.0),
    along_axis("LogSoftmax", lambda x, axis: torch.log_softmax(x, axis), (-math.inf, 0.0), 0.0),
    replace(along_axis("Hardmax", hardmax, UNIT_INTERVAL, 1.0), steering=(), exact=True, ties=True),
    OpSpec("Clip", Family.ACTIVATION, NUMERIC, clip_infer, clip, propose_clip, onnx=clip_onnx, exact=True,
           min_max=True, extent_free=True),
    replace(activation("ThresholdedRelu", HALF_AND_UP, thresholded_relu, alpha=(1.0, grid(-2, 2))),
            float32_constants=True),
    OpSpec("Identity", Family.ACTIVATION, ALL_DTYPES, same_as_first, lambda xs, attrs: xs[0], keeps_values=True,
           exact=True, extent_free=True),
    replace(activation("Shrink", HALF_AND_UP, shrink, bias=(0.0, grid(0, 2)), lambd=(0.5, grid(0, 2))),
            float32_constants=True),
    # Dropout in inference mode (no training_mode input): the identity.
    OpSpec("Dropout", Family.ACTIVATION, FLOATS, same_as_first, lambda xs, attrs: xs[0], keeps_values=True, exact=True,
           extent_free=True),
]
