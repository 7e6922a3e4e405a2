"""Pooling: windowed max, average and Lp pooling, global average and max pooling, and MaxUnpool.

Window geometry (pads, auto_pad, ceil_mode) is resolved by ``linalg.sliding_axes``; the
torch lowerings pad explicitly to exactly the windows' extent and then pool unpadded, so
asymmetric pads and ceil_mode follow ONNX rather than torch's own padding rules.
"""

from __future__ import annotations

import math
import random
from dataclasses import replace
from typing import Any, Mapping, Sequence

import numpy as np

from fuzzer.graph.ir import FLOATS, DType, TensorType
from fuzzer.graph.ops.indexing import numpy_gen
from fuzzer.graph.ops.linalg import AUTO_PADS, Axis, pad_to_windows, random_window, sliding_axes
from fuzzer.graph.ops.spec import ANCHOR, F, Family, OnnxForm, Operand, OpSpec, Proposal, torch
from fuzzer.graph.rejected import ShapeError, Unsatisfiable

POOL_DTYPES = FLOATS - {DType.bfloat16}  # bfloat16 pooling arrives in opset 22
MAX_POOL_DTYPES = POOL_DTYPES | {DType.int8, DType.uint8}


def pool_axes(shape: Sequence[int], attrs: Mapping[str, Any]) -> tuple[Axis, ...]:
    return sliding_axes(shape[2:], attrs["kernel_shape"], attrs, bool(attrs.get("ceil_mode", 0)))


def infer_pool(types: tuple[TensorType, ...], attrs: Mapping[str, Any]) -> tuple[TensorType, ...]:
    x = types[0]
    if x.rank < 3:
        raise ShapeError(f"pooling needs an [N, C, spatial...] input, got {x}")
    return (x.with_shape((*x.shape[:2], *(a.out for a in pool_axes(x.shape, attrs)))),)


def infer_global_pool(types: tuple[TensorType, ...], attrs: Mapping[str, Any]) -> tuple[TensorType, ...]:
    x = types[0]
    return (x.with_shape((*x.shape[:2], *(1,) * (x.rank - 2))),)


def window_attrs(rng: random.Random, anchor: TensorType, dilate: bool, ceil: bool) -> dict[str, Any]:
    """kernel_shape, strides, auto_pad and pads (each below its kernel), and optionally
    dilations and ceil_mode (with explicit pads only: the reference refuses it with auto_pad)."""
    kernel, strides, dilations = random_window(rng, anchor.shape[2:])
    attrs: dict[str, Any] = {"kernel_shape": kernel, "strides": strides, "auto_pad": rng.choice(AUTO_PADS)}
    if dilate:
        attrs["dilations"] = dilations
    else:
        dilations = (1,) * len(kernel)
    if attrs["auto_pad"].startswith("SAME") and any(
            (k - 1) * d + 1 < s for k, d, s in zip(kernel, dilations, strides)):
        # SAME pads would be negative: onnxruntime rejects them, the reference misapplies them.
        attrs["auto_pad"] = "NOTSET"
    if attrs["auto_pad"] == "NOTSET":
        attrs["pads"] = tuple(rng.randrange(k) for k in kernel * 2)
        if ceil:
            attrs["ceil_mode"] = int(rng.random() < 0.5 and not last_window_in_pads(anchor, attrs))
    return attrs


def last_window_in_pads(anchor: TensorType, attrs: Mapping[str, Any]) -> bool:
    """Whether ceil_mode would add a window that starts in the end pads. ONNX shape inference
    keeps such a window; the reference evaluator, onnxruntime and torch drop it."""
    axes = sliding_axes(anchor.shape[2:], attrs["kernel_shape"], attrs, ceil_mode=True)
    return any((a.out - 1) * a.stride >= a.size + a.begin for a in axes)


def propose_max_pool(rng: random.Random, anchor: TensorType) -> Proposal:
    attrs = window_attrs(rng, anchor, dilate=True, ceil=True)
    if all(s == 1 for s in attrs["strides"]) and all(d == 1 for d in attrs["dilations"]):
        # With unit strides and dilations the reference evaluator falls back to an older
        # implementation that ignores 1-D pads, has no 1-D auto_pad, pads integers with NaN,
        # reads 2-D pads as [h_begin, h_end, w_begin, w_end] and counts pads twice under
        # ceil_mode. Keep to what it gets right: no pads, or 2-D float pads laid out so that
        # both readings agree (pads[1] == pads[2]) without ceil_mode.
        if anchor.rank != 4 or not anchor.dtype.is_float:
            attrs.pop("pads", None)
            if attrs["auto_pad"] != "NOTSET":
                attrs["auto_pad"] = "VALID"
        elif "pads" in attrs:
            pads = list(attrs["pads"])
            pads[1] = pads[2] = rng.randrange(min(attrs["kernel_shape"]))
            attrs["pads"] = tuple(pads)
            attrs["ceil_mode"] = 0
    elif attrs["auto_pad"] == "SAME_LOWER":
        attrs["auto_pad"] = "SAME_UPPER"  # the reference's SAME_LOWER uses floor and SAME_UPPER's split
    return Proposal(attrs)


def max_pool(xs, attrs):
    x = xs[0]
    axes = pool_axes(x.shape, attrs)
    # torch has no integer max pooling; float32 holds int8 and uint8 exactly.
    work = x if x.is_floating_point() else x.to(torch.float32)
    pooled = getattr(F, f"max_pool{len(axes)}d")(
        pad_to_windows(work, axes, -math.inf), attrs["kernel_shape"], attrs["strides"],
        dilation=attrs["dilations"])
    return pooled.to(x.dtype)


def propose_average_pool(rng: random.Random, anchor: TensorType) -> Proposal:
    # dilations arrive in opset 19, so the spec (lowered at every opset) leaves them out.
    attrs = window_attrs(rng, anchor, dilate=False, ceil=True)
    attrs["count_include_pad"] = rng.randint(0, 1)
    tails = [a.extent - a.size - a.begin - a.end for a in pool_axes(anchor.shape, attrs)]
    if attrs.get("ceil_mode") and max(tails) > 1:
        # The reference evaluator puts half of a ceil_mode tail longer than one element
        # before the input, which shifts every window.
        attrs["ceil_mode"] = 0
    return Proposal(attrs)


def average_pool(xs, attrs):
    """Window means over the share of each window that counts: the input, plus the pads
    with count_include_pad, never the tail that ceil_mode reads past the pads."""
    x = xs[0]
    axes = count_axes = pool_axes(x.shape, attrs)
    pool = getattr(F, f"avg_pool{len(axes)}d")
    counted = torch.ones((1, 1, *x.shape[2:]), dtype=x.dtype, device=x.device)
    if attrs["count_include_pad"]:
        counted = F.pad(counted, [p for a in reversed(axes) for p in (a.begin, a.end)], value=1.0)
        count_axes = tuple(replace(a, size=a.size + a.begin + a.end, begin=0, end=0) for a in axes)
    mean = pool(pad_to_windows(x, axes, 0.0), attrs["kernel_shape"], attrs["strides"])
    return mean / pool(pad_to_windows(counted, count_axes, 0.0), attrs["kernel_shape"], attrs["strides"])


def propose_lp_pool(rng: random.Random, anchor: TensorType) -> Proposal:
    # dilations and ceil_mode arrive in opset 18, so the spec leaves them out.
    attrs = window_attrs(rng, anchor, dilate=False, ceil=False)
    attrs["p"] = rng.randint(1, 2)
    return Proposal(attrs)


def lp_pool(xs, attrs):
    """(sum |x|^p)^(1/p) per window, as a mean times the window size (as torch's lp_pool)."""
    x, p = xs[0], attrs["p"]
    axes = pool_axes(x.shape, attrs)
    pool = getattr(F, f"avg_pool{len(axes)}d")
    mean = pool(pad_to_windows(x.abs() ** p, axes, 0.0), attrs["kernel_shape"], attrs["strides"])
    return (mean * math.prod(attrs["kernel_shape"])) ** (1.0 / p)


def unpool_shape(x: Sequence[int], attrs: Mapping[str, Any]) -> tuple[int, ...]:
    kernel = tuple(attrs["kernel_shape"])
    spatial = len(kernel)
    strides, pads = attrs.get("strides", (1,) * spatial), attrs.get("pads", (0,) * 2 * spatial)
    if len(x) != spatial + 2 or len(strides) != spatial or len(pads) != 2 * spatial:
        raise ShapeError(f"MaxUnpool attributes {dict(attrs)} do not fit shape {tuple(x)}")
    out = tuple((size - 1) * stride - pads[i] - pads[i + spatial] + k
                for i, (size, stride, k) in enumerate(zip(x[2:], strides, kernel)))
    if min(out) < 1:
        raise ShapeError(f"MaxUnpool output {out} is empty")
    return (*x[:2], *out)


def propose_max_unpool(rng: random.Random, anchor: TensorType) -> Proposal:
    spatial = anchor.rank - 2
    if not anchor.numel:
        raise Unsatisfiable(f"MaxUnpool writes a non-empty input, not {anchor}")
    kernel = tuple(rng.randint(1, 3) for _ in range(spatial))
    attrs: dict[str, Any] = {"kernel_shape": kernel}
    if rng.random() < 0.7:
        attrs["strides"] = tuple(rng.randint(1, 3) for _ in range(spatial))
    if rng.random() < 0.5:
        attrs["pads"] = tuple(rng.randrange(k) for k in kernel * 2)
    shape = unpool_shape(anchor.shape, attrs)
    plane, out_plane = math.prod(anchor.shape[2:]), math.prod(shape[2:])
    if out_plane < plane:
        attrs.pop("pads", None)
        shape = unpool_shape(anchor.shape, attrs)
        out_plane = math.prod(shape[2:])
        if out_plane < plane:
            raise Unsatisfiable(f"MaxUnpool output planes of {out_plane} cannot hold {plane} distinct indices")
    gen = numpy_gen(rng)
    planes = math.prod(anchor.shape[:2])
    indices = np.stack([gen.choice(out_plane, size=plane, replace=False) + k * out_plane for k in range(planes)])
    return Proposal(attrs, (ANCHOR, Operand(TensorType(DType.int64, anchor.shape),
                                            indices.reshape(anchor.shape).astype(np.int64))))


def infer_max_unpool(types: tuple[TensorType, ...], attrs: Mapping[str, Any]) -> tuple[TensorType, ...]:
    if len(types) != 2 or types[0].dtype not in POOL_DTYPES or types[1] != TensorType(DType.int64, types[0].shape):
        raise ShapeError(f"MaxUnpool takes a float [N, C, spatial...] input and int64 indices of its shape, "
                         f"got {types}")
    return (types[0].with_shape(unpool_shape(types[0].shape, attrs)),)


def max_unpool(xs, attrs):
    x, indices = xs
    shape = unpool_shape(tuple(x.shape), attrs)
    out = torch.zeros(math.prod(shape), dtype=x.dtype, device=x.device)
    return out.scatter(0, indices.reshape(-1).long(), x.reshape(-1)).reshape(shape)


SPECS = [
    # MaxPool, AveragePool: proposals keep clear of the reference evaluator's quirks for the anchor's type.
    OpSpec("MaxPool", Family.POOLING, MAX_POOL_DTYPES, infer_pool, max_pool, propose_max_pool, ranks=(3, 4),
           exact=True, min_max=True, fixed_input_types=True, onnx_form=OnnxForm(window=("strides", "dilations"))),
    OpSpec("AveragePool", Family.POOLING, POOL_DTYPES, infer_pool, average_pool, propose_average_pool,
           ranks=(3, 4), fixed_input_types=True, accumulates=True,
           onnx_form=OnnxForm(defaults={"count_include_pad": 0}, window=("strides",))),
    OpSpec("LpPool", Family.POOLING, POOL_DTYPES, infer_pool, lp_pool, propose_lp_pool, ranks=(3, 4),
           onnx_form=OnnxForm(defaults={"p": 2}, window=("strides",))),
    OpSpec("GlobalAveragePool", Family.POOLING, POOL_DTYPES, infer_global_pool,
           lambda xs, a: xs[0].mean(dim=tuple(range(2, xs[0].dim())), keepdim=True), ranks=(3, 4), accumulates=True),
    # The reference evaluator's GlobalMaxPool always reduces the last two axes: right for 4-D only.
    OpSpec("GlobalMaxPool", Family.POOLING, POOL_DTYPES, infer_global_pool,
           lambda xs, a: xs[0].amax(dim=(2, 3), keepdim=True), ranks=(4, 4), exact=True, min_max=True),
    # The indices are fixed, distinct and in their planes: mutants keep the input types.
    OpSpec("MaxUnpool", Family.POOLING, POOL_DTYPES, infer_max_unpool, max_unpool, propose_max_unpool, ranks=(3, 4),
           steering=(0,), exact=True, fixed_input_types=True),
]
