"""The operator registry: every OpSpec, gathered from the family modules (one per ``Family``),
each checked by :func:`~fuzzer.graph.ops.spec.check_spec` as it registers."""

from __future__ import annotations

import importlib
from functools import cache
from typing import Callable, Iterable

from fuzzer.graph import ir
from fuzzer.graph.ops.spec import Family, Operand, OpSpec, Proposal, SpecError, check_spec

__all__ = ["Family", "OpSpec", "Operand", "Proposal", "SpecError", "all_specs", "get_spec", "group", "operators",
           "registry"]


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


ir.use_shape_rules(lambda op: get_spec(op).infer)
