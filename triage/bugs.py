"""Bugs: findings joined by root cause, a level above signatures.

A signature says what one configuration saw; a bug is one root cause in one compiler, with
every configuration that shows it. Two keys join signatures into bugs:

* the **cluster key**, known before triage: the blamed compiler (not the configuration:
  ort-none and ort-all are one ONNX Runtime), the finding kind, and for failures the
  exception type and error headline with IR and node names removed, for value and type
  disagreements the output's dtype class and error class. Triage works on one
  representative signature per cluster.
* the **root-cause fingerprint**, known once the representative is reduced: the compiler,
  kind, dtype class, headline (failures) and the reduced graph's operator sequence (an
  operator named by the kernel it shares with its kin, ``OpSpec.kernel``). A failure whose
  reduced graph already diverges in shape or dtype before the failing node (an error
  downstream of a shape bug) takes the fingerprint of that divergence, so consequences join
  their cause. Clusters with one fingerprint are one bug.

TIR findings are keyed by ``fuzzer.tir.campaign.tir_root_cause`` (a mismatch by its shrunk
culprit, a failure by the TVM function that raised and its headline).
A bug blamed on a judge (``Backend.role == "judge"``) is a reference issue, not a compiler
bug; a bug whose reduced graph breaks the ONNX specification is an invalid test.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from fuzzer.store import DATABASE_NAME, RunStore, StoredFinding, StoreError
from fuzzer.execution.backends import UnknownBackend
from fuzzer.graph.ops import get_spec
from oracles.bug_keys import (FAILURE_KINDS, MISCOMPILE_KEY, TYPE_KINDS, backend_facts, cluster_key, dtype_class,
                              error_headline, join_subsumed_culprits)
from oracles.signature import failure_cause
from triage.db import SignatureRecord, Status, load_baseline, signature_records
from oracles.judge_defects import known_defect

KIND_ORDER = ("crash", "oom", "hang", "error", "shape_mismatch", "dtype_mismatch", "mismatch", "opt_mismatch",
              "nondeterminism", "metamorphic", "slowdown")  # triage order: what takes a compiler down first
CATEGORIES = ("bug", "reference-issue", "invalid-test", "unreproduced")
STATUS_ORDER = ("new", "flaky", "triage-failed", "known", "fixed")  # most urgent first
FAILING_STATUSES = frozenset({"new", "flaky", "triage-failed"})  # a compiler bug with one fails a CI job
UNBLAMED_TIR_CASE = "tvm-tir:case"  # a TIR case that failed as a whole (fuzzer.tir.campaign.TirCampaign.record)


def root_cause_fingerprint(finding: StoredFinding, notes: Mapping | None, judges_as_targets: bool = False,
                           specs: Mapping[str, str] = {}) -> str | None:
    """The fingerprint of a triaged representative (see the module doc), or None before
    its reduction has finished."""
    notes = notes or {}
    reduction = notes.get("reduction", {})
    ops = reduction.get("ops")
    facts = backend_facts(finding.backends[0], specs)
    role = "target" if judges_as_targets else facts.role
    origin = notes.get("origin") or {}
    if origin.get("kind") in TYPE_KINDS:  # a consequence: the bug is the type divergence upstream,
        # known even where the reduction ran out of time
        return "/".join([role, facts.compiler, origin["kind"], "@" + "+".join(origin["ops"])])
    if not ops or not (reduction.get("done") or len(ops) == 1):  # one operator: as reduced as it gets
        return None
    if finding.kind in FAILURE_KINDS and (caught := facts.caught_type(finding.message)):
        # a run-time check that caught a wrong type: the bug that other configurations return
        return "/".join([role, facts.compiler, caught, "@" + "+".join(map(kernel_of, ops))])
    if finding.kind in FAILURE_KINDS:
        tail = [failure_cause(finding.details), error_headline(finding.message)]
    elif finding.kind in TYPE_KINDS or all(places_values(op) for op in ops):
        tail = []  # a wrong type, or values in the wrong places, whatever their dtype
    else:
        tail = [dtype_class(finding.dtype)]
    return "/".join([role, facts.compiler, finding.kind, *tail, "@" + "+".join(map(kernel_of, ops))])


def places_values(op: str) -> bool:
    """Whether ``op`` only places input values in its output (movement, gathers, scatters):
    exact, with no arithmetic, no choice by value, no conversion and no bounded result. A
    wrong value it returns is in the wrong place, in every dtype alike."""
    try:
        spec = get_spec(op)
    except KeyError:  # an operator of another tcfuzz release
        return False
    return (spec.exact and not (spec.min_max or spec.integer_arithmetic or spec.ties or spec.type_only)
            and spec.dtype_attr is None and spec.value_range is None)


def kernel_of(op: str) -> str:
    """The implementation that an operator shares with its kin (``OpSpec.kernel``), or the operator."""
    try:
        return get_spec(op).kernel or op
    except KeyError:  # an operator of another tcfuzz release
        return op


def bug_id(fingerprint: str) -> str:
    return "B" + hashlib.sha1(fingerprint.encode()).hexdigest()[:7]


@dataclass(frozen=True)
class Bug:
    """One root cause: its findings, the configurations that show it, and what triage learned."""

    id: str
    compiler: str
    category: str  # one of CATEGORIES
    kind: str
    status: str  # one of STATUS_ORDER
    summary: str  # of the representative finding
    configurations: tuple[str, ...]
    signatures: tuple[str, ...]
    fingerprints: tuple[str, ...]  # every key it is known by (cluster keys and the root-cause one)
    representative: str  # the signature triage worked on
    findings: int
    scope: str  # "optimizer": only optimizing configurations show it; "every configuration"; "one configuration"
    culprit: str | None = None
    reduced_ops: tuple[str, ...] = ()
    verified: bool = False
    repro: str | None = None  # relative to the run directory
    report: str | None = None
    reproducibility: float | None = None
    triage_error: str | None = None
    known_defect: str | None = None  # a reference issue that is a known judge defect (oracles.judge_defects)
    first_test: int = 0
    # regression range (triage.bisect.Regression.to_dict): "text", "introduced", "fixed", "tried"
    regression: dict | None = field(default=None, compare=False)

    def to_dict(self) -> dict:
        return {"id": self.id, "compiler": self.compiler, "configurations": list(self.configurations),
                "category": self.category, "kind": self.kind, "culprit": self.culprit,
                "reduced_ops": list(self.reduced_ops), "verified": self.verified, "repro": self.repro,
                "report": self.report, "findings": self.findings, "status": self.status, "scope": self.scope,
                "summary": self.summary, "signatures": list(self.signatures),
                "fingerprints": list(self.fingerprints), "reproducibility": self.reproducibility,
                "triage_error": self.triage_error, "known_defect": self.known_defect, "regression": self.regression}


def triage_priority(key: str, findings: Sequence[StoredFinding]) -> tuple:
    """Triage order of a cluster: targets before judges, crashes before mismatches, big first."""
    kind = findings[0].kind
    return (key.startswith("judge/"), KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER),
            -len(findings))


def clusters(findings: Iterable[StoredFinding], judges_as_targets: bool = False, tir_key=None,
             specs: Mapping[str, str] = {}) -> dict[str, list[StoredFinding]]:
    """The run's findings by cluster key, clusters in triage order (see :func:`triage_priority`).
    ``tir_key(finding)`` keys TIR findings instead of :func:`cluster_key`; their miscompiles
    join the smallest culprit they contain, so triage writes one script per bug."""
    grouped: dict[str, list[StoredFinding]] = {}
    for finding in findings:
        key = tir_key(finding) if tir_key is not None else cluster_key(finding, judges_as_targets, specs)
        grouped.setdefault(key, []).append(finding)
    if tir_key is not None:
        grouped = join_subsumed_culprits(grouped)
    return dict(sorted(grouped.items(), key=lambda item: triage_priority(item[0], item[1])))


def representative_signature(findings: Sequence[StoredFinding], specs: Mapping[str, str] = {}) -> str:
    """The signature of a cluster that triage works on: one blamed on a single program (not a
    TIR case whose failure no variant showed alone, which gets no script), the most frequent,
    then the one shown by the least optimizing configuration (the simplest to reduce and explain)."""
    counts = Counter(f.signature for f in findings)
    by_signature = {f.signature: f for f in findings}
    return min(counts, key=lambda s: (by_signature[s].backends[0] == UNBLAMED_TIR_CASE, -counts[s],
                                      backend_facts(by_signature[s].backends[0], specs).optimizing, s))


def scope_of(configurations: Sequence[str], specs: Mapping[str, str] = {}) -> str:
    """Which configurations of its compiler show a bug: one, only optimizing ones, or all."""
    if len(configurations) == 1:
        return "one configuration"
    optimizing = all(backend_facts(c, specs).optimizing for c in configurations)
    return "optimizer" if optimizing else "every configuration"


def _status(members: Sequence[SignatureRecord | None], keys: Iterable[str], known: frozenset[str],
            triage_error: str | None) -> str:
    if known & set(keys):
        return "known"
    statuses = {record.status for record in members if record is not None}
    if triage_error:
        return "triage-failed"
    if statuses and statuses <= {Status.FIXED}:
        return "fixed"
    if Status.FLAKY in statuses:
        return "flaky"
    if statuses and statuses <= {Status.KNOWN, Status.FIXED}:
        return "known"
    return "new"


def build_bugs(findings: Sequence[StoredFinding], records: Mapping[str, SignatureRecord], *,
               known: frozenset[str] = frozenset(), judges_as_targets: bool = False, tir_key=None,
               specs: Mapping[str, str] = {}) -> list[Bug]:
    """The bugs of a run: its ``findings`` clustered, with triage's ``records`` by signature,
    clusters whose representatives reduced to one fingerprint joined. ``known`` holds the
    fingerprints of earlier runs' bugs (and known signatures: a bug with one is known)."""
    by_fingerprint: dict[str, list[tuple[str, list[StoredFinding]]]] = {}
    grouped = clusters(findings, judges_as_targets, tir_key, specs)
    for key, members in grouped.items():
        representative = representative_signature(members, specs)
        record = records.get(representative)
        stored = next(f for f in members if f.signature == representative)
        fingerprint = (None if tir_key is not None else
                       root_cause_fingerprint(stored, record.notes if record else None, judges_as_targets, specs))
        by_fingerprint.setdefault(fingerprint or key, []).append((key, members))
    bugs = [_bug(fingerprint, joined, records, known, judges_as_targets, specs)
            for fingerprint, joined in by_fingerprint.items()]
    bugs.sort(key=lambda bug: (CATEGORIES.index(bug.category), STATUS_ORDER.index(bug.status),
                               KIND_ORDER.index(bug.kind) if bug.kind in KIND_ORDER else len(KIND_ORDER),
                               -bug.findings))
    return bugs


def _bug(fingerprint: str, joined: list[tuple[str, list[StoredFinding]]], records: Mapping[str, SignatureRecord],
         known: frozenset[str], judges_as_targets: bool, specs: Mapping[str, str]) -> Bug:
    """One bug from its clusters. The first (in triage order) that is not a consequence of
    another speaks for it; a bug seen only through its consequences is described by the
    divergence upstream that they share."""
    members = [f for _, cluster in joined for f in cluster]

    def notes_of(cluster: list[StoredFinding]) -> dict:
        record = records.get(representative_signature(cluster, specs))
        return (record.notes if record else None) or {}

    speaker = next((cluster for _, cluster in joined if not (notes_of(cluster).get("origin") or {}).get("kind")),
                   joined[0][1])
    representative = representative_signature(speaker, specs)
    stored = next(f for f in members if f.signature == representative)
    record = records.get(representative)
    notes = notes_of(speaker)
    origin = notes.get("origin") or {}
    facts = backend_facts(stored.backends[0], specs)
    validity = notes.get("validity") or {}
    reruns = notes.get("reproducibility") or {}
    category = ("invalid-test" if validity.get("valid") is False else
                "reference-issue" if facts.role == "judge" and not judges_as_targets else
                "unreproduced" if reruns.get("runs") and not reruns.get("reproduced") else "bug")
    configurations = tuple(sorted({b for f in members for b in f.backends}))
    signatures = tuple(dict.fromkeys(f.signature for f in members))
    fingerprints = tuple(dict.fromkeys([fingerprint, *(key for key, _ in joined)]))
    repro_note = notes.get("repro") or {}
    culprit = (record.culprit or {}).get("description") if record and record.culprit else None
    miscompile = MISCOMPILE_KEY.search(fingerprint) if stored.backends[0].startswith("tvm-tir") else None
    if miscompile is not None:  # a TIR miscompile's key is its culprit
        culprit = "shrunk to " + miscompile["culprit"]
    triage_error = (notes.get("failed") or {}).get("error")
    reduced_ops = tuple(origin.get("ops") or (notes.get("reduction") or {}).get("ops") or ())
    defect = (known_defect(stored.backends[0], reduced_ops, stored.dtype)
              if category == "reference-issue" else None)
    if defect is not None:
        known = known | {fingerprint}
    summary = stored.summary
    if origin.get("kind"):
        summary += f" (a consequence: {origin['op']} already returns {origin.get('summary', 'a wrong type')})"
    return Bug(
        id=bug_id(fingerprint), compiler=facts.compiler, category=category, kind=origin.get("kind") or stored.kind,
        status=_status([records.get(s) for s in signatures], _known_by(fingerprint, joined, signatures), known,
                       triage_error),
        summary=summary, configurations=configurations, signatures=signatures,
        fingerprints=fingerprints, representative=representative, findings=len(members),
        scope=scope_of(configurations, specs), culprit=culprit,
        reduced_ops=reduced_ops, known_defect=defect.defect if defect else None,
        verified=bool(repro_note.get("verified")), repro=record.repro_path if record else None,
        report=str(Path(record.repro_path).with_name("report.md")) if record and record.repro_path else None,
        reproducibility=record.reproducibility if record else None, triage_error=triage_error,
        first_test=min(f.test_index for f in members), regression=notes.get("regression"))


def _known_by(fingerprint: str, joined: list[tuple[str, list[StoredFinding]]], signatures: Sequence[str]) -> tuple:
    """The keys that make a bug known: its root-cause fingerprint once reduced (a cluster key
    is coarse: another bug of the same compiler, kind and error class shares it), else its
    cluster keys and signatures."""
    if fingerprint not in {key for key, _ in joined}:
        return (fingerprint,)
    return (*(key for key, _ in joined), *signatures)


def run_bugs(store, known: frozenset[str] = frozenset(), judges_as_targets: bool = False) -> list[Bug]:
    """The bugs of the run in ``store`` (read only: works while a campaign writes it)."""
    records = {record.signature: record for record in signature_records(store)}
    tir = store.config.get("mode") == "tir"
    return build_bugs(store.findings(), records, known=known, judges_as_targets=judges_as_targets,
                      tir_key=tir_key_of(store) if tir else None, specs={} if tir else run_backend_specs(store.config))


def tir_key_of(store):
    """The cluster key of a TIR run's findings (it reads their stored records)."""
    def tir_key(finding: StoredFinding) -> str:
        return tir_cluster_key(finding, store.load_graph_json(finding))
    return tir_key


def run_backend_specs(config: Mapping) -> dict[str, str]:
    """A run's backends' specs by the names its findings carry (plugins are ``module:Class``)."""
    from triage.reproducibility import backend_specs

    try:
        return backend_specs(config)
    except (UnknownBackend, ImportError, KeyError, TypeError):
        return {}


def tir_cluster_key(finding: StoredFinding, graph_json: bytes) -> str:
    """A TIR finding's root-cause key, computed from its record (so that a run keeps up with
    the rules of the tcfuzz reading it)."""
    from fuzzer.tir.campaign import TIR_BUG_PREFIX, tir_root_cause

    return TIR_BUG_PREFIX + tir_root_cause(finding.kind, finding.details, json.loads(graph_json))


def load_known(path) -> frozenset[str]:
    """Known bug fingerprints and signatures from ``path``: another run (its directory or
    findings.db), a report's summary.json (its ``bugs`` and ``signatures``), a JSON list or
    a text file of keys. Raises ValueError naming the problem."""
    path = Path(path)
    keys = load_baseline(path)
    if path.is_dir() or path.name == DATABASE_NAME:
        try:
            with RunStore.open(path if path.is_dir() else path.parent, read_only=True) as store:
                return keys | {key for bug in run_bugs(store) for key in bug.fingerprints}
        except StoreError as error:
            raise ValueError(str(error)) from None
    if path.suffix == ".json":
        data = json.loads(path.read_text())
        if isinstance(data, dict):
            keys |= {key for bug in data.get("bugs") or () if isinstance(bug, dict)
                     for key in bug.get("fingerprints") or ()}
    return keys
