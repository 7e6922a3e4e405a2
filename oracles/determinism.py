"""The determinism oracle: one backend, the same test case twice, must give the same bits.

Float outputs must be bit-identical, except that any NaN equals any NaN (payloads are not
part of a result); ``-0`` and ``+0`` differ. Outputs computed from an operator documented
as nondeterministic (``OpSpec.nondeterministic``) are not judged. A run that fails once and
succeeds once (or fails differently) is a finding too, unless either run hit a resource
limit (out of memory or the time limit): how far a run gets before a limit stops it
depends on the machine's load, not on the compiler.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from fuzzer.graph.ir import Graph, TensorType
from fuzzer.graph.ops import get_spec
from fuzzer.execution.outcome import Outcome, Stage, Status
from oracles.finding import Finding, FindingKind
from oracles.precision import float_bits


def nondeterministic_outputs(graph: Graph) -> frozenset[str]:
    """Outputs computed by or from a node whose operator is documented as nondeterministic."""
    tainted: set[str] = set()
    for node in graph.nodes:
        if get_spec(node.op).nondeterministic or any(name in tainted for name in node.inputs):
            tainted.update(node.outputs)
    return frozenset(name for name in graph.outputs if name in tainted)


def identical(a: np.ndarray, b: np.ndarray, declared: TensorType) -> np.ndarray:
    """Elementwise bit identity (any NaN equals any NaN); both arrays of the declared type."""
    if not declared.dtype.is_float:
        return np.asarray(a == b)
    float_type, int_type = float_bits(declared.dtype)
    a, b = np.asarray(a).astype(float_type), np.asarray(b).astype(float_type)
    nan_a, nan_b = np.isnan(a.astype(np.float64)), np.isnan(b.astype(np.float64))
    return (a.view(int_type) == b.view(int_type)) | (nan_a & nan_b)


def hit_resource_limit(outcome: Outcome) -> bool:
    """Whether ``outcome`` ended at the memory or time limit rather than by itself."""
    return outcome.status in (Status.OOM, Status.HANG) or outcome.error_type == "MemoryError"


def determinism(expected: Mapping[str, TensorType], first: Outcome, second: Outcome,
                graph: Graph | None = None) -> list[Finding]:
    """A NONDETERMINISM finding when two runs of one backend on one test case differ."""
    backend = first.backend
    if any(hit_resource_limit(outcome) for outcome in (first, second)):
        return []
    if first.status is not second.status or (not first.ok and first.error_type != second.error_type):
        failed = second if not second.ok else first
        summary = (f"{backend} is flaky: {first.status.value} then {second.status.value}"
                   + (f" ({failed.error_type})" if failed.error_type else ""))
        finding = Finding(FindingKind.NONDETERMINISM, (backend,), failed.stage or Stage.RUN, summary, {
            "dtype": "", "error_class": f"{first.status.value}-{second.status.value}",
            "first": {"status": first.status.value, "error_type": first.error_type, "message": first.message[:500]},
            "second": {"status": second.status.value, "error_type": second.error_type,
                       "message": second.message[:500]},
        })
        return [finding]
    if not first.ok:
        return []
    skipped = nondeterministic_outputs(graph) if graph is not None else frozenset()
    differing: dict[str, dict[str, object]] = {}
    for name, declared in expected.items():
        if name in skipped or name not in first.outputs or name not in second.outputs:
            continue
        a, b = np.asarray(first.outputs[name]), np.asarray(second.outputs[name])
        if a.shape != b.shape or a.dtype != b.dtype:
            differing[name] = {"error_class": "type", "description": f"{a.dtype}{list(a.shape)} then "
                                                                      f"{b.dtype}{list(b.shape)}", "mismatched": -1}
            continue
        if not declared.admits(a.shape) or a.dtype != declared.dtype.numpy:
            continue  # the main oracle reports a type disagreement
        same = identical(a, b, declared)
        if not same.all():
            count = int(np.count_nonzero(~same))
            differing[name] = {"error_class": "bits", "mismatched": count, "total": int(a.size),
                               "description": f"{count}/{a.size} elements differ between two runs"}
    if not differing:
        return []
    output = next(iter(differing))
    summary = f"{backend} is nondeterministic on {output} ({expected[output]}): {differing[output]['description']}"
    if len(differing) > 1:
        summary += f" (+{len(differing) - 1} more outputs)"
    finding = Finding(FindingKind.NONDETERMINISM, (backend,), Stage.RUN, summary, {
        "output": output, "dtype": expected[output].dtype.value,
        "error_class": differing[output]["error_class"], "outputs": differing,
        "skipped_nondeterministic": sorted(skipped),
    })
    return [finding]
