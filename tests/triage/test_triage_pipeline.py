"""Triage of a small planted run: statuses and baselines, an idempotent pipeline, and the
triage, repro, replay and reduce commands with their exit codes."""

from __future__ import annotations

import json
import time

import pytest

from fuzzer.store import RunStore
from fuzzer.cli import main
from tests.quality.planted_ort import focused_campaign
from triage.db import Status, load_baseline, signature_records, sync_signatures, update_signature
from triage import pipeline
from triage.pipeline import STEPS, isolated, replay_run, slug, triage_run


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    directory = tmp_path_factory.mktemp("triage") / "run"
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TCFUZZ_CACHE_DIR", str(cache))
        snapshot = focused_campaign(directory, "PlantedBroadcast", {"Add", "Mul", "Relu"}, max_tests=24, nodes=3)
    assert len(snapshot.signatures) == 1
    return directory


def test_baselines_load_from_json_text_and_runs(tmp_path, run):
    (tmp_path / "known.json").write_text(json.dumps({"signatures": ["a/b"]}))
    (tmp_path / "known.txt").write_text("# known\na/b\n\nc/d\n")
    assert load_baseline(tmp_path / "known.json") == {"a/b"}
    assert load_baseline(tmp_path / "known.txt") == {"a/b", "c/d"}
    assert len(load_baseline(run)) == 1
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_baseline(tmp_path / "bad.json")


def test_statuses_follow_the_baseline_but_keep_fixed(tmp_path, run):
    with RunStore.open(run) as store:
        (record,) = sync_signatures(store, baseline={"unrelated/signature"})
        assert record.status is Status.NEW and record.count >= 1
        (record,) = sync_signatures(store, baseline={record.signature})
        assert record.status is Status.KNOWN
        update_signature(store, record.signature, status=Status.FIXED)
        (record,) = sync_signatures(store)
        assert record.status is Status.FIXED
        update_signature(store, record.signature, status=Status.NEW)


class SteppedClock:
    """``time`` for triage.pipeline whose clock a test moves forward."""

    def __init__(self) -> None:
        self.offset = 0.0

    def monotonic(self) -> float:
        return time.monotonic() + self.offset


def test_triage_stops_between_steps_when_its_time_is_spent_then_goes_on_and_is_idempotent(run):
    """A budget spent during a cluster's first step (a hang's re-runs can take minutes) begins
    no further step of it, so `make fuzz` and `tcfuzz ci` keep their time; the next triage goes
    on from there and writes a verified script; one more does nothing."""
    clock = SteppedClock()
    measured = STEPS["reproducibility"]

    def slow_reproducibility(triage, record, stored):
        done = measured(triage, record, stored)
        clock.offset += 7200  # two hours pass
        return done

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pipeline, "time", clock)
        patch.setitem(STEPS, "reproducibility", slow_reproducibility)
        cut = triage_run(run, reruns=1, time_budget=30, total_time=3600)
    assert cut.steps_run == 1 and cut.out_of_time == 1
    first = triage_run(run, reruns=1, time_budget=30)
    (record,) = first.records
    assert first.steps_run == len(STEPS) - 1 and first.out_of_time == 0 and record.notes["repro"]["verified"]
    assert (run / "triage" / slug(record.signature) / "report.md").is_file()
    again = triage_run(run, reruns=1, time_budget=30)
    assert again.steps_run == 0 and again.records == first.records


def test_commands_report_reproduction_with_exit_codes(run, tmp_path, capsys):
    with RunStore.open(run) as store:
        finding_id = signature_records(store)[0].representative
    assert main(["repro", str(run), str(finding_id), "-o", str(tmp_path / "repro.py")]) == 1
    assert "reproduces" in capsys.readouterr().out
    assert main(["replay", str(run)]) == 1
    assert "still failing" in capsys.readouterr().out
    assert main(["reduce", str(run), str(finding_id), "--time", "5"]) == 0
    assert main(["triage", str(run), "--reruns", "1"]) == 0


def test_replay_marks_a_signature_fixed_when_the_compiler_no_longer_shows_it(run):
    with RunStore.open(run) as store:
        config = dict(store.config)
        with store.transaction(write=True) as connection:  # the "new compiler version": plain ORT
            fixed = {**config, "campaign": {**config["campaign"], "backends": ["onnx-ref", "ort-none"]}}
            connection.execute("UPDATE meta SET value = ? WHERE key = 'config'", (json.dumps(fixed),))
    try:
        (replayed,) = replay_run(run)
        assert replayed.verdict == "fixed" and replayed.record.status is Status.FIXED
    finally:
        with RunStore.open(run) as store:
            with store.transaction(write=True) as connection:
                connection.execute("UPDATE meta SET value = ? WHERE key = 'config'", (json.dumps(config),))


@pytest.mark.parametrize("argv, message", [
    (["triage", "/nonexistent/run"], "not a tcfuzz run directory"),
    (["repro", "RUN", "999"], "no finding 999"),
    (["triage", "RUN", "--baseline", "/nonexistent/known.txt"], "cannot read baseline"),
    (["triage", "RUN", "--reruns", "0"], "must be at least 1"),
])
def test_usage_errors_are_one_line_with_exit_2(argv, message, run, capsys):
    assert main([str(run) if a == "RUN" else a for a in argv]) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1


def answers(text: str) -> str:
    return text


def allocates(megabytes: int) -> str:
    return str(len(bytearray(megabytes << 20)))


def sleeps(seconds: float) -> str:
    time.sleep(seconds)
    return ""


def test_isolated_work_cannot_take_triage_down():
    """Rebuilding a TIR finding's module can hang or exhaust memory on the very case it is
    about: in a child process, triage gets a line saying so instead."""
    assert isolated(answers, ("no script: a scheduling failure",), 2048, 60) == "no script: a scheduling failure"
    assert "over 1024 MB of memory" in isolated(allocates, (3072,), 1024, 60)
    assert "no answer within 1 s" in isolated(sleeps, (60,), 2048, 1)
