"""Control flow: If, Loop and Scan, whose bodies are IR graphs held in graph-valued attributes.

A body takes explicit inputs only: If's branches read the node's data inputs (its first
input is the bool scalar condition), Loop's body reads the iteration number and the
loop-carried values and returns the new ones (``trip_count`` iterations, no early exit),
and Scan's body reads the state and one slice of the scanned input along axis 0 and
returns the new state and one slice of the scan output. Bodies are small generated graphs
whose operators have no value domain, so that no value inside a body needs the input search.
"""

from __future__ import annotations

import random
from functools import cache
from typing import Any, Mapping

from fuzzer.graph.ir import FLOATS, DType, Graph, Node, TensorType
from fuzzer.graph.ops.spec import ANCHOR, OnnxBuilder, Operand, OpSpec, Proposal, Unsatisfiable, torch

BODY_NODES = (1, 3)
BODY_ATTEMPTS = 8
TRIP_COUNTS = (1, 2, 3)
BODY_OPSET = 13  # bodies use operators valid at every supported opset
CONDITION = TensorType(DType.bool, ())
ITERATION = TensorType(DType.int64, ())


# ---------------------------------------------------------------- body generation


def generate_body(rng: random.Random, inputs: tuple[TensorType, ...], returns: tuple[TensorType | None, ...]) -> Graph:
    """A body graph of BODY_NODES nodes reading ``inputs`` (named ``b0``, ``b1``, ...) whose
    outputs have the types in ``returns`` (None: any type), each a distinct node output."""
    from fuzzer.generation.generator import GeneratorOptions, GraphBuilder  # deferred: the generator imports the specs
    from fuzzer.graph.ir import Input

    options = GeneratorOptions(nodes=BODY_NODES[1], opset=BODY_OPSET, ops=body_operators(),
                               backward_share=0.0, weight_share=0.2, input_budget=None)
    for _ in range(BODY_ATTEMPTS):
        builder = GraphBuilder(rng, options, closed=True)
        builder.inputs = [Input(f"b{index}", tensor_type) for index, tensor_type in enumerate(inputs)]
        builder.values = {i.name: i.type for i in builder.inputs}
        builder.driven = set(builder.values)
        for _ in range(rng.randint(*BODY_NODES) * options.attempts_per_node):
            if len(builder.nodes) >= BODY_NODES[1]:
                break
            try:
                builder.add_node(rng.choice(options.specs()))
            except (Unsatisfiable, ValueError):
                continue
        produced = [(name, t) for node in builder.nodes for name, t in zip(node.outputs, node.output_types)]
        chosen: list[str] = []
        for wanted in returns:
            fits = [name for name, t in produced if (wanted is None or t == wanted) and name not in chosen]
            if not fits:
                break
            chosen.append(rng.choice(fits))
        if len(chosen) == len(returns):
            return Graph(tuple(builder.inputs), tuple(builder.weights), tuple(builder.nodes), tuple(chosen))
    raise Unsatisfiable(f"no body of types {', '.join(map(str, inputs))} returns {returns}")


@cache
def body_operators() -> frozenset[str]:
    from fuzzer.graph.ops import all_specs

    return frozenset(s.name for s in all_specs() if s.family != "control" and s.domain is None
                     and not s.nondeterministic and s.since <= BODY_OPSET)


# ---------------------------------------------------------------- If


def propose_if(rng: random.Random, anchor: TensorType) -> Proposal:
    then_branch = generate_body(rng, (anchor,), (None,))
    else_branch = generate_body(rng, (anchor,), tuple(then_branch.types[n] for n in then_branch.outputs))
    return Proposal({"then_branch": then_branch, "else_branch": else_branch}, (Operand(CONDITION, condition=True), ANCHOR))


def infer_if(types: tuple[TensorType, ...], attrs: Mapping[str, Any]) -> tuple[TensorType, ...]:
    if types[0] != CONDITION:
        raise ValueError(f"If's condition must be {CONDITION}, got {types[0]}")
    then_types, else_types = (body_types(attrs[key], types[1:]) for key in ("then_branch", "else_branch"))
    if then_types != else_types:
        raise ValueError(f"If's branches return {', '.join(map(str, then_types))} and "
                         f"{', '.join(map(str, else_types))}")
    return then_types


def lower_if(builder: OnnxBuilder, node: Node) -> None:
    from fuzzer.graph.export_onnx import subgraph

    outer = node.inputs[1:]
    branches = {key: subgraph(node.attr[key], builder.opset, f"{builder.temporary()}_{key}", outer_names=outer)
                for key in ("then_branch", "else_branch")}
    builder.node("If", node.inputs[:1], node.outputs, **branches)


def torch_if(xs, attrs):
    return run_body(attrs["then_branch" if bool(xs[0]) else "else_branch"], xs[1:])


# ---------------------------------------------------------------- Loop


def propose_loop(rng: random.Random, anchor: TensorType) -> Proposal:
    body = generate_body(rng, (ITERATION, anchor), (anchor,))
    return Proposal({"body": body, "trip_count": rng.choice(TRIP_COUNTS)})


def infer_loop(types: tuple[TensorType, ...], attrs: Mapping[str, Any]) -> tuple[TensorType, ...]:
    if attrs["trip_count"] < 0:
        raise ValueError(f"trip_count must be non-negative, got {attrs['trip_count']}")
    returned = body_types(attrs["body"], (ITERATION, *types))
    if returned != types:
        raise ValueError(f"Loop's body returns {', '.join(map(str, returned))} for carried values "
                         f"{', '.join(map(str, types))}")
    return types


def lower_loop(builder: OnnxBuilder, node: Node) -> None:
    import numpy as np
    from fuzzer.graph.export_onnx import subgraph

    body = subgraph(node.attr["body"], builder.opset, builder.temporary(), loop_condition=builder.temporary())
    trip_count = builder.constant(np.array(node.attr["trip_count"], np.int64))
    # The reference evaluator ignores the body when the optional condition is left out.
    keep_going = builder.constant(np.array(True))
    builder.node("Loop", [trip_count, keep_going, *node.inputs], node.outputs, body=body)


def torch_loop(xs, attrs):
    values = list(xs)
    for iteration in range(attrs["trip_count"]):
        counter = torch.tensor(iteration, dtype=torch.int64, device=values[0].device)
        values = list(run_body(attrs["body"], [counter, *values]))
    return tuple(values)


# ---------------------------------------------------------------- Scan


def propose_scan(rng: random.Random, anchor: TensorType) -> Proposal:
    row = anchor.with_shape(anchor.shape[1:])
    body = generate_body(rng, (row, row), (row, None))
    return Proposal({"body": body}, (Operand(row), ANCHOR))


def infer_scan(types: tuple[TensorType, ...], attrs: Mapping[str, Any]) -> tuple[TensorType, ...]:
    state, scanned = types
    if scanned.rank == 0:
        raise ValueError("Scan's scanned input needs rank >= 1")
    new_state, row = body_types(attrs["body"], (state, scanned.with_shape(scanned.shape[1:])))
    if new_state != state:
        raise ValueError(f"Scan's body turns state {state} into {new_state}")
    return state, row.with_shape((scanned.shape[0], *row.shape))


def lower_scan(builder: OnnxBuilder, node: Node) -> None:
    from fuzzer.graph.export_onnx import subgraph

    builder.node("Scan", node.inputs, node.outputs, num_scan_inputs=1,
                 body=subgraph(node.attr["body"], builder.opset, builder.temporary()))


def torch_scan(xs, attrs):
    state, rows = xs[0], []
    for row in xs[1].unbind(0):
        state, out = run_body(attrs["body"], [state, row])
        rows.append(out)
    return state, torch.stack(rows)


# ---------------------------------------------------------------- shared


def body_types(body: Any, inputs: tuple[TensorType, ...]) -> tuple[TensorType, ...]:
    """The types ``body`` returns, after checking it reads exactly ``inputs``."""
    if not isinstance(body, Graph):
        raise ValueError(f"a body must be a Graph, got {type(body).__name__}")
    declared = tuple(i.type for i in body.inputs)
    if declared != inputs:
        raise ValueError(f"body reads {', '.join(map(str, declared))}, the node gives {', '.join(map(str, inputs))}")
    return tuple(body.types[name] for name in body.outputs)


def run_body(body: Graph, inputs: list[Any]) -> tuple[Any, ...]:
    """The body's outputs through its torch lowering, on the inputs' device; inputs are cast to
    the declared dtypes (the input search runs floats in float64)."""
    from fuzzer.graph.export_torch import body_module
    from fuzzer.graph.values import torch_dtype

    module = body_module(body, inputs[0].device)
    return tuple(module(*(x.to(torch_dtype(i.type.dtype)) for x, i in zip(inputs, body.inputs))))


CONTROL_DTYPES = FLOATS - {DType.bfloat16}
SPECS = [
    OpSpec("If", "control", CONTROL_DTYPES, infer_if, torch_if, propose_if, onnx=lower_if),
    OpSpec("Loop", "control", CONTROL_DTYPES, infer_loop, torch_loop, propose_loop, onnx=lower_loop),
    OpSpec("Scan", "control", CONTROL_DTYPES, infer_scan, torch_scan, propose_scan, ranks=(1, 4), onnx=lower_scan),
]
