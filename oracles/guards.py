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
    or cast on a rounding boundary, a sum whose order rounds it): no backend can be blamed
    for a difference of up to :data:`SPREAD_FACTOR` times that spread.

NaN payloads and the sign of zero never make a mismatch in the first place: comparisons
treat every NaN alike and ``-0 == +0``.

A rule or a tie probe that raises judges nothing (it claims no element), and is counted in
:data:`oracles.rules.SKIPPED` (by rule name, ``tie:OP`` for a tie probe) so that a caller can see how
often that happens: ``SKIPPED`` counts for the life of the process that evaluates.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from fuzzer.graph.ir import DType, Graph, Node, TensorType
from fuzzer.execution.outcome import Outcome
from fuzzer.graph.ops import get_spec
from oracles.compare import extent_stats, mismatch_mask, output_stats, reference_usable
from oracles.finding import Suppression
from oracles.precision import deviation
from oracles.probes import flags_probe, spread_probe, value_probe
from oracles.rules import RULE_INDEX, RULES, SKIPPED, Rule, Types, finite_max
from oracles.tolerance import Tolerance, TolerancePolicy, along_paths

SPREAD_SHARE = 0.5  # an element is ill-conditioned when its spread exceeds this share of its bound
SPREAD_FACTOR = 16  # how far beyond its spread an ill-conditioned element's difference is still rounding


# ---------------------------------------------------------------- the context guards read


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
    with np.errstate(over="ignore"):  # a spread near the float64 maximum: 16x of it is inf, still a bound
        within = unstable & (deviation(actual, expected) <= SPREAD_FACTOR * np.asarray(spread) + limit)
    return [("ill-conditioned", within,
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


def pair_differences(expected: Mapping[str, TensorType], actual: Outcome, baseline: Outcome,
                     policy: TolerancePolicy, context: Context | None = None,
                     guards: Sequence[Guard] = GUARDS) -> tuple[dict[str, dict[str, Any]], list[Suppression]]:
    """Where ``actual`` differs from ``baseline`` beyond ``policy``, output by output, after
    the guards (run only when ``context`` holds a reference) have claimed what they explain.

    Both outcomes must be OK and conform to ``expected``. Returns the statistics of each
    differing output (as in a blame finding's ``outputs``) and the suppressions, which
    name ``actual``'s backend.
    """
    differing: dict[str, dict[str, Any]] = {}
    suppressions: list[Suppression] = []
    for name, declared in expected.items():
        tolerance = policy.for_output(name, declared.dtype)
        mine, theirs = np.asarray(actual.outputs[name]), np.asarray(baseline.outputs[name])
        if mine.shape != theirs.shape:  # extents that only the run gives, and they differ
            differing[name] = extent_stats(declared, mine, theirs, "pair")
            continue
        left = mismatch_mask(mine, theirs, tolerance)
        if left.any() and context is not None and reference_usable(context.reference, {name: declared}):
            left, claimed = apply_guards(context, actual.backend, name, mine, theirs, left, guards)
            suppressions += claimed
        if left.any():
            differing[name] = output_stats(declared, tolerance, mine, theirs, left, "pair")
    return differing, suppressions
