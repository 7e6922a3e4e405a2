"""Tests of the findings store, including that no reported finding is lost to SIGKILL."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

from fuzzer.store import Progress, RunStore, StoreError
from fuzzer.execution.outcome import Outcome, Stage, Status
from oracles.finding import Finding, FindingKind
from tests.helpers import ROOT as REPO_ROOT

GRAPH_JSON = '{"nodes": [], "note": "the store keeps graph JSON as text"}'
ARTIFACT_NAMES = {"model.onnx", "graph.json", "inputs.npz", "outcomes.json", "outputs.ort.npz", "versions.json"}


def make_finding(signature: str = "mismatch:Add", **details: object) -> Finding:
    return Finding(
        kind=FindingKind.MISMATCH, backends=("tvm",), stage=Stage.COMPARE,
        summary="tvm disagrees with ort on Add", details=details, signature=signature,
    )


def make_outcomes(outputs: dict[str, np.ndarray]) -> list[Outcome]:
    return [
        Outcome(backend="ort", status=Status.OK, stage=Stage.RUN, outputs=outputs, seconds=0.25),
        Outcome(
            backend="tvm", status=Status.CRASH, stage=Stage.COMPILE, error_type="SIGSEGV",
            message="worker died", stderr_tail="Segmentation fault", exit_signal=11, seconds=1.5,
        ),
    ]


def record(store: RunStore, test_index: int, finding: Finding, inputs: dict, outputs: dict) -> int | None:
    return store.record_finding(
        test_index=test_index, seed=1234 + test_index, finding=finding, graph_json=GRAPH_JSON,
        case_hash="c" * 64, model=b"onnx model " + str(test_index).encode(), inputs=inputs,
        outcomes=make_outcomes(outputs), versions={"tvm": "0.27", "onnxruntime": "1.18"},
    )


@pytest.fixture
def store(tmp_path: Path):
    with RunStore.create(tmp_path / "run", {"seed": 7, "backends": ["ort", "tvm"]}) as store:
        yield store


def test_create_then_open_keeps_config_and_meta(tmp_path: Path) -> None:
    run_dir = tmp_path / "nested" / "run"
    with RunStore.create(run_dir, {"seed": 7, "backends": ("ort", "tvm")}) as store:
        store.set_meta("versions", {"numpy": np.__version__})
        store.set_meta("versions", {"numpy": "2.0"})
        assert store.config == {"seed": 7, "backends": ["ort", "tvm"]}
    assert (run_dir / "findings.db").is_file() and (run_dir / "blobs").is_dir()
    with RunStore.open(run_dir) as reopened:
        assert reopened.run_dir == run_dir
        assert reopened.config == {"seed": 7, "backends": ["ort", "tvm"]}
        assert reopened.get_meta("versions") == {"numpy": "2.0"}
        assert reopened.get_meta("absent") is None
        assert reopened.get_meta("absent", default=3) == 3


def test_create_refuses_an_existing_store(store: RunStore) -> None:
    with pytest.raises(StoreError, match="already holds a tcfuzz run"):
        RunStore.create(store.run_dir, {})


def test_open_without_a_store_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(StoreError) as raised:
        RunStore.open(tmp_path / "missing")
    message = str(raised.value)
    assert "\n" not in message
    assert "is not a tcfuzz run directory (no findings.db)" in message and "tcfuzz fuzz" in message


def test_create_under_a_regular_file_fails_with_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreError, match="cannot create run directory") as raised:
        RunStore.create(blocker / "run", {})
    assert "\n" not in str(raised.value)


def test_open_of_an_interrupted_creation_fails(tmp_path: Path) -> None:
    (tmp_path / "findings.db").touch()
    with pytest.raises(StoreError, match="incomplete"):
        RunStore.open(tmp_path)


def test_open_of_a_file_that_is_not_a_database_fails(tmp_path: Path) -> None:
    (tmp_path / "findings.db").write_bytes(b"this is not SQLite" * 100)
    with pytest.raises(StoreError, match="cannot read"):
        RunStore.open(tmp_path)


def test_blobs_are_content_addressed_and_idempotent(store: RunStore) -> None:
    data = b"some artifact bytes"
    sha = store.put_blob(data)
    assert sha == hashlib.sha256(data).hexdigest()
    path = store.run_dir / "blobs" / sha[:2] / sha
    assert path.read_bytes() == data
    assert store.put_blob(data) == sha
    assert store.get_blob(sha) == data
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind
    with pytest.raises(StoreError, match="missing"):
        store.get_blob("0" * 64)
    with pytest.raises(StoreError, match="not a blob hash"):
        store.get_blob("../findings.db")


def test_corrupt_blob_is_detected(store: RunStore) -> None:
    sha = store.put_blob(b"original")
    (store.run_dir / "blobs" / sha[:2] / sha).write_bytes(b"tampered")
    with pytest.raises(StoreError, match="corrupt"):
        store.get_blob(sha)


def test_record_finding_round_trips_everything(store: RunStore) -> None:
    inputs = {
        "x": np.arange(6, dtype=np.float32).reshape(2, 3),
        "half": np.array([1.5, -2.0], dtype=ml_dtypes.bfloat16),
        "file": np.array(3, dtype=np.int64),  # a name np.savez would reject as a keyword
    }
    outputs = {"y": np.array([[1.0, np.nan]], dtype=np.float16), "mask": np.array([True, False])}
    finding = make_finding(max_abs_error=np.float32(0.5), index=np.int64(3), where=np.array([1, 2]))
    finding_id = record(store, 5, finding, inputs, outputs)
    assert isinstance(finding_id, int)

    (stored,) = store.findings()
    assert stored.id == finding_id and stored.test_index == 5 and stored.seed == 1239
    assert (stored.kind, stored.stage, stored.backends) == (FindingKind.MISMATCH, Stage.COMPARE, ("tvm",))
    assert not stored.on_rewrite
    assert stored.summary == finding.summary and stored.signature == "mismatch:Add"
    assert stored.details == {"max_abs_error": 0.5, "index": 3, "where": [1, 2]}
    assert stored.case_hash == "c" * 64 and stored.created > 0
    assert set(stored.artifacts) == ARTIFACT_NAMES  # tvm produced no outputs, so no outputs.tvm.npz
    assert store.load_model(stored) == b"onnx model 5" and store.load_graph_json(stored) == GRAPH_JSON
    assert json.loads(store.get_blob(stored.artifacts["versions.json"])) == {"onnxruntime": "1.18", "tvm": "0.27"}

    outcomes = json.loads(store.get_blob(stored.artifacts["outcomes.json"]))
    assert outcomes["ort"]["status"] == "ok" and outcomes["ort"]["stage"] == "run"
    assert outcomes["ort"]["outputs"] == {
        "y": {"dtype": "float16", "shape": [1, 2]}, "mask": {"dtype": "bool", "shape": [2]},
    }
    assert outcomes["tvm"] == {
        "status": "crash", "stage": "compile", "error_type": "SIGSEGV", "message": "worker died", "traceback": "",
        "stderr_tail": "Segmentation fault", "exit_signal": 11, "seconds": 1.5, "outputs": {}, "effects": [],
    }

    loaded_inputs = store.load_inputs(finding_id)
    assert loaded_inputs.keys() == inputs.keys()
    for name, array in inputs.items():
        assert loaded_inputs[name].dtype == array.dtype and loaded_inputs[name].shape == array.shape
        np.testing.assert_array_equal(loaded_inputs[name], array)
    loaded_outputs = store.load_outputs(finding_id)
    assert loaded_outputs.keys() == {"ort"}
    for name, array in outputs.items():
        assert loaded_outputs["ort"][name].dtype == array.dtype
        np.testing.assert_array_equal(loaded_outputs["ort"][name], array)


def test_a_finding_on_a_rewrite_keeps_the_original_case(store: RunStore) -> None:
    original_inputs = {"x": np.arange(3, dtype=np.float16)}
    store.record_finding(test_index=1, seed=1, finding=make_finding(), graph_json=GRAPH_JSON, case_hash="c" * 64,
                         model=b"rewritten", inputs={"x": np.zeros(3, np.float16)}, outcomes=[], versions={},
                         original=('{"original": true}', original_inputs))
    (stored,) = store.findings()
    graph_json, inputs = store.load_original(stored)
    assert stored.on_rewrite and graph_json == '{"original": true}'
    np.testing.assert_array_equal(inputs["x"], original_inputs["x"])


def test_duplicate_finding_of_a_test_is_ignored(store: RunStore) -> None:
    inputs, outputs = {"x": np.zeros(2, np.float32)}, {"y": np.ones(2, np.float32)}
    first = record(store, 1, make_finding("sig-a"), inputs, outputs)
    assert record(store, 1, make_finding("sig-a"), inputs, outputs) is None
    second = record(store, 1, make_finding("sig-b"), inputs, outputs)
    third = record(store, 2, make_finding("sig-a"), inputs, outputs)
    assert len({first, second, third}) == 3 and None not in {first, second, third}
    assert [finding.id for finding in store.findings()] == [first, second, third]
    assert store.counts_by_kind() == {"mismatch": 3}


def test_findings_filter_by_kind_and_count(store: RunStore) -> None:
    inputs = {"x": np.zeros(1, np.float32)}
    crash = Finding(
        kind=FindingKind.CRASH, backends=("tvm",), stage=Stage.COMPILE, summary="tvm crashed", signature="crash",
    )
    crash_id = record(store, 0, crash, inputs, {})
    record(store, 1, make_finding(), inputs, {})
    record(store, 2, make_finding(), inputs, {})
    assert [finding.id for finding in store.findings(kind="crash")] == [crash_id]
    assert set(store.findings(kind="crash")[0].artifacts) == ARTIFACT_NAMES - {"outputs.ort.npz"}
    assert store.findings(kind="hang") == []
    assert store.counts_by_kind() == {"crash": 1, "mismatch": 2}
    with pytest.raises(StoreError, match="no finding 999"):
        store.load_inputs(999)


def test_concurrent_threads_record_every_finding(store: RunStore) -> None:
    inputs, outputs = {"x": np.zeros(3, np.float32)}, {"y": np.ones(3, np.float32)}
    ids: list[int | None] = []

    def worker(first_index: int) -> None:
        for test_index in range(first_index, first_index + 10):
            ids.append(record(store, test_index, make_finding(), inputs, outputs))

    threads = [threading.Thread(target=worker, args=(100 * number,)) for number in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert None not in ids and len(set(ids)) == 40
    assert sorted(finding.id for finding in store.findings()) == sorted(ids)


def test_progress_and_stats_round_trip(store: RunStore) -> None:
    assert store.progress() == Progress(0, 0, 0, 0.0)
    store.save_progress(Progress(next_index=10, tests=10, valid=8, seconds=2.5))
    store.save_progress(Progress(next_index=20, tests=20, valid=17, seconds=5.0))
    assert store.stats() == []
    store.record_stats(seconds=1.0, tests=5, valid=4, findings=0)
    store.record_stats(seconds=2.0, tests=11, valid=9, findings=1)
    store.close()
    with RunStore.open(store.run_dir) as reopened:
        assert reopened.progress() == Progress(next_index=20, tests=20, valid=17, seconds=5.0)
        stats = reopened.stats()
    assert [{key: point[key] for key in ("seconds", "tests", "valid", "findings")} for point in stats] == [
        {"seconds": 1.0, "tests": 5, "valid": 4, "findings": 0},
        {"seconds": 2.0, "tests": 11, "valid": 9, "findings": 1},
    ]
    assert 0 < stats[0]["time"] <= stats[1]["time"]


RECORDER = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    import numpy as np
    from fuzzer.store import RunStore
    from fuzzer.execution.outcome import Outcome, Stage, Status
    from oracles.finding import Finding, FindingKind

    run_dir, first_index = Path(sys.argv[1]), int(sys.argv[2])
    store = RunStore.open(run_dir)
    rng = np.random.default_rng(first_index)
    for test_index in range(first_index, first_index + 100000):
        inputs = {"x": rng.standard_normal((4, 8)).astype(np.float32)}
        outputs = {"y": rng.standard_normal((4, 8)).astype(np.float32)}
        finding = Finding(
            kind=FindingKind.MISMATCH, backends=("tvm",), stage=Stage.COMPARE,
            summary="mismatch", details={"error": float(rng.random())}, signature="mismatch:Add",
        )
        outcomes = [
            Outcome(backend="ort", status=Status.OK, stage=Stage.RUN, outputs=outputs),
            Outcome(backend="tvm", status=Status.CRASH, stage=Stage.RUN, exit_signal=11),
        ]
        finding_id = store.record_finding(
            test_index=test_index, seed=test_index, finding=finding, graph_json='{"index": %d}' % test_index,
            case_hash="%064x" % test_index, model=os.urandom(512), inputs=inputs, outcomes=outcomes,
            versions={"tvm": "0.27"},
        )
        print("reported", finding_id, flush=True)
    """
)


def test_no_reported_finding_is_lost_to_sigkill(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    RunStore.create(run_dir, {"purpose": "sigkill"}).close()
    script = tmp_path / "recorder.py"
    script.write_text(RECORDER)
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    reported: list[int] = []
    for round_number, kill_after in enumerate((7, 23, 41)):
        child = subprocess.Popen(
            [sys.executable, str(script), str(run_dir), str(round_number * 100000)],
            cwd=REPO_ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            for _ in range(kill_after):
                line = child.stdout.readline()
                assert line.startswith("reported "), f"recorder failed: {line!r} {child.stderr.read()}"
                reported.append(int(line.split()[1]))
                if len(reported) == 3 * (round_number + 1):
                    # A reader in another process works while the campaign writes.
                    with RunStore.open(run_dir) as reader:
                        assert {finding.id for finding in reader.findings()} >= set(reported)
            child.send_signal(signal.SIGKILL)
        finally:
            child.kill()
            child.wait()
            child.stdout.close()
            child.stderr.close()
        assert child.returncode == -signal.SIGKILL

        with RunStore.open(run_dir) as store:
            findings = {finding.id: finding for finding in store.findings()}
            for finding_id in reported:
                assert finding_id in findings, f"finding {finding_id} was reported but lost"
                artifacts = findings[finding_id].artifacts
                assert set(artifacts) == ARTIFACT_NAMES
                for sha in artifacts.values():
                    assert hashlib.sha256(store.get_blob(sha)).hexdigest() == sha
                assert store.load_inputs(finding_id)["x"].shape == (4, 8)
                assert store.load_outputs(finding_id)["ort"]["y"].shape == (4, 8)
    assert len(set(reported)) == len(reported) == 7 + 23 + 41


def test_the_test_session_never_caches_in_the_users_home():
    """Module-scoped fixtures run campaigns too: the session's cache is a temporary one."""
    from fuzzer.execution.support import default_cache_dir

    home = Path(os.path.expanduser("~")).resolve()
    assert not default_cache_dir().resolve().is_relative_to(home / ".cache")
    assert os.environ["XDG_CACHE_HOME"].startswith(tempfile.gettempdir())
