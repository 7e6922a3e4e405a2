"""Normalization: batch (inference mode), instance, layer, group, Lp, mean-variance and
local response normalization.

ONNX stores epsilon, alpha, beta and bias as float32 attributes: the lowerings use them rounded
so, which only float64 (the float64 judge, float64 graphs) can tell from the written value.
"""

from __future__ import annotations

import math
import random
from typing import Any, Mapping

import numpy as np

from fuzzer.graph.ir import FLOATS, DType, TensorType
from fuzzer.graph.ops.activation import f32
from fuzzer.graph.ops.linalg import same_dtype
from fuzzer.graph.ops.spec import (ANCHOR, F, Family, OnnxForm, Operand, OpSpec, Proposal, normalize_axis,
                                   same_as_first, torch)
from fuzzer.graph.rejected import ShapeError, Unsatisfiable

NORM_DTYPES = FLOATS - {DType.bfloat16}  # bfloat16 arrives in opset 14 (BatchNormalization) or 22
EPSILONS = (1e-5, 1e-3, 1e-2, 0.1)


def infer_channel_norm(types: tuple[TensorType, ...], attrs: Mapping[str, Any]) -> tuple[TensorType, ...]:
    """X of rank >= 2 and per-channel parameters (scale, B, and for BatchNormalization mean, var)."""
    same_dtype(types)
    x = types[0]
    if x.rank < 2 or any(t.shape != (x.shape[1],) for t in types[1:]):
        raise ShapeError(f"per-channel parameters must have shape [{x.shape[1] if x.rank > 1 else '?'}]")
    return (x,)


def positive_values(rng: random.Random, tensor_type: TensorType) -> np.ndarray:
    gen = np.random.default_rng(rng.getrandbits(32))
    return gen.uniform(0.25, 2.0, size=tensor_type.shape).astype(tensor_type.dtype.numpy)


def propose_batch_norm(rng: random.Random, anchor: TensorType) -> Proposal:
    # momentum only matters in training mode, so it is left out.
    channel = anchor.with_shape((anchor.shape[1],))
    return Proposal({"epsilon": rng.choice(EPSILONS)},
                    (ANCHOR, Operand(channel), Operand(channel), Operand(channel),
                     Operand(channel, positive_values(rng, channel))))


def propose_instance_norm(rng: random.Random, anchor: TensorType) -> Proposal:
    channel = anchor.with_shape((anchor.shape[1],))
    return Proposal({"epsilon": rng.choice(EPSILONS)}, (ANCHOR, Operand(channel), Operand(channel)))


def instance_norm(xs, attrs):
    # The aten op directly: F.instance_norm refuses a single spatial element, ONNX does not.
    return torch.instance_norm(xs[0], xs[1], xs[2], None, None, True, 0.0, f32(attrs["epsilon"]), False)


def instance_norm_steps(xs, attrs):
    """InstanceNormalization step by step, its statistics as sums: the float64 judge then sees
    the intermediates that overflow at the declared precision (a float16 sum of squares)."""
    x, scale, bias = xs
    axes, count = tuple(range(2, x.dim())), math.prod(x.shape[2:])
    centered = x - x.sum(axes, keepdim=True) / count
    variance = (centered * centered).sum(axes, keepdim=True) / count
    per_channel = (1, -1) + (1,) * (x.dim() - 2)
    return centered / torch.sqrt(variance + f32(attrs["epsilon"])) * scale.reshape(per_channel) \
        + bias.reshape(per_channel)


def infer_layer_norm(types: tuple[TensorType, ...], attrs: Mapping[str, Any]) -> tuple[TensorType, ...]:
    same_dtype(types)
    x = types[0]
    normalized = x.shape[normalize_axis(attrs["axis"], x.rank):]
    if x.rank < 1 or any(t.shape != normalized for t in types[1:]):
        raise ShapeError(f"Scale and B must have the normalized shape {normalized}")
    return (x,)


def propose_layer_norm(rng: random.Random, anchor: TensorType) -> Proposal:
    axis = rng.randrange(anchor.rank)
    params = anchor.with_shape(anchor.shape[axis:])
    inputs = (ANCHOR, Operand(params)) + ((Operand(params),) if rng.random() < 0.6 else ())
    return Proposal({"axis": axis - anchor.rank if rng.random() < 0.5 else axis,
                     "epsilon": rng.choice(EPSILONS)}, inputs)


def layer_norm(xs, attrs):
    x = xs[0]
    normalized = tuple(x.shape[normalize_axis(attrs["axis"], x.dim()):])
    return F.layer_norm(x, normalized, xs[1], xs[2] if len(xs) > 2 else None, f32(attrs["epsilon"]))


def propose_lrn(rng: random.Random, anchor: TensorType) -> Proposal:
    # The reference evaluator's LRN loops over the batch axis where it means channels:
    # it is right only when N == C.
    if anchor.shape[0] != anchor.shape[1]:
        raise Unsatisfiable("LRN needs N == C for the reference evaluator")
    return Proposal({"size": rng.choice((1, 3, 5)), "alpha": rng.choice((1e-4, 1e-3, 0.1, 0.5)),
                     "beta": rng.choice((0.5, 0.75, 1.0)), "bias": rng.choice((1.0, 2.0, 0.5))})


def lrn(xs, attrs):
    """x / (bias + alpha / size * sum of squares over the channel window) ** beta."""
    x, size = xs[0], attrs["size"]
    alpha, beta, bias = (f32(attrs[name]) for name in ("alpha", "beta", "bias"))
    before = (size - 1) // 2
    squares = F.pad(x * x, [0, 0] * (x.dim() - 2) + [before, size - 1 - before])
    window_sums = squares.unfold(1, size, 1).sum(-1)
    return x / (bias + alpha / size * window_sums) ** beta



# ---------------------------------------------------------------- GroupNormalization, LpNormalization, MVN


def infer_group_norm(types: tuple[TensorType, ...], attrs: Mapping[str, Any]) -> tuple[TensorType, ...]:
    """Scale and bias are per channel (opset 21; the checker refuses opset 18's per-group form
    as deprecated)."""
    same_dtype(types)
    x = types[0]
    if x.rank < 3 or x.shape[1] % attrs["num_groups"] or any(t.shape != (x.shape[1],) for t in types[1:]):
        raise ShapeError(f"GroupNormalization needs channels divisible by num_groups and [C] scale and bias, "
                         f"got {', '.join(map(str, types))}")
    return (x,)


def propose_group_norm(rng: random.Random, anchor: TensorType) -> Proposal:
    channels = anchor.shape[1]
    groups = rng.choice([g for g in range(1, channels + 1) if channels % g == 0])
    channel = anchor.with_shape((channels,))
    return Proposal({"num_groups": groups, "epsilon": rng.choice(EPSILONS)},
                    (ANCHOR, Operand(channel), Operand(channel)))


def group_norm(xs, attrs):
    return F.group_norm(xs[0], attrs["num_groups"], xs[1], xs[2], f32(attrs["epsilon"]))


def propose_lp_norm(rng: random.Random, anchor: TensorType) -> Proposal:
    # p=2 only: the reference evaluator's p=1 sums the signed values, not their magnitudes.
    return Proposal({"axis": rng.randint(-anchor.rank, anchor.rank - 1), "p": 2})


def lp_norm(xs, attrs):
    """x over its L2 norm along ``axis``; a zero norm gives zeros (as the reference does)."""
    x = xs[0]
    norm = torch.sqrt((x * x).sum(attrs["axis"], keepdim=True))
    return torch.where(norm == 0, torch.zeros_like(x), x / norm)


def propose_mvn(rng: random.Random, anchor: TensorType) -> Proposal:
    axes = sorted(rng.sample(range(anchor.rank), rng.randint(1, anchor.rank)))
    return Proposal({"axes": tuple(axes)} if axes != [0, 2, 3] or rng.random() < 0.5 else {})


def mvn(xs, attrs):
    """ONNX's function body step by step: (x - E[x]) / (sqrt(E[x^2] - E[x]^2) + 1e-9)."""
    x = xs[0]
    axes = tuple(attrs.get("axes", (0, 2, 3)))
    mean = x.mean(axes, keepdim=True)
    variance = (x * x).mean(axes, keepdim=True) - mean * mean
    return (x - mean) / (torch.sqrt(variance) + f32(1e-9))


SPECS = [
    OpSpec("BatchNormalization", Family.NORMALIZATION, NORM_DTYPES, infer_channel_norm,
           lambda xs, a: F.batch_norm(xs[0], xs[3], xs[4], xs[1], xs[2], False, 0.0, f32(a["epsilon"])),
           propose_batch_norm, ranks=(2, 4), float32_constants=True,
           onnx_form=OnnxForm(defaults={"epsilon": 1e-5}, dropped=frozenset({"momentum"}))),
    OpSpec("InstanceNormalization", Family.NORMALIZATION, NORM_DTYPES, infer_channel_norm,
           instance_norm, propose_instance_norm, ranks=(3, 4), steering=(2,), reference=instance_norm_steps,
           float32_constants=True, onnx_form=OnnxForm(defaults={"epsilon": 1e-5})),
    OpSpec("LayerNormalization", Family.NORMALIZATION, FLOATS, infer_layer_norm, layer_norm,
           propose_layer_norm, ranks=(1, 4), since=17, steering=(2,), float32_constants=True,
           onnx_form=OnnxForm(defaults={"axis": -1, "epsilon": 1e-5}, dropped=frozenset({"stash_type"}))),
    # LRN: the proposal keeps clear of the reference evaluator's quirks for the anchor's shape.
    OpSpec("LRN", Family.NORMALIZATION, FLOATS, same_as_first, lrn, propose_lrn, ranks=(4, 4), float32_constants=True,
           fixed_input_types=True),
    OpSpec("GroupNormalization", Family.NORMALIZATION, NORM_DTYPES, infer_group_norm, group_norm, propose_group_norm,
           ranks=(3, 4), since=21, steering=(2,), float32_constants=True,
           onnx_form=OnnxForm(defaults={"epsilon": 1e-5}, dropped=frozenset({"stash_type"}))),
    OpSpec("LpNormalization", Family.NORMALIZATION, NORM_DTYPES, same_as_first, lp_norm, propose_lp_norm,
           ranks=(1, 4), value_range=(-1.0, 1.0), onnx_form=OnnxForm(defaults={"axis": -1, "p": 2})),
    # float32 only: the function body adds a float32 epsilon, which other dtypes do not take.
    OpSpec("MeanVarianceNormalization", Family.NORMALIZATION, frozenset({DType.float32}), same_as_first, mvn,
           propose_mvn, ranks=(4, 4), float32_constants=True, onnx_form=OnnxForm(defaults={"axes": (0, 2, 3)})),
]
