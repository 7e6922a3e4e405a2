"""Graphs from edited parts, shared by the mutators (``fuzzer.generation.mutate``) and ONNX import."""

from __future__ import annotations

import dataclasses
from typing import Sequence

from fuzzer.graph.ir import Graph, Input, Node, Weight, infer_outputs, name_extents
from fuzzer.graph.rejected import ShapeError, Unsatisfiable


def assemble(inputs: Sequence[Input], weights: Sequence[Weight], nodes: Sequence[Node],
             outputs: Sequence[str]) -> Graph:
    """A graph from edited parts: dead nodes, unread inputs and weights dropped, and every
    node's output types re-inferred in order, so a type change propagates downstream. Outputs
    a node leaves out (ONNX's omitted optional outputs) get names of their own."""
    outputs = list(dict.fromkeys(outputs))
    live, kept = set(outputs), []
    for node in reversed(nodes):
        if any(name in live for name in node.outputs):
            kept.append(node)
            live.update(node.inputs)
    types = {i.name: i.type for i in inputs} | {w.name: w.type for w in weights}
    retyped = []
    for node in reversed(kept):
        undefined = [n for n in node.inputs if n not in types]
        if undefined:
            raise Unsatisfiable(f"{node.op} reads {undefined[0]!r}, which nothing defines before it")
        named = tuple(name or f"{node.outputs[0] or node.op}_out{k}" for k, name in enumerate(node.outputs))
        try:
            inferred = infer_outputs(node.op, tuple(types[n] for n in node.inputs), node.attr)
        except ShapeError as error:
            raise Unsatisfiable(f"{node.op} no longer type-checks: {error}") from None
        named += tuple(f"{named[0]}_out{k}" for k in range(len(named), len(inferred)))  # optional ones left out
        inferred = name_extents(inferred, named, node.output_types)
        types.update(zip(named, inferred))
        retyped.append(dataclasses.replace(node, outputs=named, output_types=inferred))
    return Graph(tuple(i for i in inputs if i.name in live), tuple(w for w in weights if w.name in live),
                 tuple(retyped), tuple(outputs))
