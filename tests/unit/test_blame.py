"""Tests for the float64 reference, blame against it, and the optimization-level oracle."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fuzzer.execution.backends import builtin_backends
from fuzzer.generation.generator import GeneratorOptions, generate_case, generate_graph
from fuzzer.graph.ir import DType, Graph, Input, Node, TensorType, Weight
from fuzzer.execution.isolation import Limits, Worker
from fuzzer.graph.ops import get_spec
from fuzzer.graph.ops.spec import Family
from fuzzer.graph.rejected import Unsatisfiable
from fuzzer.execution.outcome import Outcome, Stage, Status
from oracles.compare import compare_arrays, mismatch_mask
from oracles.finding import FindingKind
from oracles.optlevel import OPT_PAIRS
from oracles.precision import REFERENCE, evaluate_reference, promote_to_float64, ulp_distance
from oracles.probes import flags_probe, reference_output_names, spread_probe
from oracles.tolerance import DEFAULT_POLICY, Tolerance, along_paths
from oracles.verdict import blame, differential, failure_finding, judge, opt_level
from tests.helpers import ok

F32 = TensorType(DType.float32, (2, 3))
EXPECTED = {"y": F32}
TRUTH = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])


def reference(value: np.ndarray = TRUTH) -> Outcome:
    return ok(REFERENCE, y=np.asarray(value, dtype=np.float64))


def wrong(index: int = 4, value: float = -7.0) -> np.ndarray:
    array = TRUTH.astype(np.float32)
    array.flat[index] = value
    return array


def node(op: str, inputs: tuple[str, ...], outputs: tuple[str, ...], types: dict[str, TensorType], **attrs) -> Node:
    inferred = get_spec(op).infer(tuple(types[name] for name in inputs), attrs)
    types.update(zip(outputs, inferred))
    return Node(op, inputs, outputs, tuple(inferred), tuple(attrs.items()))


def graphs(draw_seed: int, nodes: int = 8) -> Graph | None:
    try:
        return generate_graph(draw_seed, GeneratorOptions(nodes=nodes))
    except Unsatisfiable:
        return None


# --- blame ------------------------------------------------------------------------------


def test_blame_picks_the_backend_far_from_the_reference_even_in_a_tied_majority():
    # Two wrong backends agree with each other and come first, so the plain vote ties 2-2
    # and goes to them; the reference says which pair is right.
    right = TRUTH.astype(np.float32)
    outcomes = [ok("c", y=wrong()), ok("d", y=wrong()), ok("a", y=right), ok("b", y=right)]
    voted = {f.backends[0] for f in differential(EXPECTED, outcomes)}
    assert voted == {"a", "b"}
    findings = blame(EXPECTED, outcomes + [reference()])
    assert {f.backends[0] for f in findings} == {"c", "d"}
    assert all(f.kind is FindingKind.MISMATCH and f.details["compared_with"] == REFERENCE for f in findings)
    assert {f.details["majority"] for f in findings} == {"no majority"}


def test_blame_blames_a_wrong_majority():
    right = TRUTH.astype(np.float32)
    outcomes = [ok("a", y=wrong()), ok("b", y=wrong()), ok("c", y=right), reference()]
    findings = blame(EXPECTED, outcomes)
    assert sorted(f.backends[0] for f in findings) == ["a", "b"]
    assert all(f.details["majority"] == "in the majority" for f in findings)


def test_finding_records_errors_against_the_reference():
    actual = wrong(index=4, value=5.5)  # reference 5.0
    [finding] = blame(EXPECTED, [ok("a", y=actual), ok("b", y=TRUTH.astype(np.float32)), reference()])
    details = finding.details
    assert finding.backends == ("a",) and details["output"] == "y" and details["dtype"] == "float32"
    assert details["max_abs_error"] == pytest.approx(0.5)
    assert details["max_rel_error"] == pytest.approx(0.5 / 5.5)
    assert details["max_ulp"] == float(np.float32(5.5).view(np.int32) - np.float32(5.0).view(np.int32))
    assert details["mismatched"] == 1 and details["share"] == pytest.approx(1 / 6)
    assert details["signal"] == "reference" and details["majority"] == "no majority"
    assert finding.signature == "mismatch/a/compare/float32/magnitude"


def test_agreeing_backends_against_the_reference_are_not_blamed():
    shifted = (TRUTH + 1).astype(np.float32)
    verdict = judge(EXPECTED, [ok("a", y=shifted), ok("b", y=shifted), reference()])
    assert verdict.findings == []
    assert {s.guard for s in verdict.suppressions} == {"reference-outlier"}
    assert {s.backend for s in verdict.suppressions} == {"a", "b"}


def test_when_no_backend_agrees_with_the_reference_the_majority_decides():
    shifted = (TRUTH + 1).astype(np.float32)
    outcomes = [ok("a", y=shifted), ok("b", y=shifted), ok("c", y=wrong(value=100.0)), reference()]
    verdict = judge(EXPECTED, outcomes)
    assert [f.backends[0] for f in verdict.findings] == ["c"]
    assert verdict.findings[0].details["signal"] == "majority"
    assert {(s.backend, s.guard) for s in verdict.suppressions} == {("a", "majority-over-reference"),
                                                                      ("b", "majority-over-reference")}


def test_rounding_within_tolerance_of_the_reference_is_not_a_mismatch():
    close = (TRUTH * (1 + 4e-4)).astype(np.float32)
    far = (TRUTH * (1 - 4e-4)).astype(np.float32)  # 8e-4 apart from "close": still each within 1e-3
    assert blame(EXPECTED, [ok("a", y=close), ok("b", y=far), reference()]) == []


def test_without_a_usable_reference_blame_is_the_differential_oracle():
    outcomes = [ok("a", y=wrong()), ok("b", y=TRUTH.astype(np.float32)), ok("c", y=TRUTH.astype(np.float32))]
    expected = [f.summary for f in differential(EXPECTED, outcomes)]
    assert [f.summary for f in blame(EXPECTED, outcomes)] == expected
    failed = Outcome(REFERENCE, Status.ERROR, Stage.RUN, error_type="RuntimeError", message="boom")
    verdict = judge(EXPECTED, outcomes + [failed])
    assert [f.summary for f in verdict.findings][:-1] == expected
    assert verdict.findings[-1].backends == (REFERENCE,) and verdict.findings[-1].kind is FindingKind.ERROR
    unsupported = Outcome(REFERENCE, Status.UNSUPPORTED, Stage.PREPARE)
    assert [f.summary for f in blame(EXPECTED, outcomes + [unsupported])] == expected


def test_type_disagreements_and_failures_are_reported_as_the_differential_oracle_does():
    crash = Outcome("c", Status.CRASH, Stage.COMPILE, error_type="SIGSEGV", exit_signal=11, stderr_tail="x")
    findings = blame(EXPECTED, [ok("a", y=TRUTH.astype(np.float64)), crash, ok("b", y=TRUTH.astype(np.float32)),
                                reference()])
    kinds = {f.backends[0]: f for f in findings}
    assert kinds["a"].kind is FindingKind.DTYPE_MISMATCH
    assert kinds["c"].kind is FindingKind.CRASH and kinds["c"].stage is Stage.COMPILE
    assert kinds["c"].details["signal"] == "SIGSEGV" and kinds["c"].details["exit_signal"] == 11
    assert "b" not in kinds and REFERENCE not in kinds  # float64 from the reference is expected
    hang = Outcome("h", Status.HANG, Stage.RUN, error_type="Timeout", seconds=10.0)
    assert failure_finding(hang).stage is Stage.RUN and failure_finding(hang).kind is FindingKind.HANG


# --- the pure helpers -------------------------------------------------------------------


@given(st.floats(width=32, allow_nan=False, allow_infinity=False))
def test_ulp_distance_counts_representable_steps(x):
    x = np.float32(x)
    up = np.nextafter(x, np.float32(np.inf))
    assert ulp_distance(np.array([x]), np.array([up]), DType.float32)[0] == 1
    assert ulp_distance(np.array([up]), np.array([x]), DType.float32)[0] == 1
    assert ulp_distance(np.array([x]), np.array([x]), DType.float32)[0] == 0


def test_ulp_distance_treats_signed_zeros_as_equal_and_nan_as_unknown():
    assert ulp_distance(np.array([-0.0]), np.array([0.0]), DType.float16)[0] == 0
    assert ulp_distance(np.array([-1e-45], np.float32), np.array([1e-45], np.float32), DType.float32)[0] == 2
    assert np.isnan(ulp_distance(np.array([np.nan]), np.array([1.0]), DType.float64)[0])
    assert ulp_distance(np.array([3]), np.array([-2]), DType.int8)[0] == 5


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(hnp.arrays(np.float32, st.integers(1, 12), elements=st.floats(width=32)),
       hnp.arrays(np.float32, st.integers(1, 12), elements=st.floats(width=32)))
def test_mismatch_mask_counts_what_compare_arrays_counts(a, b):
    size = min(a.size, b.size)
    a, b = a[:size], b[:size]
    for tolerance in (None, Tolerance(1e-3, 1e-4)):
        comparison = compare_arrays(None, a, b, tolerance)
        assert int(mismatch_mask(a, b, tolerance).sum()) == comparison.mismatched


# --- the float64 reference --------------------------------------------------------------


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**32))
def test_promote_to_float64_gives_a_valid_graph_with_every_float_in_float64(seed):
    """Quantization runs between casts and control-flow bodies are promoted too, so every
    graph promotes (constructing a Graph validates it)."""
    try:
        graph = generate_graph(seed, GeneratorOptions(nodes=8, control_flow=0.3))
    except Unsatisfiable:
        return
    promoted = promote_to_float64(graph)
    assert isinstance(promoted, Graph) and promoted.outputs == graph.outputs
    for name, original in graph.types.items():
        wanted = DType.float64 if original.dtype.is_float else original.dtype
        assert promoted.types[name] == original.with_dtype(wanted)
    for before, after in zip(graph.weights, promoted.weights):
        assert np.array_equal(before.array.astype(np.float64), after.array.astype(np.float64), equal_nan=True)


def test_promotion_rewrites_cast_range_and_constant_of_shape_targets():
    types = {"x": TensorType(DType.float16, (2, 3))}
    nodes = [node("Cast", ("x",), ("a",), types, to="float32"),
             node("Cast", ("x",), ("b",), types, to="int32"),
             node("Range", (), ("c",), types, start=0.0, limit=2.0, delta=0.5, dtype="float32"),
             node("ConstantOfShape", ("x",), ("d",), types)]
    graph = Graph((Input("x", types["x"]),), (), tuple(nodes), ("a", "b", "c", "d"))
    promoted = promote_to_float64(graph)
    assert [promoted.types[n].dtype for n in "abcd"] == [DType.float64, DType.int32, DType.float64, DType.float64]
    assert promoted.nodes[0].attr["to"] == "float64" and promoted.nodes[3].attr["dtype"] == "float64"


def test_reference_computes_in_float64_and_reports_its_probes():
    types = {"x": TensorType(DType.float32, (3, 4)), "w": TensorType(DType.float32, (4,))}
    nodes = [node("Add", ("x", "w"), ("s",), types), node("ArgMax", ("s",), ("i",), types, axis=1, keepdims=0,
                                                          select_last_index=0)]
    w = np.float32([1e4, 0, 0, 0])
    graph = Graph((Input("x", types["x"]),), (Weight.from_array("w", w),), tuple(nodes), ("s", "i"))
    x = np.random.default_rng(0).uniform(-2, 2, (3, 4)).astype(np.float32)
    values = evaluate_reference(graph, {"x": x})
    assert list(values) == reference_output_names(graph)
    assert values["s"].dtype == np.float64 and values["i"].dtype == np.int64
    assert np.array_equal(values["s"], x.astype(np.float64) + w.astype(np.float64))
    assert values["@ref:value:s"].dtype == np.float64
    assert values["@ref:declared:s"].dtype == np.float32
    assert values[flags_probe("integer-overflow")].shape == (2,)
    spread = values[spread_probe("s")]
    # x + 1e4 loses x's low digits in float32; elsewhere only the perturbations show.
    assert (spread[:, 0] > 1e-3).all() and (spread[:, 1:] < 1e-4).all()
    assert not any(values[name].any() for name in values if name.startswith("@ref:flags:"))


def test_ref_f64_backend_runs_in_an_isolated_worker(tmp_path):
    assert "ref-f64" in builtin_backends()
    # The first graph from seed 4 that ref-f64 takes (it declines ONNX's float32-only quantized operators).
    case = next(case for case in (generate_case(seed, GeneratorOptions(nodes=6)) for seed in range(4, 40))
                if not any(get_spec(node.op).family is Family.QUANTIZATION for node in case.graph.nodes))
    worker = Worker("ref-f64", Limits(timeout=60), log_dir=tmp_path)
    try:
        outcome = worker.execute(case)
    finally:
        worker.close()
    assert outcome.ok, outcome.message
    assert list(outcome.outputs) == reference_output_names(case.graph)
    for name, declared in case.output_types().items():
        assert outcome.outputs[name].shape == declared.shape
        assert outcome.outputs[name].dtype == (np.float64 if declared.dtype.is_float else declared.dtype.numpy)
    findings = judge(case.output_types(), [outcome, ok("x", **{n: v.astype(case.output_types()[n].dtype.numpy)
                                                              for n, v in outcome.outputs.items()
                                                              if n in case.output_types()})],
                     along_paths(case.graph, DEFAULT_POLICY), case.graph).findings
    assert findings == []


# --- the optimization-level oracle ------------------------------------------------------


def test_opt_pairs_are_data_with_the_optimized_backend_second():
    assert ("ort-none", "ort-all") in OPT_PAIRS
    assert all(len(pair) == 2 and pair[0] != pair[1] for pair in OPT_PAIRS)


def test_opt_level_is_tighter_than_the_differential_tolerance():
    base = TRUTH.astype(np.float32)
    nudged = base.copy()
    nudged.flat[2] *= np.float32(1 + 5e-4)  # within the float32 differential tolerance
    outcomes = [ok("ort-none", y=base), ok("ort-all", y=nudged)]
    assert differential(EXPECTED, outcomes) == []
    [finding] = opt_level(EXPECTED, outcomes).findings
    assert finding.kind is FindingKind.OPT_MISMATCH and finding.backends == ("ort-all",)
    assert finding.details["compared_with"] == "ort-none" and finding.details["mismatched"] == 1
    assert finding.signature == "opt_mismatch/ort-all/compare/float32/magnitude"
    few_ulps = base.copy()
    few_ulps.flat[2] = np.nextafter(few_ulps.flat[2], np.float32(10))
    assert opt_level(EXPECTED, [ok("ort-none", y=base), ok("ort-all", y=few_ulps)]).findings == []


def test_opt_level_skips_pairs_that_did_not_both_run():
    crash = Outcome("ort-all", Status.CRASH, Stage.RUN)
    assert opt_level(EXPECTED, [ok("ort-none", y=TRUTH.astype(np.float32)), crash]).findings == []
    assert opt_level(EXPECTED, [ok("tvm", y=wrong())]).findings == []


def test_without_the_float64_judge_a_judge_with_a_known_defect_on_the_graph_has_no_vote():
    """torch and onnx.reference alone (ref-f64 declined, ORT too): on a QLinearMatMul tie the
    reference's known defect would win the tie-break and blame torch, which follows ONNX."""
    from oracles.blame import judge

    one = np.asarray(1.0, np.float32)
    weights = (Weight.from_array("as", one), Weight.from_array("az", np.asarray(0, np.uint8)),
               Weight.from_array("b", np.array([[1]], np.uint8)), Weight.from_array("bs", np.asarray(0.5, np.float32)),
               Weight.from_array("bz", np.asarray(0, np.uint8)), Weight.from_array("ys", one),
               Weight.from_array("yz", np.asarray(1, np.uint8)))
    types = (TensorType(DType.uint8, (1, 1)),) + tuple(w.type for w in weights)
    node = Node("QLinearMatMul", ("x",) + tuple(w.name for w in weights), ("y",),
                get_spec("QLinearMatMul").infer(types, {}))
    graph = Graph((Input("x", types[0]),), weights, (node,), ("y",))
    expected = {"y": graph.types["y"]}
    outcomes = [Outcome("torch", Status.OK, Stage.RUN, {"y": np.array([[3]], np.uint8)}),
                Outcome("onnx-ref", Status.OK, Stage.RUN, {"y": np.array([[2]], np.uint8)}),
                Outcome(REFERENCE, Status.UNSUPPORTED, Stage.PREPARE, message="declined")]
    assert judge(expected, outcomes, graph=graph, fallback_reference="onnx-ref").findings == []
    blamed = judge(expected, outcomes, fallback_reference="onnx-ref").findings  # no graph: no defect known
    assert [f.backends for f in blamed] == [("torch",)]
