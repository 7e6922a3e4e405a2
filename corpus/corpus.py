"""A fuzzing corpus: graphs kept for the coverage they reach, in a directory that a killed
process cannot corrupt.

A corpus directory is a store (:class:`fuzzer.store.RunStore`, so a campaign's run
directory can hold its corpus too): graph JSON and inputs are content-addressed blobs
written atomically before the SQLite (WAL) row that names them is committed. An entry is
keyed by its graph's content hash and keeps its coverage fingerprint, where it came from
and how often the scheduler picked it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

from fuzzer.graph.onnx_import import ImportRejected, load_onnx_graph
from fuzzer.store import DATABASE_NAME, RunStore, arrays_to_npz, npz_to_arrays
from fuzzer.generation.generator import GeneratorOptions
from fuzzer.graph.ir import Graph
from fuzzer.generation.mutate import admit
from fuzzer.graph.rejected import Unsatisfiable

_SCHEMA = """
CREATE TABLE IF NOT EXISTS corpus_entries (
    hash TEXT PRIMARY KEY,
    inputs_sha TEXT,
    fingerprint TEXT NOT NULL,
    origin TEXT NOT NULL,
    nodes INTEGER NOT NULL,
    hits INTEGER NOT NULL DEFAULT 0,
    added REAL NOT NULL
) WITHOUT ROWID;
"""


@dataclass(frozen=True)
class CorpusEntry:
    hash: str  # the graph's content hash, also the sha of its JSON blob
    graph: Graph
    fingerprint: frozenset[int]
    origin: str
    hits: int  # times the scheduler picked it
    added: float  # Unix time


@dataclass(frozen=True)
class MinimizeResult:
    entries_before: int
    entries_after: int
    coverage_before: int  # size of the union of fingerprints
    coverage_after: int
    removed: tuple[str, ...]  # hashes


@dataclass(frozen=True)
class ImportResult:
    imported: tuple[str, ...]  # file names
    duplicates: tuple[str, ...]  # file names whose graph the corpus already held
    rejected: tuple[str, ...]  # one line per file: "NAME: reason"


class Corpus:
    """Entries of one corpus directory; see the module docstring."""

    def __init__(self, store: RunStore) -> None:
        self.store = store
        store.ensure_tables(_SCHEMA)

    @classmethod
    def open(cls, path: Path) -> Corpus:
        """The corpus in ``path``, created (with its directory) when absent; StoreError when
        the path cannot hold one."""
        path = Path(path)
        if (path / DATABASE_NAME).is_file():
            return cls(RunStore.open(path))
        return cls(RunStore.create(path, {"kind": "corpus"}))

    def __enter__(self) -> Corpus:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.store.close()

    def add(self, graph: Graph, fingerprint: frozenset[int], *, origin: str,
            inputs: Mapping[str, np.ndarray] | None = None) -> bool:
        """Keep ``graph``; False (and nothing changes) when the corpus already holds it."""
        graph_sha = self.store.put_blob(graph.to_json().encode())
        inputs_sha = self.store.put_blob(arrays_to_npz(inputs)) if inputs is not None else None
        with self.store.transaction(write=True) as connection:
            cursor = connection.execute(
                "INSERT OR IGNORE INTO corpus_entries (hash, inputs_sha, fingerprint, origin, nodes, added)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (graph_sha, inputs_sha, json.dumps(sorted(fingerprint)), origin, len(graph.nodes), time.time()))
            return cursor.rowcount == 1

    def entries(self) -> list[CorpusEntry]:
        """Every entry, oldest first."""
        with self.store.transaction() as connection:
            rows = connection.execute(
                "SELECT hash, fingerprint, origin, hits, added FROM corpus_entries ORDER BY added, hash").fetchall()
        return [CorpusEntry(row["hash"], Graph.from_json(self.store.get_blob(row["hash"]).decode()),
                            frozenset(json.loads(row["fingerprint"])), row["origin"], row["hits"], row["added"])
                for row in rows]

    def inputs(self, entry_hash: str) -> dict[str, np.ndarray] | None:
        """The inputs stored with an entry, or None when it has none."""
        with self.store.transaction() as connection:
            row = connection.execute("SELECT inputs_sha FROM corpus_entries WHERE hash = ?", (entry_hash,)).fetchone()
        if row is None or row["inputs_sha"] is None:
            return None
        return npz_to_arrays(self.store.get_blob(row["inputs_sha"]))

    def record_pick(self, entry_hash: str) -> None:
        with self.store.transaction(write=True) as connection:
            connection.execute("UPDATE corpus_entries SET hits = hits + 1 WHERE hash = ?", (entry_hash,))

    def minimize(self) -> MinimizeResult:
        """Keep a small set of entries whose fingerprints cover the union of all of them
        (greedy set cover: most new coverage first, then fewer nodes, then oldest); remove
        the rest. Entries without a fingerprint (never measured, such as imported seeds)
        are kept."""
        with self.store.transaction() as connection:
            rows = connection.execute(
                "SELECT hash, fingerprint, nodes FROM corpus_entries ORDER BY added, hash").fetchall()
        fingerprints = {row["hash"]: frozenset(json.loads(row["fingerprint"])) for row in rows}
        nodes = {row["hash"]: row["nodes"] for row in rows}
        union = frozenset().union(*fingerprints.values())
        kept = [h for h, f in fingerprints.items() if not f]
        uncovered, candidates = set(union), [h for h, f in fingerprints.items() if f]
        while uncovered:
            best = max(candidates, key=lambda h: (len(fingerprints[h] & uncovered), -nodes[h]))
            kept.append(best)
            candidates.remove(best)
            uncovered -= fingerprints[best]
        removed = tuple(h for h in fingerprints if h not in set(kept))
        self._remove(removed)
        return MinimizeResult(len(rows), len(kept), len(union),
                              len(frozenset().union(*(fingerprints[h] for h in kept))), removed)

    def _remove(self, hashes: tuple[str, ...]) -> None:
        """Delete entries, then the blobs that nothing else names (a kill in between only
        leaves unreferenced blobs behind)."""
        with self.store.transaction(write=True) as connection:
            inputs = [row[0] for h in hashes for row in connection.execute(
                "SELECT inputs_sha FROM corpus_entries WHERE hash = ? AND inputs_sha IS NOT NULL", (h,))]
            connection.executemany("DELETE FROM corpus_entries WHERE hash = ?", [(h,) for h in hashes])
        with self.store.transaction() as connection:
            named = {row[0] for row in connection.execute(
                "SELECT hash FROM corpus_entries UNION SELECT inputs_sha FROM corpus_entries "
                "UNION SELECT sha FROM artifacts")}
        for sha in {*hashes, *inputs} - named:
            self.store.delete_blob(sha)

    def import_onnx_dir(self, directory: Path, options: GeneratorOptions | None = None) -> ImportResult:
        """Add every ``*.onnx`` in ``directory`` (sorted by name) as a seed without a
        fingerprint. A file that is malformed, uses an operator without a tcfuzz spec, or
        does not suit ``options`` (opset, element and FLOP budgets) is rejected with one
        line naming it and the reason; the others are imported."""
        options = options or GeneratorOptions()
        imported, duplicates, rejected = [], [], []
        for path in sorted(Path(directory).glob("*.onnx")):
            try:
                graph = load_onnx_graph(path)
                admit(graph, graph, options)
            except (ImportRejected, Unsatisfiable) as error:
                rejected.append(f"{path.name}: {error}")
                continue
            added = self.add(graph, frozenset(), origin=f"import:{path.name}")
            (imported if added else duplicates).append(path.name)
        return ImportResult(tuple(imported), tuple(duplicates), tuple(rejected))
