"""Names of the float64 reference's probes: what the ``ref-f64`` backend returns besides the
graph's outputs (see :mod:`oracles.precision`); names start with ``@ref:``, never a graph value name."""

from __future__ import annotations

from fuzzer.graph.ir import Graph
from fuzzer.graph.ops import get_spec
from oracles.rules import RULES

PROBE_PREFIX = "@ref:"


def value_probe(name: str) -> str:
    return f"{PROBE_PREFIX}value:{name}"


def declared_probe(output: str) -> str:
    return f"{PROBE_PREFIX}declared:{output}"


def spread_probe(output: str) -> str:
    return f"{PROBE_PREFIX}spread:{output}"


def probed_values(graph: Graph) -> tuple[str, ...]:
    """The intermediates the reference returns: the data input of each tie-sensitive node."""
    names: list[str] = []
    for node in graph.nodes:
        if get_spec(node.op).ties and node.inputs[0] not in names:
            names.append(node.inputs[0])
    return tuple(names)


def flags_probe(rule: str) -> str:
    return f"{PROBE_PREFIX}flags:{rule}"


def reference_output_names(graph: Graph) -> list[str]:
    """What the ``ref-f64`` backend returns, in order: outputs first, then probes."""
    return [*graph.outputs, *map(value_probe, probed_values(graph)), *map(declared_probe, graph.outputs),
            *map(spread_probe, graph.outputs), *(flags_probe(rule.name) for rule in RULES)]
