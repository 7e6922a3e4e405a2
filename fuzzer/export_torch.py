"""Lowering of the IR to a ``torch.nn.Module`` through the operator specs' torch lowerings."""

from __future__ import annotations

import torch

from fuzzer.ir import Graph
from fuzzer.ops import get_spec
from fuzzer.values import to_torch


class GraphModule(torch.nn.Module):
    """Runs a graph node by node; weights are buffers; inputs come in graph order."""

    def __init__(self, graph: Graph) -> None:
        super().__init__()
        self.graph = graph
        self.lowerings = [get_spec(node.op).torch for node in graph.nodes]
        for index, weight in enumerate(graph.weights):
            self.register_buffer(f"weight{index}", to_torch(weight.array))

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        values = dict(zip((i.name for i in self.graph.inputs), inputs))
        values.update((w.name, getattr(self, f"weight{i}")) for i, w in enumerate(self.graph.weights))
        for node, lowering in zip(self.graph.nodes, self.lowerings):
            result = lowering([values[name] for name in node.inputs], node.attr)
            results = result if isinstance(result, (tuple, list)) else (result,)
            values.update(zip(node.outputs, results))
        return tuple(values[name] for name in self.graph.outputs)


def to_module(graph: Graph) -> GraphModule:
    return GraphModule(graph).eval()
