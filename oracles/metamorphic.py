"""The metamorphic oracle: one backend must compute the same outputs for a graph and for a
semantics-preserving rewrite of it.

Every rewrite is a small function ``rewrite(graph, rng, inputs=None) -> Graph`` listed once
in :data:`REWRITES`. It picks a random site, raises :class:`NotApplicable` when the graph has
none, keeps every graph input (except :func:`input_to_weight`) and output name, and builds
new nodes with the operator specs' shape inference, so the result is a valid graph. All of
them are exact in IEEE arithmetic: ``x + (-0.0)`` keeps ``-0`` (``x + 0`` would not),
``x * 1``, transposes, reshapes, split/concat, identities and moving a value between an
input and a weight change no bit; operands are swapped only where the operator is
commutative bit for bit (Add, Mul, comparisons and logic; Max/Min on integers only, since
the sign of a zero result may follow the operand order).
"""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Callable, Mapping, Sequence

import numpy as np

from fuzzer.graph.export_onnx import DEFAULT_OPSET, to_onnx_bytes
from fuzzer.graph.ir import Graph, Input, Node, TensorType, Weight, infer_outputs
from fuzzer.graph.ops import get_spec
from fuzzer.graph.case import TestCase
from fuzzer.execution.outcome import Outcome, Stage
from oracles.compare import FAILURES, declared_type_finding, failure_finding, reference_usable, worst_output
from oracles.finding import Finding, FindingKind, Verdict
from oracles.guards import Context, pair_differences
from oracles.tolerance import DEFAULT_POLICY, TolerancePolicy, along_paths

Rewrite = Callable[..., Graph]


class NotApplicable(Exception):
    """The graph offers no site for this rewrite."""


# ---------------------------------------------------------------- helpers


def _fresh(graph: Graph, base: str, taken: set[str]) -> str:
    index = 0
    while f"{base}__m{index}" in graph.types or f"{base}__m{index}" in taken:
        index += 1
    name = f"{base}__m{index}"
    taken.add(name)
    return name


def _node(op: str, inputs: Sequence[str], outputs: Sequence[str], types: Mapping[str, TensorType],
          **attrs) -> Node:
    """A node whose output types come from the operator's own shape inference."""
    inferred = infer_outputs(op, tuple(types[name] for name in inputs), attrs, tuple(outputs))
    return Node(op, tuple(inputs), tuple(outputs), inferred, tuple(attrs.items()))


def _accepts(op: str, tensor_type: TensorType, opset: int) -> bool:
    return get_spec(op).accepts(tensor_type, opset)


def _pick_value(graph: Graph, rng: random.Random, usable: Callable[[TensorType], bool]) -> str:
    candidates = [name for name, t in graph.types.items()
                  if usable(t) and (graph.consumers[name] or name in graph.outputs)]
    if not candidates:
        raise NotApplicable("no value fits")
    return rng.choice(sorted(candidates))


Chain = Callable[[str, str, dict[str, TensorType], set[str]], tuple[list[Node], list[Weight]]]


def insert_after(graph: Graph, value: str, chain: Chain) -> Graph:
    """``graph`` with a chain of nodes that must compute ``value`` again from ``value``.

    ``chain(source, target, types, taken)`` returns nodes reading ``source`` and writing
    ``target`` last (and any weights they need). A node output keeps its name at the end of
    the chain (its producer writes a fresh name instead); an input or weight keeps its name
    at the start and its readers move to the chain's end.
    """
    taken: set[str] = set()
    types = dict(graph.types)
    producers = {name: index for index, node in enumerate(graph.nodes) for name in node.outputs}
    if value in producers:
        source = _fresh(graph, value, taken)
        types[source] = types[value]
        target = value
        position = producers[value] + 1
        nodes = list(graph.nodes)
        producer = nodes[producers[value]]
        nodes[producers[value]] = replace(producer,
                                          outputs=tuple(source if o == value else o for o in producer.outputs))
    else:
        source, target = value, _fresh(graph, value, taken)
        position = 0
        nodes = [replace(node, inputs=tuple(target if i == value else i for i in node.inputs)) for node in graph.nodes]
    inserted, weights = chain(source, target, types, taken)
    return Graph(graph.inputs, graph.weights + tuple(weights),
                 tuple(nodes[:position] + inserted + nodes[position:]), graph.outputs)


def _constant(graph: Graph, base: str, tensor_type: TensorType, value: float, taken: set[str]) -> Weight:
    return Weight.from_array(_fresh(graph, base, taken), np.full((), value, dtype=tensor_type.dtype.numpy))


# ---------------------------------------------------------------- the rewrites


def add_zero(graph: Graph, rng: random.Random, inputs=None, opset: int = DEFAULT_OPSET) -> Graph:
    """``v -> Add(v, z)``: z is -0.0 for floats (so -0 stays -0) and 0 for integers."""
    value = _pick_value(graph, rng, lambda t: t.dtype.value != "bool" and _accepts("Add", t, opset))

    def chain(source, target, types, taken):
        zero = _constant(graph, "zero", types[source], -0.0 if types[source].dtype.is_float else 0, taken)
        types[zero.name] = zero.type
        return [_node("Add", (source, zero.name), (target,), types)], [zero]
    return insert_after(graph, value, chain)


def mul_one(graph: Graph, rng: random.Random, inputs=None, opset: int = DEFAULT_OPSET) -> Graph:
    """``v -> Mul(v, 1)``."""
    value = _pick_value(graph, rng, lambda t: t.dtype.value != "bool" and _accepts("Mul", t, opset))

    def chain(source, target, types, taken):
        one = _constant(graph, "one", types[source], 1, taken)
        types[one.name] = one.type
        return [_node("Mul", (one.name, source) if rng.random() < 0.5 else (source, one.name), (target,), types)], [one]
    return insert_after(graph, value, chain)


def double_transpose(graph: Graph, rng: random.Random, inputs=None, opset: int = DEFAULT_OPSET) -> Graph:
    """``v -> Transpose(Transpose(v, p), inverse(p))``."""
    value = _pick_value(graph, rng, lambda t: t.rank >= 2 and _accepts("Transpose", t, opset))
    rank = graph.types[value].rank
    perm = tuple(rng.sample(range(rank), rank))
    inverse = tuple(int(i) for i in np.argsort(perm))

    def chain(source, target, types, taken):
        middle = _fresh(graph, value, taken)
        first = _node("Transpose", (source,), (middle,), types, perm=perm)
        types[middle] = first.output_types[0]
        return [first, _node("Transpose", (middle,), (target,), types, perm=inverse)], []
    return insert_after(graph, value, chain)


def reshape_roundtrip(graph: Graph, rng: random.Random, inputs=None, opset: int = DEFAULT_OPSET) -> Graph:
    """``v -> Reshape(Reshape(v, s), shape(v))`` with s flat or a random factorization."""
    value = _pick_value(graph, rng, lambda t: _accepts("Reshape", t, opset))
    shape = graph.types[value].shape
    numel = graph.types[value].numel
    if rng.random() < 0.5:
        middle_shape: tuple[int, ...] = (numel,)
    else:
        dims, rest = [], numel
        for _ in range(rng.randint(0, 2)):
            factor = rng.choice([d for d in range(1, rest + 1) if rest % d == 0])
            dims.append(factor)
            rest //= factor
        middle_shape = (*dims, rest)

    def chain(source, target, types, taken):
        middle = _fresh(graph, value, taken)
        first = _node("Reshape", (source,), (middle,), types, shape=middle_shape, allowzero=0)
        types[middle] = first.output_types[0]
        return [first, _node("Reshape", (middle,), (target,), types, shape=tuple(shape), allowzero=0)], []
    return insert_after(graph, value, chain)


def split_concat(graph: Graph, rng: random.Random, inputs=None, opset: int = DEFAULT_OPSET) -> Graph:
    """``v -> Concat(Split(v, axis), axis)`` along an axis of size >= 2."""
    value = _pick_value(graph, rng, lambda t: max(t.shape, default=0) >= 2 and _accepts("Split", t, opset))
    shape = graph.types[value].shape
    axis = rng.choice([a for a, d in enumerate(shape) if d >= 2])
    cut = rng.randint(1, shape[axis] - 1)

    def chain(source, target, types, taken):
        parts = (_fresh(graph, value, taken), _fresh(graph, value, taken))
        split = _node("Split", (source,), parts, types, axis=axis, split=(cut, shape[axis] - cut))
        types.update(zip(parts, split.output_types))
        return [split, _node("Concat", parts, (target,), types, axis=axis)], []
    return insert_after(graph, value, chain)


def identity_chain(graph: Graph, rng: random.Random, inputs=None, opset: int = DEFAULT_OPSET) -> Graph:
    """``v -> Identity(...Identity(v))``, one to three deep."""
    value = _pick_value(graph, rng, lambda t: _accepts("Identity", t, opset))
    depth = rng.randint(1, 3)

    def chain(source, target, types, taken):
        names = [source] + [_fresh(graph, value, taken) for _ in range(depth - 1)] + [target]
        nodes = []
        for a, b in zip(names, names[1:]):
            nodes.append(_node("Identity", (a,), (b,), types))
            types[b] = nodes[-1].output_types[0]
        return nodes, []
    return insert_after(graph, value, chain)


def swap_commutative(graph: Graph, rng: random.Random, inputs=None, opset: int = DEFAULT_OPSET) -> Graph:
    """Swap the two operands of a commutative node: one whose reference evaluator wants the
    larger operand first (Sum, Mean) only with equal shapes, and a minimum or maximum on
    integers only (which NaN, or which of -0 and +0, comes back may depend on the order)."""
    types = graph.types

    def swappable(node: Node) -> bool:
        spec = get_spec(node.op)
        if not spec.commutative or len(node.inputs) != 2 or node.inputs[0] == node.inputs[1]:
            return False
        a, b = (types[name] for name in node.inputs)
        if spec.largest_first and a.shape != b.shape:
            return False
        return not (spec.min_max and a.dtype.is_float)

    sites = [index for index, node in enumerate(graph.nodes) if swappable(node)]
    if not sites:
        raise NotApplicable("no commutative node with two distinct operands")
    index = rng.choice(sites)
    nodes = list(graph.nodes)
    node = nodes[index]
    nodes[index] = _node(node.op, node.inputs[::-1], node.outputs, types, **node.attr)
    return Graph(graph.inputs, graph.weights, tuple(nodes), graph.outputs)


def input_to_weight(graph: Graph, rng: random.Random, inputs: Mapping[str, np.ndarray] | None = None,
                    opset: int = DEFAULT_OPSET) -> Graph:
    """A graph input becomes a weight holding the value it is fed (needs ``inputs``)."""
    if inputs is None or not graph.inputs:
        raise NotApplicable("needs a graph input and its value")
    chosen = rng.choice(graph.inputs)
    array = np.asarray(inputs[chosen.name]).astype(chosen.type.dtype.numpy)
    weight = Weight.from_array(chosen.name, array.reshape(chosen.type.shape))
    return Graph(tuple(i for i in graph.inputs if i.name != chosen.name), graph.weights + (weight,),
                 graph.nodes, graph.outputs)


def weight_to_input(graph: Graph, rng: random.Random, inputs=None, opset: int = DEFAULT_OPSET) -> Graph:
    """A weight becomes a graph input, fed its former value (see :func:`rewritten_inputs`)."""
    if not graph.weights:
        raise NotApplicable("no weight")
    chosen = rng.choice(graph.weights)
    return Graph(graph.inputs + (Input(chosen.name, chosen.type),),
                 tuple(w for w in graph.weights if w.name != chosen.name), graph.nodes, graph.outputs)


# Every rewrite, listed once.
REWRITES: tuple[Rewrite, ...] = (add_zero, mul_one, double_transpose, reshape_roundtrip, split_concat,
                                 identity_chain, swap_commutative, input_to_weight, weight_to_input)


def rewritten_inputs(original: Graph, inputs: Mapping[str, np.ndarray], rewritten: Graph) -> dict[str, np.ndarray]:
    """The feed for ``rewritten``: the original inputs it still has, and the former weights'
    values for inputs that were weights."""
    weights = {w.name: w.array for w in original.weights}
    return {i.name: np.asarray(inputs[i.name]) if i.name in inputs else weights[i.name] for i in rewritten.inputs}


def rewrite_case(case: TestCase, rng: random.Random,
                 rewrites: Sequence[Rewrite] = REWRITES) -> tuple[str, TestCase]:
    """A random applicable rewrite of ``case`` (name, new case with the same outputs)."""
    for rewrite in rng.sample(list(rewrites), len(rewrites)):
        try:
            graph = rewrite(case.graph, rng, case.inputs, opset=case.opset)
        except NotApplicable:
            continue
        feed = rewritten_inputs(case.graph, case.inputs, graph)
        return rewrite.__name__, TestCase(graph, feed, to_onnx_bytes(graph, case.opset), case.opset, case.seed,
                                          case.index)
    raise NotApplicable("no rewrite applies to this graph")


# ---------------------------------------------------------------- the oracle


def metamorphic(expected: Mapping[str, TensorType], original: Outcome, rewritten: Outcome, rewrite: str,
                policy: TolerancePolicy = DEFAULT_POLICY, graph: Graph | None = None,
                reference: Outcome | None = None) -> Verdict:
    """METAMORPHIC findings for one backend run on a graph (``original``) and on its rewrite.

    A rewritten run that fails where the original ran is reported as that failure, marked
    with the rewrite. Values are compared under ``policy`` (widened along ``graph``'s
    paths when given); with the original graph's ``ref-f64`` outcome as ``reference``,
    the guards first claim what depends on rounding.
    """
    if not original.ok:
        return Verdict()
    if rewritten.status in FAILURES:
        failure = failure_finding(rewritten)
        failure = replace(failure, details={**failure.details, "metamorphic": rewrite},
                          summary=f"{failure.summary} (after rewrite {rewrite})")
        return Verdict([failure])
    if not rewritten.ok or declared_type_finding(expected, original):
        return Verdict()
    type_finding = declared_type_finding(expected, rewritten)
    if type_finding:
        finding = replace(type_finding, kind=FindingKind.METAMORPHIC,
                          summary=f"{type_finding.summary} after rewrite {rewrite}",
                          details={**type_finding.details, "rewrite": rewrite})
        return Verdict([finding])
    if graph is not None:
        policy = along_paths(graph, policy)
    context = Context(graph, reference, expected, policy) if reference_usable(reference, expected) else None
    differing, suppressions = pair_differences(expected, rewritten, original, policy, context)
    if not differing:
        return Verdict([], suppressions)
    output = worst_output(differing)
    stats = differing[output]
    summary = (f"{original.backend} changes {output} ({expected[output]}) under rewrite {rewrite}: "
               f"{stats['description']}")
    if len(differing) > 1:
        summary += f" (+{len(differing) - 1} more outputs)"
    finding = Finding(FindingKind.METAMORPHIC, (original.backend,), Stage.COMPARE, summary, {
        "rewrite": rewrite, "output": output, "dtype": expected[output].dtype.value,
        "error_class": f"{rewrite}/{stats['error_class']}", "max_abs_error": stats["max_abs_error"],
        "max_ulp": stats["max_ulp"], "mismatched": stats["mismatched"], "outputs": differing,
    })
    return Verdict([finding], suppressions)
