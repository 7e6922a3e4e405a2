"""Regression ranges: the binary search over releases (fake ones, with untestable releases),
what a repro's exit says, cached environments, the command line and its one-line errors, and
one real bisection of onnxruntime over three releases (slow)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

import triage.bisect as bisect
from fuzzer.cli import main
from fuzzer.graph.case import TestCase
from fuzzer.execution.outcome import Stage
from fuzzer.store import RunStore
from oracles.finding import Finding, FindingKind
from triage.bisect import (ABSENT, PRESENT, UNTESTABLE, BisectError, InstallError, Installer, Regression, Trial,
                           bisect_releases, in_range, judge, parse_range, requirement_specs, script_requirements,
                           try_release, with_section)
from triage.db import add_note, sync_signatures, update_signature

RELEASES = [f"1.{minor}.{patch}" for minor in range(10, 26) for patch in range(2)]  # 32, oldest first
REPRODUCED = "versions: python 3.11\nort-none: killed by SIGFPE\nREPRODUCED\n"
NOT_REPRODUCED = "versions: python 3.11\nort-none: ran and returned int32[2]\nnot reproduced\n"


def fake_probe(present, untestable=(), tried=None):
    """A probe on RELEASES: ``present(version)`` says whether the bug shows; ``untestable``
    releases cannot be tested; ``tried`` collects the versions probed."""
    def probe(version: str) -> Trial:
        if tried is not None:
            tried.append(version)
        if version in untestable:
            return Trial(version, UNTESTABLE, 1, "ModuleNotFoundError: No module named 'onnx'")
        return Trial(version, PRESENT if present(version) else ABSENT, 1 if present(version) else 0, "fake")
    return probe


def after(boundary: str):
    return lambda version: bisect.Version(version) >= bisect.Version(boundary)


def text_of(trials) -> str:
    return Regression("onnxruntime", tuple(trials)).text()


def test_bisection_finds_the_release_that_introduced_the_bug_in_few_tries():
    tried = []
    trials = bisect_releases(RELEASES, fake_probe(after("1.18.0"), tried=tried))
    assert text_of(trials) == "onnxruntime: introduced in 1.18.0 (last good 1.17.1)"
    assert len(tried) == len(set(tried)) <= 2 + 5  # the two ends, then log2(32) halvings
    assert [t.version for t in trials] == sorted(tried, key=bisect.Version)


def test_untestable_releases_in_the_middle_are_skipped_and_named():
    untestable = {"1.17.0", "1.17.1", "1.18.0"}
    trials = bisect_releases(RELEASES, fake_probe(after("1.17.1"), untestable))
    assert text_of(trials) == ("onnxruntime: introduced in 1.18.1 (last good 1.16.1; 1.17.0, 1.17.1, 1.18.0 could "
                               "not be tested)")
    assert {t.version for t in trials if t.result == UNTESTABLE} == untestable


def test_old_releases_that_cannot_run_the_model_do_not_stop_the_search():
    untestable = set(RELEASES[:9])  # 1.10.0 .. 1.14.0: say, no support for the model's opset
    tried = []
    trials = bisect_releases(RELEASES, fake_probe(after("1.20.1"), untestable, tried))
    assert text_of(trials) == \
        "onnxruntime: introduced in 1.20.1 (last good 1.20.0); could not test 1.10.0, 1.13.1, 1.14.0"
    assert len(tried) <= 2 + 5 + 5  # the ends, halvings to the first testable one, halvings to the boundary


def test_a_bug_in_every_release_and_a_fixed_one():
    assert text_of(bisect_releases(RELEASES, fake_probe(lambda v: True))) == \
        "onnxruntime: present in every tested release (1.10.0 to 1.25.1)"
    assert text_of(bisect_releases(RELEASES, fake_probe(lambda v: not after("1.22.0")(v)))) == \
        "onnxruntime: fixed in 1.22.0 (last bad 1.21.1)"


def test_the_run_s_release_anchors_a_bug_that_both_ends_do_not_show():
    window = fake_probe(lambda v: after("1.14.1")(v) and not after("1.21.0")(v))
    trials = bisect_releases(RELEASES, window, anchor="1.19.0")
    assert text_of(trials) == "onnxruntime: introduced in 1.14.1 (last good 1.14.0), fixed in 1.21.0 (last bad 1.20.1)"
    assert text_of(bisect_releases(RELEASES, window)) == \
        "onnxruntime: not reproduced in any tested release (1.10.0 to 1.25.1)"


def test_no_testable_release():
    trials = bisect_releases(RELEASES[:3], fake_probe(lambda v: True, set(RELEASES[:3])))
    assert text_of(trials) == "onnxruntime: no release could be tested (3 tried)"


def test_evidence_round_trips_and_merges():
    regression = Regression("onnxruntime", tuple(bisect_releases(RELEASES, fake_probe(after("1.18.0")))))
    data = json.loads(json.dumps(regression.to_dict()))
    assert data["introduced"] == "1.18.0" and data["fixed"] is None and data["text"] == regression.text()
    assert Regression.from_dict(data) == regression
    newest = Trial("1.26.0", ABSENT, 0, "ort-none: ran and returned int32[2]")
    assert regression.merged([newest]).text() == \
        "onnxruntime: introduced in 1.18.0 (last good 1.17.1), fixed in 1.26.0 (last bad 1.25.1)"


def test_what_a_repro_run_says():
    assert judge("1.0", 1, REPRODUCED, "") == Trial("1.0", PRESENT, 1, "ort-none: killed by SIGFPE")
    assert judge("1.0", 0, NOT_REPRODUCED, "").result == ABSENT
    old = "versions: x\nort-none: InvalidGraph: Unsupported model IR version: 10, max supported IR version: 9\n"
    assert judge("1.0", 0, old + "not reproduced\n", "").result == UNTESTABLE
    failed = "versions: x\nort-none: Fail: boom\nthe backend failed instead of computing outputs: not the same bug\n"
    assert judge("1.0", 0, failed, "").result == UNTESTABLE
    unloadable = "versions: x\ntvm-noopt: OSError: libtvm_runtime.so: undefined symbol: _ZN3tvm3ffi\nnot reproduced\n"
    assert judge("0.25.0", 0, unloadable, "") == Trial(
        "0.25.0", UNTESTABLE, 0, "tvm-noopt: OSError: libtvm_runtime.so: undefined symbol: _ZN3tvm3ffi")
    other = "versions: x\nort-none: Fail: Integer division by zero\nexpected: crash SIGFPE\nnot reproduced\n"
    assert judge("1.25.0", 0, other, "", backend="ort-none").result == ABSENT  # fails differently: this bug is gone
    reworded = ("versions: x\nError converting operator Elu\ntvm: TypeError: datatype float32 (StructInfo of ...)\n"
                "expected: error TypeError datatype t.float32 (type of ...)\nnot reproduced\n")
    assert judge("0.25.0", 0, reworded, "", backend="tvm") == Trial("0.25.0", UNTESTABLE, 0, (
        "the same TypeError, another message: tvm: TypeError: datatype float32 (StructInfo of ...)"))
    assert judge("0.26.0", 1, reworded.replace("not reproduced", "REPRODUCED"), "", backend="tvm").reason == \
        "tvm: TypeError: datatype float32 (StructInfo of ...)"
    broken = judge("1.0", 1, "", "Traceback (most recent call last):\nImportError: numpy.core.multiarray failed\n")
    assert (broken.result, broken.reason) == (UNTESTABLE, "ImportError: numpy.core.multiarray failed")
    assert judge("1.0", None, "", "").result == UNTESTABLE
    slow = "versions: x\nort-none@old: no result after 10.0 s\nexpected: error RuntimeException ...\nnot reproduced\n"
    assert judge("1.23.2", 0, slow, "", backend="ort-none@old") == Trial(  # a cold start on a busy machine
        "1.23.2", UNTESTABLE, 0, "ort-none@old: no result after 10.0 s")
    assert judge("1.0", -6, "", "", crash_reproduces=True) == Trial("1.0", PRESENT, -6, "killed by SIGABRT")
    assert judge("1.0", -6, "", "").result == UNTESTABLE


def test_an_installer_failure_is_a_release_that_cannot_be_tested():
    def install(version: str) -> Path:
        raise InstallError("ERROR: No matching distribution found for onnxruntime==1.0")

    def run(python: Path):
        raise AssertionError("nothing to run")

    trial = try_release("1.0", install, run)
    assert trial == Trial("1.0", UNTESTABLE, None,
                          "install failed: ERROR: No matching distribution found for onnxruntime==1.0")


def test_environments_hold_what_the_script_imports():
    script = ('import base64\nimport numpy as np\ntry:\n    import ml_dtypes\nexcept ImportError:\n    pass\n'
              "BACKEND_SOURCE = '\\ndef run_backend(model, inputs):\\n    import onnxruntime\\n'\n"
              "def promoted():\n    import onnx\n    from onnx import numpy_helper\n")
    assert script_requirements(script) == ["ml_dtypes", "numpy", "onnx", "onnxruntime"]
    assert requirement_specs("onnxruntime", "1.18.1", ["numpy", "onnx", "onnxruntime"]) == [
        "onnxruntime==1.18.1", "numpy<2", "onnx"]
    assert requirement_specs("onnxruntime", "1.19.0", ["numpy", "onnxruntime"]) == ["onnxruntime==1.19.0", "numpy"]


class FakeCommands:
    """subprocess.run for the installer: records commands, makes the environment directory,
    fails where ``fail`` says."""

    def __init__(self, fail: str = ""):
        self.commands, self.fail = [], fail

    def __call__(self, command, **kwargs):
        self.commands.append(command)
        if "-c" in command:  # the release's declared requirements
            declared = 'apache-tvm-ffi>=0.1.12\nnumpy\ntorch; extra == "torch"\n'
            return subprocess.CompletedProcess(command, 0, declared, "")
        if "venv" in command:
            Path(command[-1], "bin").mkdir(parents=True)
        failed = self.fail and any(self.fail in part for part in command)
        return subprocess.CompletedProcess(command, 1 if failed else 0, "",
                                           "WARNING: noise\nERROR: No matching distribution found" if failed else "")


def test_environments_are_cached_and_grow_with_new_imports(tmp_path, monkeypatch):
    fake = FakeCommands()
    monkeypatch.setattr(bisect.subprocess, "run", fake)
    monkeypatch.setattr(bisect.shutil, "which", lambda name: None)
    python = Installer("onnxruntime", ("numpy", "onnxruntime"), tmp_path)("1.19.0")
    assert python == tmp_path / "onnxruntime-1.19.0" / "bin" / "python"
    assert [c[1:4] for c in fake.commands] == [["-m", "venv", "--without-pip"], ["-m", "pip", "--python"]]
    assert fake.commands[1][-2:] == ["onnxruntime==1.19.0", "numpy"]
    Installer("onnxruntime", ("numpy",), tmp_path)("1.19.0")
    assert len(fake.commands) == 2  # reused
    Installer("onnxruntime", ("numpy", "onnx"), tmp_path)("1.19.0")
    assert fake.commands[2][-2:] == ["onnxruntime==1.19.0", "onnx"]  # only what is new
    assert json.loads((python.parent.parent / bisect.ENV_MARKER).read_text())["companions"] == ["numpy", "onnx"]


def test_a_release_gets_the_abi_it_was_built_against(tmp_path, monkeypatch):
    fake = FakeCommands()
    monkeypatch.setattr(bisect.subprocess, "run", fake)
    monkeypatch.setattr(bisect.shutil, "which", lambda name: None)
    Installer("apache-tvm", ("numpy", "tvm"), tmp_path)("0.25.0")
    assert fake.commands[-1][-2:] == ["apache-tvm==0.25.0", "apache-tvm-ffi==0.1.12"]
    assert bisect.lowest_accepted(["apache_tvm_ffi>=0.1.9,>=0.1.12", "numpy>=1"], ["apache-tvm-ffi"]) == [
        "apache-tvm-ffi==0.1.12"]


def test_a_failed_install_leaves_no_environment_behind(tmp_path, monkeypatch):
    monkeypatch.setattr(bisect.subprocess, "run", FakeCommands(fail="onnxruntime==1.0.0"))
    monkeypatch.setattr(bisect.shutil, "which", lambda name: None)
    with pytest.raises(InstallError, match="^ERROR: No matching distribution found$"):
        Installer("onnxruntime", ("numpy",), tmp_path)("1.0.0")
    assert not (tmp_path / "onnxruntime-1.0.0").exists()


def test_uv_gets_pip_s_configured_indexes(tmp_path, monkeypatch):
    fake = FakeCommands()
    config = "global.extra-index-url='file:///a file:///b'\n:env:.find-links='/w'\nglobal.find-links='/w'\n"
    monkeypatch.setattr(bisect.subprocess, "run", lambda command, **kw: subprocess.CompletedProcess(
        command, 0, config, "") if "config" in command else fake(command))
    monkeypatch.setattr(bisect.shutil, "which", lambda name: "/usr/bin/uv")
    Installer("onnx", ("numpy", "onnx"), tmp_path)("1.16.0")
    create, install = fake.commands
    assert create[:2] == ["/usr/bin/uv", "venv"]
    assert install[:3] == ["/usr/bin/uv", "pip", "install"] and "unsafe-best-match" in install
    assert install[install.index("unsafe-best-match") + 1:] == [
        "--only-binary", "onnx", "--extra-index-url", "file:///a", "--extra-index-url", "file:///b",
        "--find-links", "/w", "onnx==1.16.0", "numpy"]


def test_releases_come_from_the_index_and_a_package_without_any_is_one_line(tmp_path):
    fake_pip = tmp_path / "python"
    fake_pip.write_text("#!/bin/sh\necho 'ERROR: Could not find a version that satisfies the requirement "
                        "onnxruntime== (from versions: 1.9.0, 1.20.0rc1, 1.20.0, 1.10.1)' >&2\nexit 1\n")
    fake_pip.chmod(0o755)
    assert bisect.available_releases("onnxruntime", str(fake_pip)) == ["1.9.0", "1.10.1", "1.20.0"]
    fake_pip.write_text("#!/bin/sh\necho 'ERROR: Could not find a version that satisfies the requirement "
                        "nothing== (from versions: none)' >&2\nexit 1\n")
    with pytest.raises(BisectError, match="no release of nothing installs on Python 3"):
        bisect.available_releases("nothing", str(fake_pip))


def test_version_ranges():
    assert parse_range("1.16..1.20") == (bisect.Version("1.16"), bisect.Version("1.20"))
    assert parse_range("..1.20") == (None, bisect.Version("1.20"))
    assert in_range(RELEASES, *parse_range("1.24..")) == ["1.24.0", "1.24.1", "1.25.0", "1.25.1"]
    assert in_range(RELEASES, *parse_range("..1.10")) == ["1.10.0", "1.10.1"]  # 1.10 takes 1.10.x
    for bad in ("1.16", "a..b"):
        with pytest.raises(ValueError, match="LO..HI"):
            parse_range(bad)


def test_report_md_gets_one_regression_section():
    report = "# bug\n\n## Culprit\n\nnone\n\n## Reproduction\n\nrun it\n"
    section = bisect.report_section(Regression("onnxruntime", (Trial("1.0", PRESENT, 1, "a | b"),)))
    once = with_section(report, section)
    assert once.index("## Regression range") < once.index("## Reproduction") and "| 1.0 | present | 1 | a / b |" in once
    newer = bisect.report_section(Regression("onnxruntime", (Trial("2.0", ABSENT, 0, "ok"),)))
    twice = with_section(once, newer)
    assert twice.count("## Regression range") == 1 and "| 2.0 |" in twice and "| 1.0 |" not in twice
    assert twice.endswith("## Reproduction\n\nrun it\n")


# ------------------------------------------------------------------ the command line


def int_division_model() -> bytes:
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Div", ["a", "b"], ["c"])], "div",
                              [helper.make_tensor_value_info(n, TensorProto.INT32, [2]) for n in "ab"],
                              [helper.make_tensor_value_info("c", TensorProto.INT32, [2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model.SerializeToString()


DIVISION_BY_ZERO = TestCase(None, {"a": np.array([7, 1], np.int32), "b": np.array([0, 1], np.int32)},
                            int_division_model(), 13, 0)
SIGFPE = Finding(FindingKind.CRASH, ("ort-none",), Stage.RUN, "ort-none crash: SIGFPE",
                 {"error_type": "SIGFPE", "exit_signal": 8, "signal": "SIGFPE", "message": "worker killed by SIGFPE"},
                 "crash/ort-none/run/SIGFPE/worker killed by sigfpe")


def run_with_bug(tmp_path, verified: bool = True, script: str = "import numpy\nimport onnxruntime\n") -> Path:
    """A run with one ORT crash whose triage wrote a repro script and a report."""
    run_dir = tmp_path / "run"
    with RunStore.create(run_dir, {"backends": ["ort-none"]}) as store:
        store.record_finding(test_index=0, seed=0, finding=SIGFPE, graph_json="{}", case_hash="c",
                             model=DIVISION_BY_ZERO.model, inputs=DIVISION_BY_ZERO.inputs, outcomes=[],
                             versions={"onnxruntime": "1.23.0"})
        store.set_meta("versions", {"onnxruntime": "1.23.0"})  # the release the run found it on
        (record,) = sync_signatures(store)
        directory = run_dir / "triage" / "crash"
        directory.mkdir(parents=True)
        (directory / "repro.py").write_text(script)
        (directory / "report.md").write_text("# onnxruntime: crash\n\n## Reproduction\n\nrun repro.py\n")
        update_signature(store, record.signature, repro_path="triage/crash/repro.py")
        add_note(store, record, "repro", {"path": str(directory / "repro.py"), "verified": verified})
    return run_dir


def bug_id(run_dir: Path) -> str:
    from triage.bugs import run_bugs

    with RunStore.open(run_dir, read_only=True) as store:
        (bug,) = run_bugs(store)
    return bug.id


class FakeReleases:
    """The installer and runner of the command, faked: releases from 1.24.0 on are fixed."""

    def __init__(self, monkeypatch):
        monkeypatch.setattr(bisect, "available_releases", lambda package: RELEASES)
        monkeypatch.setattr(bisect, "Installer", lambda package, companions, root: self.install)
        monkeypatch.setattr(bisect, "script_runner", lambda script: self.run)
        self.companions = None

    def install(self, version: str) -> Path:
        if version == "1.23.1":
            raise InstallError("ERROR: No matching distribution found for onnxruntime==1.23.1")
        return Path("/envs", version, "python")

    def run(self, python: Path):
        fixed = bisect.Version(python.parent.name) >= bisect.Version("1.24.0")
        return (0, NOT_REPRODUCED, "") if fixed else (1, REPRODUCED, "")


def test_bisect_command_records_the_range_for_bugs_reports_and_report_md(tmp_path, monkeypatch, capsys):
    run_dir = run_with_bug(tmp_path)
    FakeReleases(monkeypatch)
    identifier = bug_id(run_dir)
    assert main(["bisect", str(run_dir), identifier.lower(), "--versions", "1.20.."]) == 0
    out = capsys.readouterr().out.splitlines()
    verdict = "onnxruntime: fixed in 1.24.0 (last bad 1.23.0; 1.23.1 could not be tested)"
    assert out[0].startswith(f"bisecting bug {identifier} over 12 onnxruntime releases (1.20.0 to 1.25.1)")
    assert ("  onnxruntime 1.23.1: cannot test: install failed: ERROR: No matching distribution found for "
            "onnxruntime==1.23.1") in out[1:-1]
    assert all(line.startswith("  onnxruntime 1.") for line in out[1:-1]) and out[-1] == f"bug {identifier}: {verdict}"
    main(["bugs", str(run_dir)])
    assert f"regression: {verdict}" in capsys.readouterr().out
    assert "## Regression range" in (run_dir / "triage" / "crash" / "report.md").read_text()
    from reports.markdown import render_markdown
    from reports.html import render_html
    from reports.model import summarize

    with RunStore.open(run_dir, read_only=True) as store:
        summary = summarize(store)
    (entry,) = summary.to_dict()["bugs"]
    assert entry["regression"]["fixed"] == "1.24.0" and entry["regression"]["text"] == verdict
    assert {"version": "1.23.1", "result": UNTESTABLE, "exit_status": None,
            "reason": "install failed: ERROR: No matching distribution found for onnxruntime==1.23.1"} \
        in entry["regression"]["tried"]
    page = render_html(summary, tmp_path)
    assert verdict in render_markdown(summary) and "<th>regression range</th>" in page and verdict in page


def test_replay_latest_marks_a_bug_the_newest_release_fixed(tmp_path, monkeypatch, capsys):
    run_dir = run_with_bug(tmp_path)
    FakeReleases(monkeypatch)
    assert main(["replay", "--latest", str(run_dir)]) == 0  # nothing still failing on the newest release
    (line,) = capsys.readouterr().out.splitlines()
    assert line == (f"{bug_id(run_dir)}: onnxruntime 1.25.1: absent (exit 0): ort-none: ran and returned int32[2]; "
                    "onnxruntime: fixed in 1.25.1 (last bad 1.23.0)")
    main(["bugs", str(run_dir)])
    assert "regression: onnxruntime: fixed in 1.25.1 (last bad 1.23.0)" in capsys.readouterr().out


def one_line_error(capsys, argv, *words):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("tcfuzz: error: ") and "Traceback" not in err[0], err
    for word in words:
        assert word in err[0], err[0]


def test_bad_input_gives_one_line(tmp_path, monkeypatch, capsys):
    one_line_error(capsys, ["bisect", str(tmp_path / "nowhere"), "B1234567"], "not a tcfuzz run directory")
    run_dir = run_with_bug(tmp_path)
    one_line_error(capsys, ["bisect", str(run_dir), "Bnothing"], "no bug Bnothing", "tcfuzz bugs")
    one_line_error(capsys, ["bisect", str(run_dir), bug_id(run_dir), "--versions", "1.20"], "LO..HI")
    one_line_error(capsys, ["bisect", str(run_dir), bug_id(run_dir), "--package", "tensorflow"], "--package")
    one_line_error(capsys, ["bisect", str(run_dir), bug_id(run_dir), "--package", "torch"],
                   "multi-GB", "--allow-large")
    one_line_error(capsys, ["bisect", str(run_dir), bug_id(run_dir), "--package", "apache-tvm"],
                   "does not import apache-tvm")
    FakeReleases(monkeypatch)
    one_line_error(capsys, ["bisect", str(run_dir), bug_id(run_dir), "--versions", "2.0.."],
                   "no release of onnxruntime lies in 2.0..", "1.10.0 to 1.25.1")
    monkeypatch.setattr(bisect, "available_releases", lambda package: (_ for _ in ()).throw(
        BisectError(f"no release of {package} installs on Python 3.11 from the configured package index")))
    one_line_error(capsys, ["bisect", str(run_dir), bug_id(run_dir)], "no release of onnxruntime installs")
    unverified = run_with_bug(tmp_path / "other", verified=False)
    one_line_error(capsys, ["bisect", str(unverified), bug_id(unverified)], "no verified repro", "tcfuzz triage")


# ------------------------------------------------------------------ real releases


@pytest.mark.slow
def test_real_bisection_of_an_onnxruntime_crash_over_three_releases(tmp_path):
    """Integer division by zero kills onnxruntime 1.23.2 and 1.24.4 with SIGFPE; 1.25.0 raises
    a clean "Integer division by zero" error instead (checked by hand on each release)."""
    from triage.repro import write_repro

    releases = ["1.23.2", "1.24.4", "1.25.0"]
    try:
        listed = bisect.available_releases("onnxruntime")
    except BisectError as error:
        pytest.skip(f"the package index is out of reach: {error}")
    if not set(releases) <= set(listed):
        pytest.skip(f"the package index lacks onnxruntime {', '.join(sorted(set(releases) - set(listed)))}")
    script = tmp_path / "repro.py"
    script.write_text(write_repro(DIVISION_BY_ZERO, "ort-none", None, SIGFPE))
    companions = tuple(script_requirements(script.read_text()))
    assert companions == ("ml_dtypes", "numpy", "onnx", "onnxruntime")
    root = bisect.env_root()
    assert str(root).startswith(os.environ["TCFUZZ_CACHE_DIR"])  # never the user's cache

    def bisection():
        started = time.monotonic()
        install = Installer("onnxruntime", companions, root)
        run = bisect.script_runner(script)
        trials = bisect_releases(releases, lambda version: try_release(version, install, run, backend="ort-none",
                                                                            crash_reproduces=True))
        return Regression("onnxruntime", tuple(trials)), time.monotonic() - started

    cold, cold_seconds = bisection()
    assert cold.text() == "onnxruntime: fixed in 1.25.0 (last bad 1.24.4)", cold.trials
    assert [(t.result, t.exit_status) for t in cold.trials] == [(PRESENT, 1), (PRESENT, 1), (ABSENT, 0)]
    assert "SIGFPE" in cold.trials[0].reason and "division by zero" in cold.trials[2].reason
    warm, warm_seconds = bisection()
    assert warm == cold and warm_seconds < cold_seconds
    print(f"cold {cold_seconds:.1f} s, warm {warm_seconds:.1f} s")
