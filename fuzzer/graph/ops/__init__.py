"""The operator registry: every OpSpec, gathered from the family modules listed once here."""

from __future__ import annotations

import importlib
from functools import cache

from fuzzer.graph.ops.spec import OpSpec, Operand, Proposal, Unsatisfiable

FAMILIES = ("elementwise", "activation", "logic", "linalg", "pooling", "normalization",
            "reduction", "shape", "indexing", "control")

__all__ = ["OpSpec", "Operand", "Proposal", "Unsatisfiable", "all_specs", "get_spec"]


@cache
def registry() -> dict[str, OpSpec]:
    specs: dict[str, OpSpec] = {}
    for family in FAMILIES:
        module = importlib.import_module(f"fuzzer.graph.ops.{family}")
        for spec in module.SPECS:
            if spec.name in specs:
                raise RuntimeError(f"operator {spec.name} is registered twice "
                                   f"(families {specs[spec.name].family} and {spec.family})")
            specs[spec.name] = spec
    return specs


def get_spec(name: str) -> OpSpec:
    return registry()[name]


def all_specs() -> list[OpSpec]:
    return list(registry().values())
