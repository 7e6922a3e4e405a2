"""Lowering of the IR to an ONNX model, directly from the operator specs."""

from __future__ import annotations

import onnx
from onnx import helper, numpy_helper

from fuzzer.ir import Graph
from fuzzer.ops import get_spec
from fuzzer.ops.spec import OnnxBuilder

DEFAULT_OPSET = 17
SUPPORTED_OPSETS = range(13, 22)


def to_onnx(graph: Graph, opset: int = DEFAULT_OPSET) -> onnx.ModelProto:
    if opset not in SUPPORTED_OPSETS:
        raise ValueError(f"opset {opset} is not supported; choose one of "
                         f"{SUPPORTED_OPSETS.start}..{SUPPORTED_OPSETS.stop - 1}")
    nodes, initializers = [], [numpy_helper.from_array(w.array, w.name) for w in graph.weights]
    for index, node in enumerate(graph.nodes):
        builder = OnnxBuilder(opset, prefix=f"n{index}")
        get_spec(node.op).onnx(builder, node)
        nodes += builder.nodes
        initializers += builder.initializers
    types = graph.types

    def value_info(name: str) -> onnx.ValueInfoProto:
        return helper.make_tensor_value_info(name, types[name].dtype.onnx, list(types[name].shape))

    body = helper.make_graph(nodes, "tcfuzz", [value_info(i.name) for i in graph.inputs],
                             [value_info(name) for name in graph.outputs], initializers)
    opsets = [helper.make_opsetid("", opset)]
    return helper.make_model(body, opset_imports=opsets, producer_name="tcfuzz",
                             ir_version=helper.find_min_ir_version_for(opsets))


def to_onnx_bytes(graph: Graph, opset: int = DEFAULT_OPSET) -> bytes:
    return to_onnx(graph, opset).SerializeToString(deterministic=True)
