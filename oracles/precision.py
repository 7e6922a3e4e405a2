"""The float64 reference: a graph promoted to float64, and how far it is from its declared precision.

:func:`promote_to_float64` is a pure IR transform: every floating-point input, weight,
cast target and dtype attribute becomes float64, integer and bool parts stay as declared,
and every node's output types are inferred again from the operator specs.

:func:`evaluate_reference` runs a graph through its torch lowering (it imports torch; the
``ref-f64`` backend calls it in its worker), in float64 the operators' judge lowerings
(``OpSpec.reference``) where they have one, and returns, by name:

* every graph output, computed in float64 (float outputs) or as declared (integer, bool);
* *probes* whose names start with ``@ref:`` (never a graph value name):
  ``@ref:value:NAME`` the float64 value of an intermediate the guards need (the data input
  of every tie-sensitive operator, ``OpSpec.ties``); ``@ref:declared:OUT`` the output
  evaluated at its declared precision (plain torch); ``@ref:spread:OUT`` how far, per
  element, evaluations at the declared precision land from the float64 value (see below);
  ``@ref:flags:RULE`` an int64 vector counting, per node, the elements on which that rule
  of :data:`oracles.rules.RULES` fired (names: :mod:`oracles.probes`).

The spread measures conditioning. Besides plain torch at the declared dtypes, the graph is
evaluated in float64 with every floating value rounded to its declared dtype after each
node, and (for float16 and bfloat16) every operation inside a node rounded to the dtype of
the node's output (correctly rounded emulation), and :data:`PERTURBED_RUNS` more times with the result of
every inexact node (``OpSpec.exact`` false) also multiplied by ``1 + d``, ``|d|`` up to
:data:`PERTURBATION` of its declared dtype; a sum (``OpSpec.accumulates``: Conv, MatMul,
ReduceSum) moves by ``d`` times the sum of its terms' magnitudes instead, since the order of
its additions, which every implementation chooses, rounds that much on a cancelling sum.
An element whose spread is a sizeable part of its tolerance depends on rounding (catastrophic
cancellation, a comparison or a floor on a boundary, an overflow): no backend can be blamed for
it.

Values beyond the declared dtype's range: the reference keeps them in float64, it never
rounds an intermediate to Inf. The emulation does, for node results and for intermediates
inside a node (a float16 sum of squares in InstanceNormalization), so wherever such an
overflow changes an output its spread is large and the guards claim the element: a backend
that overflows as the declared dtype does (Inf, then Inf - Inf = NaN) and one that keeps the
intermediate wider (float32 inside a fused kernel) are both accepted, and an output that
itself exceeds the range is left to the ``float16-overflow`` guard.
"""

from __future__ import annotations

import hashlib
from contextlib import AbstractContextManager, nullcontext
from functools import cache
from typing import Any, Mapping

import ml_dtypes
import numpy as np

from fuzzer.graph.ir import DType, Graph, Input, Node, TensorType, Weight, infer_outputs
from fuzzer.graph.ops import get_spec
from fuzzer.graph.ops.spec import as_results
from fuzzer.graph.rejected import ShapeError
from oracles.probes import (declared_probe, flags_probe, probed_values, reference_output_names, spread_probe,
                            value_probe)
from oracles.rules import RULES, node_flags

REFERENCE = "ref-f64"

# Relative perturbation of an inexact result, by its declared dtype (64, 2, 2 and 2^11 ULPs).
PERTURBATION: Mapping[DType, float] = {
    DType.float32: 2.0 ** -17, DType.float16: 2.0 ** -9, DType.bfloat16: 2.0 ** -6,
    DType.float64: 2.0 ** -41,
}
PERTURBED_RUNS = 3


class PromotionError(ShapeError):
    """A graph that cannot be promoted to float64 (an operator's shape rule refuses it)."""


# ---------------------------------------------------------------- the IR transform


def _promoted(dtype: DType) -> DType:
    return DType.float64 if dtype.is_float else dtype


def promote_to_float64(graph: Graph) -> Graph:
    """``graph`` with every floating value in float64; integer and bool values unchanged.

    Float inputs and weights become float64 (weights keep their values exactly), control-flow
    bodies are promoted alike, float targets of dtype attributes (``OpSpec.dtype_attr``: Cast,
    Range, ...) become float64, ``CastLike`` follows its promoted second input, and every
    node's output types are inferred again. A node whose operator types its floats float32
    only (``OpSpec.float32_only``: quantization) keeps its declared types between casts: Casts
    down to float32 before it and up to float64 after it, whose values are named ``NAME@f32``.
    Raises :class:`PromotionError` if a shape rule refuses float64 or gives other shapes.
    """
    inputs = tuple(Input(i.name, i.type.with_dtype(_promoted(i.type.dtype))) for i in graph.inputs)
    weights = tuple(Weight.from_array(w.name, w.array.astype(np.float64)) if w.type.dtype.is_float else w
                    for w in graph.weights)
    types: dict[str, TensorType] = {i.name: i.type for i in inputs}
    types.update((w.name, w.type) for w in weights)
    nodes = []
    for index, node in enumerate(graph.nodes):
        if get_spec(node.op).float32_only:
            nodes += _between_casts(node, graph.types, types)
            continue
        attrs = {key: promote_to_float64(value) if isinstance(value, Graph) else value  # control-flow bodies
                 for key, value in node.attr.items()}
        dtype_attr = get_spec(node.op).dtype_attr
        if dtype_attr is not None:
            key, default = dtype_attr
            target = attrs.get(key, default)
            if target is not None and DType(target).is_float:
                attrs[key] = DType.float64.value
        try:
            inferred = infer_outputs(node.op, tuple(types[n] for n in node.inputs), attrs, node.outputs,
                                     node.output_types)
        except ShapeError as error:
            raise PromotionError(f"node {index} ({node.op}) refuses float64: {error}") from error
        wanted = tuple(t.with_dtype(_promoted(t.dtype)) for t in node.output_types)
        if inferred != wanted:
            raise PromotionError(f"node {index} ({node.op}) promoted gives {', '.join(map(str, inferred))}, "
                                 f"expected {', '.join(map(str, wanted))}")
        nodes.append(Node(node.op, node.inputs, node.outputs, inferred, tuple(attrs.items())))
        types.update(zip(node.outputs, inferred))
    return Graph(inputs, weights, tuple(nodes), graph.outputs)


def _between_casts(node: Node, declared: Mapping[str, TensorType], types: dict[str, TensorType]) -> list[Node]:
    """``node`` at its declared types, its promoted float inputs cast down before it and its
    float outputs cast up after it (``types``, the promoted graph's so far, gains them all)."""
    def cast(source: str, target: str, dtype: DType) -> Node:
        cast_type = types[source].with_dtype(dtype)
        types[target] = cast_type
        return Node("Cast", (source,), (target,), (cast_type,), (("to", dtype.value),))

    downcast = {name: f"{name}@f32" for name in dict.fromkeys(node.inputs)
                if name and types[name] != declared[name]}
    before = [cast(name, narrow, declared[name].dtype) for name, narrow in downcast.items()
              if narrow not in types]
    inputs = tuple(downcast.get(name, name) for name in node.inputs)
    outputs = tuple(f"{name}@f32" if declared[name].dtype.is_float else name for name in node.outputs)
    types.update(zip(outputs, node.output_types))
    after = [cast(narrow, name, _promoted(declared[name].dtype)) for name, narrow in zip(node.outputs, outputs)
             if narrow != name]
    return [*before, Node(node.op, inputs, outputs, node.output_types, tuple(node.attr.items())), *after]


# ---------------------------------------------------------------- pure numeric helpers


def float_bits(dtype: DType) -> tuple[np.dtype, np.dtype]:
    """The float numpy dtype and the same-width signed integer dtype."""
    return {DType.float16: (np.dtype(np.float16), np.dtype(np.int16)),
            DType.bfloat16: (np.dtype(ml_dtypes.bfloat16), np.dtype(np.int16)),
            DType.float32: (np.dtype(np.float32), np.dtype(np.int32)),
            DType.float64: (np.dtype(np.float64), np.dtype(np.int64))}[dtype]


def _ordinal(array: np.ndarray, dtype: DType) -> np.ndarray:
    """Integers ordered like the floats, adjacent floats one apart, -0 and +0 both 0."""
    float_type, int_type = float_bits(dtype)
    bits = np.asarray(array).astype(float_type).view(int_type).astype(np.int64)
    magnitude = bits & np.int64((1 << (8 * int_type.itemsize - 1)) - 1)
    return np.where(bits < 0, -magnitude, magnitude)


def ulp_distance(a: np.ndarray, b: np.ndarray, dtype: DType) -> np.ndarray:
    """Elementwise distance in units in the last place of ``dtype`` (float64 array).

    Both values are rounded to ``dtype`` first. Signed zeros are 0 apart; NaN against
    anything is NaN; integers and bools are their absolute difference.
    """
    a, b = np.asarray(a), np.asarray(b)
    if not dtype.is_float:
        return np.abs(a.astype(np.float64) - b.astype(np.float64))
    wide_a, wide_b = a.astype(np.float64), b.astype(np.float64)
    distance = np.abs(_ordinal(a, dtype) - _ordinal(b, dtype)).astype(np.float64)
    return np.where(np.isnan(wide_a) | np.isnan(wide_b), np.nan, distance)


def deviation(run: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """|run - reference| per element in float64: 0 where both are NaN or the same Inf,
    Inf where exactly one is NaN or an Inf differs."""
    a, b = np.asarray(run).astype(np.float64), np.asarray(reference).astype(np.float64)
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    with np.errstate(invalid="ignore", over="ignore"):
        difference = np.abs(a - b)
    difference = np.where(a == b, 0.0, difference)  # equal Infs (and signed zeros)
    difference = np.where(nan_a & nan_b, 0.0, difference)
    return np.where(nan_a ^ nan_b, np.inf, np.nan_to_num(difference, nan=np.inf))


# ---------------------------------------------------------------- evaluation (imports torch)


@cache
def _rounding_mode() -> type:
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_map

    class RoundedSteps(TorchDispatchMode):
        """Rounds the float64 results of every aten operation to ``dtype``, except views and
        in-place results, whose callers rely on them sharing memory."""

        def __init__(self, dtype: Any) -> None:
            super().__init__()
            self.dtype = dtype

        def rounded(self, value: Any) -> Any:
            if isinstance(value, torch.Tensor) and value.dtype == torch.float64:
                return value.to(self.dtype).to(torch.float64)
            return value

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            result = func(*args, **(kwargs or {}))
            if any(returned.alias_info is not None for returned in func._schema.returns):
                return result
            return tree_map(self.rounded, result)

    return RoundedSteps


def _steps_rounded_to(dtype: DType) -> AbstractContextManager:
    """A context in which every float64 operation rounds its result to ``dtype`` (a node's
    intermediates at its declared precision) for the 16-bit floats, whose small range a sum
    inside one operator overflows; float32 and wider, and non-float dtypes, are left as they
    are (an intercepted aten call costs Python time on every test the judge runs)."""
    from fuzzer.graph.values import torch_dtype

    return _rounding_mode()(torch_dtype(dtype)) if dtype.is_float and dtype.numpy.itemsize < 4 else nullcontext()


def _evaluate(graph: Graph, feeds: Mapping[str, Any], after=None, judged: bool = True,
              declared: Mapping[str, TensorType] | None = None) -> dict[str, Any]:
    """Every value of ``graph``: ``feeds`` holds inputs and weights as tensors. Each node runs
    its operator's judge lowering (``OpSpec.reference``) if ``judged`` and it has one, else its
    torch lowering; with ``declared`` types, every operation inside a node rounds to the dtype
    of the node's first output. ``after(index, node, results)`` may replace a node's results
    before later nodes read them."""
    values = dict(feeds)
    for index, node in enumerate(graph.nodes):
        spec = get_spec(node.op)
        lowering = spec.reference if judged and spec.reference is not None else spec.torch
        with _steps_rounded_to(declared[node.outputs[0]].dtype) if declared is not None else nullcontext():
            result = lowering([values[name] for name in node.inputs], node.attr)
        results = list(as_results(result))
        if after is not None:
            results = after(index, node, results)
        values.update(zip(node.outputs, results))
    return values


def _sum_magnitudes(graph: Graph, values: Mapping[str, Any]) -> dict[int, list[Any]]:
    """For each accumulating node of ``graph`` (``OpSpec.accumulates``), by index: the sum of its
    terms' magnitudes per result, its lowering on the absolute values of its float inputs
    (read from ``values``) and float attributes."""
    magnitudes = {}
    for index, node in enumerate(graph.nodes):
        spec = get_spec(node.op)
        if not spec.accumulates:
            continue
        operands = [values[name] for name in node.inputs]
        operands = [x.abs() if x is not None and x.is_floating_point() else x for x in operands]
        attrs = {key: abs(value) if isinstance(value, float) else value for key, value in node.attr.items()}
        magnitudes[index] = [r.abs() for r in as_results(spec.torch(operands, attrs))]
    return magnitudes


def _graph_seed(graph: Graph, inputs: Mapping[str, np.ndarray]) -> int:
    digest = hashlib.sha256(graph.content_hash.encode())
    for name in sorted(inputs):
        digest.update(np.ascontiguousarray(inputs[name]).tobytes())
    return int.from_bytes(digest.digest()[:8], "little") >> 1


def evaluate_reference(graph: Graph, inputs: Mapping[str, np.ndarray],
                       runs: int = PERTURBED_RUNS) -> dict[str, np.ndarray]:
    """The float64 reference and its probes (see the module docstring), by name.

    Deterministic: the perturbations are seeded from the graph and the input values.
    """
    import torch

    import fuzzer.graph.export_torch  # noqa: F401 - installs how control-flow lowerings run their bodies
    from fuzzer.graph.values import to_numpy, to_torch, torch_dtype

    promoted = promote_to_float64(graph)
    declared = {**promoted.types, **graph.types}  # the casts promotion adds keep their own types

    def feeds(target: Graph) -> dict[str, Any]:
        found = {i.name: to_torch(np.asarray(inputs[i.name]).astype(i.type.dtype.numpy)) for i in target.inputs}
        found.update((w.name, to_torch(w.array)) for w in target.weights)
        return found

    with torch.no_grad():
        reference = _evaluate(promoted, feeds(promoted))
        magnitudes = _sum_magnitudes(promoted, reference)
        generator = torch.Generator().manual_seed(_graph_seed(graph, inputs))

        def emulate(perturb: bool):
            def after(index: int, node: Node, results: list[Any]) -> list[Any]:
                rounded = []
                for k, (name, result) in enumerate(zip(node.outputs, results)):
                    dtype = declared[name].dtype
                    if dtype.is_float:
                        if perturb and not get_spec(node.op).exact:
                            noise = torch.empty(result.shape, dtype=torch.float64)
                            noise.uniform_(-PERTURBATION[dtype], PERTURBATION[dtype], generator=generator)
                            if index in magnitudes:  # a sum: moved by its terms' magnitudes
                                result = result + noise * magnitudes[index][k]
                            else:
                                result = result * (1 + noise)
                        result = result.to(torch_dtype(dtype)).to(torch.float64)
                    rounded.append(result)
                return rounded
            return after

        emulated = _evaluate(promoted, feeds(promoted), emulate(False), declared=declared)
        runs_outputs = [emulated] + [_evaluate(promoted, feeds(promoted), emulate(True), declared=declared)
                                     for _ in range(runs)]
        try:
            plain = _evaluate(graph, feeds(graph), judged=False)
        except Exception:  # noqa: BLE001 - a missing low-precision kernel: emulation still judges
            plain = None
        if plain is not None:
            runs_outputs.append(plain)

        result: dict[str, np.ndarray] = {}
        for name in graph.outputs:
            result[name] = to_numpy(reference[name])
        for name in probed_values(graph):
            result[value_probe(name)] = to_numpy(reference[name].to(torch.float64))
        for name in graph.outputs:
            result[declared_probe(name)] = to_numpy(plain[name]) if plain is not None else \
                to_numpy(emulated[name].to(torch_dtype(declared[name].dtype)))
        for name in graph.outputs:
            runs = [to_numpy(run[name]) for run in runs_outputs]
            if any(run.shape != result[name].shape for run in runs):
                # Rounding moves a run-time extent (NonZero of a value near zero): the output
                # is judged as the declared precision gives it, every element ill-conditioned.
                result[name] = result[declared_probe(name)].astype(result[name].dtype)
                result[spread_probe(name)] = np.full(result[name].shape, np.inf)
                continue
            spread = np.zeros(result[name].shape, dtype=np.float64)
            for run in runs:
                spread = np.maximum(spread, deviation(run, result[name]))
            result[spread_probe(name)] = spread

        def numpy_values(values: Mapping[str, Any]) -> dict[str, np.ndarray]:
            return {k: to_numpy(v) for k, v in values.items()}

        flags = np.maximum(node_flags(graph, numpy_values(reference)), node_flags(graph, numpy_values(emulated)))
        for column, rule in enumerate(RULES):
            result[flags_probe(rule.name)] = flags[:, column].copy()
    return {name: result[name] for name in reference_output_names(graph)}
