"""Signal processing: the Hann, Hamming and Blackman windows (opset 17).

A window's length is its output's extent, so it is an IR attribute (a constant input in
ONNX) and the node has no inputs: the anchor only picks the output dtype.
"""

from __future__ import annotations

import math
import random
from typing import Any, Mapping

import numpy as np

from fuzzer.graph.ir import DType, Node, TensorType
from fuzzer.graph.ops.spec import Family, OnnxBuilder, OnnxForm, OpSpec, Proposal, torch
from fuzzer.graph.rejected import ShapeError
from fuzzer.graph.values import torch_dtype

WINDOW_DTYPES = frozenset({DType.float16, DType.float32, DType.float64})


def propose_window(rng: random.Random, anchor: TensorType) -> Proposal:
    attrs: dict[str, Any] = {"size": rng.randint(2, 16), "output_datatype": anchor.dtype.value}  # size 1: 0/0
    if rng.random() < 0.7:
        attrs["periodic"] = rng.randint(0, 1)
    return Proposal(attrs, ())


def infer_window(types: tuple[TensorType, ...], attrs: Mapping[str, Any]) -> tuple[TensorType, ...]:
    dtype = DType(attrs["output_datatype"])
    if types or dtype not in WINDOW_DTYPES or attrs["size"] < 1:
        raise ShapeError("a window takes no inputs, a positive size and one of "
                         f"{sorted(d.value for d in WINDOW_DTYPES)}")
    return (TensorType(dtype, (attrs["size"],)),)


def lower_window(builder: OnnxBuilder, node: Node) -> None:
    attrs = {key: value for key, value in node.attr.items() if key != "size"}
    attrs["output_datatype"] = DType(attrs["output_datatype"]).onnx
    builder.node(node.op, [builder.constant(np.asarray(node.attr["size"], np.int64))], node.outputs, **attrs)


def window(name: str, cosines: tuple[float, ...]) -> OpSpec:
    """sum_k cosines[k] * cos(2 pi k n / N), N the size (periodic) or size - 1, in float64."""
    def lowering(xs, attrs):
        size = attrs["size"]
        period = size if attrs.get("periodic", 1) else size - 1
        n = torch.arange(size, dtype=torch.float64)
        result = sum(c * torch.cos(2 * math.pi * k * n / period) for k, c in enumerate(cosines))
        return result.to(torch_dtype(DType(attrs["output_datatype"])))
    return OpSpec(name, Family.SIGNAL, WINDOW_DTYPES, infer_window, lowering, propose_window, onnx=lower_window,
                  since=17, dtype_attr=("output_datatype", "float32"), kernel="cosine-sum window",
                  onnx_form=OnnxForm(constant_inputs={0: "size"}, scalar_inputs=frozenset({"size"}), data_input=False))


SPECS = [
    window("HannWindow", (0.5, -0.5)),
    window("HammingWindow", (25 / 46, -21 / 46)),
    window("BlackmanWindow", (0.42, -0.5, 0.08)),
]
