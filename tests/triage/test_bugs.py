"""Bugs: signatures joined per compiler and root cause, judges apart from targets."""

from __future__ import annotations

from dataclasses import replace

from fuzzer.store import StoredFinding
from oracles.bug_keys import cluster_key, error_headline
from triage.bugs import build_bugs, representative_signature
from triage.db import SignatureRecord, Status

TVM_MESSAGE = ("TypeError: Binary operators must have the same datatype for both operands.  However, "
               "R.multiply({}, {}) uses datatype T.float32 on the LHS and T.float16 on the RHS")
ORT_MESSAGE = ("[ONNXRuntimeError] : 2 : INVALID_ARGUMENT : Non-zero status code returned while running "
               "SpaceToDepth node. Name:'{}' Status Message: SpaceToDepth requires input width to be a multiple")


def finding(number: int, backend: str, kind: str = "error", message: str = "", **details) -> StoredFinding:
    details = {"error_type": "TypeError", "message": message, **details} if message else details
    return StoredFinding(id=number, test_index=number, kind=kind, backends=(backend,), stage="run",
                         summary=f"{backend} {kind}", signature=f"{kind}/{backend}/{number}", details=details,
                         seed=0, case_hash="", created=float(number), artifacts={})


def record(signature: str, notes: dict, status: Status = Status.NEW) -> SignatureRecord:
    return SignatureRecord(signature, signature, status, 1, 0.0, 0.0, 0, notes=notes)


def test_headlines_drop_ir_and_node_names():
    assert error_headline(TVM_MESSAGE.format("lv18", "lv16")) == error_headline(TVM_MESSAGE.format("lv5", "lv"))
    assert error_headline(ORT_MESSAGE.format("n3")) == error_headline(ORT_MESSAGE.format("node_12"))
    assert error_headline("output arg (v9) of node ()") == error_headline("output arg (x0) of node ()")
    assert error_headline(TVM_MESSAGE.format("lv1", "lv2")) != error_headline(ORT_MESSAGE.format("n1"))
    intrinsic = 'InternalError: unknown intrinsic ir.Op(span=None, name="tirx.{}", num_inputs=1)'
    assert error_headline(intrinsic.format("asin")) == error_headline(intrinsic.format("sinh"))  # one lowering gap


def test_one_compiler_bug_lists_every_configuration_that_shows_it():
    findings = [finding(1, "ort-none", message=ORT_MESSAGE.format("n1")),
                finding(2, "ort-all", message=ORT_MESSAGE.format("node_2")),
                finding(3, "ort-extended", message=ORT_MESSAGE.format("n3")),
                finding(4, "tvm", message=TVM_MESSAGE.format("lv1", "lv2")),
                finding(5, "tvm-noopt", message=TVM_MESSAGE.format("lv7", "lv3"))]
    bugs = build_bugs(findings, {})
    assert [(b.compiler, b.configurations, b.findings, b.scope) for b in bugs] == [
        ("onnxruntime", ("ort-all", "ort-extended", "ort-none"), 3, "every configuration"),
        ("tvm", ("tvm", "tvm-noopt"), 2, "every configuration")]
    assert all(b.category == "bug" and b.status == "new" and not b.verified for b in bugs)


def test_a_failure_only_optimized_configurations_show_is_an_optimizer_bug():
    findings = [finding(1, "ort-all", message=ORT_MESSAGE.format("n1")),
                finding(2, "ort-basic", message=ORT_MESSAGE.format("node_2"))]
    (bug,) = build_bugs(findings, {})
    assert bug.scope == "optimizer"


def test_disagreements_that_blame_a_judge_are_reference_issues_unless_judges_are_targets():
    findings = [finding(1, "onnx-ref", "mismatch", dtype="float32", error_class="magnitude"),
                finding(2, "ort-none", "mismatch", dtype="float32", error_class="nan")]
    bugs = build_bugs(findings, {})
    assert [(b.compiler, b.category) for b in bugs] == [("onnxruntime", "bug"), ("onnx.reference", "reference-issue")]
    assert {b.category for b in build_bugs(findings, {}, judges_as_targets=True)} == {"bug"}


def test_a_consequence_joins_the_shape_bug_upstream():
    shape = finding(1, "ort-none", "shape_mismatch", dtype="float32", error_class="extent")
    error = finding(2, "ort-all", message=ORT_MESSAGE.format("n1"))
    records = {
        shape.signature: record(shape.signature, {"reduction": {"done": True, "ops": ["MaxPool"]}}),
        error.signature: record(error.signature, {
            "reduction": {"done": True, "ops": ["MaxPool", "SpaceToDepth"]},
            "origin": {"kind": "shape_mismatch", "op": "MaxPool", "ops": ["MaxPool"]}}),
    }
    (bug,) = build_bugs([shape, error], records)
    assert bug.findings == 2 and bug.configurations == ("ort-all", "ort-none")
    assert bug.fingerprints[0] == "target/onnxruntime/shape_mismatch/@MaxPool"
    assert (bug.kind, bug.reduced_ops, bug.representative) == ("shape_mismatch", ("MaxPool",), shape.signature)
    values = finding(3, "ort-none", "mismatch", dtype="int64", error_class="magnitude")  # Shape of the wrong shape
    records[values.signature] = record(values.signature, {
        "reduction": {"done": True, "ops": ["MaxPool", "Shape"]},
        "origin": {"kind": "shape_mismatch", "op": "MaxPool", "ops": ["MaxPool"]}})
    (bug,) = build_bugs([shape, error, values], records)
    assert bug.findings == 3
    (alone,) = build_bugs([error], records)  # seen only through its consequence
    assert (alone.kind, alone.reduced_ops) == ("shape_mismatch", ("MaxPool",)) and "consequence" in alone.summary


def test_consequences_join_their_origin_even_where_reductions_ran_out_of_time():
    """Two TVM errors after a BatchNormalization that returns float32 for float16: one bug."""
    errors = [finding(1, "tvm", message=TVM_MESSAGE.format("lv1", "lv2")),
              finding(2, "tvm-noopt", message="TypeError: relax.nn.batch_norm expects one dtype")]
    origin = {"kind": "dtype_mismatch", "op": "BatchNormalization", "ops": ["BatchNormalization"]}
    records = {f.signature: record(f.signature, {"reduction": {"done": False, "ops": ops}, "origin": origin})
               for f, ops in zip(errors, (["BatchNormalization", "Reciprocal"], ["BatchNormalization"] * 2))}
    (bug,) = build_bugs(errors, records)
    assert bug.fingerprints[0] == "target/tvm/dtype_mismatch/@BatchNormalization" and bug.findings == 2


def test_an_error_inside_a_control_flow_body_is_keyed_by_the_failing_node():
    """ONNX Runtime wraps it in the If's status: which operator of the branch failed is not the bug."""
    wrapped = ("[ONNXRuntimeError] : 1 : FAIL : Non-zero status code returned while running If node. Name:'' "
               "Status Message: Non-zero status code returned while running {} node. Name:'' Status Message: "
               "/onnxruntime_src/core/framework/op_kernel_context.h:45 Missing Input: v12")
    assert error_headline(wrapped.format("Exp")) == error_headline(wrapped.format("Erf"))
    assert error_headline(wrapped.format("Exp")).endswith("missing input: <name>")


def test_reduced_graphs_join_and_split_value_mismatches():
    first, second = (finding(n, "ort-none", "mismatch", dtype="float32", error_class=c)
                     for n, c in ((1, "nan"), (2, "magnitude")))
    reduced = {f.signature: record(f.signature, {"reduction": {"done": True, "ops": ["Erf"]}})
               for f in (first, second)}
    assert len(build_bugs([first, second], reduced)) == 1  # one operator, two error classes
    reduced[second.signature] = record(second.signature, {"reduction": {"done": True, "ops": ["Softplus"]}})
    assert len(build_bugs([first, second], reduced)) == 2


def test_status_known_by_fingerprint_and_triage_failure():
    found = finding(1, "tvm", message=TVM_MESSAGE.format("lv1", "lv2"))
    key = cluster_key(found)
    (bug,) = build_bugs([found], {}, known=frozenset({key}))
    assert bug.status == "known"
    failed = {found.signature: record(found.signature, {"failed": {"step": "reduction", "error": "boom"}},
                                      Status.TRIAGE_FAILED)}
    (bug,) = build_bugs([found], failed)
    assert (bug.status, bug.triage_error) == ("triage-failed", "boom")


def test_tir_findings_are_keyed_by_their_root_cause():
    findings = [finding(n, f"tvm-tir:{part}", "mismatch", dtype=dtype, output=output)
                for n, part, dtype, output in ((1, "schedule", "float32", "C"), (2, "schedule", "int8", "D"))]
    bugs = build_bugs(findings, {}, tir_key=lambda f: "target/tvm/mismatch/loop_partition|")
    assert len(bugs) == 1 and bugs[0].compiler == "tvm"


def test_tir_miscompiles_join_the_smallest_culprit_they_contain():
    """A culprit with an extra primitive joins the smaller one it contains; wrong values join a
    write outside a buffer of the same culprit (one wrong store), never the other way."""
    keys = {1: "mismatch/loop_partition|", 2: "mismatch/cache_write,loop_partition|",
            3: "error/out-of-bounds write/cache_write|", 4: "error/out-of-bounds write/cache_write,split|",
            5: "error/out-of-bounds write/loop_partition|"}
    findings = [finding(n, "tvm-tir:schedule", "mismatch" if key.startswith("mismatch") else "error")
                for n, key in keys.items()]
    bugs = build_bugs(findings, {}, tir_key=lambda f: "target/tvm/" + keys[f.id])
    numbers = sorted(sorted(int(s.rpartition("/")[2]) for s in bug.signatures) for bug in bugs)
    assert numbers == [[1, 2, 5], [3, 4]]


def test_triage_works_on_a_blamed_tir_finding_before_more_frequent_unblamed_cases():
    cases = [finding(n, "tvm-tir:case", "crash") for n in (1, 2, 3)]
    cases = [replace(f, signature="crash/case") for f in cases]
    blamed = finding(4, "tvm-tir:schedule", "crash")
    assert representative_signature([*cases, blamed]) == blamed.signature


def test_a_reference_issue_that_is_a_known_judge_defect_is_known():
    erf = finding(1, "onnx-ref", "mismatch", dtype="float64", error_class="magnitude")
    reduced = {erf.signature: record(erf.signature, {"reduction": {"done": True, "ops": ["Erf", "Asin"]}})}
    (issue,) = build_bugs([erf], reduced)
    assert (issue.category, issue.status) == ("reference-issue", "known") and "float32" in issue.known_defect
    (unreduced,) = build_bugs([erf], {})
    assert unreduced.status == "new" and unreduced.known_defect is None


def test_a_reduced_bug_is_known_by_its_root_cause_only():
    first, second = (finding(n, "ort-none", "mismatch", dtype="float32", error_class="nan") for n in (1, 2))
    yesterday = frozenset({cluster_key(first)})  # an untriaged bug of the same compiler, kind and class
    reduced = {first.signature: record(first.signature, {"reduction": {"done": True, "ops": ["Erf"]}})}
    (bug,) = build_bugs([first], reduced, known=yesterday)
    assert bug.status == "new"  # another operator's NaN is another bug
    (bug,) = build_bugs([second], {}, known=yesterday)
    assert bug.status == "known"
    (bug,) = build_bugs([first], reduced, known=frozenset({bug_fingerprint(first, reduced)}))
    assert bug.status == "known"


def bug_fingerprint(found, records):
    return build_bugs([found], records)[0].fingerprints[0]


def test_operators_that_share_a_kernel_are_one_bug():
    """ONNX Runtime computes every float64 cosine-sum window in float32: one bug, not one per window."""
    hamming, blackman = (finding(n, "ort-none", "mismatch", dtype="float64", error_class="magnitude")
                         for n in (1, 2))
    records = {hamming.signature: record(hamming.signature, {"reduction": {"done": True, "ops": ["HammingWindow"]}}),
               blackman.signature: record(blackman.signature, {"reduction": {"done": True, "ops": ["BlackmanWindow"]}})}
    (bug,) = build_bugs([hamming, blackman], records)
    assert bug.findings == 2 and bug.fingerprints[0].endswith("@cosine-sum window")


def test_a_run_time_shape_check_joins_the_wrong_shape_it_caught():
    """tvm-noopt keeps TVM's kernel argument checks: where other configurations return a wrong
    extent, it stops with "Invalid lv27.shape[0] on argument". One bug."""
    checked = finding(1, "tvm-noopt", message="ValueError: Invalid lv27.shape[0] on argument #1 when calling:")
    wrong = finding(2, "tvm", "shape_mismatch", dtype="int64", error_class="extent")
    records = {f.signature: record(f.signature, {"reduction": {"done": True, "ops": ["NonMaxSuppression", "Einsum"]}})
               for f in (checked, wrong)}
    (bug,) = build_bugs([checked, wrong], records)
    assert bug.configurations == ("tvm", "tvm-noopt")
    other = finding(3, "tvm-noopt", message="ValueError: Expect value to be constant int")
    records[other.signature] = record(other.signature, {"reduction": {"done": True, "ops": ["NonMaxSuppression"]}})
    assert len(build_bugs([checked, wrong, other], records)) == 2



def test_a_finding_no_rerun_reproduces_is_listed_apart_from_bugs():
    """A hang seen once on a loaded machine and in none of triage's fresh re-runs is not a
    bug a maintainer can act on; one that comes back some of the time is a flaky bug."""
    hang = finding(1, "tvm-torch", "hang")
    for reproduced, category in ((0, "unreproduced"), (1, "bug")):
        records = {hang.signature: record(hang.signature, {"reproducibility": {"runs": 2, "reproduced": reproduced}},
                                          Status.FLAKY)}
        (bug,) = build_bugs([hang], records)
        assert bug.category == category


def test_values_a_scatter_puts_in_the_wrong_place_are_one_bug_whatever_their_dtype():
    """ScatterElements only places values: float16, int8 and bool mismatches are one bug;
    Erf computes, and Max chooses by value (NaN), so their dtypes stay apart."""
    mismatches = [finding(n, "tvm", "mismatch", dtype=dtype, error_class="magnitude")
                  for n, dtype in ((1, "float16"), (2, "int8"), (3, "bool"))]
    for op, expected in (("ScatterElements", 1), ("Erf", 3), ("Max", 3)):
        records = {f.signature: record(f.signature, {"reduction": {"done": True, "ops": [op]}}) for f in mismatches}
        assert len(build_bugs(mismatches, records)) == expected, op
