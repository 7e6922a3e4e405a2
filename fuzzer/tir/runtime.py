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


GUARD_BYTE = 0xA5  # fills the guard zones around every argument
ALIGNMENT = 64  # TVM allocates and code generation assumes 64-byte aligned buffers


class OutOfBoundsWrite(RuntimeError):
    """A built function wrote outside one of its argument buffers."""


def guard_bytes(size: int) -> int:
    """Guard zone on each side of a buffer of ``size`` bytes: as large as the buffer, aligned, at least 256."""
    return max(256, -(-size // ALIGNMENT) * ALIGNMENT)


def guarded(value: np.ndarray) -> tuple[np.ndarray, np.ndarray, Any]:
    """An aligned copy of ``value`` between two guard zones: (the whole allocation, the copy, a TVM tensor on it)."""
    data = np.ascontiguousarray(value).reshape(-1).view(np.uint8)
    guard = guard_bytes(data.size)
    allocation = np.full(2 * guard + data.size + ALIGNMENT, GUARD_BYTE, dtype=np.uint8)
    start = guard + (-(allocation.ctypes.data + guard) % ALIGNMENT)
    allocation[start:start + data.size] = data
    bfloat16 = value.dtype == np.dtype(ml_dtypes.bfloat16)  # DLPack has no bfloat16: exported as its bits
    copy = allocation[start:start + data.size].view(np.uint16 if bfloat16 else value.dtype).reshape(value.shape)
    tensor = tvm.runtime.from_dlpack(copy)
    return allocation, copy, tensor._create_view(value.shape, "bfloat16", 0) if bfloat16 else tensor


def checked(name: str, allocation: np.ndarray, copy: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """The contents of a :func:`guarded` buffer as ``dtype``; OutOfBoundsWrite when a guard zone changed."""
    start = copy.ctypes.data - allocation.ctypes.data
    for side, zone in (("before its start", allocation[:start]), ("past its end", allocation[start + copy.nbytes:])):
        if (zone != GUARD_BYTE).any():
            raise OutOfBoundsWrite(f"the function wrote outside buffer {name!r} ({side})")
    return copy.copy().view(dtype)


def run(function: Any, arguments: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Call a built PrimFunc on copies of ``arguments``; every buffer afterwards.

    Each buffer lies between two guard zones of a larger allocation, so that a write
    outside it raises :class:`OutOfBoundsWrite` here, in the function that made it,
    instead of corrupting the heap and crashing the process later at a random place.
    """
    buffers = {name: guarded(np.asarray(value)) for name, value in arguments.items()}
    function(*(tensor for _, _, tensor in buffers.values()))
    return {name: checked(name, allocation, copy, np.asarray(arguments[name]).dtype)
            for name, (allocation, copy, _) in buffers.items()}
