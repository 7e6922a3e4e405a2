"""Concrete tensor values for graph inputs and weights, and numpy <-> torch conversion."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from fuzzer.graph.ir import DType, Graph, TensorType

INTEGER_RANGES = {DType.int8: (-8, 8), DType.uint8: (0, 16), DType.int32: (-16, 16),
                  DType.int64: (-16, 16)}


def random_array(gen: np.random.Generator, tensor_type: TensorType) -> np.ndarray:
    """Values that keep ordinary operators in range: floats in [-2, 2), small integers."""
    shape, dtype = tensor_type.shape, tensor_type.dtype
    if dtype is DType.bool:
        return gen.random(shape) < 0.5
    if dtype.is_int:
        low, high = INTEGER_RANGES[dtype]
        return gen.integers(low, high + 1, size=shape).astype(dtype.numpy)
    return gen.uniform(-2.0, 2.0, size=shape).astype(dtype.numpy)


def random_inputs(graph: Graph, seed: int) -> dict[str, np.ndarray]:
    gen = np.random.default_rng(seed)
    return {i.name: np.asarray(random_array(gen, i.type)) for i in graph.inputs}


def torch_dtype(dtype: DType) -> Any:
    import torch

    return getattr(torch, dtype.value)


def to_torch(array: np.ndarray) -> Any:
    """A torch tensor holding a copy of ``array`` (bfloat16 included)."""
    import torch

    array = np.asarray(array, order="C")
    if DType.from_numpy(array.dtype) is DType.bfloat16:
        return torch.from_numpy(array.view(np.int16).copy()).view(torch.bfloat16)
    return torch.from_numpy(array.copy())


def to_numpy(tensor: Any) -> np.ndarray:
    import torch

    tensor = tensor.detach().cpu().contiguous()
    if tensor.dtype == torch.bfloat16:
        return tensor.view(torch.int16).numpy().view(DType.bfloat16.numpy)
    return tensor.numpy()


def as_named_outputs(graph: Graph, arrays: Any) -> Mapping[str, np.ndarray]:
    return {name: np.asarray(a) for name, a in zip(graph.outputs, arrays)}
