"""Fault injection: every way a backend can die becomes an Outcome, and the worker restarts."""

from __future__ import annotations

import signal
import time

import pytest

from fuzzer.graph.ir import DType
from fuzzer.generation.generator import GeneratorOptions, generate_case
from fuzzer.execution.isolation import BatchCancelled, Limits, Worker, WorkerGroup, WorkerStartError
from fuzzer.execution.outcome import Stage, Status

OPTIONS = GeneratorOptions(nodes=3, dtypes=frozenset({DType.float32}))
LIMITS = Limits(timeout=3.0, memory_mb=350)
# The memory bomb needs time to touch 350 MiB: on a fresh virtual machine, first touches of
# memory took up to 2.9 s, and at a 3-s limit it was once read as a hang.
BOMB_LIMITS = Limits(timeout=10.0, memory_mb=350)


def case(index: int):
    return generate_case(index, OPTIONS, index)


@pytest.mark.parametrize("backend, status, error_type, exit_signal", [
    ("Segfault", Status.CRASH, "SIGSEGV", signal.SIGSEGV),
    ("Abort", Status.CRASH, "SIGABRT", signal.SIGABRT),
    ("Hang", Status.HANG, "Timeout", None),
    ("MemoryBomb", Status.OOM, "MemoryLimit", None),
    ("Exit", Status.CRASH, "WorkerExit", None),
])
def test_fault_becomes_outcome_and_worker_recovers(tmp_path, backend, status, error_type, exit_signal):
    worker = Worker(f"tests.fault_backends:{backend}", BOMB_LIMITS if backend == "MemoryBomb" else LIMITS,
                    log_dir=tmp_path)
    try:
        assert worker.execute(case(0)).status is Status.OK
        fatal = worker.execute(case(1))  # index 1 triggers the fault
        assert fatal.status is status
        assert fatal.error_type == error_type
        assert fatal.exit_signal == exit_signal
        assert fatal.stage is Stage.RUN
        if backend == "Segfault":
            assert "Fatal Python error: Segmentation fault" in fatal.stderr_tail
        assert worker.restarts == 1
        after = worker.execute(case(2))  # a fresh worker takes the next test
        assert after.status is Status.OK and after.outputs
    finally:
        worker.close()


def test_a_packed_batch_that_hangs_falls_back_to_one_case_at_a_time_without_a_finding(tmp_path):
    """A pack gets one test's time limit, not one per case, and a pack too slow to finish says
    nothing about any of its cases: each then runs alone and gets its own outcome."""
    worker = Worker("tests.fault_backends:SlowPack", LIMITS, log_dir=tmp_path)
    try:
        worker.submit([case(index) for index in range(4)])
        outcomes = worker.collect()
        assert [o.status for o in outcomes] == [Status.OK] * 4
        assert worker.restarts == 1
    finally:
        worker.close()


def test_a_crash_only_when_packed_is_blamed_on_the_batch_first_case(tmp_path):
    worker = Worker("tests.fault_backends:CrashingPack", LIMITS, log_dir=tmp_path)
    try:
        worker.submit([case(index) for index in range(4)])
        outcomes = worker.collect()
        assert [o.status for o in outcomes] == [Status.CRASH] + [Status.OK] * 3
        assert "only when compiled together with the other 3 cases" in outcomes[0].message
    finally:
        worker.close()


def test_wrong_answer_is_blamed_by_the_differential_oracle(tmp_path):
    from oracles.verdict import differential
    from oracles.finding import FindingKind

    with WorkerGroup(["onnx-ref", "tests.fault_backends:WrongAnswer"], LIMITS, tmp_path) as group:
        for index, expect_finding in ((0, False), (1, True)):
            test = case(index)
            findings = differential(test.output_types(), group.execute(test), reference="onnx-ref")
            assert bool(findings) is expect_finding
        assert {f.kind for f in findings} == {FindingKind.MISMATCH}
        assert {f.backends for f in findings} == {("fault-wrong",)}


def test_group_runs_backends_side_by_side(tmp_path):
    with WorkerGroup(["onnx-ref", "tests.fault_backends:Segfault", "ort-none"], LIMITS, tmp_path) as group:
        outcomes = group.execute(case(1))
        assert [o.status for o in outcomes] == [Status.OK, Status.CRASH, Status.OK]
        assert [o.status for o in group.execute(case(2))] == [Status.OK] * 3


def test_unknown_plugin_fails_to_start_with_one_line(tmp_path):
    worker = Worker("tests.fault_backends:NoSuchBackend", LIMITS, log_dir=tmp_path)
    with pytest.raises(WorkerStartError, match="NoSuchBackend") as error:
        worker.start()
    assert "\n" not in str(error.value)


def test_log_names_of_long_backend_specs_stay_short_and_distinct():
    from fuzzer.execution.isolation import log_name

    long_a = 'triage.culprit:{"backend": "inductor", "off": [' + ", ".join(f'"switch{i}"' for i in range(40)) + "]}"
    long_b = long_a.replace("switch39", "switch41")
    assert log_name("ort-none@old") == "ort-none_old"
    assert len(log_name(long_a)) == 80 and log_name(long_a) != log_name(long_b)


def test_a_cancelled_batch_kills_its_workers_and_has_no_outcomes(tmp_path):
    """A batch abandoned at a campaign's deadline ends at once, not when the hang times out."""
    with WorkerGroup(["onnx-ref", "tests.fault_backends:Hang"], Limits(timeout=60.0), tmp_path) as group:
        started = time.monotonic()
        with pytest.raises(BatchCancelled):
            group.execute_batch([case(1)], cancelled=lambda: time.monotonic() - started > 1.0)
        assert time.monotonic() - started < 10
        assert group.workers[1].process is None  # killed; the next batch restarts it
        assert [o.status for o in group.execute(case(2))] == [Status.OK, Status.OK]
