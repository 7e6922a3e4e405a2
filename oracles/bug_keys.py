"""Keys that join findings into likely bugs before triage: the compiler behind a backend,
its role (target or judge), and the cluster key of a finding. The campaign counts likely
bugs with them as it runs; triage (``triage.bugs``) builds its bug list on them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any, Mapping

from fuzzer.execution.backends import UnknownBackend, load_backend
from oracles.finding import Finding
from oracles.signature import failure_cause, normalize_message

FAILURE_KINDS = frozenset({"crash", "hang", "oom", "error"})
TYPE_KINDS = frozenset({"shape_mismatch", "dtype_mismatch"})  # a wrong type, whatever the values
# a TIR miscompile's key ends in its culprit: "primitives|pass edits" (fuzzer.tir.campaign.tir_root_cause)
MISCOMPILE_KEY = re.compile(r"/(?:mismatch|error/out-of-bounds write)/(?P<culprit>[^/]*)$")


# ONNX Runtime wraps the error of a node inside a control-flow body in one such line per level.
_ORT_WRAPPERS = re.compile(r"(?:non-zero status code returned while running \w+ node\. name:'[^']*' status message: )+")


def error_headline(message: str) -> str:
    """The normalized headline of an error message (IR, tensor and node names removed), at
    its innermost error: the node that failed inside an If's branch, not the If and it."""
    return _ORT_WRAPPERS.sub("", normalize_message(message))[:160]


def dtype_class(dtype: str) -> str:
    if not dtype:
        return ""
    if "float" in dtype:
        return "float"
    if dtype == "bool":
        return "bool"
    return "int" if "int" in dtype else dtype


@dataclass(frozen=True)
class BackendFacts:
    compiler: str
    role: str  # "target" or "judge"
    optimizing: bool
    type_checks: tuple[tuple[str, str], ...] = ()  # Backend.type_checks

    def caught_type(self, message: str) -> str | None:
        """The type kind (shape or dtype mismatch) that ``message``, a run-time check's error, caught."""
        return next((kind for pattern, kind in self.type_checks if re.search(pattern, message, re.IGNORECASE)), None)


def backend_facts(name: str, specs: Mapping[str, str] = {}) -> BackendFacts:
    """What a finding's backend name says about the compiler behind it; ``specs`` maps the
    names of a run's plugin backends to their specs (``module:Class``)."""
    return _facts(specs.get(name, name))


@cache
def _facts(spec: str) -> BackendFacts:
    if spec.startswith("tvm-tir"):
        return BackendFacts("tvm", "target", True)
    try:
        backend = load_backend(spec)
    except (UnknownBackend, ImportError):
        return BackendFacts(spec, "target", True)
    return BackendFacts(backend.compiler_name(), backend.role, backend.optimizing, backend.type_checks)


def cluster_key(finding: Finding | Any, judges_as_targets: bool = False,
                specs: Mapping[str, str] = {}) -> str:
    """The key that joins one compiler's signatures before triage: role, compiler, kind, then
    the error's cause and headline, or the dtype class and error class (``finding`` is a
    Finding or a stored one)."""
    facts = backend_facts(finding.backends[0], specs)
    details = finding.details
    kind = getattr(finding.kind, "value", finding.kind)
    if kind in FAILURE_KINDS:
        tail = [failure_cause(details), error_headline(str(details.get("message", "")))]
    elif kind == "slowdown":
        tail = [str(details.get("baseline", "")), "+".join(details.get("operators", ()))]
    else:
        tail = [dtype_class(str(details.get("dtype", ""))), str(details.get("error_class", ""))]
        if details.get("first_divergent_op"):
            tail.append(f"@{details['first_divergent_op']}")
    role = "target" if judges_as_targets else facts.role
    return "/".join([role, facts.compiler, kind, *tail])


def join_subsumed_culprits(grouped: dict[str, list]) -> dict[str, list]:
    """TIR miscompile clusters (wrong values, writes outside a buffer) joined into the cluster
    of the smallest culprit they contain: ``cache_write,loop_partition`` joins
    ``loop_partition`` when that culprit alone miscompiles (the extra primitive is one
    shrinking could not drop, not another bug). A write outside a buffer and wrong values
    are two faces of one wrong store, so wrong values also join an out-of-bounds write of
    the same culprit."""
    def parts(key: str) -> tuple[str, frozenset, frozenset] | None:
        found = MISCOMPILE_KEY.search(key)
        if found is None or found["culprit"] in ("reference", "unblamed", "default"):
            return None
        primitives, _, edits = found["culprit"].partition("|")
        return (key[:found.start("culprit")], frozenset(filter(None, primitives.split(","))),
                frozenset(filter(None, edits.split(","))))

    culprits = {key: found for key in grouped if (found := parts(key)) is not None}

    def contains(big: str, small: str) -> bool:
        (big_kind, big_primitives, big_edits), (kind, primitives, edits) = culprits[big], culprits[small]
        if big == small or not (primitives <= big_primitives and edits <= big_edits):
            return False
        same = (primitives, edits) == (big_primitives, big_edits)
        return not same or (big_kind.endswith("/mismatch/") and not kind.endswith("/mismatch/"))

    joined: dict[str, list] = {}
    for key, members in grouped.items():
        smaller = [other for other in culprits if key in culprits and culprits[other][1] and contains(key, other)]
        minimal = [k for k in smaller if not any(contains(k, o) for o in smaller)]
        target = max(minimal, key=lambda k: (len(grouped[k]), k)) if minimal else key
        joined.setdefault(target, []).extend(members)
    return joined
