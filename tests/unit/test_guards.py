"""Each guard suppresses the false alarm planted for it, says why, and lets a real error through."""

from __future__ import annotations

import numpy as np
import pytest

from fuzzer.execution.outcome import Outcome, Stage, Status
from fuzzer.graph.ir import DType, Graph, TensorType
from fuzzer.graph.ops import registry
from oracles.blame import reference_for_comparison
from oracles.finding import Suppression
from oracles.optlevel import opt_level
from oracles.precision import REFERENCE, evaluate_reference
from oracles.rules import RULES, node_flags
from tests.helpers import Builder, blamed, declared, ok, verdict


def guards_of(result) -> set[str]:
    return {s.guard for s in result.suppressions}


# --- ties --------------------------------------------------------------------------------


def argmax_graph() -> Graph:
    b = Builder()
    x = b.input("x", DType.float32, (3, 4))
    b.node("ArgMax", x, outputs=("i",), axis=1, keepdims=0, select_last_index=0)
    return b.graph("i")


def test_tie_guard_accepts_any_index_among_equal_maxima():
    graph = argmax_graph()
    x = np.array([[1, 3, 3, 0], [0, 1, 2, 5], [2, 2, 2, 2]], dtype=np.float32)
    result = verdict(graph, {"x": x}, {"a": {"i": [2, 3, 3]}, "b": {"i": [1, 3, 0]}})
    assert result.findings == []
    assert guards_of(result) == {"tie"}
    [suppression] = result.suppressions
    assert suppression.backend == "a" and suppression.elements == 2 and "ArgMax" in suppression.reason


def test_tie_guard_does_not_excuse_a_wrong_index_without_a_tie():
    graph = argmax_graph()
    x = np.array([[1, 3, 3, 0], [0, 1, 2, 5], [2, 2, 2, 2]], dtype=np.float32)
    result = verdict(graph, {"x": x}, {"a": {"i": [2, 0, 3]}, "b": {"i": [1, 3, 0]}})
    assert blamed(result) == {"a"}
    assert result.findings[0].details["mismatched"] == 1  # the tied positions are not counted


def test_tie_guard_covers_values_computed_from_an_ambiguous_index():
    b = Builder()
    x = b.input("x", DType.float32, (2, 4))
    index = b.node("ArgMax", x, axis=1, keepdims=0, select_last_index=0)
    out = b.node("Cast", index, to="float32")
    graph = b.graph(out)
    x_value = np.array([[5, 5, 1, 0], [0, 1, 2, 3]], dtype=np.float32)
    result = verdict(graph, {"x": x_value}, {"a": {out: [1.0, 3.0]}, "b": {out: [0.0, 3.0]}})
    assert result.findings == [] and guards_of(result) == {"tie"}


# --- ill-conditioned values --------------------------------------------------------------


def cancellation_graph() -> Graph:
    """y = (x + w) - w: float32 loses x's digits where w is 1e4 (element 0), not where it is 0."""
    b = Builder()
    x = b.input("x", DType.float32, (2,))
    w = b.weight("w", np.float32([1e4, 0.0]))
    total = b.node("Add", x, w)
    b.node("Sub", total, w, outputs=("y",))
    return b.graph("y")


def test_ill_conditioned_elements_blame_no_backend():
    graph = cancellation_graph()
    x = np.float32([0.1234567, 0.75])
    honest = declared(graph, {"x": x})["y"]  # 0.12304688: far from the float64 0.1234567
    assert abs(float(honest[0]) - 0.1234567) > 2e-4
    result = verdict(graph, {"x": x}, {"a": {"y": honest}, "b": {"y": honest}})
    assert result.findings == []
    assert guards_of(result) == {"ill-conditioned"}
    assert all(s.elements == 1 and "rounding" in s.reason for s in result.suppressions)


def test_ill_conditioning_does_not_hide_an_error_on_a_well_conditioned_element():
    graph = cancellation_graph()
    x = np.float32([0.1234567, 0.75])
    honest = declared(graph, {"x": x})["y"]
    broken = honest.copy()
    broken[1] = -0.75
    result = verdict(graph, {"x": x}, {"a": {"y": honest}, "b": {"y": broken}})
    assert blamed(result) == {"b"}
    assert result.findings[0].details["mismatched"] == 1


# --- the order of a sum -------------------------------------------------------------------


def cancelling_matmul() -> Graph:
    """y = x @ w with x all ones: column 0 sums 1e8 - 1e8 + 1 + 1, which float32 gets right
    only when the large terms meet first; column 1 sums four ones."""
    b = Builder()
    w = b.weight("w", np.float32([[1e8, 1], [-1e8, 1], [1, 1], [1, 1]]))
    b.node("MatMul", b.input("x", DType.float32, (1, 4)), w, outputs=("y",))
    return b.graph("y")


def test_summation_order_is_rounding_not_an_optimizer_bug():
    graph = cancelling_matmul()
    inputs = {"x": np.ones((1, 4), dtype=np.float32)}
    reference = Outcome(REFERENCE, Status.OK, Stage.RUN, evaluate_reference(graph, inputs))
    pairs = frozenset({("plain", "optimized")})

    def judged(optimized: list[float]):
        outcomes = [ok("plain", y=np.float32([[2, 4]])), ok("optimized", y=np.float32([optimized])), reference]
        return opt_level({"y": graph.types["y"]}, outcomes, graph, pairs=pairs)

    reordered = judged([0, 4])  # ((1e8 + 1) + 1) - 1e8 in float32
    assert reordered.findings == [] and guards_of(reordered) == {"ill-conditioned"}
    assert blamed(judged([-1e8 + 2, 4])) == {"optimized"}  # a term left out: a miscompile
    assert blamed(judged([2, 5])) == {"optimized"}  # the well-conditioned column is judged tightly


# --- float16 overflow --------------------------------------------------------------------


def exp_scale_graph() -> Graph:
    """y = Exp(x) * 0.01 in float16: exp(12) overflows float16, the product would not."""
    b = Builder()
    x = b.input("x", DType.float16, (3,))
    e = b.node("Exp", x)
    b.node("Mul", e, b.weight("c", np.float16([0.01, 0.01, 0.01])), outputs=("y",))
    b.node("Exp", x, outputs=("z",))
    return b.graph("y", "z")


def test_float16_overflow_upstream_and_at_the_output_is_not_a_bug():
    graph = exp_scale_graph()
    x = np.float16([12.0, 1.0, 0.5])
    honest = declared(graph, {"x": x})
    assert np.isinf(honest["y"][0]) and np.isinf(honest["z"][0])
    saturating = {"y": honest["y"], "z": np.where(np.isinf(honest["z"]), np.float16(65504), honest["z"])}
    result = verdict(graph, {"x": x}, {"a": honest, "b": saturating})
    assert result.findings == []
    assert guards_of(result) == {"float16-overflow"}
    assert any("float16 range" in s.reason for s in result.suppressions)


def test_float16_overflow_guard_lets_an_in_range_error_through():
    graph = exp_scale_graph()
    x = np.float16([12.0, 1.0, 0.5])
    honest = declared(graph, {"x": x})
    broken = {"y": honest["y"].copy(), "z": honest["z"]}
    broken["y"][1] = 5.0  # exp(1) * 0.01 = 0.027
    result = verdict(graph, {"x": x}, {"a": honest, "b": broken})
    assert blamed(result) == {"b"}


# --- NaN payloads and signed zeros -------------------------------------------------------


def test_nan_payloads_and_signed_zeros_compare_equal():
    b = Builder()
    x = b.input("x", DType.float32, (3,))
    b.node("Mul", x, b.weight("z", np.float32([0.0, 1.0, 1.0])), outputs=("y",))
    graph = b.graph("y")
    x_value = np.float32([-2.0, np.nan, 1.0])
    payload = np.array([0x7FC00001], dtype=np.uint32).view(np.float32)[0]
    result = verdict(graph, {"x": x_value}, {"a": {"y": np.float32([0.0, payload, 1.0])},
                                              "b": {"y": np.float32([-0.0, -np.nan, 1.0])}})
    assert result.findings == [] and result.suppressions == []


def reciprocal_graph() -> Graph:
    b = Builder()
    x = b.input("x", DType.float32, (3,))
    b.node("Reciprocal", x, outputs=("y",))
    return b.graph("y")


def test_signed_zero_guard_excuses_an_infinity_of_the_other_sign():
    graph = reciprocal_graph()
    x = np.float32([-0.0, 2.0, 4.0])
    result = verdict(graph, {"x": x}, {"a": {"y": [np.inf, 0.5, 0.25]}, "b": {"y": [-np.inf, 0.5, 0.25]}})
    assert result.findings == [] and guards_of(result) == {"signed-zero"}


def test_signed_zero_guard_does_not_excuse_an_infinity_for_a_finite_value():
    graph = reciprocal_graph()
    x = np.float32([-0.0, 2.0, 4.0])
    result = verdict(graph, {"x": x}, {"a": {"y": [-np.inf, np.inf, 0.25]}, "b": {"y": [-np.inf, 0.5, 0.25]}})
    assert blamed(result) == {"a"}


# --- implementation-defined operators ----------------------------------------------------


def int8_product_graph() -> Graph:
    b = Builder()
    x = b.input("x", DType.int8, (2,))
    b.node("Mul", x, b.weight("two", np.int8([2, 2])), outputs=("y",))
    return b.graph("y")


def test_integer_overflow_is_implementation_defined():
    graph = int8_product_graph()
    result = verdict(graph, {"x": np.int8([100, 3])}, {"wraps": {"y": [-56, 6]}, "saturates": {"y": [127, 6]}})
    assert result.findings == []
    [suppression] = result.suppressions
    assert suppression.backend == "saturates" and suppression.guard == "implementation-defined"
    assert suppression.reason.startswith("integer-overflow")


def test_integer_arithmetic_without_overflow_must_be_exact():
    graph = int8_product_graph()
    result = verdict(graph, {"x": np.int8([10, 3])}, {"right": {"y": [20, 6]}, "wrong": {"y": [20, 7]}})
    assert blamed(result) == {"wrong"} and result.suppressions == []


def test_nan_into_argmax_is_implementation_defined():
    graph = argmax_graph()
    x = np.array([[1, np.nan, 3, 0], [0, 1, 2, 5], [2, 1, 0, -1]], dtype=np.float32)
    result = verdict(graph, {"x": x}, {"nan-is-max": {"i": [1, 3, 0]}, "nan-ignored": {"i": [2, 3, 0]}})
    assert result.findings == []
    assert any(s.reason.startswith("nan-ordering") for s in result.suppressions)


@pytest.mark.parametrize("op, dtype, value, rule", [
    ("Cast", DType.float32, 300.0, "float-to-int-cast-out-of-range"),
    ("Cast", DType.float32, float("nan"), "float-to-int-cast-out-of-range"),
    ("Cast", DType.int32, 300, "int-cast-out-of-range"),
])
def test_out_of_range_casts_are_flagged(op, dtype, value, rule):
    b = Builder()
    x = b.input("x", dtype, (2,))
    b.node(op, x, outputs=("y",), to="int8")
    graph = b.graph("y")
    inputs = {"x": np.array([value, 1], dtype=dtype.numpy)}
    flags = node_flags(graph, {**inputs, "y": np.zeros(2, np.int8)})
    fired = {RULES[column].name for column in np.flatnonzero(flags[0])}
    assert fired == {rule}
    in_range = node_flags(graph, {"x": np.array([5, 1], dtype=dtype.numpy), "y": np.zeros(2, np.int8)})
    assert not in_range.any()


def test_mod_sign_convention_is_flagged_only_with_a_negative_operand():
    b = Builder()
    x = b.input("x", DType.int32, (2,))
    b.node("Mod", x, b.weight("d", np.int32([-3, 3])), outputs=("y",), fmod=0)
    graph = b.graph("y")
    values = {"x": np.int32([7, 7]), "d": np.int32([-3, 3]), "y": np.zeros(2, np.int32)}
    column = [rule.name for rule in RULES].index("mod-sign-convention")
    assert node_flags(graph, values)[0, column] == 1
    assert node_flags(graph, {**values, "x": np.int32([6, 7])})[0, column] == 0


# --- the rule table and the records ------------------------------------------------------


def test_rules_are_data_over_registered_operators():
    names = [rule.name for rule in RULES]
    assert len(names) == len(set(names))
    known = set(registry())
    for rule in RULES:
        assert rule.reason and (rule.ops is None or rule.ops <= known), rule.name


def test_every_suppression_explains_itself():
    graph = argmax_graph()
    x = np.array([[1, 3, 3, 0], [0, 1, 2, 5], [2, 2, 2, 2]], dtype=np.float32)
    result = verdict(graph, {"x": x}, {"a": {"i": [2, 3, 3]}, "b": {"i": [1, 3, 0]}})
    for suppression in result.suppressions:
        assert isinstance(suppression, Suppression)
        assert suppression.reason and suppression.guard and suppression.elements > 0
        assert set(suppression.to_dict()) == {"backend", "output", "guard", "elements", "reason"}


def test_reference_is_rounded_to_the_declared_dtype_for_comparison():
    value = reference_for_comparison(np.array([1e6, 0.1]), TensorType(DType.float16, (2,)))
    assert value.dtype == np.float16 and np.isinf(value[0])
