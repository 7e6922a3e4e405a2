"""Losses: NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss (opset 13).

Scores are ``[N, C, d...]``, targets ``[N, d...]`` fixed weights with classes in range (an
``ignore_index``, when set, is one of the classes, and some target keeps clear of it, so a
mean never divides by zero). Class weights are fixed positive weights: a mean divides by the
sum of the targets' weights, which random signed weights could bring next to zero.
"""

from __future__ import annotations

import random
from typing import Any, Mapping

from fuzzer.graph.ir import DType, TensorType
from fuzzer.graph.ops.indexing import INDEX_DTYPES, check_indices, numpy_gen
from fuzzer.graph.ops.spec import ANCHOR, F, Family, OnnxForm, Operand, OpSpec, Proposal, torch
from fuzzer.graph.rejected import ShapeError

LOSS_DTYPES = frozenset({DType.float16, DType.float32, DType.float64})
REDUCTIONS = ("none", "sum", "mean")


def propose_loss(rng: random.Random, anchor: TensorType) -> Proposal:
    classes = anchor.shape[1]
    gen = numpy_gen(rng)
    target_shape = (anchor.shape[0], *anchor.shape[2:])
    target = gen.integers(0, classes, size=target_shape).astype(rng.choice(INDEX_DTYPES).numpy)
    attrs: dict[str, Any] = {}
    if rng.random() < 0.8:
        attrs["reduction"] = rng.choice(REDUCTIONS)
    if classes > 1 and rng.random() < 0.4:
        attrs["ignore_index"] = ignored = rng.randrange(classes)
        if (target == ignored).all():
            target.flat[0] = (ignored + 1) % classes
    inputs: tuple[Operand | None, ...] = (ANCHOR, Operand(TensorType(DType.from_numpy(target.dtype), target_shape),
                                                         target))
    if rng.random() < 0.5:
        weights = gen.uniform(0.25, 2.0, size=(classes,)).astype(anchor.dtype.numpy)
        inputs += (Operand(anchor.with_shape((classes,)), weights),)
    return Proposal(attrs, inputs)


def loss_shape(types: tuple[TensorType, ...], attrs: Mapping[str, Any], op: str) -> TensorType:
    scores, target, *weight = types
    check_indices(target)
    if scores.dtype not in LOSS_DTYPES or scores.rank < 2 or target.shape != (scores.shape[0], *scores.shape[2:]) \
            or (weight and weight[0] != scores.with_shape((scores.shape[1],))):
        raise ShapeError(f"{op} needs [N, C, d...] scores, [N, d...] targets and [C] weights, "
                         f"got {', '.join(map(str, types))}")
    reduction = attrs.get("reduction", "mean")
    if reduction not in REDUCTIONS:
        raise ShapeError(f"unknown reduction {reduction!r}")
    return scores.with_shape(target.shape if reduction == "none" else ())


def infer_nll(types: tuple[TensorType, ...], attrs: Mapping[str, Any]) -> tuple[TensorType, ...]:
    return (loss_shape(types, attrs, "NegativeLogLikelihoodLoss"),)


def infer_softmax_cross_entropy(types: tuple[TensorType, ...], attrs: Mapping[str, Any]) -> tuple[TensorType, ...]:
    return loss_shape(types, attrs, "SoftmaxCrossEntropyLoss"), types[0]


def nll(log_probs, target, weight, attrs):
    """-log_probs[n, target[n, d...], d...] * weight[target], ignored targets counting zero."""
    ignore_index = attrs.get("ignore_index")
    target = target.long()
    kept = target != ignore_index if ignore_index is not None else torch.ones_like(target, dtype=torch.bool)
    safe = torch.where(kept, target, torch.zeros_like(target))
    picked = -torch.gather(log_probs, 1, safe.unsqueeze(1)).squeeze(1)
    scale = weight[safe] if weight is not None else torch.ones_like(picked)
    scale = torch.where(kept, scale, torch.zeros_like(scale))
    loss = picked * scale
    reduction = attrs.get("reduction", "mean")
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.sum() / scale.sum()
    return loss


def negative_log_likelihood_loss(xs, attrs):
    return nll(xs[0], xs[1], xs[2] if len(xs) > 2 else None, attrs)


def softmax_cross_entropy_loss(xs, attrs):
    log_probs = F.log_softmax(xs[0], dim=1)
    return nll(log_probs, xs[1], xs[2] if len(xs) > 2 else None, attrs), log_probs


SPECS = [
    # The targets hold classes of the scores' extent C: mutants keep the input types.
    OpSpec("NegativeLogLikelihoodLoss", Family.LOSS, LOSS_DTYPES, infer_nll, negative_log_likelihood_loss,
           propose_loss, ranks=(2, 4), fixed_input_types=True, onnx_form=OnnxForm(defaults={"reduction": "mean"})),
    OpSpec("SoftmaxCrossEntropyLoss", Family.LOSS, LOSS_DTYPES, infer_softmax_cross_entropy,
           softmax_cross_entropy_loss, propose_loss, ranks=(2, 4), fixed_input_types=True,
           onnx_form=OnnxForm(defaults={"reduction": "mean"})),
]
