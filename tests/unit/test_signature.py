"""Failure signatures: top stack frames, stable across runs, and grouping of near-identical keys."""

from __future__ import annotations

from fuzzer.generation.generator import make_case
from fuzzer.graph.ir import DType
from fuzzer.execution.isolation import Limits, Worker
from fuzzer.execution.outcome import Stage
from oracles.finding import Finding, FindingKind
from oracles.verdict import failure_finding
from tests.helpers import Builder
from oracles.signature import normalize_message, signature, top_frames
from triage.grouping import group_signatures

PYTHON_TRACEBACK = '''Traceback (most recent call last):
  File "{root}/fuzzer/backends/base.py", line {a}, in execute
    compiled = self.compile(prepared)
  File "{root}/.venv/lib/python3.11/site-packages/torch/_dynamo/eval_frame.py", line {b}, in _fn
    return fn(*args, **kwargs)
  File "{root}/.venv/lib/python3.11/site-packages/torch/_inductor/lowering.py", line {c}, in wrapped
    out = decomp_fn(*args, **kwargs)
  File "{root}/.venv/lib/python3.11/site-packages/torch/_inductor/{leaf}", line {d}, in {function}
    assert False, "bad stride"
AssertionError: bad stride {n}
'''


def error(traceback: str, message: str = "bad stride 4") -> Finding:
    return Finding(FindingKind.ERROR, ("inductor",), Stage.COMPILE, "summary",
                   {"error_type": "AssertionError", "message": message, "traceback": traceback})


def python_error(root="/work/main", a=90, b=655, c=411, d=77, leaf="ir.py", function="make_loader", n=4):
    return error(PYTHON_TRACEBACK.format(root=root, a=a, b=b, c=c, d=d, leaf=leaf, function=function, n=n),
                 message=f"bad stride {n}")


def test_same_frames_at_other_lines_and_paths_give_the_same_key():
    first = python_error()
    second = python_error(root="/home/ci/checkout", a=91, b=700, c=412, d=80, n=8)
    assert signature(first) == signature(second)
    assert signature(first) == ("error/inductor/compile/AssertionError/"
                                "@make_loader:ir.py<wrapped:lowering.py/bad stride <n>")


def test_different_innermost_frames_give_different_keys():
    assert signature(python_error()) != signature(python_error(function="realize"))
    assert signature(python_error()) != signature(python_error(leaf="scheduler.py"))


def test_harness_and_framework_frames_are_skipped():
    frames = top_frames(PYTHON_TRACEBACK.format(root="/r", a=1, b=2, c=3, d=4, leaf="ir.py", function="f", n=1))
    assert frames == ("f:ir.py", "wrapped:lowering.py")  # not base.py (harness) nor eval_frame.py


def test_tvm_cpp_frames_lose_return_type_parameters_and_templates():
    text = ('Traceback (most recent call last):\n'
            '  File "python/tvm_ffi/cython/function.pxi", line 1038, in tvm_ffi.core.Function.__call__\n'
            '  File "/project/src/relax/op/tensor/manipulate.cc", line 1030, in tvm::Type '
            'tvm::relax::InferTypeReshape<int, std::vector<int>>(const tvm::Call&, const BlockBuilder&)\n'
            'ValueError: Reshape expects ...\n')
    assert top_frames(text) == ("tvm::relax::infertypereshape:manipulate.cc",)


def test_faulthandler_dump_reads_the_crashing_thread_innermost_first():
    dump = ("noise\nFatal Python error: Segmentation fault\n\n"
            "Thread 0x00007f00000001 (most recent call first):\n  File \"/x/threading.py\", line 3 in wait\n\n"
            "Current thread 0x00007f4ea5aabb80 (most recent call first):\n"
            "  File \"/usr/lib/python3.11/ctypes/__init__.py\", line 519 in string_at\n"
            "  File \"/w/tests/planted_backends.py\", line 34 in crashing_softmax\n"
            "  File \"/w/fuzzer/worker.py\", line 70 in main\n"
            "  File \"/tmp/torchinductor_root/ab/cabq3kzx7u2lmn4op5qrs6tuvw.py\", line 4 in call_0\n\n"
            "Extension modules: numpy\n")
    assert top_frames(dump) == ("string_at:__init__.py", "crashing_softmax:planted_backends.py",
                                "call_<n>:<generated>.py")


def softmax_crash(log_dir) -> Finding:
    """A real segfault in the planted Softmax kernel, in a fresh isolated worker."""
    builder = Builder()
    value = builder.node("Softmax", builder.input("x", DType.float32, (2, 3)), axis=0)
    worker = Worker("tests.planted_backends:PlantedBugs", Limits(timeout=20), log_dir=log_dir)
    try:
        outcome = worker.execute(make_case(builder.graph(value), seed=0))
    finally:
        worker.close()
    return failure_finding(outcome)


def test_a_native_crash_gets_the_same_key_in_two_runs(tmp_path):
    first, second = softmax_crash(tmp_path / "one"), softmax_crash(tmp_path / "two")
    assert first.kind is FindingKind.CRASH
    assert first.signature == second.signature
    assert "@string_at:__init__.py<crashing_softmax:planted_backends.py" in first.signature


def mismatch(error_class: str, operator: str = "") -> Finding:
    details = {"dtype": "float32", "error_class": error_class}
    return Finding(FindingKind.MISMATCH, ("tvm",), Stage.COMPARE, "s",
                   {**details, "first_divergent_op": operator} if operator else details)


def test_mismatch_keys_name_the_first_divergent_operator_once_localized():
    assert signature(mismatch("sign")) == "mismatch/tvm/compare/float32/sign"
    assert signature(mismatch("sign", "Conv")) == "mismatch/tvm/compare/float32/sign/@Conv"


def test_grouping_joins_near_identical_keys_only():
    frames_a = python_error()
    keys = [
        "error/tvm/compile/InternalError/check failed: (n->dtype == t) is false: mismatched dtype in add",
        "error/tvm/compile/InternalError/check failed: (n->dtype == t) is false: mismatched dtype in sub",
        "error/tvm/compile/ValueError/check failed: (n->dtype == t) is false: mismatched dtype in add",
        "error/tvm/run/InternalError/check failed: (n->dtype == t) is false: mismatched dtype in add",
        signature(frames_a),
        signature(python_error(n=3, function="realize")),  # near-identical message, other frames
        signature(mismatch("sign", "Conv")), signature(mismatch("sign", "Add")), signature(mismatch("nan")),
    ]
    groups = group_signatures(keys + keys[:1])
    assert groups[0] == keys[:2]
    assert all([key] in groups for key in keys[2:])
    assert len(groups) == len(keys) - 1


def test_grouping_joins_same_frames_with_different_messages():
    first = signature(python_error())
    second = signature(error(PYTHON_TRACEBACK.format(root="/r", a=1, b=2, c=3, d=4, leaf="ir.py",
                                                     function="make_loader", n=1), "a wholly different message"))
    assert first != second
    assert group_signatures([first, second]) == [[first, second]]
    assert group_signatures([]) == []


def test_a_dtype_width_in_a_message_is_one_bug_whatever_the_width():
    """TVM's LRN mixes a float32 constant into float16 and into float64 arithmetic: one bug."""
    message = ("TypeError: Binary operators must have the same datatype for both operands. However, "
               "R.multiply(lv9, R.const({c}, \"float32\")) uses datatype T.{dtype} on the LHS")
    assert normalize_message(message.format(c=0.5, dtype="float16")) == \
        normalize_message(message.format(c=9.9999997473787516e-05, dtype="float64"))
    assert normalize_message("expected int64, got bool") != normalize_message("expected float32, got bool")
    shaped = "uses datatype T.float32 on the LHS (Type of R.Tensor({}, dtype=\"float32\"))"
    assert normalize_message(shaped.format("(num_nonzero, 4, 6, 2)")) == normalize_message(shaped.format("(7, 2)"))
