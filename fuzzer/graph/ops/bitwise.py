"""Bitwise operators on integers (opset 18) and BitShift (unsigned integers only)."""

from __future__ import annotations

from dataclasses import replace
import random
from typing import Any, Callable

import numpy as np

from fuzzer.graph.ir import INTS, DType, TensorType
from fuzzer.graph.ops.elementwise import broadcast_types, propose_binary
from fuzzer.graph.ops.spec import ANCHOR, Family, Operand, OpSpec, Proposal, broadcastable_shape, same_as_first, torch

SHIFTABLE = frozenset({DType.uint8})  # BitShift takes unsigned integers; the IR has uint8 only


def bitwise(name: str, function: Callable[[Any, Any], Any]) -> OpSpec:
    return OpSpec(name, Family.BITWISE, INTS, broadcast_types, lambda xs, attrs: function(*xs), propose_binary,
                  since=18, commutative=True)


def propose_shift(rng: random.Random, anchor: TensorType) -> Proposal:
    """Shift amounts below the bit width: wider shifts are left to the implementation by
    most compilers' kernels (C leaves them undefined)."""
    amounts = anchor.with_shape(broadcastable_shape(rng, anchor.shape))
    gen = np.random.default_rng(rng.getrandbits(32))
    values = gen.integers(0, 8, size=amounts.shape).astype(amounts.dtype.numpy)
    return Proposal({"direction": rng.choice(("LEFT", "RIGHT"))}, (ANCHOR, Operand(amounts, values)))


def bit_shift(xs, attrs):
    x, amounts = xs
    function = torch.bitwise_left_shift if attrs["direction"] == "LEFT" else torch.bitwise_right_shift
    return function(x, amounts)


SPECS = [
    bitwise("BitwiseAnd", lambda a, b: torch.bitwise_and(a, b)),
    bitwise("BitwiseOr", lambda a, b: torch.bitwise_or(a, b)),
    bitwise("BitwiseXor", lambda a, b: torch.bitwise_xor(a, b)),
    OpSpec("BitwiseNot", Family.BITWISE, INTS, same_as_first, lambda xs, attrs: torch.bitwise_not(xs[0]), since=18),
    OpSpec("BitShift", Family.BITWISE, SHIFTABLE, broadcast_types, bit_shift, propose_shift),
]
# Each of these operators works elementwise: it takes values whose extents only the run gives.
SPECS = [replace(spec, extent_free=True) for spec in SPECS]
