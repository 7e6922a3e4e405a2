"""Localization: the first operator whose result goes wrong on the blamed backend.

The graph is run with every intermediate value exposed as an extra graph output, on the
blamed backend and on the reference, in one batch; the first node in topological order
whose output differs beyond the run's tolerance (all of its inputs, computed by earlier
nodes, agree) is the culprit. Exposing values can change what a compiler does (it can no
longer fuse across them): when the exposed graph no longer shows the bug, each prefix of
the graph ending at one node is run instead (one batch), and the first prefix that
diverges or fails names the node. Failures localize the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from fuzzer.execution.backends import load_backend
from fuzzer.graph.export_onnx import to_onnx_bytes
from fuzzer.graph.ir import Graph, TensorType
from fuzzer.graph.case import TestCase
from fuzzer.execution.outcome import Outcome
from oracles.blame import reference_for_comparison
from oracles.compare import compare_arrays
from oracles.precision import REFERENCE
from oracles.tolerance import TolerancePolicy, along_paths
from triage.rerun import Evaluator


@dataclass(frozen=True)
class Localization:
    node_index: int
    op: str
    output: str  # the node's first divergent output
    summary: str  # how it diverges (comparison description, or the failure)
    method: str  # "exposed" (intermediates as outputs) or "prefix" (one graph per node)


def with_graph(case: TestCase, graph: Graph) -> TestCase:
    """``case`` with another graph (exported at the case's opset) and the inputs it reads."""
    inputs = {i.name: case.inputs[i.name] for i in graph.inputs}
    return TestCase(graph, inputs, to_onnx_bytes(graph, case.opset), case.opset, case.seed, case.index,
                    case.inputs_clean)


def expose_intermediates(graph: Graph) -> Graph:
    """``graph`` with every node output also a graph output (the original outputs first)."""
    extra = [name for node in graph.nodes for name in node.outputs if name not in graph.outputs]
    return Graph(graph.inputs, graph.weights, graph.nodes, (*graph.outputs, *extra))


def prefix_graph(graph: Graph, index: int) -> Graph:
    """The nodes up to ``index``, returning that node's outputs."""
    return Graph(graph.inputs, graph.weights, graph.nodes[:index + 1], graph.nodes[index].outputs)


def divergence(declared: TensorType, actual: Outcome, reference: Outcome, name: str,
               policy: TolerancePolicy) -> str | None:
    """How ``actual``'s value ``name`` differs from the reference's, or None when it agrees."""
    if not actual.ok:
        return f"{actual.status.value}: {actual.error_type} {actual.message.splitlines()[0] if actual.message else ''}"
    if name not in actual.outputs:
        return f"no output {name}"
    expected = reference_for_comparison(reference.outputs[name], declared)
    comparison = compare_arrays(declared, np.asarray(actual.outputs[name]), expected,
                                policy.for_output(name, declared.dtype))
    return None if comparison.equal else comparison.description


def backend_name(backend: str) -> str:
    """The name outcomes carry for ``backend`` (a name already, or a ``module:Class`` plugin)."""
    return load_backend(backend).name if ":" in backend else backend


def localize(case: TestCase, backend: str, reference: str = REFERENCE, *,
             evaluator: Evaluator | None = None) -> Localization | None:
    """The first node whose output diverges between ``backend`` and ``reference`` (or on
    which ``backend`` fails), or None when neither method finds one. Without an
    ``evaluator``, workers for the two backends are started for this call."""
    if case.graph is None or not case.graph.nodes:
        return None
    if evaluator is None:
        with Evaluator([backend, reference]) as own:
            return localize(case, backend, reference, evaluator=own)
    pair = [backend_name(backend), backend_name(reference)]
    return (_by_exposed_values(case, pair, evaluator) or _by_prefixes(case, pair, evaluator))


def _by_exposed_values(case: TestCase, pair: list[str], evaluator: Evaluator) -> Localization | None:
    graph = expose_intermediates(case.graph)
    outcomes = _by_backend(evaluator.outcomes_many([with_graph(case, graph)], only=pair)[0])
    actual, reference = outcomes.get(pair[0]), outcomes.get(pair[1])
    if actual is None or reference is None or not (actual.ok and reference.ok):
        return None
    policy = along_paths(graph, evaluator.policy)
    if not any(divergence(graph.types[name], actual, reference, name, policy) for name in case.graph.outputs):
        return None  # exposing the values hid the bug
    for index, node in enumerate(graph.nodes):
        for name in node.outputs:
            if (found := divergence(graph.types[name], actual, reference, name, policy)) is not None:
                return Localization(index, node.op, name, found, "exposed")
    return None


def _by_prefixes(case: TestCase, pair: list[str], evaluator: Evaluator) -> Localization | None:
    graph = case.graph
    prefixes = [prefix_graph(graph, index) for index in range(len(graph.nodes))]
    results = evaluator.outcomes_many([with_graph(case, prefix) for prefix in prefixes], only=pair)
    for index, (prefix, outcomes) in enumerate(zip(prefixes, results)):
        by_name = _by_backend(outcomes)
        actual, reference = by_name.get(pair[0]), by_name.get(pair[1])
        if actual is None or reference is None or not reference.ok:
            continue
        policy = along_paths(prefix, evaluator.policy)
        for name in prefix.outputs:
            if (found := divergence(prefix.types[name], actual, reference, name, policy)) is not None:
                return Localization(index, graph.nodes[index].op, name, found, "prefix")
    return None


def _by_backend(outcomes: list[Outcome]) -> Mapping[str, Outcome]:
    return {outcome.backend: outcome for outcome in outcomes}


def intermediate_values(case: TestCase, reference: str, evaluator: Evaluator) -> dict[str, np.ndarray]:
    """Every value of ``case``'s graph as ``reference`` computes it, in its declared dtype
    (empty when the reference fails)."""
    graph = expose_intermediates(case.graph)
    [outcome] = evaluator.outcomes_many([with_graph(case, graph)], only=[backend_name(reference)])[0]
    if not outcome.ok:
        return {}
    values = {name: reference_for_comparison(outcome.outputs[name], graph.types[name]) for name in graph.outputs}
    return {**{name: np.asarray(array) for name, array in case.inputs.items()}, **values}
