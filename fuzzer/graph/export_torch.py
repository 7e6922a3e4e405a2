"""Lowering of the IR to a ``torch.nn.Module`` through the operator specs' torch lowerings."""

from __future__ import annotations

import functools
import types

import torch

from fuzzer.graph.ir import Graph, Node
from fuzzer.graph.ops import get_spec
from fuzzer.graph.ops.control import BODIES
from fuzzer.graph.ops.spec import as_results
from fuzzer.graph.values import to_torch


class GraphModule(torch.nn.Module):
    """Runs a graph as straight-line code: one call of an operator's torch lowering per node.

    ``forward`` is generated Python source with lowerings and attributes as globals, so
    that torch.compile and torch.export trace it without walking the IR's containers.
    Lowerings make their tensors on their inputs' device; the result of an operator without
    inputs (Range) is moved to the device of the graph's first input or weight. The results
    of operators computed from their attributes in numpy (``OpSpec.constant_result``) are
    buffers, as weights are, and control-flow bodies are submodules, which their operators'
    lowerings receive in place of the body graphs.
    """

    def __init__(self, graph: Graph) -> None:
        super().__init__()
        self.graph = graph
        for index, weight in enumerate(graph.weights):
            self.register_buffer(f"weight{index}", to_torch(weight.array))
        for index, node in enumerate(graph.nodes):
            if constant_result(node):
                result = get_spec(node.op).torch([], node.attr)
                for k, value in enumerate(as_results(result)):
                    self.register_buffer(f"constant{index}_{k}", value)
        # Control-flow bodies as submodules, built before any tracing (torch.cond traces their forward).
        self.bodies = torch.nn.ModuleDict({f"{index}_{key}": to_module(value)
                                           for index, node in enumerate(graph.nodes)
                                           for key, value in node.attr.items() if isinstance(value, Graph)})
        self.forward = types.MethodType(straight_line_forward(graph, self.bodies), self)


def constant_result(node: Node) -> bool:
    """Whether ``node`` computes its result from its attributes alone, in numpy."""
    return get_spec(node.op).constant_result and not node.inputs


def straight_line_forward(graph: Graph, bodies: torch.nn.ModuleDict):
    names = {i.name: f"input{k}" for k, i in enumerate(graph.inputs)}
    names.update((w.name, f"self.weight{k}") for k, w in enumerate(graph.weights))
    placement = next(iter(names.values()), None)
    namespace: dict[str, object] = {}
    lines = [f"def forward(self, {', '.join(names[i.name] for i in graph.inputs)}):"]
    for index, node in enumerate(graph.nodes):
        if constant_result(node):  # computed once, in __init__
            names.update((name, f"self.constant{index}_{k}") for k, name in enumerate(node.outputs))
            continue
        namespace[f"op{index}"] = get_spec(node.op).torch
        namespace[f"attrs{index}"] = {key: bodies[f"{index}_{key}"] if isinstance(value, Graph) else value
                                      for key, value in node.attrs}
        outputs = [f"value{index}_{k}" for k in range(len(node.outputs))]
        names.update(zip(node.outputs, outputs))
        arguments = ", ".join(names[name] for name in node.inputs)
        call = f"op{index}([{arguments}], attrs{index})"
        if not node.inputs and placement is not None:  # a node without inputs (Range, Unique) makes its outputs
            device = f"{placement}.device"
            call = f"tuple(t.to({device}) for t in {call})" if len(outputs) > 1 else f"{call}.to({device})"
        if len(outputs) == 1:
            lines.append(f"    result = {call}")
            lines.append(f"    {outputs[0]} = result[0] if isinstance(result, (tuple, list)) else result")
        else:
            lines.append(f"    {', '.join(outputs)} = {call}")
    lines.append(f"    return ({''.join(names[name] + ', ' for name in graph.outputs)})")
    exec(compile("\n".join(lines), f"<tcfuzz graph {graph.content_hash[:12]}>", "exec"), namespace)
    return namespace["forward"]


def to_module(graph: Graph) -> GraphModule:
    return GraphModule(graph).eval()


@functools.lru_cache(maxsize=256)
def body_module(body: Graph, device: torch.device) -> GraphModule:
    """The module of a control-flow body with its weights on ``device``, built once per body and device."""
    return to_module(body).to(device)


BODIES.module = body_module  # how control-flow operators run their bodies
