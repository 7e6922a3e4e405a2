"""Per-signature triage status, kept in the run's own database (table ``signatures``).

One row per distinct signature: its group of near-identical signatures, status, how many
findings carry it, when it was first and last seen, the representative finding that triage
works on, and what triage learned (reproducibility rate, culprit, reduced finding, repro
script). Status is one of:

* ``new``: not in the baseline of known signatures;
* ``known``: in the baseline (a file of signatures or another run's findings);
* ``flaky``: re-runs reproduce it only some of the time (the campaign saw it, so a rate
  below 1 makes it flaky, 0 included);
* ``fixed``: a replay on the installed compilers no longer shows it;
* ``triage-failed``: triage raised an exception on it (the note ``failed`` has the one-line
  error); the next triage tries it again.
"""

from __future__ import annotations

import enum
import json
import sqlite3
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Iterable, Mapping

from fuzzer.store import DATABASE_NAME, RunStore, StoreError, StoredFinding
from triage.grouping import group_signatures

SCHEMA = """
CREATE TABLE IF NOT EXISTS signatures (
    signature TEXT PRIMARY KEY,
    signature_group TEXT NOT NULL,
    status TEXT NOT NULL,
    count INTEGER NOT NULL,
    first_seen REAL NOT NULL,
    last_seen REAL NOT NULL,
    representative INTEGER NOT NULL,
    reproducibility REAL,
    culprit TEXT,
    reduced_finding INTEGER,
    repro_path TEXT,
    notes TEXT NOT NULL DEFAULT '{}'
);
"""


class Status(enum.Enum):
    NEW = "new"
    KNOWN = "known"
    FLAKY = "flaky"
    FIXED = "fixed"
    TRIAGE_FAILED = "triage-failed"  # an exception in tcfuzz while triaging it (its notes say which)


@dataclass(frozen=True)
class SignatureRecord:
    signature: str
    signature_group: str  # the first signature of its group of near-identical ones
    status: Status
    count: int
    first_seen: float
    last_seen: float
    representative: int  # the finding triage works on
    reproducibility: float | None = None
    culprit: dict | None = None  # a triage.culprit.Culprit as a dict
    reduced_finding: int | None = None
    repro_path: str | None = None
    notes: dict | None = None  # per triage step: why it was skipped or what it found

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> SignatureRecord:
        values = dict(row)
        values["status"] = Status(values["status"])
        values["culprit"] = json.loads(values["culprit"]) if values["culprit"] else None
        values["notes"] = json.loads(values["notes"])
        return cls(**values)


def open_table(store: RunStore) -> None:
    store.ensure_tables(SCHEMA)


def graph_size(store: RunStore, finding: StoredFinding) -> int:
    """How big a finding's test case is (bytes of its graph JSON): the smallest case of a
    signature is the cheapest to reduce and read."""
    return len(store.load_graph_json(finding))


def sync_signatures(store: RunStore, baseline: Iterable[str] = ()) -> list[SignatureRecord]:
    """Bring the table up to date with the run's findings and return every record.

    New signatures get a row (status ``known`` when in ``baseline``, else ``new``); existing
    rows get their count, last-seen time, group and representative refreshed. ``new`` and
    ``known`` follow the baseline; ``flaky`` and ``fixed`` stay as triage or replay set them.
    """
    open_table(store)
    baseline = frozenset(baseline)
    by_signature: dict[str, list[StoredFinding]] = {}
    for finding in store.findings():
        by_signature.setdefault(finding.signature, []).append(finding)
    group_of = {member: group[0] for group in group_signatures(by_signature) for member in group}
    known_groups = {group_of[s] for s in by_signature if s in baseline}
    with store.transaction(write=True) as connection:
        existing = {row["signature"]: Status(row["status"])
                    for row in connection.execute("SELECT signature, status FROM signatures")}
    rows = []
    for signature, findings in by_signature.items():
        known = signature in baseline or group_of[signature] in known_groups
        status = existing.get(signature)
        if status is None or status in (Status.NEW, Status.KNOWN):
            status = Status.KNOWN if known else Status.NEW
        representative = min(findings, key=lambda f: (graph_size(store, f), f.id)).id
        rows.append((signature, group_of[signature], status.value, len(findings),
                     min(f.created for f in findings), max(f.created for f in findings), representative))
    with store.transaction(write=True) as connection:
        connection.executemany(
            "INSERT INTO signatures (signature, signature_group, status, count, first_seen, last_seen, "
            "representative) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (signature) DO UPDATE SET "
            "signature_group = excluded.signature_group, status = excluded.status, count = excluded.count, "
            "first_seen = excluded.first_seen, last_seen = excluded.last_seen, "
            "representative = excluded.representative", rows)
    return signature_records(store)


def signature_records(store: RunStore) -> list[SignatureRecord]:
    """Every record, in order of first appearance; none for a run never triaged (this
    reads only, so it works on a store opened read-only)."""
    with store.transaction() as connection:
        if connection.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'signatures'").fetchone() is None:
            return []
        rows = connection.execute("SELECT * FROM signatures ORDER BY first_seen, signature").fetchall()
    return [SignatureRecord.from_row(row) for row in rows]


_COLUMNS = {f.name for f in fields(SignatureRecord)} - {"signature"}


def update_signature(store: RunStore, signature: str, **values: Any) -> None:
    """Set some columns of one record (``status`` a Status, ``culprit`` and ``notes`` dicts)."""
    unknown = set(values) - _COLUMNS
    if unknown:
        raise KeyError(f"signatures has no column {sorted(unknown)[0]!r}")
    encoded = {name: (value.value if isinstance(value, Status) else
                      json.dumps(value) if name in ("culprit", "notes") and value is not None else value)
               for name, value in values.items()}
    assignments = ", ".join(f"{name} = ?" for name in encoded)
    with store.transaction(write=True) as connection:
        connection.execute(f"UPDATE signatures SET {assignments} WHERE signature = ?",
                           (*encoded.values(), signature))


def add_note(store: RunStore, record: SignatureRecord, step: str, note: Any) -> SignatureRecord:
    """Record what triage step ``step`` found for ``record``; the updated record."""
    notes = {**(record.notes or {}), step: note}
    update_signature(store, record.signature, notes=notes)
    return SignatureRecord(**{**{f.name: getattr(record, f.name) for f in fields(record)}, "notes": notes})


def load_baseline(path: Path) -> frozenset[str]:
    """Known signatures: a JSON list (or ``{"signatures": [...]}``, such as a report's
    summary.json), a text file with one
    signature per line (``#`` starts a comment), or another run (its directory or its
    findings.db). Raises ValueError naming the problem."""
    path = Path(path)
    if path.is_dir() or path.name == DATABASE_NAME:
        try:
            with RunStore.open(path if path.is_dir() else path.parent, read_only=True) as store:
                return frozenset(f.signature for f in store.findings())
        except StoreError as error:
            raise ValueError(str(error)) from None
    try:
        text = path.read_text()
    except OSError as error:
        raise ValueError(f"cannot read baseline {path} ({error.strerror}); pass a JSON list, a text file "
                         "of signatures or a run directory") from None
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"baseline {path} is not valid JSON ({error.msg} at line {error.lineno})") from None
        entries = data.get("signatures") if isinstance(data, Mapping) else data
        signatures = [e.get("signature") if isinstance(e, Mapping) else e for e in entries or ()]
        if not (isinstance(entries, list) and all(isinstance(s, str) for s in signatures)):
            raise ValueError(f'baseline {path} must hold a list of signatures (strings, or objects with a '
                             f'"signature", as in a report\'s summary.json) or {{"signatures": [...]}}')
        return frozenset(signatures)
    return frozenset(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))
