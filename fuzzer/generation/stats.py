"""What a set of generated graphs covers: operators, operator pairs along edges, dtypes per
operator, ranks, and the sizes of graphs; rendered as rich tables for ``tcfuzz gen --stats``."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable

from rich.console import Group, RenderableType
from rich.table import Table

from fuzzer.generation.generator import Generated
from fuzzer.graph.ir import DType, Graph
from fuzzer.graph.ops import all_specs

TOP_PAIRS = 20  # operator pairs listed by name; the rest are counted


@dataclass
class GraphStatistics:
    graphs: int = 0
    operators: Counter[str] = field(default_factory=Counter)  # nodes per operator
    operator_pairs: Counter[tuple[str, str]] = field(default_factory=Counter)  # edges (producer, consumer)
    dtype_operators: Counter[tuple[DType, str]] = field(default_factory=Counter)  # nodes per (input dtype, operator)
    ranks: Counter[int] = field(default_factory=Counter)  # values (inputs, weights, node outputs) per rank
    nodes: Counter[int] = field(default_factory=Counter)  # graphs per node count
    inputs: Counter[int] = field(default_factory=Counter)  # graphs per input count
    outputs: Counter[int] = field(default_factory=Counter)  # graphs per output count
    profiles: Counter[str] = field(default_factory=Counter)  # graphs per shape profile
    patterns: Counter[str] = field(default_factory=Counter)  # inserted patterns ("name~near-miss")
    elements: Counter[int] = field(default_factory=Counter)  # values per element-count bucket (a power of 4)

    @property
    def unused_operators(self) -> list[str]:
        """Registered operators that no graph uses."""
        return sorted(spec.name for spec in all_specs() if spec.name not in self.operators)


def size_bucket(elements: int) -> int:
    """The power of 4 at or above ``elements``: the bucket of the tensor-size distribution."""
    return 4 ** max(0, math.ceil(math.log(max(elements, 1), 4) - 1e-9))


def graph_statistics(graphs: Iterable[Graph | Generated]) -> GraphStatistics:
    """Counts over ``graphs`` (with their profiles and patterns where given as Generated).
    A node counts once for each distinct dtype among its inputs (its output's dtype when it
    has none, as Range); an edge counts once per consuming input."""
    statistics = GraphStatistics()
    for item in graphs:
        graph = item.graph if isinstance(item, Generated) else item
        if isinstance(item, Generated):
            statistics.profiles[item.profile] += 1
            statistics.patterns.update(item.patterns)
        statistics.elements.update(size_bucket(t.numel) for t in graph.types.values())
        statistics.graphs += 1
        statistics.nodes[len(graph.nodes)] += 1
        statistics.inputs[len(graph.inputs)] += 1
        statistics.outputs[len(graph.outputs)] += 1
        statistics.ranks.update(tensor_type.rank for tensor_type in graph.types.values())
        producers = {name: node.op for node in graph.nodes for name in node.outputs}
        for node in graph.nodes:
            statistics.operators[node.op] += 1
            statistics.operator_pairs.update((producers[name], node.op) for name in node.inputs if name in producers)
            read = node.inputs or node.outputs[:1]
            statistics.dtype_operators.update((dtype, node.op) for dtype in {graph.types[name].dtype for name in read})
    return statistics


def distribution_table(title: str, counts: Counter, unit: str) -> Table:
    total = sum(counts.values())
    table = Table(title=title)
    table.add_column(unit, justify="right")
    table.add_column("count", justify="right")
    table.add_column("share", justify="right")
    for value, count in sorted(counts.items()):
        table.add_row(str(value), str(count), f"{count / total:.1%}")
    return table


def render(statistics: GraphStatistics) -> RenderableType:
    """Rich tables: a summary, the operator histogram with each operator's dtypes, the most
    frequent operator pairs, and the distributions of ranks and of graph sizes."""
    specs = all_specs()
    nodes = sum(statistics.operators.values())
    summary = Table(title=f"{statistics.graphs} graphs, {nodes} nodes", show_header=False)
    summary.add_column("what")
    summary.add_column("value", justify="right")
    summary.add_row("operators used", f"{len(statistics.operators)} of {len(specs)}")
    summary.add_row("operator pairs (producer -> consumer)", str(len(statistics.operator_pairs)))
    summary.add_row("dtype x operator combinations", str(len(statistics.dtype_operators)))
    if statistics.unused_operators:
        summary.add_row("never used", ", ".join(statistics.unused_operators))

    dtypes = sorted({dtype for dtype, _ in statistics.dtype_operators}, key=lambda d: d.value)
    operators = Table(title="operators (nodes per input dtype)")
    operators.add_column("operator")
    operators.add_column("nodes", justify="right")
    operators.add_column("share", justify="right")
    for dtype in dtypes:
        operators.add_column(dtype.value, justify="right")
    for op, count in statistics.operators.most_common():
        operators.add_row(op, str(count), f"{count / nodes:.1%}",
                          *(str(statistics.dtype_operators[dtype, op] or "·") for dtype in dtypes))

    pairs = Table(title=f"most frequent operator pairs ({len(statistics.operator_pairs)} distinct)")
    pairs.add_column("producer")
    pairs.add_column("consumer")
    pairs.add_column("edges", justify="right")
    for (producer, consumer), count in statistics.operator_pairs.most_common(TOP_PAIRS):
        pairs.add_row(producer, consumer, str(count))

    sizes = [distribution_table("ranks of values", statistics.ranks, "rank"),
             distribution_table("nodes per graph", statistics.nodes, "nodes"),
             distribution_table("inputs per graph", statistics.inputs, "inputs"),
             distribution_table("outputs per graph", statistics.outputs, "outputs"),
             distribution_table("elements per value (up to)", statistics.elements, "elements")]
    if statistics.profiles:
        sizes.append(distribution_table("shape profiles", statistics.profiles, "profile"))
    if statistics.patterns:
        sizes.append(distribution_table(f"patterns ({sum(statistics.patterns.values())} in "
                                        f"{statistics.graphs} graphs; name~near-miss)", statistics.patterns, "pattern"))
    return Group(summary, operators, pairs, *sizes)
