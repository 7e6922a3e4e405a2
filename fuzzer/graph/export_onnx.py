"""Lowering of the IR to an ONNX model, directly from the operator specs."""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import onnx
from onnx import TensorProto, helper, numpy_helper

from fuzzer.graph.ir import Graph, Input, Weight
from fuzzer.graph.ops import get_spec
from fuzzer.graph.ops.spec import OnnxBuilder

DEFAULT_OPSET = 17
SUPPORTED_OPSETS = range(13, 22)


def to_onnx(graph: Graph, opset: int = DEFAULT_OPSET) -> onnx.ModelProto:
    if opset not in SUPPORTED_OPSETS:
        raise ValueError(f"opset {opset} is not supported; choose one of "
                         f"{SUPPORTED_OPSETS.start}..{SUPPORTED_OPSETS.stop - 1}")
    opsets = [helper.make_opsetid("", opset)]
    return helper.make_model(graph_proto(graph, opset, "tcfuzz"), opset_imports=opsets, producer_name="tcfuzz",
                             ir_version=helper.find_min_ir_version_for(opsets))


def graph_proto(graph: Graph, opset: int, name: str, inputs: Sequence[str] | None = None,
                outputs: Sequence[str] | None = None, nodes: Sequence[onnx.NodeProto] = ()) -> onnx.GraphProto:
    """``graph`` as an ONNX graph whose formal inputs are ``inputs`` (default: the graph's)
    and outputs ``outputs`` (default: the graph's), after the extra ``nodes``."""
    protos, initializers = list(nodes), [numpy_helper.from_array(w.array, w.name) for w in graph.weights]
    for index, node in enumerate(graph.nodes):
        builder = OnnxBuilder(opset, f"{name}_n{index}" if name != "tcfuzz" else f"n{index}", subgraph)
        get_spec(node.op).onnx(builder, node)
        protos += builder.nodes
        initializers += builder.initializers
    types = graph.types

    dims = {i.name: list(i.dims) for i in graph.inputs}

    def value_info(value: str) -> onnx.ValueInfoProto:
        # A dynamic graph's outputs leave their sizes to shape inference, as run-time extents are.
        shape = dims.get(value, [None] * types[value].rank if graph.symbols else list(types[value].fixed_dims))
        return helper.make_tensor_value_info(value, types[value].dtype.onnx, shape)

    formal_inputs = [i.name for i in graph.inputs] if inputs is None else inputs
    return helper.make_graph(protos, name, [value_info(n) for n in formal_inputs],
                             [value_info(n) for n in (graph.outputs if outputs is None else outputs)], initializers)


def subgraph(body: Graph, opset: int, name: str, outer_names: Sequence[str] | None = None,
             loop_condition: str | None = None) -> onnx.GraphProto:
    """A control-flow body as an ONNX subgraph, its value names prefixed with ``name`` so that
    they are unique in the model. With ``outer_names`` (If) the body has no formal inputs and
    reads those outer-scope values in their place; with ``loop_condition`` (Loop) a condition
    passes through unchanged after the iteration number."""
    renamed = {value: f"{name}_{value}" for value in body.types}
    renamed.update(zip((i.name for i in body.inputs), outer_names or ()))
    prefixed = Graph(tuple(Input(renamed[i.name], i.type) for i in body.inputs),
                     tuple(Weight(renamed[w.name], w.type, w.data) for w in body.weights),
                     tuple(replace(n, inputs=tuple(renamed[v] if v else v for v in n.inputs),
                                   outputs=tuple(renamed[v] for v in n.outputs)) for n in body.nodes),
                     tuple(renamed[v] for v in body.outputs))
    if outer_names is not None:
        return graph_proto(prefixed, opset, name, inputs=())
    if loop_condition is None:
        return graph_proto(prefixed, opset, name)
    condition_in, condition_out = f"{loop_condition}_in", f"{loop_condition}_out"
    proto = graph_proto(prefixed, opset, name, nodes=[helper.make_node("Identity", [condition_in], [condition_out])])
    bool_scalar = TensorProto.BOOL
    proto.input.insert(1, helper.make_tensor_value_info(condition_in, bool_scalar, []))
    proto.output.insert(0, helper.make_tensor_value_info(condition_out, bool_scalar, []))
    return proto


def to_onnx_bytes(graph: Graph, opset: int = DEFAULT_OPSET) -> bytes:
    return to_onnx(graph, opset).SerializeToString(deterministic=True)


def with_explicit_defaults(model):
    """``model`` (an ``onnx.ModelProto``, changed in place) with every attribute that a node of
    the default domain omits written out at its ONNX default, which means the same. onnx
    1.23's full checker cannot expand MeanVarianceNormalization's function body when ``axes``
    is omitted, and would call a valid model invalid."""
    import onnx.defs

    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    for node in model.graph.node:
        if node.domain not in ("", "ai.onnx") or opset is None or not onnx.defs.has(node.op_type):
            continue
        given = {attribute.name for attribute in node.attribute}
        for name, attribute in onnx.defs.get_schema(node.op_type, opset).attributes.items():
            if name not in given and attribute.default_value.type:
                node.attribute.append(attribute.default_value)
    return model
