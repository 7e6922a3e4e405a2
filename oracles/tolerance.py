"""How far two backends' floating-point results may differ and still agree.

Two values ``a`` and ``b`` agree under a :class:`Tolerance` when
``|a - b| <= atol + rtol * max(|a|, |b|)``. The bound is symmetric, so the verdict does
not depend on which backend is compared first. docs/tolerances.md explains the defaults.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Mapping

import numpy as np

from fuzzer.graph.ir import DType, Graph


STATISTICS = ("elementwise", "max", "quantile")


@dataclass(frozen=True)
class Tolerance:
    """``statistic`` says which error must stay within the bound: every element's
    (elementwise), the largest relative to the largest magnitude (max: a norm-wise test
    that forgives isolated cancellation), or all but a ``1 - quantile`` share of elements."""

    rtol: float
    atol: float
    statistic: str = "elementwise"
    quantile: float = 0.99

    def __post_init__(self) -> None:
        for name, value in (("rtol", self.rtol), ("atol", self.atol)):
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite non-negative number, got {value!r}")
        if self.statistic not in STATISTICS:
            raise ValueError(f"error statistic must be one of {', '.join(STATISTICS)}, got {self.statistic!r}")
        if not 0 < self.quantile <= 1:
            raise ValueError(f"quantile must be in (0, 1], got {self.quantile}")

    def within(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Per element: whether each pair of finite float64 values agrees under the statistic."""
        error = np.abs(a - b)
        close = error <= self.atol + self.rtol * np.maximum(np.abs(a), np.abs(b))
        if close.all() or error.size == 0:
            return close
        if self.statistic == "max":
            largest = max(float(np.max(np.abs(a))), float(np.max(np.abs(b))))
            if float(np.max(error)) <= self.atol + self.rtol * largest:
                return np.ones_like(close)
        elif self.statistic == "quantile" and np.mean(~close) <= 1 - self.quantile:
            return np.ones_like(close)
        return close


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
        return replace(a, rtol=max(a.rtol, b.rtol), atol=max(a.atol, b.atol))

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


def parse_statistic(text: str) -> tuple[str, float]:
    """``"elementwise"``, ``"max"`` or ``"quantile:Q"`` as (statistic, quantile)."""
    statistic, _, quantile = text.partition(":")
    try:
        value = float(quantile) if quantile else 0.99
    except ValueError:
        raise ValueError(f"error statistic {text!r}: the quantile must be a number such as quantile:0.99") from None
    Tolerance(0.0, 0.0, statistic, value)  # validates both
    return statistic, value


def configured_policy(statistic: str = "elementwise", overrides: Mapping[str, Tolerance] | None = None,
                      by_dtype: Mapping[DType, Tolerance] | None = None) -> TolerancePolicy:
    """The default policy with another error statistic, dtype defaults and per-output overrides."""
    name, quantile = parse_statistic(statistic)

    def adjusted(tolerances: Mapping) -> dict:
        return {key: replace(t, statistic=name, quantile=quantile) for key, t in tolerances.items()}

    return TolerancePolicy(adjusted({**DEFAULT_TOLERANCES, **(by_dtype or {})}), adjusted(overrides or {}))


def policy_to_dict(policy: TolerancePolicy) -> dict:
    """JSON form, kept in a run's configuration so that a resumed campaign judges alike."""
    def entry(t: Tolerance) -> list:
        return [t.rtol, t.atol, f"{t.statistic}:{t.quantile}" if t.statistic == "quantile" else t.statistic]

    return {"dtypes": {d.value: entry(t) for d, t in policy.by_dtype.items()},
            "outputs": {n: entry(t) for n, t in policy.overrides.items()}}


def policy_from_dict(data: Mapping) -> TolerancePolicy:
    """Inverse of policy_to_dict; also reads a user's tolerance file, whose entries may be
    plain ``[rtol, atol]`` with one ``"statistic"`` for all."""
    default = data.get("statistic", "elementwise")

    def tolerance(entry) -> Tolerance:
        rtol, atol, *statistic = entry
        return Tolerance(float(rtol), float(atol), *parse_statistic(statistic[0] if statistic else default))

    try:
        by_dtype = {DType(name): tolerance(entry) for name, entry in data.get("dtypes", {}).items()}
        outputs = {name: tolerance(entry) for name, entry in data.get("outputs", {}).items()}
        base = configured_policy(default)
    except (ValueError, TypeError) as error:
        raise ValueError(f"tolerance settings are malformed ({error}); expected "
                         '{"dtypes": {"float32": [rtol, atol]}, "outputs": {"NAME": [rtol, atol]}, '
                         '"statistic": "elementwise | max | quantile:0.99"}') from None
    return TolerancePolicy({**base.by_dtype, **by_dtype}, outputs)
