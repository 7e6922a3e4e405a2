"""Tests for the tolerance policy, the differential oracle and finding signatures."""

from __future__ import annotations

import json
from dataclasses import replace

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fuzzer.graph.ir import DType, TensorType
from fuzzer.execution.outcome import Outcome, Stage, Status
from oracles.compare import compare_arrays
from oracles.verdict import differential
from oracles.finding import Finding, FindingKind
from oracles.tolerance import DEFAULT_POLICY, Tolerance, TolerancePolicy, parse_override
from oracles.signature import MAX_LENGTH, normalize_message, signature
from tests.helpers import ok

F32 = TensorType(DType.float32, (2, 3))
BASE = np.arange(6, dtype=np.float32).reshape(2, 3) + 1


def perturbed(index: int = 0, value: float = -100.0) -> np.ndarray:
    array = BASE.copy()
    array.flat[index] = value
    return array


# --- tolerance policy -------------------------------------------------------------------


@pytest.mark.parametrize("dtype, rtol, atol", [
    (DType.float64, 1e-7, 1e-9), (DType.float32, 1e-3, 1e-4),
    (DType.float16, 1e-2, 1e-2), (DType.bfloat16, 5e-2, 5e-2),
])
def test_default_float_tolerances(dtype, rtol, atol):
    assert DEFAULT_POLICY.for_output("out0", dtype) == Tolerance(rtol=rtol, atol=atol)


@pytest.mark.parametrize("dtype", [DType.int8, DType.uint8, DType.int32, DType.int64, DType.bool])
def test_integers_and_bool_are_exact(dtype):
    assert DEFAULT_POLICY.for_output("out0", dtype) is None


def test_override_applies_to_its_output_only_and_to_any_dtype():
    policy = TolerancePolicy(overrides={"out3": Tolerance(1e-1, 1e-2)})
    assert policy.for_output("out3", DType.float32) == Tolerance(1e-1, 1e-2)
    assert policy.for_output("out3", DType.int32) == Tolerance(1e-1, 1e-2)
    assert policy.for_output("out4", DType.float32) == Tolerance(1e-3, 1e-4)
    assert DEFAULT_POLICY.overrides == {}


def test_policy_cannot_be_mutated_through_its_mappings():
    policy = TolerancePolicy(overrides={"a": Tolerance(0, 0)})
    with pytest.raises(TypeError):
        policy.overrides["b"] = Tolerance(1, 1)  # type: ignore[index]


def test_parse_override():
    assert parse_override("out3=1e-2,1e-3") == ("out3", Tolerance(rtol=1e-2, atol=1e-3))
    assert parse_override(" out 3 = 0.5 , 0 ") == ("out 3", Tolerance(rtol=0.5, atol=0.0))
    assert parse_override("a=b=1,2") == ("a=b", Tolerance(1.0, 2.0))


@pytest.mark.parametrize("text", [
    "", "out3", "out3=", "=1,2", "out3=1e-2", "out3=1,2,3", "out3=x,1", "out3=-1,0",
    "out3=nan,0", "out3=1,inf",
])
def test_parse_override_rejects_malformed_text(text):
    with pytest.raises(ValueError, match=r"NAME=RTOL,ATOL") as raised:
        parse_override(text)
    assert "\n" not in str(raised.value)


def test_tolerance_rejects_negative_or_infinite_bounds():
    with pytest.raises(ValueError):
        Tolerance(rtol=-1e-3, atol=0)
    with pytest.raises(ValueError):
        Tolerance(rtol=0, atol=float("inf"))


# --- compare_arrays ---------------------------------------------------------------------


@pytest.mark.parametrize("dtype, value, inside, outside", [
    # bound at value: atol + rtol * |value|
    (DType.float64, 1.0, 1.0 + 5e-8, 1.0 + 3e-7),
    (DType.float32, 1.0, 1.0005, 1.002),
    (DType.float16, 100.0, 100.5, 102.0),
    (DType.bfloat16, 100.0, 104.0, 112.0),
    (DType.float32, 0.0, 5e-5, 2e-4),  # near zero only atol counts
    (DType.float16, 0.0, 0.0078125, 0.03125),
])
def test_float_tolerance_edges(dtype, value, inside, outside):
    tolerance = DEFAULT_POLICY.for_output("out", dtype)
    expected = np.array([value], dtype=dtype.numpy)
    near = np.array([inside], dtype=dtype.numpy)
    far = np.array([outside], dtype=dtype.numpy)
    assert compare_arrays(None, expected, near, tolerance).equal
    result = compare_arrays(None, expected, far, tolerance)
    assert not result.equal and result.kind is FindingKind.MISMATCH
    assert result.mismatched == 1 and result.error_class == "magnitude"


def test_bound_is_inclusive_and_symmetric():
    tolerance = Tolerance(rtol=0.5, atol=0.0)
    # |1 - 2| = 1 = 0.5 * max(1, 2): exactly on the bound, in either order.
    assert compare_arrays(None, np.array([1.0]), np.array([2.0]), tolerance).equal
    assert compare_arrays(None, np.array([2.0]), np.array([1.0]), tolerance).equal
    assert not compare_arrays(None, np.array([1.0]), np.array([2.01]), tolerance).equal


def test_nan_agrees_with_nan_whatever_its_payload():
    quiet = np.array([np.nan, 1.0], dtype=np.float32)
    other = np.array([0x7FC00123, 0x3F800000], dtype=np.uint32).view(np.float32)
    negative = np.array([0xFFC00000, 0x3F800000], dtype=np.uint32).view(np.float32)
    for payload in (other, negative):
        assert np.isnan(payload[0])
        assert compare_arrays(None, quiet, payload, Tolerance(0, 0)).equal


@pytest.mark.parametrize("dtype", [DType.float16, DType.bfloat16, DType.float32, DType.float64])
def test_nan_position_disagreement(dtype):
    a = np.array([np.nan, 1.0, 2.0], dtype=dtype.numpy)
    b = np.array([1.0, np.nan, 2.0], dtype=dtype.numpy)
    result = compare_arrays(None, a, b, DEFAULT_POLICY.for_output("o", dtype))
    assert not result.equal
    assert (result.nan_mismatches, result.mismatched, result.total) == (2, 2, 3)
    assert result.error_class == "nan"
    assert result.max_abs_error == 0.0  # statistics cover positions finite on both sides


@pytest.mark.parametrize("dtype", [DType.float16, DType.bfloat16, DType.float32, DType.float64])
def test_inf_must_match_including_sign(dtype):
    inf = np.array([np.inf, -np.inf], dtype=dtype.numpy)
    tolerance = Tolerance(rtol=1.0, atol=1e300)  # generous: Inf is still exact
    assert compare_arrays(None, inf, inf.copy(), tolerance).equal
    flipped = compare_arrays(None, inf, -inf, tolerance)
    assert not flipped.equal and flipped.inf_mismatches == 2 and flipped.error_class == "inf"
    largest = float(ml_dtypes.finfo(dtype.numpy).max)
    finite = compare_arrays(None, inf, np.array([largest, -largest], dtype=dtype.numpy),
                            tolerance)
    assert finite.inf_mismatches == 2 and finite.error_class == "inf"


def test_nan_outranks_inf_outranks_sign_outranks_magnitude():
    a = np.array([1.0, 2.0, 3.0, 4.0])
    assert compare_arrays(None, a, np.array([np.nan, np.inf, -3.0, 40.0]), None).error_class == "nan"
    assert compare_arrays(None, a, np.array([1.0, np.inf, -3.0, 40.0]), None).error_class == "inf"
    assert compare_arrays(None, a, np.array([1.0, 2.0, -3.0, 40.0]), None).error_class == "sign"
    assert compare_arrays(None, a, np.array([1.0, 2.0, 3.0, 40.0]), None).error_class == "magnitude"


def test_statistics():
    a = np.array([1.0, 2.0, 4.0, 0.0])
    b = np.array([1.0, 3.0, 2.0, 0.0])
    result = compare_arrays(None, a, b, Tolerance(0, 0))
    assert result.max_abs_error == 2.0 and result.max_rel_error == 0.5
    assert (result.mismatched, result.total) == (2, 4)
    assert result.description == "max abs err 2, 2/4 elements (50%), class magnitude"


@pytest.mark.parametrize("dtype", [DType.int8, DType.uint8, DType.int32, DType.int64])
def test_integers_off_by_one_fail(dtype):
    a = np.array([0, 5, 100], dtype=dtype.numpy)
    b = np.array([0, 6, 100], dtype=dtype.numpy)
    assert compare_arrays(None, a, a.copy(), None).equal
    result = compare_arrays(None, a, b, None)
    assert not result.equal and result.mismatched == 1 and result.max_abs_error == 1.0


def test_int64_is_compared_beyond_float64_precision():
    a = np.array([2**62], dtype=np.int64)
    assert not compare_arrays(None, a, a + 1, None).equal


def test_unsigned_difference_does_not_wrap():
    result = compare_arrays(None, np.array([0], np.uint8), np.array([255], np.uint8), None)
    assert result.max_abs_error == 255.0


def test_bool_is_exact():
    a = np.array([True, False])
    assert compare_arrays(None, a, a.copy(), None).equal
    assert compare_arrays(None, a, ~a, None).mismatched == 2


def test_shape_and_dtype_disagreements_are_their_own_kinds():
    a = np.zeros((2, 3), np.float32)
    shape = compare_arrays(None, a, np.zeros((3, 2), np.float32), Tolerance(1, 1))
    assert shape.kind is FindingKind.SHAPE_MISMATCH and not shape.equal
    dtype = compare_arrays(None, a, np.zeros((2, 3), np.float64), Tolerance(1, 1))
    assert dtype.kind is FindingKind.DTYPE_MISMATCH and "float32 vs float64" in dtype.description
    half = compare_arrays(None, a, np.zeros((2, 3), ml_dtypes.bfloat16), Tolerance(1, 1))
    assert "bfloat16" in half.description


def test_arrays_must_match_the_declared_type():
    a = np.zeros((2, 3), np.float32)
    assert compare_arrays(F32, a, a.copy(), None).equal
    assert compare_arrays(F32.with_shape((3, 2)), a, a.copy(), None).kind is FindingKind.SHAPE_MISMATCH
    assert compare_arrays(F32.with_dtype(DType.float16), a, a.copy(),
                          None).kind is FindingKind.DTYPE_MISMATCH


def test_empty_and_scalar_arrays():
    empty = np.zeros((0, 4), np.float32)
    assert compare_arrays(None, empty, empty.copy(), None).equal
    assert not compare_arrays(None, np.float32(1.0), np.float32(2.0), None).equal


float_dtypes = st.sampled_from([np.float16, ml_dtypes.bfloat16, np.float32, np.float64])


@st.composite
def float_arrays(draw, elements=None):
    dtype = np.dtype(draw(float_dtypes))
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, max_side=5))
    values = draw(hnp.arrays(np.float64, shape, elements=elements or st.floats(width=16)))
    return values.astype(dtype)


@settings(max_examples=150, deadline=None)
@given(float_arrays())
def test_an_array_always_agrees_with_itself(array):
    assert compare_arrays(None, array, array.copy(), None).equal


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_comparison_is_symmetric(data):
    a = data.draw(float_arrays())
    b = data.draw(hnp.arrays(np.float64, a.shape, elements=st.floats(width=16))).astype(a.dtype)
    rtol, atol = data.draw(st.sampled_from([0.0, 1e-3, 0.1])), data.draw(st.sampled_from([0.0, 1e-2]))
    forward = compare_arrays(None, a, b, Tolerance(rtol, atol))
    backward = compare_arrays(None, b, a, Tolerance(rtol, atol))
    assert forward == backward


finite_values = st.floats(min_value=-1e4, max_value=1e4)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from([DType.float32, DType.float64]),
       hnp.arrays(np.float64, st.integers(1, 20), elements=finite_values),
       st.floats(min_value=-0.5, max_value=0.5))
def test_perturbation_within_tolerance_passes(dtype, values, fraction):
    tolerance = DEFAULT_POLICY.for_output("out", dtype)
    bound = tolerance.atol + tolerance.rtol * np.abs(values)
    a = values.astype(dtype.numpy)
    b = (values + fraction * bound).astype(dtype.numpy)
    assert compare_arrays(None, a, b, tolerance).equal


@settings(max_examples=150, deadline=None)
@given(st.sampled_from([DType.float32, DType.float64]),
       hnp.arrays(np.float64, st.integers(1, 20), elements=finite_values),
       st.integers(0, 19), st.floats(min_value=3.0, max_value=100.0), st.booleans())
def test_perturbation_beyond_tolerance_fails(dtype, values, index, factor, downwards):
    tolerance = DEFAULT_POLICY.for_output("out", dtype)
    index %= values.size
    bound = tolerance.atol + tolerance.rtol * abs(values[index])
    shifted = values.copy()
    shifted[index] += -factor * bound if downwards else factor * bound
    result = compare_arrays(None, values.astype(dtype.numpy), shifted.astype(dtype.numpy),
                            tolerance)
    assert not result.equal and result.mismatched == 1


# --- differential -----------------------------------------------------------------------


def test_all_agree_means_no_findings():
    outcomes = [ok(name, out=BASE.copy()) for name in ("ref", "ort", "tvm")]
    assert differential({"out": F32}, outcomes) == []


def test_majority_blames_only_the_odd_backend():
    outcomes = [ok("ref", out=BASE), ok("ort", out=perturbed()), ok("tvm", out=BASE.copy())]
    findings = differential({"out": F32}, outcomes)
    assert len(findings) == 1
    finding = findings[0]
    assert finding.kind is FindingKind.MISMATCH and finding.backends == ("ort",)
    assert finding.stage is Stage.COMPARE
    assert finding.details["compared_with"] == "ref"
    assert finding.details["consensus"] == ["ref", "tvm"]
    assert finding.details["outputs"]["out"]["mismatched"] == 1
    assert finding.summary == ("ort differs from ref and 1 other on out (float32[2,3]): "
                               "max abs err 101, 1/6 elements (16.7%), class sign")
    json.dumps(finding.details)


def test_one_compilers_configurations_are_one_vote():
    """Five ONNX Runtime levels sharing one kernel outvote nobody: torch and the ONNX reference,
    two independent implementations, form the consensus and every ORT level is blamed."""
    levels = ("ort-none", "ort-basic", "ort-extended", "ort-all", "ort-all-t4")
    outcomes = [ok(name, out=perturbed()) for name in levels] + [ok("torch", out=BASE), ok("onnx-ref", out=BASE)]
    findings = differential({"out": F32}, outcomes)
    assert sorted(f.backends[0] for f in findings) == sorted(levels)


def test_tie_goes_to_the_earliest_class_without_reference():
    outcomes = [ok("a", out=BASE), ok("b", out=perturbed())]
    [finding] = differential({"out": F32}, outcomes)
    assert finding.backends == ("b",) and finding.details["compared_with"] == "a"


def test_tie_goes_to_the_class_containing_reference():
    outcomes = [ok("a", out=BASE), ok("b", out=perturbed())]
    [finding] = differential({"out": F32}, outcomes, reference="b")
    assert finding.backends == ("a",) and finding.details["compared_with"] == "b"


def test_tie_between_pairs_with_reference_in_the_later_pair():
    outcomes = [ok("a", out=BASE), ok("b", out=perturbed()), ok("c", out=BASE.copy()),
                ok("d", out=perturbed())]
    findings = differential({"out": F32}, outcomes, reference="d")
    assert sorted(f.backends[0] for f in findings) == ["a", "c"]
    assert all(f.details["consensus"] == ["b", "d"] for f in findings)


def test_majority_beats_reference():
    outcomes = [ok("ref", out=perturbed()), ok("ort", out=BASE), ok("tvm", out=BASE.copy())]
    [finding] = differential({"out": F32}, outcomes, reference="ref")
    assert finding.backends == ("ref",)


def test_three_way_disagreement_blames_all_but_one():
    outcomes = [ok("a", out=BASE), ok("b", out=perturbed(0)), ok("c", out=perturbed(1))]
    findings = differential({"out": F32}, outcomes, reference="c")
    assert [f.backends for f in findings] == [("a",), ("b",)]


def test_one_finding_per_backend_naming_the_worst_output():
    expected = {"x": F32, "y": F32}
    nan_output = perturbed(2, np.nan)
    outcomes = [ok("a", x=BASE, y=BASE), ok("b", x=BASE, y=BASE),
                ok("c", x=perturbed(), y=nan_output)]
    [finding] = differential(expected, outcomes)
    assert finding.details["output"] == "y" and finding.details["error_class"] == "nan"
    assert finding.summary.endswith("(+1 more outputs)")
    assert set(finding.details["outputs"]) == {"x", "y"}
    assert finding.signature == "mismatch/c/compare/float32/nan"


def test_policy_override_changes_the_verdict():
    close = BASE * np.float32(1.01)
    outcomes = [ok("a", out=BASE), ok("b", out=close), ok("c", out=BASE.copy())]
    assert len(differential({"out": F32}, outcomes)) == 1
    policy = replace(DEFAULT_POLICY, overrides=dict([parse_override("out=2e-2,0")]))
    assert differential({"out": F32}, outcomes, policy=policy) == []


def test_integer_outputs_are_exact_in_differential():
    ints = TensorType(DType.int32, (3,))
    a = np.array([1, 2, 3], np.int32)
    outcomes = [ok("a", out=a), ok("b", out=a + np.array([0, 0, 1], np.int32)), ok("c", out=a.copy())]
    [finding] = differential({"out": ints}, outcomes)
    assert finding.backends == ("b",) and finding.details["dtype"] == "int32"


def test_declared_dtype_and_shape_are_checked():
    outcomes = [ok("a", out=BASE), ok("b", out=BASE.astype(np.float64)),
                ok("c", out=BASE.reshape(3, 2)), ok("d", out=BASE.copy())]
    findings = differential({"out": F32}, outcomes)
    kinds = {f.backends[0]: f.kind for f in findings}
    assert kinds == {"b": FindingKind.DTYPE_MISMATCH, "c": FindingKind.SHAPE_MISMATCH}
    by_backend = {f.backends[0]: f for f in findings}
    assert by_backend["b"].summary == "b returns out as float64[2,3], declared float32[2,3]"
    assert by_backend["b"].signature == "dtype_mismatch/b/compare/float32/float64"
    assert by_backend["c"].signature == "shape_mismatch/c/compare/float32/extent"


def test_missing_output_is_a_shape_mismatch():
    expected = {"x": F32, "y": F32}
    outcomes = [ok("a", x=BASE, y=BASE), ok("b", x=BASE)]
    [finding] = differential(expected, outcomes)
    assert finding.kind is FindingKind.SHAPE_MISMATCH and finding.backends == ("b",)
    assert finding.summary == "b returns no output y (declared float32[2,3])"
    assert finding.details["outputs"]["y"]["actual"] == "missing"


def test_dtype_outranks_shape_for_one_backend():
    expected = {"x": F32, "y": F32}
    outcomes = [ok("a", x=BASE.reshape(6), y=BASE.astype(np.float16)), ok("b", x=BASE, y=BASE)]
    [finding] = differential(expected, outcomes)
    assert finding.kind is FindingKind.DTYPE_MISMATCH and finding.details["output"] == "y"
    assert finding.summary.endswith("(+1 more outputs)")


def test_type_checks_apply_with_a_single_ok_backend():
    outcomes = [ok("a", out=BASE.astype(np.float64)),
                Outcome("b", Status.UNSUPPORTED, Stage.COMPILE, message="no Erf")]
    [finding] = differential({"out": F32}, outcomes)
    assert finding.kind is FindingKind.DTYPE_MISMATCH
    assert differential({"out": F32}, [ok("a", out=BASE)]) == []


@pytest.mark.parametrize("status, kind", [
    (Status.CRASH, FindingKind.CRASH), (Status.HANG, FindingKind.HANG),
    (Status.OOM, FindingKind.OOM),
])
def test_process_failures(status, kind):
    failed = Outcome("tvm", status, None, error_type="", message="", stderr_tail="x" * 5000,
                     exit_signal=11 if status is Status.CRASH else None, seconds=30.0)
    [finding] = differential({"out": F32}, [ok("ref", out=BASE), failed])
    assert finding.kind is kind and finding.backends == ("tvm",)
    assert finding.stage is Stage.RUN  # no stage reported: the run
    assert len(finding.details["stderr_tail"]) == 2000
    assert finding.details["seconds"] == 30.0
    assert finding.details["exit_signal"] == failed.exit_signal
    json.dumps(finding.details)


def test_crash_summary_and_signature_name_the_signal():
    failed = Outcome("tvm", Status.CRASH, Stage.COMPILE, exit_signal=11,
                     message="Segmentation fault at 0x7f3a2c001000")
    [finding] = differential({"out": F32}, [failed])
    assert finding.stage is Stage.COMPILE
    assert finding.summary == "tvm crashed during compile: SIGSEGV: Segmentation fault at 0x7f3a2c001000"
    assert finding.signature == "crash/tvm/compile/SIGSEGV/segmentation fault at <hex>"


def test_hang_summary_gives_the_time():
    failed = Outcome("ort", Status.HANG, Stage.RUN, seconds=12.5)
    [finding] = differential({"out": F32}, [failed])
    assert finding.summary == "ort hung during run after 12.5 s"


def test_error_keeps_type_message_and_traceback_tail():
    failed = Outcome("inductor", Status.ERROR, Stage.COMPILE, error_type="AssertionError",
                     message="bad stride 4\nmore", traceback="t" * 3000 + "END")
    [finding] = differential({"out": F32}, [ok("ref", out=BASE), failed])
    assert finding.kind is FindingKind.ERROR and finding.stage is Stage.COMPILE
    assert finding.details["error_type"] == "AssertionError"
    assert finding.details["message"] == "bad stride 4\nmore"
    assert finding.details["traceback"].endswith("END") and len(finding.details["traceback"]) == 2000
    assert finding.summary == "inductor failed during compile: AssertionError: bad stride 4"
    assert finding.signature == "error/inductor/compile/AssertionError/bad stride <n>"


def test_unsupported_is_never_a_finding():
    outcomes = [Outcome("tvm", Status.UNSUPPORTED, Stage.COMPILE, message="no op"),
                ok("ref", out=BASE), ok("ort", out=BASE.copy())]
    assert differential({"out": F32}, outcomes) == []


def test_failures_do_not_take_part_in_the_vote():
    outcomes = [ok("a", out=BASE), Outcome("b", Status.CRASH, exit_signal=6),
                ok("c", out=perturbed())]
    findings = differential({"out": F32}, outcomes)
    assert [(f.kind, f.backends) for f in findings] == [
        (FindingKind.CRASH, ("b",)), (FindingKind.MISMATCH, ("c",))]


def test_every_finding_carries_its_signature_and_inputs_are_untouched():
    array = perturbed(1, np.nan)
    snapshot = array.copy()
    outcomes = [ok("a", out=BASE), ok("b", out=array), Outcome("c", Status.OOM)]
    findings = differential({"out": F32}, outcomes)
    assert len(findings) == 2
    assert all(f.signature == signature(replace(f, signature="")) for f in findings)
    assert differential({"out": F32}, outcomes) == findings
    assert outcomes[1].outputs["out"] is array
    np.testing.assert_array_equal(array, snapshot)


# --- signatures -------------------------------------------------------------------------


def failure(message: str, error_type: str = "RuntimeError", backend: str = "tvm",
            kind: FindingKind = FindingKind.ERROR) -> Finding:
    return Finding(kind, (backend,), Stage.COMPILE, "summary",
                   {"error_type": error_type, "message": message})


def test_volatile_parts_do_not_change_the_signature():
    first = failure("Check failed at 0x7ffde4a0 in /tmp/tmpa81kx/model.onnx:12: node Add_17 "
                    "got shape [2, 3] vs 1.5e-3 for 'tmpq9x1z'")
    second = failure("Check failed at 0x55d1c0ff in /tmp/tmpzz0ab/model.onnx:40: node Add_3 "
                     "got shape [7, 1] vs 2e-05 for 'tmp_other'\nsecond line differs")
    assert signature(first) == signature(second)
    assert signature(first) == ("error/tvm/compile/RuntimeError/check failed at <hex> in "
                                "<path>:<n>: node add_<n> got shape [<n>, <n>] vs <n> for <tmp>")


def test_signature_separates_different_bugs():
    base = failure("boom")
    assert signature(base) != signature(failure("boom", error_type="ValueError"))
    assert signature(base) != signature(failure("boom", backend="ort"))
    assert signature(base) != signature(failure("different words"))
    assert signature(base) != signature(replace(base, stage=Stage.RUN))
    assert signature(base) != signature(replace(base, kind=FindingKind.CRASH))


def test_normalize_message_keeps_identifiers_with_digits():
    """conv2d stays; a dtype keeps its class and loses its width (one bug whatever the width)."""
    assert normalize_message("Unsupported conv2d on float16 with axis=3") == (
        "unsupported conv2d on float<n> with axis=<n>")


def test_a_relax_constant_operand_normalizes_like_a_variable():
    """TVM's float32-constant-in-float16 mix fails on R.multiply(lv1, R.const(-0.5, "float16"))
    when the constant is a graph weight and on R.multiply(lv23, lv1) when it is computed: one bug."""
    with_constant = normalize_message('TypeError: However, R.multiply(lv1, R.const(-0.5, "float16")) uses '
                                      'datatype T.float32 on the LHS (Type of R.Tensor((), dtype="float32"))')
    with_variable = normalize_message('TypeError: However, R.multiply(lv23, lv1) uses datatype T.float32 '
                                      'on the LHS (Type of R.Tensor((2, 6, 2), dtype="float32"))')
    assert with_constant == with_variable


def test_normalize_message_uses_the_error_line_of_a_traceback():
    text = 'Traceback (most recent call last):\n  File "/x/y.py", line 3, in f\nValueError: no 7'
    assert normalize_message(text) == "valueerror: no <n>"
    assert normalize_message("\n\n  First Line  \nsecond") == "first line"
    assert normalize_message("") == ""


def test_long_signatures_are_cut_but_stay_distinct():
    first = signature(failure("word " * 100 + "alpha"))
    second = signature(failure("word " * 100 + "beta"))
    assert len(first) == len(second) == MAX_LENGTH
    assert first != second and first[:150] == second[:150]


def test_mismatch_signature_uses_dtype_and_error_class():
    finding = Finding(FindingKind.MISMATCH, ("ort",), Stage.COMPARE, "s",
                      {"output": "out7", "dtype": "float16", "error_class": "inf"})
    assert signature(finding) == "mismatch/ort/compare/float16/inf"
    assert signature(replace(finding, details={**finding.details, "output": "out2"})) == (
        signature(finding))
