"""Arguments for a PrimFunc and running a built one (imports TVM)."""

from __future__ import annotations

from typing import Any, Mapping

import ml_dtypes
import numpy as np
import tvm
from tvm import tirx

INTEGER_BOUNDS = {"int8": 4, "uint8": 8, "int16": 8, "int32": 8, "int64": 8, "uint32": 8, "uint64": 8}


def parameter_names(function: tirx.PrimFunc) -> list[str]:
    """One unique name per buffer parameter, in order (a repeated name gets a suffix)."""
    names: list[str] = []
    for index, parameter in enumerate(function.params):
        name = parameter.name
        names.append(f"{name}_{index}" if name in names else name)
    return names


def numpy_dtype(dtype: str) -> np.dtype:
    return np.dtype(ml_dtypes.bfloat16) if dtype == "bfloat16" else np.dtype(dtype)


def random_arguments(function: tirx.PrimFunc, seed: int) -> dict[str, np.ndarray]:
    """A value for every parameter, outputs included: every buffer starts defined.

    Floats lie in [-1, 1], integers in a small range that keeps sums and products of a
    few of them from overflowing.
    """
    generator = np.random.default_rng(seed)
    arguments = {}
    for name, parameter in zip(parameter_names(function), function.params):
        buffer_type = parameter.ty
        shape = tuple(int(extent) for extent in buffer_type.shape)
        dtype = str(buffer_type.dtype)
        if dtype == "bool":
            value = generator.random(shape) < 0.5
        elif dtype in INTEGER_BOUNDS:
            bound = INTEGER_BOUNDS[dtype]
            low = 0 if dtype.startswith("u") else -bound
            value = generator.integers(low, bound + 1, size=shape)
        else:
            value = generator.uniform(-1.0, 1.0, size=shape)
        arguments[name] = np.asarray(value).astype(numpy_dtype(dtype))
    return arguments


def run(function: Any, arguments: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Call a built PrimFunc on copies of ``arguments``; every buffer afterwards."""
    tensors = {name: tvm.runtime.tensor(np.array(value, order="C")) for name, value in arguments.items()}
    function(*tensors.values())
    return {name: tensor.numpy() for name, tensor in tensors.items()}
