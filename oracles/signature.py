"""Deduplication keys for findings: equal keys mean "probably the same bug".

A key is readable, e.g. ``crash/tvm/compile/SIGSEGV/@string_at:__init__.py<misbehave:x.py/
worker killed by sigsegv``. It keeps what identifies a bug (kind, backend, stage, exception
type, the innermost stack frames outside the harness and framework plumbing, the message
with the parts that vary from run to run removed) and drops the rest. Value mismatches
are keyed by the blamed backend, dtype, error class and, once localization has found it,
the first divergent operator. :mod:`triage.grouping` then joins near-identical keys.
"""

from __future__ import annotations

import hashlib
import re
import signal
from typing import Any, Mapping

from oracles.finding import Finding, FindingKind

MAX_LENGTH = 200

_FAILURE_KINDS = frozenset({FindingKind.CRASH, FindingKind.HANG, FindingKind.OOM,
                            FindingKind.ERROR})

# Applied in order to the lowercased headline; earlier patterns protect text from later ones.
# Names that compilers put into messages vary from one test of a bug to the next: tcfuzz's
# value names (v3, x0, w1), Relax variables (lv, lv12, gv), quoted node and tensor names
# ('n3', "node_12"; never a dtype such as "float16") and TIR buffers (T_add). An IR operator
# named in a message (TVM's `unknown intrinsic ... name="tirx.asin"`) is one lowering gap
# whatever the operator: one bug, not one per math function. So is a dtype's width (a float32
# constant mixed into float16 or float64 arithmetic), as the dtype class keys findings.
_IDENTIFIERS = (
    (re.compile(r"(?<![\w.])(?:~|\.{1,2})?/[^\s'\"`:,;()\[\]{}]+|\b[a-z]:\\[^\s'\"`]+"), "<path>"),
    (re.compile(r"(['\"`])te?mp[^'\"`]*\1"), "<tmp>"),
    (re.compile(r"\b(?:lv|gv|alloc|storage)\d*\b|\b[vxwn]\d+\b"), "<name>"),
    (re.compile(r"\br\.const\([^()]*\)"), "<name>"),  # a Relax constant operand is a variable's kin
    (re.compile(r"(['\"`])(?!(?:u?int|float|bfloat|complex)\d)[a-z_][a-z_]*\d+[a-z0-9_]*\1"), r"\1<name>\1"),
    (re.compile(r"\b(b?float|u?int)(?:8|16|32|64)\b"), r"\1<n>"),
    (re.compile(r"(?<=tensor\()\([^()]*\)"), "<shape>"),  # R.Tensor((num_nonzero, 4), ...): symbolic extents too
)
# Also applied to stack frames' names (see _frame_key).
_GENERIC = (
    (re.compile(r"\bt_[a-z]+(?:_[a-z]+)*(?:_\d+)?\b"), "<buffer>"),
    (re.compile(r'(?<=name=)"[a-z_]+(?:\.[a-z0-9_]+)+"'), '"<op>"'),
    (re.compile(r"(?<!\w)\d+\.\d+(?:e[-+]?\d+)?"), "<n>"),  # a decimal's digits are no address
    (re.compile(r"\b0x[0-9a-f]+\b|\b(?=[0-9a-f]*\d)[0-9a-f]{8,}\b"), "<hex>"),
    (re.compile(r"_\d+\b"), "_<n>"),
    (re.compile(r"(?<!\w)\d+(?:\.\d+)?(?:e[-+]?\d+)?"), "<n>"),
    (re.compile(r"\s+"), " "),
)
VOLATILE = _IDENTIFIERS + _GENERIC


def headline(text: str) -> str:
    """The line of an error message that names the error.

    The first non-blank line, unless that is a traceback header, whose error is last.
    """
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return ""
    return lines[-1] if lines[0].lower().startswith("traceback") else lines[0]


def normalize_message(text: str) -> str:
    """The headline of ``text``, lowercased, with paths, temporary names, addresses and
    numbers replaced by placeholders, so that reruns of one bug normalize equally."""
    normalized = headline(text).lower()
    for pattern, placeholder in VOLATILE:
        normalized = pattern.sub(placeholder, normalized)
    return normalized.strip()


def failure_cause(details: Mapping[str, Any]) -> str:
    """The exception type of a failure, or the name of the signal that killed it."""
    if details.get("error_type"):
        return str(details["error_type"])
    number = details.get("exit_signal")
    if number is None:
        return ""
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


# ---------------------------------------------------------------- stack frames

TOP_FRAMES = 3  # innermost frames kept in a key
# Frames of tcfuzz itself: the same bug reached through another harness path is the same bug.
_HARNESS = re.compile(r"(?:^|/)(?:fuzzer|oracles|triage|corpus)/")
# Framework plumbing every error passes through: it names no bug.
FRAMEWORK_MACHINERY = (
    "torch/_dynamo/eval_frame.py", "torch/_dynamo/convert_frame.py", "torch/_dynamo/utils.py",
    "tvm_ffi/", "tvm/_ffi/", "onnxruntime/capi/onnxruntime_inference_collection.py",
    "contextlib.py", "functools.py", "<frozen ",
)
# ``File "x.py", line 3, in f`` (Python and TVM tracebacks) or ``File "x.py", line 3 in f`` (faulthandler).
_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line \d+,? in (?P<function>.+?)\s*$', re.MULTILINE)
_TEMPLATE_ARGUMENTS = re.compile(r"(?<=\w)<[^<>]*>")  # not "<module>" or "<lambda>"
_GENERATED_NAME = re.compile(r"\b[a-z0-9]{20,}\b")  # Inductor's and TVM's hashed file names
_PYTHON_HEADER = "Traceback (most recent call last):"
_FAULTHANDLER_HEADER = re.compile(r"^(?:Current thread|Thread) 0x[0-9a-f]+ \(most recent call first\):$",
                                  re.MULTILINE)


def _frame_key(path: str, function: str) -> str:
    """``function:basename``, stable across runs: no line, directory, C++ return type,
    parameters or template arguments, and generated names' hashes and numbers replaced."""
    while (stripped := _TEMPLATE_ARGUMENTS.sub("", function)) != function:
        function = stripped
    words = function.split("(", 1)[0].split()  # a C++ frame: "tvm::Type tvm::relax::Infer(const Call&)"
    function = words[-1] if words else function.strip()
    text = _GENERATED_NAME.sub("<generated>", f"{function}:{path.rsplit('/', 1)[-1]}".lower())
    for pattern, placeholder in _GENERIC:  # addresses and numbers; paths are already gone
        text = pattern.sub(placeholder, text)
    return text.replace("/", "")


def _innermost_first(text: str) -> list[tuple[str, str]]:
    """(path, function) of the frames of the last stack in ``text``, innermost first."""
    python_at = text.rfind(_PYTHON_HEADER)
    faulthandler = list(_FAULTHANDLER_HEADER.finditer(text))
    current = [m for m in faulthandler if m.group(0).startswith("Current")] or faulthandler
    if current and current[-1].start() > python_at:
        block = text[current[-1].end():]
        block = block.split("\n\n", 1)[0]  # faulthandler ends each thread's stack with a blank line
        return [(m["file"], m["function"]) for m in _FRAME.finditer(block)]
    block = text[python_at:] if python_at >= 0 else text
    return [(m["file"], m["function"]) for m in _FRAME.finditer(block)][::-1]


def top_frames(text: str, count: int = TOP_FRAMES) -> tuple[str, ...]:
    """The ``count`` innermost frames of the last stack trace in ``text`` (a Python or TVM
    traceback, or a faulthandler dump) outside the harness and framework machinery."""
    kept = []
    for path, function in _innermost_first(text):
        if _HARNESS.search(path) or any(part in path for part in FRAMEWORK_MACHINERY):
            continue
        kept.append(_frame_key(path, function))
        if len(kept) == count:
            break
    return tuple(kept)


def failure_frames(details: Mapping[str, Any]) -> tuple[str, ...]:
    """The top frames of a failure: from its traceback, else the message (TVM errors carry
    their own backtrace), else the stderr tail (a native crash's faulthandler dump)."""
    for key in ("traceback", "message", "stderr_tail"):
        if frames := top_frames(str(details.get(key) or "")):
            return frames
    return ()


# ---------------------------------------------------------------- keys


def signature(finding: Finding) -> str:
    """A stable key of at most MAX_LENGTH characters for ``finding``.

    Failures: kind/backend/stage/cause[/@frames]/normalized message, where frames are
    the innermost frames outside harness and framework (``function:file``, innermost first,
    joined by ``<``). Slowdowns: kind/backend/stage/its baseline/the graph's operator types.
    Type and value disagreements: kind/backend/stage/dtype/error_class of
    the output that names the finding[/@first divergent operator]. A key too long is cut
    and ends with a short SHA-1 of the whole key, so distinct keys stay distinct.
    """
    details = finding.details
    if finding.kind in _FAILURE_KINDS:
        frames = failure_frames(details)
        tail = [failure_cause(details), *(["@" + "<".join(frames)] if frames else []),
                normalize_message(str(details.get("message", "")))]
    elif finding.kind is FindingKind.SLOWDOWN:
        tail = [f"than {details.get('baseline', '')}", "+".join(details.get("operators", ()))]
    else:
        tail = [str(details.get("dtype", "")), str(details.get("error_class", ""))]
        if details.get("first_divergent_op"):
            tail.append(f"@{details['first_divergent_op']}")
    fields = [finding.kind.value, "+".join(finding.backends), finding.stage.value, *tail]
    key = "/".join(field or "-" for field in fields)
    if len(key) <= MAX_LENGTH:
        return key
    digest = hashlib.sha1(key.encode()).hexdigest()[:8]
    return f"{key[:MAX_LENGTH - len(digest) - 1]}~{digest}"
