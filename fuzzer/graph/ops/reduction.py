"""Reductions: the Reduce* family, ArgMax/ArgMin, CumSum and TopK.

IR attributes hold what some opsets take as inputs (Reduce* axes, CumSum axis, TopK k);
the ONNX lowerings turn them into constants where the opset wants an input.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from fuzzer.graph.ir import FLOATS, DType, Node, TensorType
from fuzzer.graph.ops.spec import (Domain, DomainKind, Family, OnnxBuilder, OnnxForm, OpSpec, Proposal, constant_input,
                                   normalize_axis, same_as_first, torch)
from fuzzer.graph.rejected import ShapeError

INT32_64 = frozenset({DType.int32, DType.int64})
REDUCE_DTYPES = FLOATS | INT32_64
ORDERED_DTYPES = REDUCE_DTYPES | {DType.int8, DType.uint8}  # ReduceMax/Min and ArgMax/ArgMin
TOPK_DTYPES = ORDERED_DTYPES - {DType.bfloat16}  # bfloat16 TopK arrives in opset 24


def random_axis(rng: random.Random, rank: int) -> int:
    axis = rng.randrange(rank)
    return axis - rank if rng.random() < 0.4 else axis


# ---------------------------------------------------------------- Reduce*


def reduced_axes(rank: int, attrs: Mapping[str, Any]) -> tuple[int, ...]:
    """The axes a Reduce* node reduces: empty axes mean all, or none with noop_with_empty_axes."""
    axes = sorted(normalize_axis(a, rank) for a in attrs["axes"])
    if len(set(axes)) != len(axes):
        raise ShapeError(f"axes {attrs['axes']} repeat an axis")
    if not axes and not attrs.get("noop_with_empty_axes", 0):
        return tuple(range(rank))
    return tuple(axes)


def infer_reduce(types: tuple[TensorType, ...], attrs: Mapping[str, Any]) -> tuple[TensorType, ...]:
    x = types[0]
    axes = reduced_axes(x.rank, attrs)
    if attrs["keepdims"]:
        return (x.with_shape(1 if i in axes else d for i, d in enumerate(x.shape)),)
    return (x.with_shape(d for i, d in enumerate(x.shape) if i not in axes),)


def propose_reduce(rng: random.Random, anchor: TensorType) -> Proposal:
    count = rng.randint(0, anchor.rank)
    axes = tuple(a - anchor.rank if rng.random() < 0.3 else a for a in rng.sample(range(anchor.rank), count))
    attrs: dict[str, Any] = {"axes": axes, "keepdims": rng.randint(0, 1)}
    if rng.random() < 0.4:
        attrs["noop_with_empty_axes"] = rng.randint(0, 1)
    return Proposal(attrs)


def lower_reduce(builder: OnnxBuilder, node: Node) -> None:
    """axes become an input (ReduceSum from opset 13, the others from 18) or stay an attribute;
    noop_with_empty_axes exists from those same opsets."""
    attrs = dict(node.attr)
    axes, noop = attrs.pop("axes"), attrs.pop("noop_with_empty_axes", None)
    axes_are_input = builder.opset >= (13 if node.op == "ReduceSum" else 18)
    inputs = list(node.inputs)
    if axes_are_input:
        if noop is not None:
            attrs["noop_with_empty_axes"] = noop
        if axes:
            inputs.append(builder.constant(np.array(axes, dtype=np.int64)))
    elif noop and not axes:
        # An empty reduction before noop_with_empty_axes existed: reduce a new unit axis.
        unit = builder.temporary()
        builder.node("Unsqueeze", [inputs[0], builder.constant(np.array([0], dtype=np.int64))], [unit])
        builder.node(node.op, [unit], node.outputs, axes=(0,), keepdims=0)
        return
    elif axes:
        attrs["axes"] = axes
    builder.node(node.op, inputs, node.outputs, **attrs)


def summed(x, axes: tuple[int, ...], keepdim: bool):
    return x.sum(axes, keepdim)


def mean(x, axes: tuple[int, ...], keepdim: bool):
    """Float means as they are; integer means truncated toward zero, as the reference does."""
    if x.is_floating_point():
        return x.mean(axes, keepdim)
    count = math.prod([x.shape[a] for a in axes])  # a list: torch.compile cannot trace generators here
    return torch.div(x.sum(axes, keepdim), count, rounding_mode="trunc")


def product(x, axes: tuple[int, ...], keepdim: bool):
    for axis in reversed(axes):  # torch.prod takes one axis; the highest first keeps the rest valid
        x = x.prod(axis, keepdim)
    return x


def square_root(x):
    return x.sqrt() if x.is_floating_point() else x.double().sqrt()  # truncated back to the dtype


def identity(x):
    return x


@dataclass(frozen=True)
class Reduction:
    """A Reduce* operator as an elementwise step, the reduction proper, and a final step.
    With noop_with_empty_axes and empty axes only the elementwise steps run (ONNX's rule)."""

    name: str
    dtypes: frozenset[DType]
    reduce: Callable[[Any, tuple[int, ...], bool], Any]
    before: Callable[[Any], Any] = identity
    after: Callable[[Any], Any] = identity
    ranks: tuple[int, int] = (0, 4)
    domain: Domain | None = None
    facts: Mapping[str, bool] = field(default_factory=dict)  # OpSpec facts (exact, min_max, ...)

    def lowering(self, xs, attrs):
        x = xs[0]
        axes = reduced_axes(x.dim(), attrs)
        result = self.before(x)
        if axes:
            result = self.reduce(result, axes, bool(attrs["keepdims"]))
        return self.after(result).to(x.dtype)

    def spec(self) -> OpSpec:
        return OpSpec(self.name, Family.REDUCTION, self.dtypes, infer_reduce, self.lowering, propose_reduce,
                      ranks=self.ranks, onnx=lower_reduce, domain=self.domain, onnx_form=REDUCE_FORM, **self.facts)


REDUCE_FORM = constant_input("axes", defaults={"axes": (), "keepdims": 1})
ARITHMETIC = {"integer_arithmetic": True}
SUMS = {"accumulates": True}
ANY_EXTENT = {"extent_free": True}  # a sum of no elements is 0, of their squares too
SELECTS = {"exact": True, "min_max": True}


REDUCTIONS = [
    Reduction("ReduceSum", REDUCE_DTYPES, summed, facts=ARITHMETIC | SUMS | ANY_EXTENT),
    Reduction("ReduceMean", REDUCE_DTYPES, mean, facts=SUMS),
    Reduction("ReduceMax", ORDERED_DTYPES, lambda x, axes, keep: x.amax(axes, keep), facts=SELECTS),
    Reduction("ReduceMin", ORDERED_DTYPES, lambda x, axes, keep: x.amin(axes, keep), facts=SELECTS),
    Reduction("ReduceProd", REDUCE_DTYPES, product, facts=ARITHMETIC),
    Reduction("ReduceL1", REDUCE_DTYPES, summed, before=torch.abs, facts=ARITHMETIC | ANY_EXTENT),
    Reduction("ReduceL2", REDUCE_DTYPES, summed, before=torch.square, after=square_root, facts=ANY_EXTENT),
    # Log of an integer sum has no integer meaning; the reference refuses integer inputs
    # and opset 28 drops them from both schemas.
    Reduction("ReduceLogSum", FLOATS, summed, after=torch.log,
              domain=Domain(0, 0.0, math.inf, open_bounds=True, kind=DomainKind.SUMS)),  # every reduced sum positive
    # The reference evaluator's ReduceLogSumExp fails on 0-D inputs.
    Reduction("ReduceLogSumExp", FLOATS, lambda x, axes, keep: torch.logsumexp(x, axes, keep), ranks=(1, 4)),
    # The reference sums int32 squares in numpy's default int64 and returns int64.
    Reduction("ReduceSumSquare", FLOATS | {DType.int64}, summed, before=torch.square,
              facts=ARITHMETIC | ANY_EXTENT),
]


# ---------------------------------------------------------------- ArgMax and ArgMin


def infer_arg_reduce(types: tuple[TensorType, ...], attrs: Mapping[str, Any]) -> tuple[TensorType, ...]:
    x = types[0]
    axis = normalize_axis(attrs["axis"], x.rank)
    shape = [1 if i == axis else d for i, d in enumerate(x.shape) if i != axis or attrs["keepdims"]]
    return (TensorType(DType.int64, tuple(shape)),)


def propose_arg_reduce(rng: random.Random, anchor: TensorType) -> Proposal:
    return Proposal({"axis": random_axis(rng, anchor.rank), "keepdims": rng.randint(0, 1),
                     "select_last_index": rng.randint(0, 1)})


def arg_reduce(function: Callable[..., Any]) -> Callable[..., Any]:
    """ONNX picks the first extreme index on ties, or the last with select_last_index."""
    def lowering(xs, attrs):
        x = xs[0]
        axis, keepdim = normalize_axis(attrs["axis"], x.dim()), bool(attrs["keepdims"])
        if attrs["select_last_index"]:
            return x.shape[axis] - 1 - function(x.flip(axis), dim=axis, keepdim=keepdim)
        return function(x, dim=axis, keepdim=keepdim)
    return lowering


# ---------------------------------------------------------------- CumSum


def propose_cumsum(rng: random.Random, anchor: TensorType) -> Proposal:
    return Proposal({"axis": random_axis(rng, anchor.rank), "exclusive": rng.randint(0, 1),
                     "reverse": rng.randint(0, 1)})


def infer_cumsum(types: tuple[TensorType, ...], attrs: Mapping[str, Any]) -> tuple[TensorType, ...]:
    normalize_axis(attrs["axis"], types[0].rank)
    return same_as_first(types, attrs)


def lower_cumsum(builder: OnnxBuilder, node: Node) -> None:
    attrs = dict(node.attr)
    axis = builder.constant(np.array(attrs.pop("axis"), dtype=np.int64))  # a 0-D tensor
    builder.node("CumSum", [node.inputs[0], axis], node.outputs, **attrs)


def cumsum(xs, attrs):
    x = xs[0]
    axis = normalize_axis(attrs["axis"], x.dim())
    if attrs["reverse"]:
        x = x.flip(axis)
    result = torch.cumsum(x, axis, dtype=x.dtype)
    if attrs["exclusive"]:  # shift by one: each position sums what precedes it
        result = torch.cat([torch.zeros_like(x.narrow(axis, 0, 1)),
                            result.narrow(axis, 0, x.shape[axis] - 1)], axis)
    return result.flip(axis) if attrs["reverse"] else result


# ---------------------------------------------------------------- TopK


def infer_topk(types: tuple[TensorType, ...], attrs: Mapping[str, Any]) -> tuple[TensorType, ...]:
    x = types[0]
    axis = normalize_axis(attrs["axis"], x.rank)
    if not 1 <= attrs["k"] <= x.shape[axis]:
        raise ShapeError(f"k {attrs['k']} is outside [1, {x.shape[axis]}]")
    shape = tuple(attrs["k"] if i == axis else d for i, d in enumerate(x.shape))
    return (x.with_shape(shape), TensorType(DType.int64, shape))


def propose_topk(rng: random.Random, anchor: TensorType) -> Proposal:
    axis = random_axis(rng, anchor.rank)
    return Proposal({"axis": axis, "k": rng.randint(1, anchor.shape[axis]),
                     "largest": rng.randint(0, 1), "sorted": 1})


def lower_topk(builder: OnnxBuilder, node: Node) -> None:
    attrs = dict(node.attr)
    k = builder.constant(np.array([attrs.pop("k")], dtype=np.int64))
    builder.node("TopK", [node.inputs[0], k], node.outputs, **attrs)


def topk(xs, attrs):
    """ONNX breaks ties by the lower index, which a stable sort does; torch.topk promises
    no tie order. With that rule TopK is deterministic and the spec says so."""
    x = xs[0]
    axis, k = normalize_axis(attrs["axis"], x.dim()), attrs["k"]
    values, indices = torch.sort(x, dim=axis, descending=bool(attrs["largest"]), stable=True)
    return values.narrow(axis, 0, k), indices.narrow(axis, 0, k)


ARG_FORM = OnnxForm(defaults={"axis": 0, "keepdims": 1, "select_last_index": 0})
SPECS = [
    *(reduction.spec() for reduction in REDUCTIONS),
    OpSpec("ArgMax", Family.REDUCTION, ORDERED_DTYPES, infer_arg_reduce, arg_reduce(torch.argmax),
           propose_arg_reduce, ranks=(1, 4), ties=True, onnx_form=ARG_FORM),
    OpSpec("ArgMin", Family.REDUCTION, ORDERED_DTYPES, infer_arg_reduce, arg_reduce(torch.argmin),
           propose_arg_reduce, ranks=(1, 4), ties=True, onnx_form=ARG_FORM),
    # float16 and bfloat16 CumSum arrive in opset 14.
    OpSpec("CumSum", Family.REDUCTION, REDUCE_DTYPES, infer_cumsum, cumsum, propose_cumsum, ranks=(1, 4),
           onnx=lower_cumsum, since=14, integer_arithmetic=True, accumulates=True, extent_free=True,
           onnx_form=constant_input("axis", scalar=True, defaults={"exclusive": 0, "reverse": 0})),
    OpSpec("TopK", Family.REDUCTION, TOPK_DTYPES, infer_topk, topk, propose_topk, ranks=(1, 4),
           onnx=lower_topk, exact=True, ties=True,
           onnx_form=constant_input("k", scalar=True, defaults={"axis": -1, "largest": 1, "sorted": 1})),
]
