"""Deduplication keys for findings: equal keys mean "probably the same bug".

A key is readable, e.g. ``crash/tvm/compile/SIGSEGV/segfault in <path> at <hex>``. It keeps
what identifies a bug (kind, backend, stage, exception type, the message with the parts
that vary from run to run removed) and drops the rest.
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
_VOLATILE = (
    (re.compile(r"(?<![\w.])(?:~|\.{1,2})?/[^\s'\"`:,;()\[\]{}]+|\b[a-z]:\\[^\s'\"`]+"), "<path>"),
    (re.compile(r"(['\"`])te?mp[^'\"`]*\1"), "<tmp>"),
    (re.compile(r"\b0x[0-9a-f]+\b|\b(?=[0-9a-f]*\d)[0-9a-f]{8,}\b"), "<hex>"),
    (re.compile(r"_\d+\b"), "_<n>"),
    (re.compile(r"(?<!\w)\d+(?:\.\d+)?(?:e[-+]?\d+)?"), "<n>"),
    (re.compile(r"\s+"), " "),
)


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
    for pattern, placeholder in _VOLATILE:
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


def signature(finding: Finding) -> str:
    """A stable key of at most MAX_LENGTH characters for ``finding``.

    Failures: kind/backend/stage/cause/normalized message. Type and value disagreements:
    kind/backend/stage/dtype/error_class of the output that names the finding. A key too
    long is cut and ends with a short SHA-1 of the whole key, so distinct keys stay distinct.
    """
    details = finding.details
    if finding.kind in _FAILURE_KINDS:
        tail = [failure_cause(details), normalize_message(str(details.get("message", "")))]
    else:
        tail = [str(details.get("dtype", "")), str(details.get("error_class", ""))]
    fields = [finding.kind.value, "+".join(finding.backends), finding.stage.value, *tail]
    key = "/".join(field or "-" for field in fields)
    if len(key) <= MAX_LENGTH:
        return key
    digest = hashlib.sha1(key.encode()).hexdigest()[:8]
    return f"{key[:MAX_LENGTH - len(digest) - 1]}~{digest}"
