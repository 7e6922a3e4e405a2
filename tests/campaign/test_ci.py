"""`tcfuzz ci`: exit 0 nothing new, 1 new bugs, 2 harness error; --dry-run; a kept coverage corpus."""

from __future__ import annotations

import datetime
import json
import os
import subprocess

import pytest

from corpus.corpus import Corpus
from fuzzer.store import RunStore
from fuzzer.cli import main
from tests.helpers import ROOT, tcfuzz

ABORTING = "onnx-ref,tests.fault_backends:Abort"  # one signature only: the abort, on every 4th test


def ci(*args: str) -> subprocess.CompletedProcess:
    """`tcfuzz ci` in a subprocess that can import the tests' backends."""
    return tcfuzz("ci", "--triage-time", "5", *args, installed=True, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_dry_run_starts_every_backend(tmp_path):
    result = ci("--dry-run", "--backends", "onnx-ref,ort-none", "--out", str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr
    assert "onnx-ref, ort-none" in result.stdout
    assert not (tmp_path / "run").exists()  # a dry run fuzzes nothing


@pytest.mark.parametrize("args, words", [
    (["--dry-run", "--backends", "tests.fault_backends:BrokenSetup"],
     ["BrokenSetup", "failed to start", "libcompiler"]),
    (["--dry-run", "--backends", "no-such-compiler"], ["unknown backend"]),
    (["--baseline", "/nonexistent/baseline.txt"], ["cannot read baseline"]),
    (["--time", "0"], ["--time"]),
])
def test_bad_configuration_exits_2(args, words):
    result = ci(*args)
    assert result.returncode == 2
    assert all(word in result.stderr for word in words), result.stderr


@pytest.mark.slow
def test_an_exception_in_the_harness_exits_2_not_1(tmp_path, monkeypatch, capsys):
    def broken_triage(*args):
        raise RuntimeError("bug in triage")

    monkeypatch.setattr("fuzzer.cli.ci.triage", broken_triage)
    status = main(["ci", "--backends", ABORTING, "--time", "1", "--out", str(tmp_path / "run")])
    assert status == 2
    assert "bug in triage" in capsys.readouterr().err


@pytest.mark.slow
def test_new_findings_exit_1_then_known_ones_exit_0(tmp_path):
    corpus, first, second, third = (tmp_path / name for name in ("corpus", "first", "second", "third"))
    result = ci("--backends", ABORTING, "--time", "2", "--seed", "1", "--corpus", str(corpus), "--out", str(first))
    assert result.returncode == 1, result.stderr
    assert "new bug (new):" in result.stdout and "faulty crash" in result.stdout, result.stdout[-600:]
    assert sorted(p.name for p in (first / "report").iterdir()) == [
        "index.html", "junit.xml", "summary.json", "summary.md", "tcfuzz.sarif"]
    with RunStore.open(first) as store:
        assert store.config["campaign"]["corpus"] == str(corpus.resolve())  # coverage feedback on the corpus
        found = {finding.signature for finding in store.findings()}
    assert set(json.loads((corpus / "known-signatures.json").read_text())["signatures"]) == found
    with Corpus.open(corpus) as kept:
        assert kept.entries()  # the coverage corpus the campaign grew

    result = ci("--backends", ABORTING, "--time", "2", "--corpus", str(corpus), "--out", str(second))
    assert result.returncode == 0, result.stdout + result.stderr  # the corpus knows the abort now
    with RunStore.open(second) as store:
        assert store.config["campaign"]["seed"] == int(datetime.date.today().strftime("%Y%m%d"))

    result = ci("--backends", ABORTING, "--time", "2", "--seed", "1", "--baseline", str(first / "findings.db"),
                "--out", str(third))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 new of 1 bugs" in result.stdout
