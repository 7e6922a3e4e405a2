"""How far two backends' floating-point results may differ and still agree.

Two values ``a`` and ``b`` agree under a :class:`Tolerance` when
``|a - b| <= atol + rtol * max(|a|, |b|)``. The bound is symmetric, so the verdict does
not depend on which backend is compared first. docs/tolerances.md explains the defaults.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

import numpy as np

from fuzzer.ir import DType, Graph


@dataclass(frozen=True)
class Tolerance:
    rtol: float
    atol: float

    def __post_init__(self) -> None:
        for name, value in (("rtol", self.rtol), ("atol", self.atol)):
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite non-negative number, got {value!r}")

    def within(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Elementwise: whether each pair of finite float64 values agrees."""
        return np.abs(a - b) <= self.atol + self.rtol * np.maximum(np.abs(a), np.abs(b))


DEFAULT_TOLERANCES: Mapping[DType, Tolerance] = MappingProxyType({
    DType.float64: Tolerance(rtol=1e-7, atol=1e-9),
    DType.float32: Tolerance(rtol=1e-3, atol=1e-4),
    DType.float16: Tolerance(rtol=1e-2, atol=1e-2),
    DType.bfloat16: Tolerance(rtol=5e-2, atol=5e-2),
})


@dataclass(frozen=True)
class TolerancePolicy:
    """Per-dtype tolerances, overridden per output name. Dtypes without one compare exactly."""

    by_dtype: Mapping[DType, Tolerance] = field(default_factory=lambda: DEFAULT_TOLERANCES)
    overrides: Mapping[str, Tolerance] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_dtype", MappingProxyType(dict(self.by_dtype)))
        object.__setattr__(self, "overrides", MappingProxyType(dict(self.overrides)))

    def for_output(self, name: str, dtype: DType) -> Tolerance | None:
        """The tolerance for output ``name`` of ``dtype``; None means exact comparison."""
        return self.overrides.get(name, self.by_dtype.get(dtype))


DEFAULT_POLICY = TolerancePolicy()

_OVERRIDE_FORMAT = "NAME=RTOL,ATOL (for example out3=1e-2,1e-3)"


def parse_override(text: str) -> tuple[str, Tolerance]:
    """Parse ``"NAME=RTOL,ATOL"`` into the output name and its tolerance."""
    name, equals, numbers = text.rpartition("=")
    parts = numbers.split(",")
    if not equals or not name.strip() or len(parts) != 2:
        raise ValueError(f"tolerance override {text!r} must look like {_OVERRIDE_FORMAT}")
    try:
        rtol, atol = (float(part) for part in parts)
        return name.strip(), Tolerance(rtol=rtol, atol=atol)
    except ValueError as error:
        raise ValueError(f"tolerance override {text!r} must look like {_OVERRIDE_FORMAT} "
                         f"with finite non-negative numbers: {error}") from None


def along_paths(graph: Graph, policy: TolerancePolicy = DEFAULT_POLICY) -> TolerancePolicy:
    """``policy`` with each float output judged by the loosest tolerance on its paths.

    A float64 output computed from float16 values carries float16 rounding, so it gets the
    float16 tolerance. Integer and bool outputs stay exact; explicit overrides still win.
    """
    loosest: dict[str, Tolerance | None] = {}

    def looser(a: Tolerance | None, b: Tolerance | None) -> Tolerance | None:
        if a is None or b is None:
            return a or b
        return Tolerance(max(a.rtol, b.rtol), max(a.atol, b.atol))

    for name, tensor_type in graph.types.items():
        loosest[name] = policy.by_dtype.get(tensor_type.dtype)
    for node in graph.nodes:
        inherited = None
        for name in node.inputs:
            if name:
                inherited = looser(inherited, loosest[name])
        for name in node.outputs:
            loosest[name] = looser(loosest[name], inherited)
    derived = {name: loosest[name] for name in graph.outputs
               if graph.types[name].dtype.is_float and loosest[name] is not None}
    return TolerancePolicy(policy.by_dtype, {**derived, **policy.overrides})
