"""Control flow: If, Loop and Scan, whose bodies are IR graphs held in graph-valued attributes.

A body takes explicit inputs only: If's branches read the node's data inputs (its first
input is the bool scalar condition), Loop's body reads the iteration number and the
loop-carried values and returns the new ones (``trip_count`` iterations, no early exit),
and Scan's body reads the state and one slice of the scanned input along axis 0 and
returns the new state and one slice of the scan output.

The specs generate, export and run no graph themselves: bodies are made by the generator
and run by the torch exporter through the callbacks those stages install in :data:`BODIES`
when they load, and exported by the ONNX exporter through ``OnnxBuilder.subgraph``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

from fuzzer.graph.ir import FLOATS, DType, Graph, Node, TensorType
from fuzzer.graph.ops.spec import ANCHOR, Family, OnnxBuilder, Operand, OpSpec, Proposal, torch
from fuzzer.graph.rejected import ShapeError
from fuzzer.graph.values import torch_dtype

TRIP_COUNTS = (1, 2, 3)
CONDITION = TensorType(DType.bool, ())
ITERATION = TensorType(DType.int64, ())

# (rng, input types, return types (None: any)) -> a body graph reading those inputs, or Unsatisfiable
BodyMaker = Callable[[random.Random, tuple[TensorType, ...], tuple[TensorType | None, ...]], Graph]
BodyModule = Callable[[Graph, Any], Callable[..., Any]]  # (body, device) -> a module running it


@dataclass
class Bodies:
    """The callbacks through which control-flow operators get bodies: ``make`` is installed by
    fuzzer.generation.generator, ``module`` by fuzzer.graph.export_torch (the specs import neither)."""

    make: BodyMaker | None = None
    module: BodyModule | None = None

    def maker(self) -> BodyMaker:
        if self.make is None:
            raise RuntimeError("no body maker is installed: import fuzzer.generation.generator")
        return self.make

    def runner(self) -> BodyModule:
        if self.module is None:
            raise RuntimeError("no body module builder is installed: import fuzzer.graph.export_torch")
        return self.module


BODIES = Bodies()


# ---------------------------------------------------------------- If


def propose_if(rng: random.Random, anchor: TensorType) -> Proposal:
    make_body = BODIES.maker()
    then_branch = make_body(rng, (anchor,), (None,))
    else_branch = make_body(rng, (anchor,), tuple(then_branch.types[n] for n in then_branch.outputs))
    return Proposal({"then_branch": then_branch, "else_branch": else_branch},
                    (Operand(CONDITION, condition=True), ANCHOR))


def infer_if(types: tuple[TensorType, ...], attrs: Mapping[str, Any]) -> tuple[TensorType, ...]:
    if types[0] != CONDITION:
        raise ShapeError(f"If's condition must be {CONDITION}, got {types[0]}")
    then_types, else_types = (body_types(attrs[key], types[1:]) for key in ("then_branch", "else_branch"))
    if then_types != else_types:
        raise ShapeError(f"If's branches return {', '.join(map(str, then_types))} and "
                         f"{', '.join(map(str, else_types))}")
    return then_types


def lower_if(builder: OnnxBuilder, node: Node) -> None:
    outer = node.inputs[1:]
    branches = {key: builder.subgraph(node.attr[key], f"{builder.temporary()}_{key}", outer_names=outer)
                for key in ("then_branch", "else_branch")}
    builder.node("If", node.inputs[:1], node.outputs, **branches)


def torch_if(xs, attrs):
    """The branch the condition picks; under torch.export (a repro's saved program), which cannot
    branch on a tensor's value, both branches as a ``torch.cond`` (their results copied: a branch
    may return its input, which ``torch.cond`` refuses). torch.compile still declines an If."""
    if not torch.compiler.is_exporting():
        return run_body(attrs["then_branch" if bool(xs[0]) else "else_branch"], xs[1:])

    def branch(key: str) -> Callable[..., tuple[Any, ...]]:
        return lambda *operands: tuple(value.clone() for value in run_body(attrs[key], list(operands)))
    return torch.cond(xs[0], branch("then_branch"), branch("else_branch"), tuple(xs[1:]))


# ---------------------------------------------------------------- Loop


def propose_loop(rng: random.Random, anchor: TensorType) -> Proposal:
    body = BODIES.maker()(rng, (ITERATION, anchor), (anchor,))
    return Proposal({"body": body, "trip_count": rng.choice(TRIP_COUNTS)})


def infer_loop(types: tuple[TensorType, ...], attrs: Mapping[str, Any]) -> tuple[TensorType, ...]:
    if attrs["trip_count"] < 0:
        raise ShapeError(f"trip_count must be non-negative, got {attrs['trip_count']}")
    returned = body_types(attrs["body"], (ITERATION, *types))
    if returned != types:
        raise ShapeError(f"Loop's body returns {', '.join(map(str, returned))} for carried values "
                         f"{', '.join(map(str, types))}")
    return types


def lower_loop(builder: OnnxBuilder, node: Node) -> None:
    body = builder.subgraph(node.attr["body"], builder.temporary(), loop_condition=builder.temporary())
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
    body = BODIES.maker()(rng, (row, row), (row, None))
    return Proposal({"body": body}, (Operand(row), ANCHOR))


def infer_scan(types: tuple[TensorType, ...], attrs: Mapping[str, Any]) -> tuple[TensorType, ...]:
    state, scanned = types
    if scanned.rank == 0:
        raise ShapeError("Scan's scanned input needs rank >= 1")
    new_state, row = body_types(attrs["body"], (state, scanned.with_shape(scanned.shape[1:])))
    if new_state != state:
        raise ShapeError(f"Scan's body turns state {state} into {new_state}")
    return state, row.with_shape((scanned.shape[0], *row.shape))


def lower_scan(builder: OnnxBuilder, node: Node) -> None:
    builder.node("Scan", node.inputs, node.outputs, num_scan_inputs=1,
                 body=builder.subgraph(node.attr["body"], builder.temporary()))


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
        raise ShapeError(f"a body must be a Graph, got {type(body).__name__}")
    declared = tuple(i.type for i in body.inputs)
    if declared != inputs:
        raise ShapeError(f"body reads {', '.join(map(str, declared))}, the node gives {', '.join(map(str, inputs))}")
    return tuple(body.types[name] for name in body.outputs)


def run_body(body: Any, inputs: list[Any]) -> tuple[Any, ...]:
    """The outputs of ``body`` (a graph, or the module a graph module built for it) through its
    torch lowering, on the inputs' device; inputs are cast to the declared dtypes (the input
    search runs floats in float64)."""
    module = BODIES.runner()(body, inputs[0].device) if isinstance(body, Graph) else body
    return tuple(module(*(x.to(torch_dtype(i.type.dtype)) for x, i in zip(inputs, module.graph.inputs))))


CONTROL_DTYPES = FLOATS - {DType.bfloat16}
SPECS = [
    OpSpec("If", Family.CONTROL, CONTROL_DTYPES, infer_if, torch_if, propose_if, onnx=lower_if),
    OpSpec("Loop", Family.CONTROL, CONTROL_DTYPES, infer_loop, torch_loop, propose_loop, onnx=lower_loop),
    OpSpec("Scan", Family.CONTROL, CONTROL_DTYPES, infer_scan, torch_scan, propose_scan, ranks=(1, 4), onnx=lower_scan),
]
