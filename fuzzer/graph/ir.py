"""The tensor-graph IR that every part of tcfuzz speaks.

A :class:`Graph` is immutable and fully typed: every value has a dtype and a shape, whose
extents are concrete or, where only a run gives them, bounded and named
(:attr:`TensorType.runtime`). Constructing a graph validates it (operators known, names defined before use,
output types equal to what the operator's shape inference says), so an invalid graph
cannot exist. Graphs serialize to canonical JSON, and their content hash is the SHA-256
of that JSON, identical across processes and machines.

This module imports no operator: :mod:`fuzzer.graph.ops` installs the operators' shape
rules with :func:`use_shape_rules` when it loads (``fuzzer/graph/__init__.py`` imports it).
"""

from __future__ import annotations

import base64
import enum
import hashlib
import json
import math
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, Callable, Iterable, Mapping

import ml_dtypes
import numpy as np

from fuzzer.graph.rejected import InvalidGraph, ShapeError

AttrValue = "int | float | str | tuple[int, ...] | tuple[float, ...] | Graph"  # Graph: a control-flow body


class DType(enum.Enum):
    """Element types, named as numpy and ONNX name them."""

    float16 = "float16"
    bfloat16 = "bfloat16"
    float32 = "float32"
    float64 = "float64"
    int8 = "int8"
    uint8 = "uint8"
    int32 = "int32"
    int64 = "int64"
    bool = "bool"

    @property
    def numpy(self) -> np.dtype:
        if self is DType.bfloat16:
            return np.dtype(ml_dtypes.bfloat16)
        return np.dtype(self.value)

    @property
    def onnx(self) -> int:
        """The ``onnx.TensorProto`` data-type code."""
        return _ONNX_CODES[self]

    @property
    def is_float(self) -> bool:
        return self in FLOATS

    @property
    def is_int(self) -> bool:
        return self in INTS

    @classmethod
    def from_onnx(cls, code: int) -> DType:
        for dtype, dtype_code in _ONNX_CODES.items():
            if dtype_code == code:
                return dtype
        raise ValueError(f"ONNX element type {code} is not supported by tcfuzz")

    @classmethod
    def from_numpy(cls, dtype: np.dtype) -> DType:
        name = "bfloat16" if dtype == np.dtype(ml_dtypes.bfloat16) else np.dtype(dtype).name
        return cls(name)


_ONNX_CODES = {
    DType.float32: 1, DType.uint8: 2, DType.int8: 3, DType.int32: 6, DType.int64: 7,
    DType.bool: 9, DType.float16: 10, DType.float64: 11, DType.bfloat16: 16,
}
FLOATS = frozenset({DType.float16, DType.bfloat16, DType.float32, DType.float64})
INTS = frozenset({DType.int8, DType.uint8, DType.int32, DType.int64})
SIGNED = FLOATS | {DType.int8, DType.int32, DType.int64}
NUMERIC = FLOATS | INTS
ALL_DTYPES = NUMERIC | {DType.bool}


@dataclass(frozen=True)
class TensorType:
    """A dtype and a shape. An axis in ``runtime`` has an extent that only a run gives
    (NonZero's count, the slices Compress keeps), named by a symbol that every value of
    that extent shares; ``shape`` holds the most that extent can be (:data:`FRESH` names a
    new extent until :func:`infer_outputs` names it after the value that introduces it)."""

    dtype: DType
    shape: tuple[int, ...]
    runtime: tuple[tuple[int, str], ...] = ()  # (axis, symbol) pairs, by axis

    def __post_init__(self) -> None:
        if not all(isinstance(d, int) and d >= 0 for d in self.shape):
            raise InvalidGraph(f"shape {self.shape} must be a tuple of non-negative ints")
        axes = [axis for axis, _ in self.runtime]
        if axes != sorted(set(axes)) or any(not 0 <= axis < len(self.shape) for axis in axes):
            raise InvalidGraph(f"run-time axes {axes} of shape {self.shape} must be distinct, sorted and in range")

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def numel(self) -> int:
        """The number of elements (the most it can be, with run-time extents)."""
        return math.prod(self.shape)

    @property
    def static(self) -> TensorType:
        """This type with every extent at its bound, as if known before the run."""
        return TensorType(self.dtype, self.shape)

    @property
    def fixed_dims(self) -> tuple[int | None, ...]:
        """The shape with None for each extent that only the run gives."""
        runtime = dict(self.runtime)
        return tuple(None if axis in runtime else d for axis, d in enumerate(self.shape))

    def grown(self, symbol: str) -> TensorType:
        """The static type with run-time extent ``symbol`` one larger than its bound."""
        symbols = dict(self.runtime)
        return self.with_shape(d + (symbols.get(axis) == symbol) for axis, d in enumerate(self.shape))

    def admits(self, shape: tuple[int, ...]) -> bool:
        """Whether an array of ``shape`` has this type's shape: its extents, or for a
        run-time axis any extent up to the bound."""
        return len(shape) == self.rank and all(
            actual == fixed if fixed is not None else actual <= bound
            for actual, fixed, bound in zip(shape, self.fixed_dims, self.shape))

    def with_shape(self, shape: Iterable[int]) -> TensorType:
        """This dtype at ``shape``: static (a shape rule names no run-time extent it keeps)."""
        return TensorType(self.dtype, tuple(int(d) for d in shape))

    def with_dtype(self, dtype: DType) -> TensorType:
        return TensorType(dtype, self.shape, self.runtime)

    def __str__(self) -> str:
        dims = (f"<={bound}" if fixed is None else str(fixed) for fixed, bound in zip(self.fixed_dims, self.shape))
        return f"{self.dtype.value}[{','.join(dims)}]"


FRESH = ""  # the symbol of a run-time extent that a node introduces, until its output is named


@dataclass(frozen=True)
class Input:
    """A graph input: fed by the caller at run time. ``symbols`` names its symbolic
    dimensions as (axis, symbol) pairs; ``type`` holds their sizes in this instance."""

    name: str
    type: TensorType
    symbols: tuple[tuple[int, str], ...] = ()

    @property
    def dims(self) -> tuple[int | str, ...]:
        """The shape with each symbolic dimension as its symbol (ONNX's dim_param)."""
        named = dict(self.symbols)
        return tuple(named.get(axis, size) for axis, size in enumerate(self.type.shape))


@dataclass(frozen=True)
class Weight:
    """A constant (ONNX initializer), stored as raw little-endian bytes."""

    name: str
    type: TensorType
    data: bytes = field(repr=False)

    @classmethod
    def from_array(cls, name: str, array: np.ndarray) -> Weight:
        array = np.asarray(array, order="C")
        return cls(name, TensorType(DType.from_numpy(array.dtype), tuple(array.shape)),
                   array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes())

    @property
    def array(self) -> np.ndarray:
        dtype = self.type.dtype.numpy.newbyteorder("<")
        return np.frombuffer(self.data, dtype=dtype).reshape(self.type.shape).astype(
            self.type.dtype.numpy, copy=False)


@dataclass(frozen=True)
class Node:
    """One operator application. ``attrs`` is kept sorted by name."""

    op: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    output_types: tuple[TensorType, ...]
    attrs: tuple[tuple[str, AttrValue], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "attrs", tuple(sorted(self.attrs)))

    @property
    def attr(self) -> dict[str, AttrValue]:
        return dict(self.attrs)


@dataclass(frozen=True)
class Graph:
    inputs: tuple[Input, ...]
    weights: tuple[Weight, ...]
    nodes: tuple[Node, ...]
    outputs: tuple[str, ...]

    def __post_init__(self) -> None:
        validate(self)

    @cached_property
    def types(self) -> Mapping[str, TensorType]:
        """The type of every value in the graph, by name."""
        types = {i.name: i.type for i in self.inputs}
        types.update((w.name, w.type) for w in self.weights)
        for node in self.nodes:
            types.update(zip(node.outputs, node.output_types))
        return types

    @cached_property
    def consumers(self) -> Mapping[str, tuple[int, ...]]:
        """Indices of the nodes that read each value."""
        readers: dict[str, list[int]] = {name: [] for name in self.types}
        for index, node in enumerate(self.nodes):
            for name in node.inputs:
                if name:
                    readers[name].append(index)
        return {name: tuple(found) for name, found in readers.items()}

    def to_dict(self) -> dict[str, Any]:
        def type_dict(t: TensorType) -> dict[str, Any]:
            runtime = {"runtime": [list(pair) for pair in t.runtime]} if t.runtime else {}
            return {"dtype": t.dtype.value, "shape": list(t.shape), **runtime}

        return {
            "inputs": [{"name": i.name, **type_dict(i.type), **({"symbols": [list(s) for s in i.symbols]}
                                                               if i.symbols else {})} for i in self.inputs],
            "weights": [{"name": w.name, **type_dict(w.type),
                         "data": base64.b64encode(w.data).decode()} for w in self.weights],
            "nodes": [{"op": n.op, "inputs": list(n.inputs), "outputs": list(n.outputs),
                       "types": [type_dict(t) for t in n.output_types],
                       "attrs": {k: attr_to_json(v) for k, v in n.attrs}}
                      for n in self.nodes],
            "outputs": list(self.outputs),
        }

    def to_json(self) -> str:
        """Canonical JSON: sorted keys, no whitespace, exact float repr."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Graph:
        def type_of(d: Mapping[str, Any]) -> TensorType:
            return TensorType(DType(d["dtype"]), tuple(d["shape"]), tuple((a, n) for a, n in d.get("runtime", ())))

        try:
            return cls(
                inputs=tuple(Input(i["name"], type_of(i), tuple((a, n) for a, n in i.get("symbols", ())))
                             for i in data["inputs"]),
                weights=tuple(Weight(w["name"], type_of(w), base64.b64decode(w["data"]))
                              for w in data["weights"]),
                nodes=tuple(Node(n["op"], tuple(n["inputs"]), tuple(n["outputs"]),
                                 tuple(type_of(t) for t in n["types"]),
                                 tuple((k, attr_from_json(v)) for k, v in n["attrs"].items()))
                            for n in data["nodes"]),
                outputs=tuple(data["outputs"]),
            )
        except (KeyError, TypeError) as error:
            raise InvalidGraph(f"graph JSON is missing or mistypes field {error}") from error

    @classmethod
    def from_json(cls, text: str) -> Graph:
        return cls.from_dict(json.loads(text))

    @property
    def symbols(self) -> dict[str, int]:
        """Each symbolic dimension's size in this instance; empty for a static graph."""
        return {name: i.type.shape[axis] for i in self.inputs for axis, name in i.symbols}

    @cached_property
    def content_hash(self) -> str:
        return hashlib.sha256(self.to_json().encode()).hexdigest()

    def __str__(self) -> str:
        lines = [f"input {i.name}: {i.type}" for i in self.inputs]
        lines += [f"weight {w.name}: {w.type}" for w in self.weights]
        for node in self.nodes:
            attrs = ", ".join(f"{k}=<body of {len(v.nodes)} nodes>" if isinstance(v, Graph) else f"{k}={v}"
                              for k, v in node.attrs)
            outs = ", ".join(f"{n}: {t}" for n, t in zip(node.outputs, node.output_types))
            lines.append(f"{outs} = {node.op}({', '.join(node.inputs)}){' {' + attrs + '}' if attrs else ''}")
        lines.append(f"return {', '.join(self.outputs)}")
        return "\n".join(lines)


def resized(graph: Graph, sizes: Mapping[str, int]) -> Graph:
    """``graph`` with its symbolic dimensions at ``sizes`` and every node's output types
    inferred again; raises :class:`InvalidGraph` where a node cannot follow the new sizes."""
    inputs = tuple(replace(i, type=i.type.with_shape(sizes[name] if name in sizes else size
                                                      for name, size in zip(i.dims, i.type.shape)))
                   for i in graph.inputs)
    types = {**{i.name: i.type for i in inputs}, **{w.name: w.type for w in graph.weights}}
    nodes = []
    for index, node in enumerate(graph.nodes):
        try:
            output_types = infer_outputs(node.op, tuple(types[name] for name in node.inputs), node.attr,
                                         node.outputs, node.output_types)
        except ShapeError as error:
            raise InvalidGraph(f"node {index} ({node.op}) cannot follow sizes {dict(sizes)}: {error}") from error
        types.update(zip(node.outputs, output_types))
        nodes.append(replace(node, output_types=output_types))
    return Graph(inputs, graph.weights, tuple(nodes), graph.outputs)


def attr_to_json(value: AttrValue) -> Any:
    """An attribute as JSON: tuples become lists, a body graph ``{"graph": ...}``."""
    if isinstance(value, Graph):
        return {"graph": value.to_dict()}
    return list(value) if isinstance(value, tuple) else value


def attr_from_json(value: Any) -> AttrValue:
    if isinstance(value, dict):
        return Graph.from_dict(value["graph"])
    return tuple(value) if isinstance(value, list) else value


# ---------------------------------------------------------------- shape rules and validation

ShapeRule = Callable[[tuple[TensorType, ...], Mapping[str, Any]], tuple[TensorType, ...]]
_shape_rule_lookup: Callable[[str], ShapeRule] | None = None  # installed by fuzzer.graph.ops


def use_shape_rules(lookup: Callable[[str], ShapeRule]) -> None:
    """Install how the IR finds an operator's shape rule (KeyError for an unknown operator)."""
    global _shape_rule_lookup
    _shape_rule_lookup = lookup


def shape_rule(op: str) -> ShapeRule:
    """``op``'s shape rule; KeyError for an unknown operator."""
    if _shape_rule_lookup is None:
        raise RuntimeError("no operator shape rules are installed: import fuzzer.graph.ops")
    return _shape_rule_lookup(op)


def infer_outputs(op: str, input_types: tuple[TensorType, ...], attrs: Mapping[str, Any],
                  outputs: tuple[str, ...] = (), declared: tuple[TensorType, ...] = ()) -> tuple[TensorType, ...]:
    """The output types ``op``'s shape rule gives, each run-time extent it introduces named
    (:func:`name_extents`); KeyError for an unknown operator. Raises
    :class:`ShapeError` when the rule refuses the inputs, and when a node edited or read from
    outside does not fit the rule at all: an input or attribute missing (LookupError), or
    more inputs than the rule unpacks (ValueError). The generator calls the rule itself, so
    that such errors in the nodes it builds surface as the bugs they are."""
    rule = shape_rule(op)
    try:
        return name_extents(tuple(rule(input_types, attrs)), outputs, declared)
    except (LookupError, ValueError) as error:
        raise ShapeError(f"{op}'s shape rule does not fit the node: {type(error).__name__}: {error}") from error


def name_extents(types: tuple[TensorType, ...], outputs: tuple[str, ...],
                 declared: tuple[TensorType, ...] = ()) -> tuple[TensorType, ...]:
    """``types`` with each :data:`FRESH` run-time extent named: as ``declared`` (the node's
    output types) names it at that output and axis, so that renaming a value keeps its
    extent's name, else ``OUTPUT#AXIS`` after the output that introduces it."""
    def named(position: int, t: TensorType) -> TensorType:
        if all(symbol != FRESH for _, symbol in t.runtime):
            return t
        known = dict(declared[position].runtime) if position < len(declared) else {}
        owner = outputs[position] if position < len(outputs) and outputs[position] else "?"
        return replace(t, runtime=tuple((axis, symbol or known.get(axis) or f"{owner}#{axis}")
                                        for axis, symbol in t.runtime))

    return tuple(named(position, t) for position, t in enumerate(types))


def validate(graph: Graph) -> None:
    """Raise :class:`InvalidGraph` unless ``graph`` obeys every IR rule."""
    defined: dict[str, TensorType] = {}
    introduced: set[str] = set()  # run-time extents' symbols, each introduced by one node

    def define(name: str, tensor_type: TensorType, where: str) -> None:
        if not name:
            raise InvalidGraph(f"{where} has an empty value name")
        if name in defined:
            raise InvalidGraph(f"{where} redefines value {name!r}")
        defined[name] = tensor_type

    for graph_input in graph.inputs:
        define(graph_input.name, graph_input.type, f"input {graph_input.name!r}")
        if any(not 0 <= axis < graph_input.type.rank for axis, _ in graph_input.symbols):
            raise InvalidGraph(f"input {graph_input.name!r} names a symbolic axis outside rank {graph_input.type.rank}")
        if graph_input.type.runtime:
            raise InvalidGraph(f"input {graph_input.name!r} is {graph_input.type}: a caller feeds fixed extents")
    sizes: dict[str, set[int]] = {}
    for graph_input in graph.inputs:
        for axis, name in graph_input.symbols:
            sizes.setdefault(name, set()).add(graph_input.type.shape[axis])
    if any(len(found) > 1 for found in sizes.values()):
        raise InvalidGraph(f"a symbolic dimension has several sizes: {sizes}")
    for weight in graph.weights:
        expected = weight.type.numel * weight.type.dtype.numpy.itemsize
        if len(weight.data) != expected:
            raise InvalidGraph(f"weight {weight.name!r} holds {len(weight.data)} bytes, "
                               f"its type {weight.type} needs {expected}")
        define(weight.name, weight.type, f"weight {weight.name!r}")
    for index, node in enumerate(graph.nodes):
        where = f"node {index} ({node.op})"
        try:
            shape_rule(node.op)
        except KeyError:
            raise InvalidGraph(f"{where}: unknown operator {node.op!r}") from None
        missing = [name for name in node.inputs if name and name not in defined]
        if missing:
            raise InvalidGraph(f"{where} reads {missing[0]!r} before it is defined")
        input_types = tuple(defined[name] for name in node.inputs)
        try:
            inferred = infer_outputs(node.op, input_types, node.attr, node.outputs, node.output_types)
        except ShapeError as error:
            raise InvalidGraph(f"{where} with inputs {', '.join(map(str, input_types))} "
                               f"and attributes {node.attr}: {error}") from error
        if tuple(inferred) != node.output_types or len(node.outputs) != len(inferred):
            raise InvalidGraph(f"{where} declares outputs {', '.join(map(str, node.output_types))} "
                               f"but its shape rule gives {', '.join(map(str, inferred))}")
        known = {symbol for t in input_types for _, symbol in t.runtime}
        for symbol in {symbol for t in node.output_types for _, symbol in t.runtime} - known:
            if symbol in introduced:
                raise InvalidGraph(f"{where} introduces run-time extent {symbol!r}, which another node introduced")
            introduced.add(symbol)
        for name, tensor_type in zip(node.outputs, node.output_types):
            define(name, tensor_type, where)
    if not graph.outputs:
        raise InvalidGraph("graph has no outputs")
    for name in graph.outputs:
        if name not in defined:
            raise InvalidGraph(f"graph output {name!r} is not defined")
    if len(set(graph.outputs)) != len(graph.outputs):
        raise InvalidGraph("graph outputs repeat a value")
