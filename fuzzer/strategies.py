"""Hypothesis strategies for tcfuzz graphs and test cases, for property tests of a compiler.

    from hypothesis import given, settings
    from fuzzer.strategies import cases

    @settings(deadline=None)  # a case takes milliseconds to build, more with input search
    @given(cases(operators={"Conv", "Relu", "Add"}, max_nodes=6))
    def test_my_compiler(case):
        compiled = my_compiler.compile(case.model)  # ONNX bytes
        ...  # compare with onnx.reference.ReferenceEvaluator on case.inputs

Every choice is drawn from Hypothesis: the list of operators (one node each), each choice the
generator makes while it builds a node (anchors, shapes, dtypes, attributes, weights), and the
seed of the inputs. Failing examples therefore shrink toward fewer nodes, earlier operators,
smaller shapes and simpler attributes, down to a single node where one suffices.
"""

from __future__ import annotations

import random
from typing import Iterable

from hypothesis import assume, strategies as st

from fuzzer.graph.export_onnx import DEFAULT_OPSET, SUPPORTED_OPSETS, to_onnx_bytes
from fuzzer.generation.generator import DEFAULT_DTYPES, GeneratorOptions
from fuzzer.generation.generator import GraphBuilder
from fuzzer.graph.ir import DType, Graph
from fuzzer.graph.ops.spec import OpSpec
from fuzzer.graph.rejected import Rejected
from fuzzer.graph.case import TestCase

MAX_SEED = 2**32 - 1  # input seeds


def generator_options(operators: Iterable[str] | None, dtypes: Iterable[DType | str] | None, min_nodes: int,
                      max_nodes: int, opset: int) -> GeneratorOptions:
    """Options for the strategies' generator; raises ValueError at once for impossible choices."""
    if not 1 <= min_nodes <= max_nodes:
        raise ValueError(f"need 1 <= min_nodes <= max_nodes, got {min_nodes} and {max_nodes}")
    if opset not in SUPPORTED_OPSETS:
        raise ValueError(f"opset {opset} is not one of {SUPPORTED_OPSETS.start}..{SUPPORTED_OPSETS.stop - 1}")
    options = GeneratorOptions(nodes=max_nodes, opset=opset,
                               dtypes=DEFAULT_DTYPES if dtypes is None else frozenset(map(DType, dtypes)),
                               ops=None if operators is None else frozenset(operators))
    options.specs()  # names unknown operators, or ones that accept none of the dtypes
    return options


class DrawnRandom(random.Random):
    """A ``random.Random`` whose bits come from Hypothesis. Every other method of
    ``random.Random`` is built on these two, so all of them shrink: ``choice`` toward the
    first element, ``randint`` toward its low end, ``expovariate`` toward 0."""

    def __init__(self, draw: st.DrawFn) -> None:
        super().__init__(0)
        self.draw = draw

    def random(self) -> float:
        return self.draw(st.floats(0.0, 1.0, exclude_max=True))

    def getrandbits(self, bits: int) -> int:
        return self.draw(st.integers(0, 2**bits - 1))


def add_node(builder: GraphBuilder, spec: OpSpec) -> None:
    """One node of ``spec`` in ``builder``'s graph, trying as many anchors and proposals as
    the generator would; no node when none fits."""
    for _ in range(builder.options.attempts_per_node):
        try:
            builder.add_node(spec)
        except Rejected:
            continue
        return


def drawn_graphs(options: GeneratorOptions, min_nodes: int) -> st.SearchStrategy[Graph]:
    """Graphs whose every choice comes from Hypothesis: the list of operators (one node each)
    and, through :class:`DrawnRandom`, everything the generator picks."""
    @st.composite
    def draw(draw_from: st.DrawFn) -> Graph:
        chosen = draw_from(st.lists(st.sampled_from(options.specs()), min_size=min_nodes,
                                    max_size=options.nodes), label="operators")
        builder = GraphBuilder(DrawnRandom(draw_from), options)
        for spec in chosen:
            add_node(builder, spec)
        assume(builder.nodes)  # none of the chosen operators fit
        return builder.graph()

    return draw()


def graphs(*, operators: Iterable[str] | None = None, dtypes: Iterable[DType | str] | None = None,
           min_nodes: int = 1, max_nodes: int = 10, opset: int = DEFAULT_OPSET) -> st.SearchStrategy[Graph]:
    """Valid tcfuzz graphs of ``min_nodes``..``max_nodes`` nodes (fewer when the chosen
    operators rarely fit), using only ``operators`` (ONNX names; default: all) and values of
    ``dtypes`` (default: the generator's)."""
    return drawn_graphs(generator_options(operators, dtypes, min_nodes, max_nodes, opset), min_nodes)


def cases(*, operators: Iterable[str] | None = None, dtypes: Iterable[DType | str] | None = None,
          min_nodes: int = 1, max_nodes: int = 10, opset: int = DEFAULT_OPSET,
          clean_only: bool = True, budget_seconds: float = 1.0) -> st.SearchStrategy[TestCase]:
    """Test cases: a graph from :func:`graphs`, its ONNX model at ``opset`` and inputs from
    :func:`fuzzer.generation.input_search.search_inputs` (imports torch), whose seed is ``case.seed``.
    With ``clean_only``, graphs for which the search finds no inputs free of NaN, Inf and
    domain errors are rejected. The generous budget leaves the end of every search to its
    deterministic work bound, so that Hypothesis sees the same case whenever it replays one."""
    from fuzzer.generation.input_search import search_inputs

    options = generator_options(operators, dtypes, min_nodes, max_nodes, opset)

    @st.composite
    def draw(draw_from: st.DrawFn) -> TestCase:
        graph = draw_from(drawn_graphs(options, min_nodes))
        seed = draw_from(st.integers(0, MAX_SEED), label="input seed")
        found = search_inputs(graph, seed, budget_seconds)
        assume(found.clean or not clean_only)
        return TestCase(graph, found.inputs, to_onnx_bytes(graph, opset), opset, seed)

    return draw()
