"""The findings store of one fuzzing run directory.

Layout: ``RUN_DIR/findings.db`` (SQLite in WAL mode) and content-addressed blobs under
``RUN_DIR/blobs/<sha[:2]>/<sha256>``. A blob is written atomically (temporary file in the
same directory, fsync, rename) before the database row that references it is committed,
so a finding whose ``record_finding`` returned survives a SIGKILL with all its artifacts.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import io
import json
import os
import re
import sqlite3
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import ml_dtypes  # noqa: F401  registers "bfloat16" as a numpy dtype name
import numpy as np

from fuzzer.execution.outcome import Outcome, Stage
from oracles.finding import Finding, FindingKind

DATABASE_NAME = "findings.db"
BLOBS_NAME = "blobs"
SCHEMA_VERSION = 1
BUSY_TIMEOUT_SECONDS = 30.0
# The artifacts of a finding, by name.
MODEL, GRAPH, INPUTS, OUTCOMES, VERSIONS = "model.onnx", "graph.json", "inputs.npz", "outcomes.json", "versions.json"
OUTPUTS_PREFIX = "outputs."  # + backend + ".npz": the outputs a backend produced
ORIGINAL_GRAPH, ORIGINAL_INPUTS = "original.graph.json", "original.inputs.npz"  # of a finding on a rewrite
_DTYPES_MEMBER = "dtypes.json"  # names the true dtype of each array in an npz artifact
_SHA256 = re.compile(r"[0-9a-f]{64}")

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE findings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    test_index INTEGER NOT NULL,
    kind TEXT NOT NULL,
    backends TEXT NOT NULL,
    stage TEXT NOT NULL,
    summary TEXT NOT NULL,
    signature TEXT NOT NULL,
    details TEXT NOT NULL,
    seed INTEGER NOT NULL,
    case_hash TEXT NOT NULL,
    created REAL NOT NULL,
    UNIQUE (test_index, signature)
);
CREATE INDEX findings_kind ON findings (kind);
CREATE TABLE artifacts (
    finding_id INTEGER NOT NULL REFERENCES findings (id),
    name TEXT NOT NULL,
    sha TEXT NOT NULL,
    PRIMARY KEY (finding_id, name)
) WITHOUT ROWID;
CREATE TABLE progress (
    id INTEGER PRIMARY KEY CHECK (id = 0),
    next_index INTEGER NOT NULL,
    tests INTEGER NOT NULL,
    valid INTEGER NOT NULL,
    seconds REAL NOT NULL
);
CREATE TABLE stats (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,
    seconds REAL NOT NULL,
    tests INTEGER NOT NULL,
    valid INTEGER NOT NULL,
    findings INTEGER NOT NULL
);
"""


class StoreError(Exception):
    """A run directory cannot be created, opened, read or written."""


@dataclass(frozen=True)
class StoredFinding:
    """A finding as the store keeps it: ``details`` is the oracle's JSON evidence, and the
    properties below read the parts of it that triage relies on, typed."""

    id: int
    test_index: int
    kind: FindingKind
    backends: tuple[str, ...]
    stage: Stage
    summary: str
    signature: str
    details: dict
    seed: int
    case_hash: str
    created: float
    artifacts: dict[str, str]  # artifact name (the store's: MODEL, GRAPH, ...) -> blob sha256

    @property
    def on_rewrite(self) -> bool:
        """Whether it was found on a metamorphic rewrite (the store keeps the original case too)."""
        return ORIGINAL_GRAPH in self.artifacts

    @property
    def compared_with(self) -> str:
        """The backend a value or type disagreement was judged against ("" for failures)."""
        return self._evidence("compared_with")

    @property
    def baseline(self) -> str:
        """The configuration a slowdown was timed against ("" for other kinds)."""
        return self._evidence("baseline")

    @property
    def message(self) -> str:
        """A failure's error message ("" for disagreements)."""
        return self._evidence("message")

    @property
    def dtype(self) -> str:
        """The dtype of the output that names a disagreement ("" for failures)."""
        return self._evidence("dtype")

    @property
    def root_cause(self) -> str:
        """A TIR finding's root-cause key, else its signature."""
        return self._evidence("root_cause") or self.signature

    def _evidence(self, key: str) -> str:
        return str(self.details.get(key) or "")


@dataclass(frozen=True)
class Progress:
    next_index: int  # first test index not yet known to be complete (resume point)
    tests: int
    valid: int
    seconds: float


class RunStore:
    """Findings, artifacts, progress and statistics of one run; safe to share between threads."""

    def __init__(self, run_dir: Path, connection: sqlite3.Connection, config: dict) -> None:
        self.run_dir = run_dir
        self.config = config
        self._connection = connection
        self._lock = threading.Lock()

    @classmethod
    def create(cls, run_dir: Path, config: dict) -> RunStore:
        """Make a new store in ``run_dir`` (created if needed) holding ``config``."""
        run_dir = Path(run_dir)
        database = run_dir / DATABASE_NAME
        config_text = _to_json(config)
        try:
            (run_dir / BLOBS_NAME).mkdir(parents=True, exist_ok=True)
            os.close(os.open(database, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        except FileExistsError:
            if database.exists():
                raise StoreError(
                    f"{run_dir} already holds a tcfuzz run; pass --resume to continue it "
                    "or choose a new directory"
                ) from None
            raise StoreError(
                f"cannot create run directory {run_dir}: a file is in the way; choose another path"
            ) from None
        except OSError as error:
            raise StoreError(
                f"cannot create run directory {run_dir}: {error.strerror}; choose a writable path"
            ) from None
        try:
            connection = _connect(database)
            with _closed_on_error(connection):
                connection.executescript(f"BEGIN; {_SCHEMA} COMMIT;")
                # The store counts as complete once user_version is set, together with the config.
                connection.execute("BEGIN")
                connection.execute("INSERT INTO meta VALUES ('config', ?)", (config_text,))
                connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                connection.execute("COMMIT")
        except sqlite3.Error as error:
            raise StoreError(f"cannot create {database}: {error}; choose a writable path with free space") from None
        return cls(run_dir, connection, json.loads(config_text))

    @classmethod
    def open(cls, run_dir: Path, *, read_only: bool = False) -> RunStore:
        """Open the store of an existing run, for resuming it or reporting on it.

        ``read_only`` never writes and never blocks a campaign writing the run meanwhile.
        """
        run_dir = Path(run_dir)
        database = run_dir / DATABASE_NAME
        if not database.is_file():
            raise StoreError(
                f"{run_dir} is not a tcfuzz run directory (no {DATABASE_NAME}); "
                "pass a directory made by `tcfuzz fuzz`"
            )
        try:
            connection = _connect(database, read_only=read_only)
            with _closed_on_error(connection):
                version = connection.execute("PRAGMA user_version").fetchone()[0]
                if version == 0:
                    raise StoreError(
                        f"{database} is incomplete (its creation was interrupted); "
                        f"delete {run_dir} and start a new run"
                    )
                if version != SCHEMA_VERSION:
                    raise StoreError(
                        f"{database} has store format {version} but this tcfuzz reads format "
                        f"{SCHEMA_VERSION}; use the tcfuzz version that made the run"
                    )
                (config_text,) = connection.execute("SELECT value FROM meta WHERE key = 'config'").fetchone()
        except sqlite3.Error as error:
            raise StoreError(f"cannot read {database}: {error}; pass a directory made by `tcfuzz fuzz`") from None
        return cls(run_dir, connection, json.loads(config_text))

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            self._connection.close()

    # -- metadata -------------------------------------------------------------------------

    def set_meta(self, key: str, value: Any) -> None:
        """Store a JSON-serializable ``value`` under ``key``, replacing any earlier one."""
        with self._transaction(write=True) as connection:
            connection.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, _to_json(value)))

    def get_meta(self, key: str, default: Any = None) -> Any:
        with self._transaction() as connection:
            row = connection.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    # -- blobs ----------------------------------------------------------------------------

    def put_blob(self, data: bytes) -> str:
        """Write ``data`` durably under its SHA-256 (a no-op when present) and return the hash."""
        sha = hashlib.sha256(data).hexdigest()
        path = self._blob_path(sha)
        if path.exists():
            return sha
        try:
            path.parent.mkdir(exist_ok=True)
            descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            try:
                with os.fdopen(descriptor, "wb") as file:
                    os.fchmod(file.fileno(), 0o644)
                    file.write(data)
                    file.flush()
                    os.fsync(file.fileno())
                os.replace(temporary, path)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temporary)
                raise
            _fsync_directory(path.parent)
        except OSError as error:
            raise StoreError(
                f"cannot write blob {sha} under {path.parent}: {error.strerror}; free disk space"
            ) from None
        return sha

    def get_blob(self, sha: str) -> bytes:
        """The bytes stored under ``sha``, checked against it."""
        blobs = self.run_dir / BLOBS_NAME
        try:
            data = self._blob_path(sha).read_bytes()
        except FileNotFoundError:
            raise StoreError(f"blob {sha} is missing from {blobs}; the run directory is incomplete") from None
        if hashlib.sha256(data).hexdigest() != sha:
            raise StoreError(f"blob {sha} in {blobs} is corrupt (wrong SHA-256); the run directory is damaged")
        return data

    def delete_blob(self, sha: str) -> None:
        """Remove a blob that no row names any more (absent already is fine)."""
        with contextlib.suppress(FileNotFoundError):
            self._blob_path(sha).unlink()

    def _blob_path(self, sha: str) -> Path:
        if not _SHA256.fullmatch(sha):
            raise StoreError(f"{sha!r} is not a blob hash; pass 64 lowercase hex digits")
        return self.run_dir / BLOBS_NAME / sha[:2] / sha

    # -- findings -------------------------------------------------------------------------

    def record_finding(
        self,
        *,
        test_index: int,
        seed: int,
        finding: Finding,
        graph_json: str,
        case_hash: str,
        model: bytes,
        inputs: Mapping[str, np.ndarray],
        outcomes: Sequence[Outcome],
        versions: Mapping[str, str],
        original: tuple[str, Mapping[str, np.ndarray]] | None = None,
    ) -> int | None:
        """Store a finding with its artifacts (and, for a finding on a metamorphic rewrite, the
        ``original`` case's graph JSON and inputs); the new id, or None if this test already
        reported it."""
        outcome_records = {outcome.backend: _outcome_record(outcome) for outcome in outcomes}
        artifacts = {
            MODEL: model,
            GRAPH: graph_json.encode(),
            INPUTS: arrays_to_npz(inputs),
            OUTCOMES: _to_json(outcome_records).encode(),
            **{
                f"{OUTPUTS_PREFIX}{outcome.backend}.npz": arrays_to_npz(outcome.outputs)
                for outcome in outcomes
                if outcome.outputs
            },
            VERSIONS: _to_json(dict(sorted(versions.items()))).encode(),
        }
        if original is not None:
            artifacts[ORIGINAL_GRAPH] = original[0].encode()
            artifacts[ORIGINAL_INPUTS] = arrays_to_npz(original[1])
        shas = {name: self.put_blob(data) for name, data in artifacts.items()}
        row = (
            test_index, finding.kind.value, _to_json(list(finding.backends)), finding.stage.value, finding.summary,
            finding.signature, _to_json(dict(finding.details)), seed, case_hash, time.time(),
        )
        with self._transaction(write=True) as connection:
            cursor = connection.execute(
                "INSERT OR IGNORE INTO findings (test_index, kind, backends, stage, summary, signature, details,"
                " seed, case_hash, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
            if cursor.rowcount == 0:
                return None
            finding_id = cursor.lastrowid
            connection.executemany(
                "INSERT INTO artifacts VALUES (?, ?, ?)", [(finding_id, name, sha) for name, sha in shas.items()]
            )
        return finding_id

    def findings(self, kind: str | None = None) -> list[StoredFinding]:
        """All findings in id order, or only those of ``kind``."""
        where, parameters = ("WHERE kind = ?", (kind,)) if kind is not None else ("", ())
        with self._transaction() as connection:
            rows = connection.execute(f"SELECT * FROM findings {where} ORDER BY id", parameters).fetchall()
            artifact_rows = connection.execute(
                f"SELECT finding_id, name, sha FROM artifacts WHERE finding_id IN "
                f"(SELECT id FROM findings {where}) ORDER BY finding_id, name",
                parameters,
            ).fetchall()
        artifacts: dict[int, dict[str, str]] = {}
        for finding_id, name, sha in artifact_rows:
            artifacts.setdefault(finding_id, {})[name] = sha
        return [
            StoredFinding(
                id=row["id"], test_index=row["test_index"], kind=FindingKind(row["kind"]),
                backends=tuple(json.loads(row["backends"])), stage=Stage(row["stage"]), summary=row["summary"],
                signature=row["signature"], details=json.loads(row["details"]), seed=row["seed"],
                case_hash=row["case_hash"], created=row["created"], artifacts=artifacts.get(row["id"], {}),
            )
            for row in rows
        ]

    def load_inputs(self, finding_id: int) -> dict[str, np.ndarray]:
        """The inputs of the test case behind a finding."""
        return npz_to_arrays(self.get_blob(self._artifacts(finding_id)[INPUTS]))

    def load_model(self, finding: StoredFinding) -> bytes:
        """The ONNX model (or the program, in TIR mode) of the test case behind ``finding``."""
        return self.get_blob(finding.artifacts[MODEL])

    def load_graph_json(self, finding: StoredFinding) -> str:
        """The graph JSON of the test case behind ``finding``; "" when it has none."""
        sha = finding.artifacts.get(GRAPH)
        return self.get_blob(sha).decode() if sha else ""

    def load_original(self, finding: StoredFinding) -> tuple[str, dict[str, np.ndarray]]:
        """The graph JSON and inputs of the case a finding on a metamorphic rewrite rewrote."""
        return (self.get_blob(finding.artifacts[ORIGINAL_GRAPH]).decode(),
                npz_to_arrays(self.get_blob(finding.artifacts[ORIGINAL_INPUTS])))

    def load_outputs(self, finding_id: int) -> dict[str, dict[str, np.ndarray]]:
        """Backend name -> the outputs it produced, for each backend that produced any."""
        prefix, suffix = OUTPUTS_PREFIX, ".npz"
        return {
            name[len(prefix):-len(suffix)]: npz_to_arrays(self.get_blob(sha))
            for name, sha in self._artifacts(finding_id).items()
            if name.startswith(prefix) and name.endswith(suffix)
        }

    def _artifacts(self, finding_id: int) -> dict[str, str]:
        with self._transaction() as connection:
            rows = connection.execute("SELECT name, sha FROM artifacts WHERE finding_id = ?", (finding_id,)).fetchall()
        if not rows:
            raise StoreError(f"no finding {finding_id} in {self.run_dir}; list findings with `tcfuzz report`")
        return {name: sha for name, sha in rows}

    def counts_by_kind(self) -> dict[str, int]:
        with self._transaction() as connection:
            rows = connection.execute("SELECT kind, COUNT(*) FROM findings GROUP BY kind ORDER BY kind").fetchall()
        return {kind: count for kind, count in rows}

    # -- progress and statistics ----------------------------------------------------------

    def save_progress(self, progress: Progress) -> None:
        with self._transaction(write=True) as connection:
            connection.execute(
                "INSERT OR REPLACE INTO progress VALUES (0, ?, ?, ?, ?)",
                (progress.next_index, progress.tests, progress.valid, progress.seconds),
            )

    def progress(self) -> Progress:
        """The last saved progress, or all zeros when none was saved."""
        with self._transaction() as connection:
            row = connection.execute("SELECT next_index, tests, valid, seconds FROM progress").fetchone()
        return Progress(0, 0, 0, 0.0) if row is None else Progress(*row)

    def record_stats(self, *, seconds: float, tests: int, valid: int, findings: int) -> None:
        """Append one point of the run's time series (``seconds`` since the run began)."""
        with self._transaction(write=True) as connection:
            connection.execute(
                "INSERT INTO stats (time, seconds, tests, valid, findings) VALUES (?, ?, ?, ?, ?)",
                (time.time(), seconds, tests, valid, findings),
            )

    def stats(self) -> list[dict]:
        """The time series in recording order: dicts with time, seconds, tests, valid, findings."""
        with self._transaction() as connection:
            rows = connection.execute("SELECT time, seconds, tests, valid, findings FROM stats ORDER BY id").fetchall()
        return [dict(row) for row in rows]

    def ensure_tables(self, schema: str) -> None:
        """Create the tables of a store extension (``CREATE TABLE IF NOT EXISTS`` statements).

        Extensions (triage, corpus, coverage) keep their own tables in the same database, so a
        run directory stays one file plus its blobs.
        """
        with self._lock:
            try:
                self._connection.executescript(f"BEGIN IMMEDIATE; {schema} COMMIT;")
            except sqlite3.Error as error:
                if self._connection.in_transaction:
                    self._connection.execute("ROLLBACK")
                raise StoreError(f"cannot extend {self.run_dir / DATABASE_NAME}: {error}") from None

    def transaction(self, *, write: bool = False) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """A transaction on the run's database for store extensions (rows are ``sqlite3.Row``)."""
        return self._transaction(write=write)

    @contextlib.contextmanager
    def _transaction(self, *, write: bool = False) -> Iterator[sqlite3.Connection]:
        """One transaction, serialized with every other use of the connection.

        Reads take no write lock, so a reader in another process never blocks the campaign.
        """
        with self._lock:
            try:
                self._connection.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                try:
                    yield self._connection
                except BaseException:
                    if self._connection.in_transaction:  # SQLite may have rolled back already
                        self._connection.execute("ROLLBACK")
                    raise
                self._connection.execute("COMMIT")
            except sqlite3.OperationalError as error:
                raise StoreError(
                    f"{self.run_dir / DATABASE_NAME} failed: {error}; check free disk space and that "
                    "no other process holds the run locked"
                ) from None


def _connect(database: Path, *, read_only: bool = False) -> sqlite3.Connection:
    target = f"{database.resolve().as_uri()}?mode=ro" if read_only else database
    connection = sqlite3.connect(
        target, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False, uri=read_only
    )
    with _closed_on_error(connection):
        connection.row_factory = sqlite3.Row
        if read_only:
            return connection
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = NORMAL")
        connection.execute("PRAGMA foreign_keys = ON")
    return connection


@contextlib.contextmanager
def _closed_on_error(connection: sqlite3.Connection) -> Iterator[None]:
    try:
        yield
    except BaseException:
        connection.close()
        raise


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, enum.Enum):
        return value.value
    raise TypeError(f"{type(value).__name__} is not JSON-serializable")


def _to_json(value: Any) -> str:
    return json.dumps(value, default=_json_default)


def _outcome_record(outcome: Outcome) -> dict[str, Any]:
    return {
        "status": outcome.status.value,
        "stage": outcome.stage.value if outcome.stage is not None else None,
        "error_type": outcome.error_type,
        "message": outcome.message,
        "traceback": outcome.traceback,
        "stderr_tail": outcome.stderr_tail,
        "exit_signal": outcome.exit_signal,
        "seconds": outcome.seconds,
        "effects": list(outcome.effects),
        "outputs": {
            name: {"dtype": np.asarray(array).dtype.name, "shape": list(np.shape(array))}
            for name, array in outcome.outputs.items()
        },
    }


def arrays_to_npz(arrays: Mapping[str, np.ndarray]) -> bytes:
    """An npz archive of ``arrays``, as ``np.savez`` writes it plus a ``dtypes.json`` member.

    Dtypes that the .npy header cannot name (such as bfloat16) are stored as unsigned
    integers of the same width; ``dtypes.json`` records every array's true dtype.
    """
    buffer = io.BytesIO()
    dtypes = {}
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, value in arrays.items():
            array = np.asarray(value)
            dtypes[name] = array.dtype.name
            header_dtype = np.lib.format.descr_to_dtype(np.lib.format.dtype_to_descr(array.dtype))
            if header_dtype != array.dtype:
                array = array.view(f"uint{array.dtype.itemsize * 8}")
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, array, allow_pickle=False)
        archive.writestr(_DTYPES_MEMBER, json.dumps(dtypes))
    return buffer.getvalue()


def npz_to_arrays(data: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        dtypes = json.loads(archive[_DTYPES_MEMBER])
        return {name: archive[name].view(np.dtype(dtype)) for name, dtype in dtypes.items()}
