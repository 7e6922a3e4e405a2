"""Elementwise math: unary functions and broadcasting binary and variadic operators."""

from __future__ import annotations

from dataclasses import replace
import math
import random
from typing import Any, Callable, Mapping

import numpy as np

from fuzzer.graph.ir import FLOATS, NUMERIC, SIGNED, DType, TensorType
from fuzzer.graph.ops.spec import (ANCHOR, Domain, DomainKind, Family, Operand, OpSpec, Proposal, broadcast,
                                   broadcastable_shape, same_as_first, torch)
from fuzzer.graph.rejected import ShapeError

FLOATS_NO_BF16 = FLOATS - {DType.bfloat16}
SMALL_INTS_SINCE_14 = {DType.int8: 14, DType.uint8: 14}
NONNEGATIVE = (0.0, math.inf)
UNIT = (-1.0, 1.0)
HALF_PI = (-math.pi / 2, math.pi / 2)
DIVISOR = Domain(1, nonzero=True)


def unary(name: str, dtypes: frozenset[DType], lowering: Callable[..., Any], **options: Any) -> OpSpec:
    """A one-input op; ``options`` are further OpSpec fields (domain, facts, ...)."""
    return OpSpec(name, Family.ELEMENTWISE, dtypes, same_as_first, lambda xs, attrs: lowering(xs[0]), **options)


def broadcast_types(types: tuple[TensorType, ...], attrs: Mapping[str, Any]) -> tuple[TensorType, ...]:
    if len({t.dtype for t in types}) != 1:
        raise ShapeError(f"inputs must share one dtype, got {', '.join(map(str, types))}")
    return (types[0].with_shape(broadcast(*(t.shape for t in types))),)


def nonzero_values(rng: random.Random, tensor_type: TensorType) -> np.ndarray:
    """Divisors: integers in [1, 5] with random sign where the dtype is signed."""
    gen = np.random.default_rng(rng.getrandbits(32))
    values = gen.integers(1, 6, size=tensor_type.shape)
    if tensor_type.dtype in SIGNED:
        values = values * gen.choice([-1, 1], size=tensor_type.shape)
    return np.asarray(values).astype(tensor_type.dtype.numpy)


def propose_binary(rng: random.Random, anchor: TensorType) -> Proposal:
    other = Operand(anchor.with_shape(broadcastable_shape(rng, anchor.shape)))
    return Proposal({}, (ANCHOR, other) if rng.random() < 0.5 else (other, ANCHOR))


def propose_divisor(attrs: Mapping[str, Any]) -> Callable[[random.Random, TensorType], Proposal]:
    """The anchor is the dividend; integer divisors are fixed non-zero weights."""
    def propose(rng: random.Random, anchor: TensorType) -> Proposal:
        divisor_type = anchor.with_shape(broadcastable_shape(rng, anchor.shape))
        values = nonzero_values(rng, divisor_type) if not anchor.dtype.is_float else None
        return Proposal(attrs, (ANCHOR, Operand(divisor_type, values)))
    return propose


def propose_mod(rng: random.Random, anchor: TensorType) -> Proposal:
    fmod = 1 if anchor.dtype.is_float or rng.random() < 0.5 else 0
    return propose_divisor({"fmod": fmod})(rng, anchor)


def propose_variadic(rng: random.Random, anchor: TensorType) -> Proposal:
    others = [Operand(anchor.with_shape(broadcastable_shape(rng, anchor.shape)))
              for _ in range(rng.randint(0, 3))]
    rng.shuffle(others)
    # The anchor has the full result shape; it goes first because the reference
    # evaluator's Sum/Mean fail when the first input is the smaller one.
    return Proposal({}, (ANCHOR, *others))


def integer_divide(a, b):
    """ONNX integer Div truncates toward zero."""
    if a.dtype.is_floating_point:
        return a / b
    return torch.div(a, b, rounding_mode="trunc")


def mod(xs, attrs):
    return torch.fmod(*xs) if attrs["fmod"] else torch.remainder(*xs)


def fold(function: Callable[[Any, Any], Any]) -> Callable[..., Any]:
    def lowering(xs, attrs):
        result = xs[0]
        for x in xs[1:]:
            result = function(result, x)
        return result
    return lowering


def mean(xs, attrs):
    return fold(torch.add)(xs, attrs) / len(xs)


SPECS = [
    OpSpec("Add", Family.ELEMENTWISE, NUMERIC, broadcast_types, lambda xs, a: torch.add(*xs), propose_binary,
           dtype_since=SMALL_INTS_SINCE_14, integer_arithmetic=True, commutative=True),
    OpSpec("Sub", Family.ELEMENTWISE, NUMERIC, broadcast_types, lambda xs, a: torch.sub(*xs), propose_binary,
           dtype_since=SMALL_INTS_SINCE_14, integer_arithmetic=True),
    OpSpec("Mul", Family.ELEMENTWISE, NUMERIC, broadcast_types, lambda xs, a: torch.mul(*xs), propose_binary,
           dtype_since=SMALL_INTS_SINCE_14, integer_arithmetic=True, commutative=True),
    OpSpec("Div", Family.ELEMENTWISE, NUMERIC, broadcast_types, lambda xs, a: integer_divide(*xs),
           propose_divisor({}), dtype_since=SMALL_INTS_SINCE_14, domain=DIVISOR, integer_arithmetic=True,
           zero_sign=True),
    OpSpec("Mod", Family.ELEMENTWISE, NUMERIC, broadcast_types, mod, propose_mod, domain=DIVISOR),
    OpSpec("Pow", Family.ELEMENTWISE, FLOATS, broadcast_types, lambda xs, a: torch.pow(*xs),
           lambda rng, anchor: Proposal({}, (ANCHOR, Operand(anchor.with_shape(
               broadcastable_shape(rng, anchor.shape))))), dtype_since={DType.bfloat16: 15},
           domain=Domain(0, kind=DomainKind.POWER_BASE), integer_arithmetic=True, zero_sign=True),
    # Variadic operands go largest first (see propose_variadic): mutants keep their input types.
    OpSpec("Max", Family.ELEMENTWISE, NUMERIC, broadcast_types, fold(torch.maximum), propose_variadic,
           keeps_values=True, exact=True, min_max=True, commutative=True, fixed_input_types=True),
    OpSpec("Min", Family.ELEMENTWISE, NUMERIC, broadcast_types, fold(torch.minimum), propose_variadic,
           keeps_values=True, exact=True, min_max=True, commutative=True, fixed_input_types=True),
    OpSpec("Sum", Family.ELEMENTWISE, FLOATS, broadcast_types, fold(torch.add), propose_variadic,
           integer_arithmetic=True, commutative=True, largest_first=True, fixed_input_types=True),
    OpSpec("Mean", Family.ELEMENTWISE, FLOATS, broadcast_types, mean, propose_variadic,
           commutative=True, largest_first=True, fixed_input_types=True),
    unary("Abs", NUMERIC, torch.abs, value_range=NONNEGATIVE, exact=True, integer_arithmetic=True),
    unary("Neg", SIGNED, torch.neg, exact=True, integer_arithmetic=True),
    unary("Sign", NUMERIC, lambda x: torch.where(torch.isnan(x), x, torch.sign(x))
          if x.dtype.is_floating_point else torch.sign(x), value_range=UNIT,
          pinned=lambda types, attrs: UNIT,  # piecewise constant: -1, 0 or 1 whatever the input
          exact=True, straight_through=True),
    unary("Exp", FLOATS, torch.exp, value_range=NONNEGATIVE),
    unary("Log", FLOATS, torch.log, domain=Domain(0, 0.0, math.inf, open_bounds=True)),
    unary("Sqrt", FLOATS, torch.sqrt, domain=Domain(0, *NONNEGATIVE), value_range=NONNEGATIVE),
    unary("Reciprocal", FLOATS, torch.reciprocal, domain=Domain(0, nonzero=True), zero_sign=True),
    unary("Floor", FLOATS, torch.floor, exact=True, straight_through=True),
    unary("Ceil", FLOATS, torch.ceil, exact=True, straight_through=True),
    unary("Round", FLOATS_NO_BF16, torch.round, exact=True, straight_through=True),
    unary("Erf", FLOATS, torch.erf, value_range=UNIT),
    unary("Sin", FLOATS_NO_BF16, torch.sin, value_range=UNIT),
    unary("Cos", FLOATS_NO_BF16, torch.cos, value_range=UNIT),
    unary("Tan", FLOATS_NO_BF16, torch.tan),
    unary("Asin", FLOATS_NO_BF16, torch.asin, domain=Domain(0, *UNIT), value_range=HALF_PI),
    unary("Acos", FLOATS_NO_BF16, torch.acos, domain=Domain(0, *UNIT), value_range=(0.0, math.pi)),
    unary("Atan", FLOATS_NO_BF16, torch.atan, value_range=HALF_PI),
    unary("Sinh", FLOATS_NO_BF16, torch.sinh),
    unary("Cosh", FLOATS_NO_BF16, torch.cosh, value_range=(1.0, math.inf)),
    unary("Asinh", FLOATS_NO_BF16, torch.asinh),
    unary("Acosh", FLOATS_NO_BF16, torch.acosh, domain=Domain(0, 1.0, math.inf), value_range=NONNEGATIVE),
    unary("Atanh", FLOATS_NO_BF16, torch.atanh, domain=Domain(0, *UNIT, open_bounds=True)),
]
# Each of these operators works elementwise: it takes values whose extents only the run gives.
SPECS = [replace(spec, extent_free=True) for spec in SPECS]
