"""ONNX models -> tcfuzz graphs, for seeding a corpus with real-world models.

Every node must be an operator with a tcfuzz spec. Where the IR keeps as attributes what
ONNX passes as constant inputs (Reshape's shape, Slice's starts, Clip's bounds, ...), the
constants are read from initializers or Constant nodes; attributes that ONNX leaves to a
default but the IR spells out are filled in. Output types come from the specs and are
cross-checked against ONNX's own shape inference, so a model whose meaning the IR would
change is rejected, not imported wrongly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import onnx
from onnx import helper, numpy_helper

from fuzzer.graph.ir import DType, Graph, Input, Node, TensorType, Weight
from fuzzer.graph.assemble import assemble
from fuzzer.graph.ops import registry
from fuzzer.graph.ops.spec import WINDOW_DEFAULTS
from fuzzer.graph.rejected import Rejected


class ImportRejected(ValueError):
    """A model cannot become a tcfuzz graph; the message is the reason, in one line."""


def load_onnx_graph(path: Path) -> Graph:
    """The graph of the ONNX model in ``path``; ImportRejected names the reason."""
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as error:  # noqa: BLE001 - any parse or check failure is a malformed file
        text = str(error).strip().splitlines()
        raise ImportRejected(f"not a valid ONNX model ({text[0][:160] if text else type(error).__name__})") from None
    return graph_from_onnx(model)


def graph_from_onnx(model: onnx.ModelProto) -> Graph:
    inferred = onnx_inferred(model)
    body = model.graph
    constants = {init.name: numpy_helper.to_array(init) for init in body.initializer}
    ranks = {name: array.ndim for name, array in constants.items()}
    ranks.update((value.name, len(value.type.tensor_type.shape.dim)) for value in
                 [*inferred.input, *inferred.value_info, *inferred.output] if value.type.tensor_type.HasField("shape"))
    shape_of = {node.output[0]: node.input[0] for node in body.node
                if node.op_type == "Shape" and not node.attribute}
    inputs = [tensor_input(value) for value in body.input if value.name not in constants]
    nodes = []
    for index, onnx_node in enumerate(body.node):
        where = f"node {index} ({onnx_node.op_type})"
        if onnx_node.domain not in ("", "ai.onnx"):
            raise ImportRejected(f"{where} is in operator domain {onnx_node.domain!r}, not the ONNX standard")
        if onnx_node.op_type == "Constant":
            constants[onnx_node.output[0]] = constant_value(onnx_node, where)
            continue
        nodes.append(convert_node(onnx_node, constants, ranks, shape_of, where))
    used = {name for node in nodes for name in node.inputs}
    weights = [Weight.from_array(name, value) for name, value in constants.items() if name in used]
    outputs = [value.name for value in body.output]
    sources = {i.name for i in inputs} | set(constants)
    if any(name in sources for name in outputs):
        raise ImportRejected("a graph output is a graph input or a constant; tcfuzz outputs are computed")
    try:
        graph = assemble(inputs, weights, nodes, outputs)
    except Rejected as error:
        raise ImportRejected(str(error).splitlines()[0]) from None
    check_against_onnx(inferred, graph)
    return graph


def tensor_input(value: onnx.ValueInfoProto) -> Input:
    tensor = value.type.tensor_type
    if not all(d.HasField("dim_value") for d in tensor.shape.dim):
        raise ImportRejected(f"input {value.name!r} has a dynamic dimension; tcfuzz graphs have static shapes")
    return Input(value.name, TensorType(element_type(tensor.elem_type, f"input {value.name!r}"),
                                        tuple(d.dim_value for d in tensor.shape.dim)))


def element_type(code: int, where: str) -> DType:
    try:
        return DType.from_onnx(code)
    except ValueError as error:
        raise ImportRejected(f"{where}: {error}") from None


def constant_value(node: onnx.NodeProto, where: str) -> np.ndarray:
    attribute = node.attribute[0] if len(node.attribute) == 1 else None
    if attribute is None or attribute.name != "value":
        raise ImportRejected(f"{where} holds its value as {[a.name for a in node.attribute]}; "
                             "tcfuzz reads the 'value' tensor form")
    return numpy_helper.to_array(attribute.t)


def attribute_value(op: str, attribute: onnx.AttributeProto, where: str) -> Any:
    value = helper.get_attribute_value(attribute)
    dtype_attr = registry()[op].dtype_attr
    if dtype_attr is not None and attribute.name == dtype_attr[0]:
        return element_type(value, where).value
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, list) and all(isinstance(v, (int, float)) for v in value):
        return tuple(value)
    if isinstance(value, (int, float)):
        return value
    raise ImportRejected(f"{where} has attribute {attribute.name!r} of a kind tcfuzz does not model")


def convert_node(onnx_node: onnx.NodeProto, constants: Mapping[str, np.ndarray], ranks: Mapping[str, int],
                 shape_of: Mapping[str, str], where: str) -> Node:
    """One IR node (output types left to :func:`assemble`); ``ranks`` of the values ONNX
    knows, ``shape_of`` the tensor whose whole shape a Shape node gives."""
    op = onnx_node.op_type
    if op not in registry():
        raise ImportRejected(f"{where}: operator {op} has no tcfuzz spec")
    if op in ("Range", "ConstantOfShape"):
        return shape_maker(onnx_node, constants, shape_of, where)
    if op == "NonZero" and onnx_node.input[0] in constants:  # of a constant: the IR holds it, the count is known
        array = constants[onnx_node.input[0]]
        attrs = {"value": tuple(array.reshape(-1).tolist()), "shape": tuple(array.shape),
                 "dtype": DType.from_numpy(array.dtype).value}
        return Node("NonZero", (), tuple(onnx_node.output), (), tuple(attrs.items()))
    form = registry()[op].onnx_form
    if form.not_imported:
        raise ImportRejected(f"{where}: {form.not_imported}")
    attrs = {a.name: attribute_value(op, a, where) for a in onnx_node.attribute if a.name not in form.dropped}
    if attrs.get("training_mode"):
        raise ImportRejected(f"{where} runs in training mode; tcfuzz models inference")
    attrs.pop("training_mode", None)
    operands = list(onnx_node.input)
    if op == "Clip":
        operands, attrs = clip_operands(operands, constants)
    for position, name in sorted(form.constant_inputs.items(), reverse=True):
        if position >= len(operands):
            continue
        if operands[position] and operands[position] not in constants and name in form.value_inputs:
            continue  # computed: the IR reads it as an input
        source = operands.pop(position)
        if not source:
            continue
        if source not in constants:
            raise ImportRejected(f"{where}: its {name} input {source!r} is computed at run time; "
                                 "tcfuzz needs it constant")
        array = constants[source]
        if name != "roi":
            attrs[name] = array.reshape(-1)[0].item() if name in form.scalar_inputs else tuple(array.tolist())
    while operands and not operands[-1]:
        operands.pop()
    if "" in operands:
        raise ImportRejected(f"{where} leaves out an inner optional input; tcfuzz cannot express that")
    if op == "Split" and "split" not in attrs:
        attrs.setdefault("num_outputs", len(onnx_node.output))
    attrs = {**form.defaults, **attrs}
    if form.window:
        attrs = {**window_defaults(form.window, ranks.get(operands[0]), where), **attrs}
    return Node(op, tuple(operands), tuple(onnx_node.output), (), tuple(attrs.items()))


def shape_maker(onnx_node: onnx.NodeProto, constants: Mapping[str, np.ndarray], shape_of: Mapping[str, str],
                where: str) -> Node:
    """IR Range takes constant bounds as attributes; IR ConstantOfShape reads the tensor whose
    shape ONNX's Shape -> ConstantOfShape pair passes on."""
    if onnx_node.op_type == "Range":
        if not all(name in constants for name in onnx_node.input):
            raise ImportRejected(f"{where}: its bounds are computed at run time; tcfuzz needs them constant")
        start, limit, delta = (constants[name] for name in onnx_node.input)
        attrs = {"start": start.item(), "limit": limit.item(), "delta": delta.item(),
                 "dtype": DType.from_numpy(start.dtype).value}
        return Node("Range", (), tuple(onnx_node.output), (), tuple(attrs.items()))
    if onnx_node.input[0] not in shape_of:
        raise ImportRejected(f"{where}: its shape input is not the whole Shape of a tensor; "
                             "tcfuzz's ConstantOfShape reads a tensor's shape")
    attrs = {}
    if onnx_node.attribute:
        value = numpy_helper.to_array(onnx_node.attribute[0].t)
        attrs = {"dtype": DType.from_numpy(value.dtype).value, "value": value.reshape(-1)[0].item()}
    return Node("ConstantOfShape", (shape_of[onnx_node.input[0]],), tuple(onnx_node.output), (),
                tuple(attrs.items()))


def window_defaults(window: tuple[str, ...], rank: int | None, where: str) -> dict[str, Any]:
    """ONNX's defaults of the ``window`` attributes (unit strides, ...) for the spatial axes of
    an input of ``rank``."""
    if rank is None:
        raise ImportRejected(f"{where}: ONNX shape inference does not know its input's rank")
    return {name: WINDOW_DEFAULTS[name](rank - 2) for name in window}


def clip_operands(operands: list[str], constants: Mapping[str, np.ndarray]) -> tuple[list[str], dict[str, Any]]:
    """Clip's min and max: constants become attributes, run-time values stay operands."""
    attrs: dict[str, Any] = {}
    kept, named = [operands[0]], []
    for bound, name in zip(("min", "max"), operands[1:]):
        if name in constants:
            attrs[bound] = constants[name].item()
        elif name:
            kept.append(name)
            named.append(bound)
    if named:
        attrs["bound_operands"] = ",".join(named)
    return kept, attrs


def onnx_inferred(model: onnx.ModelProto) -> onnx.GraphProto:
    """The model's graph with every type ONNX shape inference finds."""
    try:
        return onnx.shape_inference.infer_shapes(model, strict_mode=True).graph
    except onnx.shape_inference.InferenceError as error:
        raise ImportRejected(f"ONNX shape inference fails: {str(error).splitlines()[0][:160]}") from None


def check_against_onnx(inferred: onnx.GraphProto, graph: Graph) -> None:
    """Reject the graph if ONNX shape inference gives any value another static type."""
    for value in [*inferred.value_info, *inferred.output]:
        tensor = value.type.tensor_type
        if value.name not in graph.types or not all(d.HasField("dim_value") for d in tensor.shape.dim):
            continue
        onnx_type = TensorType(element_type(tensor.elem_type, f"value {value.name!r}"),
                               tuple(d.dim_value for d in tensor.shape.dim))
        if onnx_type != graph.types[value.name]:
            raise ImportRejected(f"value {value.name!r} is {onnx_type} in ONNX but {graph.types[value.name]} "
                                 "in tcfuzz's reading of the model")
