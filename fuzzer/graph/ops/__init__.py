"""The operator registry: every OpSpec, gathered from the family modules (one per ``Family``),
each checked by :func:`~fuzzer.graph.ops.spec.check_spec` as it registers."""

from __future__ import annotations

import importlib
from functools import cache, partial
from typing import Any, Callable, Iterable, Mapping

from fuzzer.graph import ir
from fuzzer.graph.ops.spec import Family, Operand, OpSpec, Proposal, SpecError, check_spec
from fuzzer.graph.rejected import ShapeError

__all__ = ["Family", "OpSpec", "Operand", "Proposal", "SpecError", "all_specs", "get_spec", "group", "operators",
           "infer_types", "registry", "undefined_by_constants"]


@cache
def registry() -> dict[str, OpSpec]:
    specs: dict[str, OpSpec] = {}
    for family in Family:
        for spec in importlib.import_module(f"fuzzer.graph.ops.{family.value}").SPECS:
            check_spec(spec, family)
            if spec.name in specs:
                raise SpecError(f"operator {spec.name} is registered twice "
                                f"(families {specs[spec.name].family.value} and {spec.family.value})")
            specs[spec.name] = spec
    return specs


def get_spec(name: str) -> OpSpec:
    return registry()[name]


def all_specs() -> list[OpSpec]:
    return list(registry().values())


def operators(where: Callable[[OpSpec], bool]) -> frozenset[str]:
    """The names of the registered operators whose spec satisfies ``where``."""
    return frozenset(spec.name for spec in all_specs() if where(spec))


def group(name: str, members: Iterable[str]) -> frozenset[str]:
    """A named group of operators that a consumer's rule models one by one (the casts, Mod),
    checked: raises :class:`SpecError` naming the group and any member that is not registered."""
    members = frozenset(members)
    unknown = sorted(members - registry().keys())
    if unknown:
        raise SpecError(f"group {name} names {', '.join(unknown)}, not a registered operator")
    return members


def infer_types(spec: OpSpec, types: tuple[ir.TensorType, ...], attrs: Mapping[str, Any]) -> tuple[ir.TensorType, ...]:
    """``spec``'s output types for inputs of ``types``, run-time extents included.

    Only an extent-free operator (``OpSpec.extent_free``) reads a value with a run-time
    extent. Its shape rule runs at the extents' bounds, then once per extent's symbol with
    that extent one larger: an output axis that grows by one has that symbol's extent. An
    axis that grows otherwise or with two symbols, and a rule that refuses the larger
    extent (a broadcast against a fixed extent), refuse the node: its output would not
    follow the run.
    """
    symbols = sorted({symbol for t in types for _, symbol in t.runtime})
    if not symbols:
        return tuple(spec.infer(types, attrs))
    if not spec.extent_free:
        raise ShapeError(f"{spec.name} cannot read {', '.join(str(t) for t in types if t.runtime)}: "
                         "its output would depend on an extent that only the run gives")
    bounds = tuple(spec.infer(tuple(t.static for t in types), attrs))
    runtime: list[dict[int, str]] = [{} for _ in bounds]
    for symbol in symbols:
        try:
            larger = tuple(spec.infer(tuple(t.grown(symbol) for t in types), attrs))
        except ShapeError as error:
            raise ShapeError(f"{spec.name} needs a fixed extent where its input's extent {symbol} only the run "
                             f"gives: {error}") from None
        for position, (at_bound, at_larger) in enumerate(zip(bounds, larger)):
            if at_bound.rank != at_larger.rank:
                raise ShapeError(f"{spec.name}'s output rank follows run-time extent {symbol}")
            for axis, (before, after) in enumerate(zip(at_bound.shape, at_larger.shape)):
                if before == after:
                    continue
                if after != before + 1 or axis in runtime[position]:
                    raise ShapeError(f"{spec.name}'s output axis {axis} is not run-time extent {symbol} itself")
                runtime[position][axis] = symbol
    return tuple(ir.TensorType(t.dtype, t.shape, tuple(sorted(extents.items())))
                 for t, extents in zip(bounds, runtime))


def undefined_by_constants(graph: ir.Graph) -> str | None:
    """Why a node's constant inputs (weights) leave its result undefined in ONNX (two scatter
    updates to one element, ``OpSpec.constants_rule``), or None: reduction, which edits
    constants and extents, must not make such a graph."""
    weights = {w.name: w.array for w in graph.weights}
    types = graph.types
    for index, node in enumerate(graph.nodes):
        rule = get_spec(node.op).constants_rule
        if rule is not None and (why := rule(tuple(types[name] for name in node.inputs),
                                             tuple(weights.get(name) for name in node.inputs), node.attr)):
            return f"node {index} ({node.op}): {why}"
    return None


ir.use_shape_rules(lambda op: partial(infer_types, get_spec(op)))
