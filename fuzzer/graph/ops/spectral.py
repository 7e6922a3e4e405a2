"""Spectral operators: DFT, STFT and MelWeightMatrix (opset 17).

Signals hold real values (last axis 1) or complex ones (last axis 2: real, imaginary).
The torch lowerings multiply by the transform's cosine and sine matrices, computed in
float64 from exact angles 2 pi ((k n) mod N) / N and rounded to the working dtype (float32
for float16): no complex tensors, so every device and torch.compile run them. Neither
operator gets ``dft_length`` (DFT zero-pads or truncates by it: left for later); DFT's
``onesided`` is only drawn for real forward transforms and STFT's only for real signals,
where ONNX defines them; STFT's is always explicit (ONNX documents a default of 1, its shape
inference and reference evaluator read 0 when it is missing, onnxruntime 1).
MelWeightMatrix has no inputs: its five scalars are constants (the IR's attributes), as the
windows' size is.
"""

from __future__ import annotations

import math
import random
from typing import Any, Mapping

import numpy as np

from fuzzer.graph.ir import DType, Node, TensorType
from fuzzer.graph.ops.spec import ANCHOR, Family, OnnxBuilder, OnnxForm, Operand, OpSpec, Proposal, torch
from fuzzer.graph.rejected import ShapeError, Unsatisfiable
from fuzzer.graph.values import torch_dtype

SPECTRAL_DTYPES = frozenset({DType.float16, DType.float32, DType.float64})
DFT_AXIS_INPUT = 20  # DFT-20 takes the axis as its third input


# ---------------------------------------------------------------- shared transform


def transform(re, im, inverse: bool, bins: int):
    """The first ``bins`` coefficients of the DFT (``inverse``: the inverse DFT, divided by
    N) along the last axis of the signal ``re`` + i ``im`` (``im`` None: real)."""
    work = torch.float64 if re.dtype == torch.float64 else torch.float32
    length = re.shape[-1]
    k = torch.arange(bins, device=re.device, dtype=torch.int64)
    n = torch.arange(length, device=re.device, dtype=torch.int64)
    angle = (k[:, None] * n[None, :] % length).to(torch.float64) * (2 * math.pi / length)
    cos, sin = torch.cos(angle).to(work).T, torch.sin(angle).to(work).T  # [length, bins]
    re = re.to(work)
    sign = 1.0 if inverse else -1.0
    out_re, out_im = re @ cos, sign * (re @ sin)
    if im is not None:
        im = im.to(work)
        out_re, out_im = out_re - sign * (im @ sin), out_im + im @ cos
    if inverse:
        out_re, out_im = out_re / length, out_im / length
    return torch.stack((out_re, out_im), dim=-1)


def parts(x):
    """The real and imaginary parts (None for a real signal) of ``x``'s last axis."""
    return (x[..., 0], x[..., 1]) if x.shape[-1] == 2 else (x[..., 0], None)


# ---------------------------------------------------------------- DFT


def propose_dft(rng: random.Random, anchor: TensorType) -> Proposal:
    if anchor.shape[-1] not in (1, 2):
        raise Unsatisfiable("DFT needs a last axis of 1 (real) or 2 (complex)")
    attrs: dict[str, Any] = {"axis": rng.randint(1, anchor.rank - 2)}
    attrs["inverse"] = int(rng.random() < 0.3)
    if anchor.shape[-1] == 1 and not attrs["inverse"]:
        attrs["onesided"] = int(rng.random() < 0.5)
    return Proposal(attrs)


def infer_dft(types: tuple[TensorType, ...], attrs: Mapping[str, Any]) -> tuple[TensorType, ...]:
    x = types[0]
    axis = attrs.get("axis", 1)
    if x.dtype not in SPECTRAL_DTYPES or x.rank < 3 or x.shape[-1] not in (1, 2) or not 1 <= axis <= x.rank - 2:
        raise ShapeError(f"DFT needs a [batch, ..., 1 or 2] float signal and an axis in 1..rank-2, got {x}")
    if attrs.get("onesided", 0) and (attrs.get("inverse", 0) or x.shape[-1] != 1):
        raise ShapeError("onesided DFT takes a real signal and a forward transform")
    shape = list(x.shape)
    shape[axis] = shape[axis] // 2 + 1 if attrs.get("onesided", 0) else shape[axis]
    shape[-1] = 2
    return (x.with_shape(tuple(shape)),)


def dft(xs, attrs):
    x, axis = xs[0], attrs.get("axis", 1)
    re, im = (p.movedim(axis, -1) if p is not None else None for p in parts(x))
    length = x.shape[axis]
    bins = length // 2 + 1 if attrs.get("onesided", 0) else length
    result = transform(re, im, bool(attrs.get("inverse", 0)), bins)  # [..., bins, 2]
    return result.movedim(-2, axis).to(x.dtype)


def lower_dft(builder: OnnxBuilder, node: Node) -> None:
    """The axis is an attribute up to opset 19 and a constant input (after dft_length) from 20."""
    attrs = dict(node.attr)
    if builder.opset < DFT_AXIS_INPUT:
        builder.node("DFT", node.inputs, node.outputs, **attrs)
        return
    axis = builder.constant(np.asarray(attrs.pop("axis", 1), np.int64))
    builder.node("DFT", [node.inputs[0], "", axis], node.outputs, **attrs)


# ---------------------------------------------------------------- STFT


def propose_stft(rng: random.Random, anchor: TensorType) -> Proposal:
    length = anchor.shape[1]
    if anchor.shape[-1] not in (1, 2):
        raise Unsatisfiable("STFT needs a last axis of 1 (real) or 2 (complex)")
    frame_length = rng.randint(1, min(length, 16))
    attrs: dict[str, Any] = {"frame_step": rng.randint(1, 4)}
    # Always explicit: the schema's default is 1, ONNX shape inference and the reference read 0.
    attrs["onesided"] = rng.randint(0, 1) if anchor.shape[-1] == 1 else 0
    if rng.random() < 0.6:
        return Proposal(attrs, (ANCHOR, Operand(anchor.with_shape((frame_length,)))))
    attrs["frame_length"] = frame_length
    return Proposal(attrs)


def infer_stft(types: tuple[TensorType, ...], attrs: Mapping[str, Any]) -> tuple[TensorType, ...]:
    x, *window = types
    if x.dtype not in SPECTRAL_DTYPES or x.rank != 3 or x.shape[-1] not in (1, 2) \
            or (window and (window[0].dtype is not x.dtype or window[0].rank != 1)):
        raise ShapeError(f"STFT needs a [batch, length, 1 or 2] float signal and a window of its dtype, got {types}")
    frame_length = window[0].shape[0] if window else attrs.get("frame_length")
    if frame_length is None or (window and "frame_length" in attrs) or not 1 <= frame_length <= x.shape[1] \
            or attrs["frame_step"] < 1:
        raise ShapeError(f"STFT needs a frame_length in 1..{x.shape[1]} (a window or the attribute) and a "
                         f"positive frame_step, got {dict(attrs)}")
    onesided = attrs.get("onesided")
    if onesided is None:
        raise ShapeError("STFT needs an explicit onesided: ONNX documents 1 as its default, its shape inference "
                         "and reference evaluator take 0, onnxruntime takes 1")
    if onesided and x.shape[-1] != 1:
        raise ShapeError("onesided STFT takes a real signal")
    frames = (x.shape[1] - frame_length) // attrs["frame_step"] + 1
    bins = frame_length // 2 + 1 if onesided else frame_length
    return (x.with_shape((x.shape[0], frames, bins, 2)),)


def stft(xs, attrs):
    x, *window = xs
    frame_length = window[0].shape[0] if window else attrs["frame_length"]
    framed = x.unfold(1, frame_length, attrs["frame_step"])  # [batch, frames, 1 or 2, frame_length]
    if window:
        framed = framed * window[0]
    re, im = (framed[:, :, 0], framed[:, :, 1]) if x.shape[-1] == 2 else (framed[:, :, 0], None)
    bins = frame_length // 2 + 1 if attrs["onesided"] else frame_length
    return transform(re, im, False, bins).to(x.dtype)


def lower_stft(builder: OnnxBuilder, node: Node) -> None:
    attrs = {k: v for k, v in node.attr.items() if k not in ("frame_step", "frame_length")}
    inputs = [node.inputs[0], builder.constant(np.asarray(node.attr["frame_step"], np.int64))]
    if len(node.inputs) > 1:
        inputs.append(node.inputs[1])
    else:
        inputs += ["", builder.constant(np.asarray(node.attr["frame_length"], np.int64))]
    builder.node("STFT", inputs, node.outputs, **attrs)


# ---------------------------------------------------------------- MelWeightMatrix

MEL_INPUTS = ("num_mel_bins", "dft_length", "sample_rate", "lower_edge_hertz", "upper_edge_hertz")
SAMPLE_RATES = (8000, 16000, 22050, 44100)


def propose_mel(rng: random.Random, anchor: TensorType) -> Proposal:
    sample_rate = rng.choice(SAMPLE_RATES)
    lower = float(rng.choice((0, 20, 100, rng.randrange(0, sample_rate // 4))))
    upper = float(rng.randrange(int(lower) + 100, sample_rate // 2 + 1))
    attrs = {"num_mel_bins": rng.randint(1, 8), "dft_length": rng.randint(4, 32), "sample_rate": sample_rate,
             "lower_edge_hertz": lower, "upper_edge_hertz": upper, "output_datatype": anchor.dtype.value}
    return Proposal(attrs, ())


def infer_mel(types: tuple[TensorType, ...], attrs: Mapping[str, Any]) -> tuple[TensorType, ...]:
    dtype = DType(attrs.get("output_datatype", "float32"))
    if types or dtype not in SPECTRAL_DTYPES or attrs["num_mel_bins"] < 1 or attrs["dft_length"] < 1 \
            or not 0 <= attrs["lower_edge_hertz"] < attrs["upper_edge_hertz"] <= attrs["sample_rate"] / 2:
        raise ShapeError(f"MelWeightMatrix takes no inputs, positive sizes and 0 <= lower < upper <= "
                         f"sample_rate / 2 edges, got {dict(attrs)}")
    return (TensorType(dtype, (attrs["dft_length"] // 2 + 1, attrs["num_mel_bins"])),)


def mel_matrix(attrs: Mapping[str, Any]) -> np.ndarray:
    """ONNX's steps in numpy, on the constants as ONNX holds them (int64 sizes, float32 edges)."""
    bins, dft_length = attrs["num_mel_bins"], np.int64(attrs["dft_length"])
    sample_rate = np.int64(attrs["sample_rate"])
    lower, upper = np.float32(attrs["lower_edge_hertz"]), np.float32(attrs["upper_edge_hertz"])
    low_mel = 2595 * np.log1p(lower / 700) / np.log(10)
    high_mel = 2595 * np.log1p(upper / 700) / np.log(10)
    points = np.arange(0, bins + 2) * ((high_mel - low_mel) / (bins + 2)) + low_mel
    points = ((dft_length + 1) * (700 * np.expm1(points / 2595 * np.log(10)))) // sample_rate
    points = points.astype(int)
    output = np.zeros((int(dft_length) // 2 + 1, bins))
    for i in range(bins):
        left, center, right = points[i:i + 3]
        if center == left:
            output[center, i] = 1
        else:
            output[left:center + 1, i] = (np.arange(left, center + 1) - left) / float(center - left)
        if right > center:
            output[center:right, i] = (right - np.arange(center, right)) / float(right - center)
    return output


def mel_weight_matrix(xs, attrs):
    dtype = torch_dtype(DType(attrs.get("output_datatype", "float32")))
    return torch.tensor(mel_matrix(attrs)).to(dtype)


def lower_mel(builder: OnnxBuilder, node: Node) -> None:
    attrs = node.attr
    inputs = [builder.constant(np.asarray(attrs[name], np.int64 if k < 3 else np.float32))
              for k, name in enumerate(MEL_INPUTS)]
    extra = {key: value for key, value in attrs.items() if key not in MEL_INPUTS}
    extra["output_datatype"] = DType(extra.get("output_datatype", "float32")).onnx
    builder.node("MelWeightMatrix", inputs, node.outputs, **extra)


SPECS = [
    OpSpec("DFT", Family.SPECTRAL, SPECTRAL_DTYPES, infer_dft, dft, propose_dft, ranks=(3, 4), onnx=lower_dft,
           since=17, onnx_form=OnnxForm(constant_inputs={2: "axis"}, scalar_inputs=frozenset({"axis"}))),
    OpSpec("STFT", Family.SPECTRAL, SPECTRAL_DTYPES, infer_stft, stft, propose_stft, ranks=(3, 3), onnx=lower_stft,
           since=17, onnx_form=OnnxForm(constant_inputs={1: "frame_step", 3: "frame_length"},
                                        scalar_inputs=frozenset({"frame_step", "frame_length"}))),
    OpSpec("MelWeightMatrix", Family.SPECTRAL, SPECTRAL_DTYPES, infer_mel, mel_weight_matrix, propose_mel,
           ranks=(0, 4), onnx=lower_mel, since=17, dtype_attr=("output_datatype", "float32"), constant_result=True,
           onnx_form=OnnxForm(constant_inputs=dict(enumerate(MEL_INPUTS)), scalar_inputs=frozenset(MEL_INPUTS),
                              data_input=False)),
]
