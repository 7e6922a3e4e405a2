"""Implementation-defined rules: ONNX cases whose result no backend can be blamed for.

Each :class:`Rule` counts, per node, the elements on which one evaluation hits its case;
:func:`node_flags` tabulates them for the float64 reference's ``@ref:flags:RULE`` probes
(:mod:`oracles.probes`), which the ``implementation-defined`` guard reads. A rule that raises
fires no flag and is counted in :data:`SKIPPED` (the guards count their tie probes there too),
for the life of the process that evaluates.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Callable, Mapping

import ml_dtypes
import numpy as np

from fuzzer.graph.ir import DType, Graph, Node, TensorType
from fuzzer.graph.ops import get_spec, group, operators
from fuzzer.graph.ops.spec import as_results

SKIPPED: Counter[str] = Counter()  # rule evaluations and tie probes that raised, by rule (``tie:OP``)


def finite_max(dtype: DType) -> float:
    return float(ml_dtypes.finfo(dtype.numpy).max) if dtype.is_float else math.inf


Values = Mapping[str, np.ndarray]
Types = Mapping[str, TensorType]


@dataclass(frozen=True)
class Rule:
    """An ONNX case whose result is implementation-defined; ``count`` says on how many
    elements a node hits it, given every value of one evaluation and the declared types."""

    name: str
    ops: frozenset[str] | None  # None: every operator
    reason: str
    count: Callable[[Node, Values, Types], int] = field(compare=False)
    within: float | None = None  # explains only differences up to within * max(|a|, |b|, 1)


def _wide_result(node: Node, values: Values) -> np.ndarray:
    """The node's first result computed from float64 copies of its inputs (torch lowering)."""
    import torch

    inputs = [torch.from_numpy(np.asarray(values[name]).astype(np.float64)) for name in node.inputs]
    return as_results(get_spec(node.op).torch(inputs, node.attr))[0].detach().numpy()


def _integer_overflow(node: Node, values: Values, types: Types) -> int:
    dtype = types[node.outputs[0]].dtype
    if not dtype.is_int:
        return 0
    info = np.iinfo(dtype.numpy)
    wide = _wide_result(node, values)
    return int(np.count_nonzero((wide > info.max) | (wide < info.min)))


def _cast_target(node: Node, types: Types) -> DType:
    return types[node.outputs[0]].dtype


def _float_cast_out_of_range(node: Node, values: Values, types: Types) -> int:
    source, target = types[node.inputs[0]].dtype, _cast_target(node, types)
    if not (source.is_float and target.is_int):
        return 0
    x = np.asarray(values[node.inputs[0]]).astype(np.float64)
    info = np.iinfo(target.numpy)
    with np.errstate(invalid="ignore"):
        truncated = np.trunc(x)
        return int(np.count_nonzero(~np.isfinite(x) | (truncated > info.max) | (truncated < info.min)))


def _int_cast_out_of_range(node: Node, values: Values, types: Types) -> int:
    source, target = types[node.inputs[0]].dtype, _cast_target(node, types)
    if not (source.is_int and target.is_int):
        return 0
    x = np.asarray(values[node.inputs[0]]).astype(np.int64)
    info = np.iinfo(target.numpy)
    return int(np.count_nonzero((x > info.max) | (x < info.min)))


def _nan_inputs(node: Node, values: Values, types: Types) -> int:
    return sum(int(np.count_nonzero(np.isnan(np.asarray(values[name]).astype(np.float64))))
               for name in node.inputs if name and types[name].dtype.is_float)


def _mod_negative_divisor(node: Node, values: Values, types: Types) -> int:
    if node.attr.get("fmod", 0) or not types[node.inputs[0]].dtype.is_int:
        return 0
    a, b = (np.asarray(values[name]).astype(np.int64) for name in node.inputs)
    remainder = np.fmod(a, np.where(b == 0, 1, b))
    return int(np.count_nonzero(np.broadcast_to(((b < 0) | (a < 0)) & (remainder != 0), np.broadcast(a, b).shape)))


def _nearest_index(coordinate: Fraction | float, mode: str) -> int:
    if mode == "floor":
        return math.floor(coordinate)
    if mode == "ceil":
        return math.ceil(coordinate)
    floor = math.floor(coordinate)
    if coordinate - floor == 0.5:
        return floor if mode == "round_prefer_floor" else floor + 1
    return floor + (coordinate - floor > 0.5)


def _resize_rounding_boundary(node: Node, values: Values, types: Types) -> int:
    """Output positions whose nearest source index changes when the coordinate transform
    is computed in float32 instead of exactly."""
    attrs = node.attr
    if attrs.get("mode", "nearest") != "nearest":
        return 0
    transform = attrs.get("coordinate_transformation_mode", "half_pixel")
    nearest = attrs.get("nearest_mode", "round_prefer_floor")
    in_shape, out_shape = types[node.inputs[0]].shape, types[node.outputs[0]].shape
    affected = 1
    for axis in range(2, len(in_shape)):
        size, out = in_shape[axis], out_shape[axis]
        exact_scale = Fraction(float(np.float32(attrs["scales"][axis]))) if "scales" in attrs else Fraction(out, size)
        f32_scale = np.float32(float(exact_scale))
        differing = 0
        for x in range(out):
            if transform == "asymmetric":
                exact, approximate = Fraction(x) / exact_scale, np.float32(x) / f32_scale
            elif transform == "align_corners":
                exact = Fraction(x * (size - 1), out - 1) if out > 1 else Fraction(0)
                approximate = np.float32(x) * np.float32(size - 1) / np.float32(out - 1) if out > 1 else 0.0
            elif transform == "pytorch_half_pixel" and out == 1:
                exact, approximate = Fraction(0), 0.0
            else:
                exact = (Fraction(x) + Fraction(1, 2)) / exact_scale - Fraction(1, 2)
                approximate = (np.float32(x) + np.float32(0.5)) / f32_scale - np.float32(0.5)
            pick = min(max(_nearest_index(exact, nearest), 0), size - 1)
            approximate_pick = min(max(_nearest_index(Fraction(float(approximate)), nearest), 0), size - 1)
            differing += pick != approximate_pick
        affected *= differing
        if not affected:
            return 0
    return affected


def _narrow_overflow(node: Node, values: Values, types: Types) -> int:
    total = 0
    for name in node.outputs:
        dtype = types[name].dtype
        if dtype in (DType.float16, DType.bfloat16):
            value = np.abs(np.asarray(values[name]).astype(np.float64))
            total += int(np.count_nonzero(np.isfinite(value) & (value > finite_max(dtype))))
    return total


def _float64_with_float32_constants(node: Node, values: Values, types: Types) -> int:
    return sum(types[name].numel for name in node.outputs if types[name].dtype is DType.float64)


CASTS = group("casts", {"Cast", "CastLike"})

# The data: each rule, the operators it watches (by their spec's facts, or by name where the
# rule models one operator's semantics), and why a mismatch it explains is no bug.
RULES: tuple[Rule, ...] = (
    Rule("integer-overflow", operators(lambda spec: spec.integer_arithmetic),
         "integer arithmetic overflowed its dtype; ONNX does not define the result (wrap, "
         "saturate or widen are all seen)", _integer_overflow),
    Rule("float-to-int-cast-out-of-range", CASTS,
         "a float -> integer cast of NaN, Inf or a value outside the target range is undefined "
         "in ONNX", _float_cast_out_of_range),
    Rule("int-cast-out-of-range", CASTS,
         "an integer cast to a narrower type of a value outside its range is "
         "implementation-defined", _int_cast_out_of_range),
    Rule("nan-ordering", operators(lambda spec: spec.ties),
         "ArgMax/ArgMin/TopK/Hardmax of a NaN: ONNX does not say where NaN sorts", _nan_inputs),
    Rule("nan-min-max", operators(lambda spec: spec.min_max),
         "Max/Min-like operator on a NaN: ONNX does not say whether NaN propagates", _nan_inputs),
    Rule("nan-sign", group("nan-sign", {"Sign"}),
         "Sign of a NaN: ONNX does not define it (NaN and 0 are both seen)", _nan_inputs),
    Rule("mod-sign-convention", group("mod-sign-convention", {"Mod"}),
         "integer Mod with a negative operand: runtimes disagree on the sign convention "
         "(divisor's, as ONNX says for fmod=0, or C's)", _mod_negative_divisor),
    Rule("resize-rounding-boundary", group("resize-rounding-boundary", {"Resize"}),
         "nearest Resize source coordinate on a rounding boundary that float32 coordinate "
         "arithmetic crosses", _resize_rounding_boundary),
    Rule("float32-constants-in-float64", operators(lambda spec: spec.float32_constants),
         "a float64 node whose ONNX constants are float32 (epsilon, alpha, 1/6, ...): "
         "implementations use the rounded or the written value, which moves float64 results "
         "by float32-sized relative errors", _float64_with_float32_constants, within=1e-6),
    Rule("float16-overflow", None,
         "a float16/bfloat16 value overflowed its range in the float64 reference", _narrow_overflow),
)
RULE_INDEX = {rule.name: index for index, rule in enumerate(RULES)}


def node_flags(graph: Graph, values: Values) -> np.ndarray:
    """int64 ``[len(graph.nodes), len(RULES)]``: how many elements of each node hit each rule,
    given every value of one evaluation of ``graph`` (floats may be promoted to float64)."""
    flags = np.zeros((len(graph.nodes), len(RULES)), dtype=np.int64)
    types = graph.types
    for index, node in enumerate(graph.nodes):
        for column, rule in enumerate(RULES):
            if rule.ops is None or node.op in rule.ops:
                try:
                    flags[index, column] = rule.count(node, values, types)
                except Exception:  # noqa: BLE001 - a rule that cannot judge fires no flag, counted
                    SKIPPED[rule.name] += 1
    return flags
