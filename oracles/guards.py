"""Guards against false alarms: mismatches that no backend can be blamed for.

A guard looks at one output of one backend, the elements on which it differs from the
float64 reference, the graph and the reference's probes (:mod:`oracles.precision`), and
claims the elements it can explain. Every claim becomes a :class:`Suppression` that says
why, so a campaign can count and store what it did not report. The guards, in the order
in which they claim elements:

``float16-overflow``
    the float64 reference is beyond the range of the output's dtype there (any backend
    must overflow), or, for elements the ill-conditioning test flags, a float16/bfloat16
    value upstream overflowed in the reference;
``implementation-defined``
    a node upstream hit a case whose ONNX semantics are implementation-defined (the
    :data:`RULES` table: integer overflow, out-of-range casts, NaN into ordering
    operators, Mod sign conventions, Resize rounding boundaries);
``tie``
    an ArgMax/ArgMin/TopK/Hardmax input has maxima (or neighbours in sort order) within
    tolerance of each other in the reference: any index is acceptable;
``signed-zero``
    the backend and the reference have infinities of opposite sign, and a Div, Reciprocal
    or Pow upstream can turn a zero of either sign into either infinity;
``ill-conditioned``
    evaluating the graph at its declared precision moves the element by more than
    :data:`SPREAD_SHARE` of its tolerance (catastrophic cancellation, a comparison, floor
    or cast on a rounding boundary): no backend can be blamed.

NaN payloads and the sign of zero never make a mismatch in the first place: comparisons
treat every NaN alike and ``-0 == +0``.

A rule or a tie probe that raises judges nothing (it claims no element), and is counted in
:data:`SKIPPED` (by rule name, ``tie:OP`` for a tie probe) so that a caller can see how
often that happens: ``SKIPPED`` counts for the life of the process that evaluates.
"""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cached_property
from typing import Callable, Mapping, Sequence

import numpy as np

from fuzzer.graph.ir import DType, Graph, Node, TensorType
from fuzzer.execution.outcome import Outcome
from fuzzer.graph.ops import get_spec, group, operators
from oracles.precision import finite_max, flags_probe, spread_probe, value_probe
from oracles.tolerance import Tolerance, TolerancePolicy, along_paths

SPREAD_SHARE = 0.5  # an element is ill-conditioned when its spread exceeds this share of its bound
SKIPPED: Counter[str] = Counter()  # rule evaluations and tie probes that raised, by rule (see above)


@dataclass(frozen=True)
class Suppression:
    """A mismatch that a guard explains: not reported as a finding."""

    backend: str
    output: str
    reason: str  # one line for a human: what the guard saw
    guard: str = ""  # the guard's short name, for counting
    elements: int = 0  # how many mismatched elements it explains

    def to_dict(self) -> dict[str, object]:
        return {"backend": self.backend, "output": self.output, "guard": self.guard,
                "elements": self.elements, "reason": self.reason}


# ---------------------------------------------------------------- implementation-defined rules

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
    result = get_spec(node.op).torch(inputs, node.attr)
    result = result[0] if isinstance(result, (tuple, list)) else result
    return result.detach().numpy()


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
    import math

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


# ---------------------------------------------------------------- the context guards read


def mismatch_mask(a: np.ndarray, b: np.ndarray, tolerance: Tolerance | None) -> np.ndarray:
    """Elementwise, the rule of :func:`oracles.differential.compare_arrays`: NaN only equals
    NaN (any payload), an Inf only the same Inf, ``-0 == +0``, finite pairs within
    ``tolerance`` (None: exact; integers compare in their own dtype)."""
    a, b = np.asarray(a), np.asarray(b)
    if not (a.dtype.kind == "f" or a.dtype == DType.bfloat16.numpy) and tolerance is None:
        return np.asarray(a != b)
    wide_a, wide_b = a.astype(np.float64), b.astype(np.float64)
    nan_a, nan_b = np.isnan(wide_a), np.isnan(wide_b)
    finite = np.isfinite(wide_a) & np.isfinite(wide_b)
    inf = (np.isinf(wide_a) | np.isinf(wide_b)) & ~(nan_a | nan_b) & (wide_a != wide_b)
    if tolerance is None:
        close = wide_a == wide_b
    else:
        close = tolerance.within(np.where(finite, wide_a, 0.0), np.where(finite, wide_b, 0.0))
    return (nan_a != nan_b) | inf | (finite & ~close)


def bound(tolerance: Tolerance | None, reference: np.ndarray) -> np.ndarray:
    """The tolerance's allowance around each reference value (0 for exact comparison)."""
    reference = np.abs(np.asarray(reference).astype(np.float64))
    if tolerance is None:
        return np.zeros_like(reference)
    return tolerance.atol + tolerance.rtol * np.where(np.isfinite(reference), reference, 0.0)


@dataclass(frozen=True)
class Context:
    """What the guards read for one test case: the graph, the reference outcome (with its
    probes), the declared output types and the tolerance policy in force."""

    graph: Graph | None
    reference: Outcome
    expected: Mapping[str, TensorType]
    policy: TolerancePolicy

    @cached_property
    def producers(self) -> dict[str, int]:
        return {name: index for index, node in enumerate(self.graph.nodes) for name in node.outputs} \
            if self.graph else {}

    @cached_property
    def _dependencies(self) -> dict[str, frozenset[str]]:
        """For every value, the values it is computed from (itself excluded)."""
        found: dict[str, frozenset[str]] = {}
        if self.graph is None:
            return found
        for name in self.graph.types:
            if name not in self.producers:
                found[name] = frozenset()
        for node in self.graph.nodes:
            ancestors = set()
            for name in node.inputs:
                if name:
                    ancestors |= found[name] | {name}
            for name in node.outputs:
                found[name] = frozenset(ancestors)
        return found

    def depends_on(self, output: str) -> frozenset[str]:
        return self._dependencies.get(output, frozenset())

    def upstream_nodes(self, output: str) -> list[int]:
        """Indices of the nodes ``output`` is computed by or from, in graph order."""
        names = self.depends_on(output) | {output}
        return sorted({self.producers[name] for name in names if name in self.producers})

    @cached_property
    def flags(self) -> np.ndarray | None:
        """``[nodes, RULES]`` counts from the reference's probes (rules it lacks count 0)."""
        if self.graph is None:
            return None
        flags = np.zeros((len(self.graph.nodes), len(RULES)), dtype=np.int64)
        for column, rule in enumerate(RULES):
            counts = self.reference.outputs.get(flags_probe(rule.name))
            if counts is not None and np.shape(counts) == (len(self.graph.nodes),):
                flags[:, column] = counts
        return flags

    def value_tolerance(self, name: str) -> Tolerance | None:
        """The along-paths tolerance of any value of the graph (not only outputs)."""
        if name in self.expected:
            return self.policy.for_output(name, self.expected[name].dtype)
        graph = self.graph
        sub = Graph(graph.inputs, graph.weights, graph.nodes, (name,))
        return along_paths(sub, TolerancePolicy(self.policy.by_dtype)).for_output(name, graph.types[name].dtype)

    @cached_property
    def ambiguous(self) -> dict[str, tuple[np.ndarray, str]]:
        """Tie-ambiguous elements of each tie-sensitive node output: value -> (mask, why)."""
        found: dict[str, tuple[np.ndarray, str]] = {}
        if self.graph is None:
            return found
        for node in self.graph.nodes:
            data = self.reference.outputs.get(value_probe(node.inputs[0])) if get_spec(node.op).ties else None
            if data is None:
                continue
            try:
                found.update(_tie_masks(node, np.asarray(data, dtype=np.float64),
                                        self.value_tolerance(node.inputs[0]), self.graph.types))
            except Exception:  # noqa: BLE001 - a malformed probe judges nothing, counted
                SKIPPED[f"tie:{node.op}"] += 1
        return found


# ---------------------------------------------------------------- ties


def _near(a: np.ndarray, b: np.ndarray, tolerance: Tolerance | None) -> np.ndarray:
    """Within tolerance of each other (NaN counts as near anything: it has no order)."""
    if tolerance is None:
        close = a == b
    else:
        with np.errstate(invalid="ignore"):
            close = np.abs(a - b) <= tolerance.atol + tolerance.rtol * np.maximum(np.abs(a), np.abs(b))
    return close | np.isnan(a) | np.isnan(b)


def _tie_masks(node: Node, data: np.ndarray, tolerance: Tolerance | None,
               types: Types) -> dict[str, tuple[np.ndarray, str]]:
    attrs = node.attr
    rank = data.ndim
    if node.op == "TopK":
        axis = attrs["axis"] % rank
        moved = np.moveaxis(data, axis, -1)
        order = np.argsort(-moved if attrs.get("largest", 1) else moved, axis=-1, kind="stable")
        ordered = np.take_along_axis(moved, order, axis=-1)
        near = _near(ordered[..., :-1], ordered[..., 1:], tolerance)  # neighbours in sort order
        ambiguous = np.zeros(ordered.shape, dtype=bool)
        ambiguous[..., :-1] |= near
        ambiguous[..., 1:] |= near
        mask = np.moveaxis(ambiguous[..., :attrs["k"]], -1, axis)
        why = "TopK input has neighbours in sort order within tolerance"
        return {node.outputs[1]: (mask, why)}
    axis = attrs.get("axis", -1 if node.op == "Hardmax" else 0) % rank
    moved = np.moveaxis(data, axis, -1)
    with warnings.catch_warnings():  # an all-NaN row has no extreme: every element is near it
        warnings.simplefilter("ignore", RuntimeWarning)
        extreme = (np.nanmin if node.op == "ArgMin" else np.nanmax)(moved, axis=-1, keepdims=True)
    rows = np.count_nonzero(_near(moved, extreme, tolerance), axis=-1) > 1
    why = f"{node.op} input has two or more extremes within tolerance along axis {axis}"
    if node.op == "Hardmax":
        mask = np.moveaxis(np.broadcast_to(rows[..., None], moved.shape), -1, axis)
    elif attrs.get("keepdims", 1):
        mask = np.expand_dims(rows, axis)
    else:
        mask = rows
    return {node.outputs[0]: (np.asarray(mask).reshape(types[node.outputs[0]].shape), why)}


# ---------------------------------------------------------------- the guards

Claim = tuple[str, np.ndarray, str]  # guard name, elements it explains, reason
Guard = Callable[[Context, str, np.ndarray, np.ndarray], list[Claim]]


def _flagged(context: Context, output: str, rule_names: Sequence[str] | None = None) -> list[tuple[int, Rule, int]]:
    flags = context.flags
    if flags is None:
        return []
    found = []
    for index in context.upstream_nodes(output):
        for column, rule in enumerate(RULES):
            if flags[index, column] > 0 and (rule_names is None or rule.name in rule_names):
                found.append((index, rule, int(flags[index, column])))
    return found


def _where(context: Context, index: int) -> str:
    node = context.graph.nodes[index]
    return f"{node.op} -> {node.outputs[0]}"


def overflow_guard(context: Context, output: str, actual: np.ndarray, expected: np.ndarray) -> list[Claim]:
    dtype = context.expected[output].dtype
    reference = context.reference.outputs[output]
    if dtype not in (DType.float16, DType.bfloat16):
        return []
    reference = np.asarray(reference, dtype=np.float64)
    beyond = np.isfinite(reference) & (np.abs(reference) > finite_max(dtype))
    if not beyond.any():
        return []
    return [("float16-overflow", beyond,
             f"the float64 reference exceeds the {dtype.value} range (max {finite_max(dtype):.6g}) "
             f"on {int(beyond.sum())} elements: the declared type cannot hold the value")]


def implementation_defined_guard(context: Context, output: str, actual: np.ndarray,
                                 expected: np.ndarray) -> list[Claim]:
    rules = [name for name in RULE_INDEX if name != "float16-overflow"]
    claims = []
    for index, rule, count in _flagged(context, output, rules):
        if rule.within is None:
            mask = np.ones(np.shape(actual), dtype=bool)
        else:
            a, b = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
            with np.errstate(invalid="ignore"):
                mask = np.abs(a - b) <= rule.within * np.maximum(np.maximum(np.abs(a), np.abs(b)), 1.0)
        claims.append(("implementation-defined", mask,
                       f"{rule.name}: {rule.reason} (node {index}: {_where(context, index)}, {count} elements)"))
    return claims


def tie_guard(context: Context, output: str, actual: np.ndarray, expected: np.ndarray) -> list[Claim]:
    claims = []
    depends = context.depends_on(output)
    for value, (mask, why) in context.ambiguous.items():
        if not mask.any():
            continue
        where = f"{_where(context, context.producers[value])}"
        if value == output:
            claims.append(("tie", mask, f"{why} ({where}, {int(mask.sum())} positions): any index is acceptable"))
        elif value in depends:
            claims.append(("tie", np.ones(np.shape(actual), dtype=bool),
                           f"{why} ({where}, {int(mask.sum())} positions), and {output} is computed from it"))
    return claims


def signed_zero_guard(context: Context, output: str, actual: np.ndarray, expected: np.ndarray) -> list[Claim]:
    if not context.expected[output].dtype.is_float or context.graph is None:
        return []
    sources = [index for index in context.upstream_nodes(output)
               if get_spec(context.graph.nodes[index].op).zero_sign]
    if not sources:
        return []
    a, b = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    flipped = np.isinf(a) & np.isinf(b) & (np.sign(a) != np.sign(b))
    if not flipped.any():
        return []
    return [("signed-zero", flipped,
             f"Infinities of opposite sign on {int(flipped.sum())} elements, and "
             f"{_where(context, sources[0])} maps a zero of either sign to either infinity")]


def ill_conditioned_guard(context: Context, output: str, actual: np.ndarray, expected: np.ndarray) -> list[Claim]:
    spread = context.reference.outputs.get(spread_probe(output))
    if spread is None or np.shape(spread) != np.shape(actual):
        return []
    declared = context.expected[output]
    tolerance = context.policy.for_output(output, declared.dtype)
    limit = bound(tolerance, context.reference.outputs[output])
    unstable = np.asarray(spread) > SPREAD_SHARE * limit
    if not unstable.any():
        return []
    worst = float(np.max(np.asarray(spread)[unstable]))
    overflows = _flagged(context, output, ["float16-overflow"])
    if overflows:
        index, rule, count = overflows[0]
        return [("float16-overflow", unstable,
                 f"{rule.reason} ({_where(context, index)}, {count} elements), and evaluating at the "
                 f"declared precision moves {int(unstable.sum())} elements of {output} by up to {worst:.3g}")]
    return [("ill-conditioned", unstable,
             f"evaluating at the declared precision (rounded, or perturbed by a few ULPs per "
             f"operation) moves {int(unstable.sum())} elements by up to {worst:.3g}, more than "
             f"{SPREAD_SHARE:g} of their tolerance: the result depends on rounding")]


# In claiming order: the first guard that covers an element explains it.
GUARDS: tuple[Guard, ...] = (overflow_guard, implementation_defined_guard, tie_guard, signed_zero_guard,
                             ill_conditioned_guard)


def apply_guards(context: Context, backend: str, output: str, actual: np.ndarray, expected: np.ndarray,
                 mismatched: np.ndarray,
                 guards: Sequence[Guard] = GUARDS) -> tuple[np.ndarray, list[Suppression]]:
    """The mismatched elements no guard explains, and a Suppression per explaining claim.

    ``actual`` is the backend's output, ``expected`` the reference cast to the declared
    dtype, ``mismatched`` where they differ beyond tolerance.
    """
    remaining = np.array(mismatched, dtype=bool)
    suppressions = []
    for guard in guards:
        if not remaining.any():
            break
        for name, mask, reason in guard(context, output, actual, expected):
            claimed = remaining & np.broadcast_to(np.asarray(mask, dtype=bool), remaining.shape)
            if claimed.any():
                suppressions.append(Suppression(backend, output, reason, name, int(claimed.sum())))
                remaining &= ~claimed
    return remaining, suppressions
