"""Known defects of the judges (``Backend.role == "judge"``), kept as data with their evidence.

A reference issue whose reduced graph holds the operator at a listed dtype is that known
defect: reported as known (never as new), with the defect named; and where no float64
reference judges a test, a judge whose known defect the graph shows has no vote
(:func:`defective_judges`). An entry is removed when the judge's release that fixes it is
the oldest one tcfuzz supports.
"""

from __future__ import annotations

from dataclasses import dataclass

from fuzzer.graph.ir import Graph


@dataclass(frozen=True)
class JudgeDefect:
    judge: str  # the backend name
    op: str
    dtypes: tuple[str, ...]  # the output dtypes it shows at
    defect: str  # what the judge gets wrong
    evidence: str  # where to see it


KNOWN_DEFECTS = (
    JudgeDefect(
        "onnx-ref", "Erf", ("float64",),
        "onnx.reference computes Erf in float32 and casts back, so float64 Erf has float32 precision",
        "onnx/reference/ops/op_erf.py (onnx 1.23.2): `self._erf = np.vectorize(erf, otypes=['f'])`; "
        "Asin(Erf(x)) near x = 2.5 differs from torch by 1.5e-5 (tests/conftest.py, session 3 note)"),
    *(JudgeDefect(
        "onnx-ref", op, ("uint8", "int8"),
        f"onnx.reference's {op} adds the output zero point before rounding half to even, where ONNX "
        "rounds x / y_scale first (QLinearMatMul's formula; QuantizeLinear's reference does it that way): "
        "results on a rounding tie are one too low or high for an odd zero point",
        f"onnx/reference/ops/op_qlinear_{stem}.py (onnx 1.23.2) rounds after `+= y_zero_point`; QLinearMatMul "
        "of [[1]] and [[1]] with scales 2, 0.125, 2 and zero points 5, 8, 49 is 3.5 + 49: ONNX Runtime "
        "gives 53, the reference 52 (tests/unit/test_ops_numeric.py)")
      for op, stem in (("QLinearMatMul", "matmul"), ("QLinearConv", "conv"))),
)


def defective_judges(graph: Graph) -> frozenset[str]:
    """The judges with a known defect on one of ``graph``'s nodes (at its output dtype)."""
    types = graph.types
    return frozenset(d.judge for d in KNOWN_DEFECTS for node in graph.nodes
                     if node.op == d.op and types[node.outputs[0]].dtype.value in d.dtypes)


def known_defect(judge: str, ops: tuple[str, ...], dtype: str) -> JudgeDefect | None:
    """The known defect of ``judge`` that a reference issue on ``ops`` at ``dtype`` shows, if any."""
    return next((d for d in KNOWN_DEFECTS if d.judge == judge and d.op in ops and dtype in d.dtypes), None)
