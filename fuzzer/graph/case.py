"""A test case: one graph with concrete inputs and its ONNX export, what every backend runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from fuzzer.graph.ir import DType, Graph, TensorType


@dataclass(frozen=True)
class TestCase:
    """One graph with concrete inputs, ready to send to every backend."""

    __test__ = False  # not a pytest class

    graph: Graph | None  # None for an external ONNX model that has no tcfuzz graph
    inputs: Mapping[str, np.ndarray]
    model: bytes  # the graph exported to ONNX at ``opset``
    opset: int
    seed: int
    index: int = 0
    inputs_clean: bool | None = None  # whether the input search kept every value finite and in domain

    def output_types(self) -> dict[str, TensorType]:
        """The declared type of every graph output, by name."""
        if self.graph is not None:
            return {name: self.graph.types[name] for name in self.graph.outputs}
        import onnx

        outputs = onnx.load_from_string(self.model).graph.output
        return {o.name: TensorType(DType.from_onnx(o.type.tensor_type.elem_type),
                                   tuple(d.dim_value for d in o.type.tensor_type.shape.dim))
                for o in outputs}
