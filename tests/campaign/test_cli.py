"""The command line, end to end, including its one-line errors for bad input."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from fuzzer.cli import main
from tests.helpers import tcfuzz



def assert_one_line_error(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tcfuzz: error: "), result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0]


def test_gen_then_run_then_fuzz(tmp_path):
    generated = tcfuzz("gen", "-n", "3", "--nodes", "4", "--stats", "--out", str(tmp_path / "models"))
    assert generated.returncode == 0, generated.stderr
    assert "operator" in generated.stdout.lower()
    models = sorted((tmp_path / "models").glob("*.onnx"))
    assert len(models) == 3
    assert all(Path(str(m)[:-5] + ".inputs.npz").exists() for m in models)

    ran = tcfuzz("run", str(models[0]), "--backends", "onnx-ref,ort-none,torch")
    assert ran.returncode in (0, 1), ran.stderr
    for backend in ("onnx-ref", "ort-none", "torch"):
        assert backend in ran.stdout

    run_dir = tmp_path / "run"
    fuzzed = tcfuzz("fuzz", "--backends", "onnx-ref,ort-none", "--max-tests", "30", "--nodes", "4",
                    "--out", str(run_dir))
    assert fuzzed.returncode in (0, 1), fuzzed.stderr
    assert "tests" in fuzzed.stdout and "30" in fuzzed.stdout
    assert (run_dir / "findings.db").exists()


def test_run_exits_1_and_names_the_wrong_backend(tmp_path):
    assert tcfuzz("gen", "-n", "1", "--nodes", "3", "--out", str(tmp_path)).returncode == 0
    result = tcfuzz("run", str(tmp_path / "case_0000.onnx"), "--backends",
                    "onnx-ref,ort-none,tests.fault_backends:AlwaysWrong")
    assert result.returncode == 1, result.stderr
    assert "mismatch" in result.stdout and "fault-always-wrong differs" in result.stdout


def test_backends_lists_every_builtin():
    result = tcfuzz("backends")
    assert result.returncode == 0
    for name in ("ort-none", "ort-all", "torch", "onnx-ref"):
        assert name in result.stdout


@pytest.mark.parametrize("args, words", [
    (["fuzz", "--backends", "no-such-compiler"], ["no-such-compiler", "tcfuzz backends"]),
    (["fuzz", "--nodes", "0"], ["--nodes", "at least 1"]),
    (["fuzz", "--time", "soon"], ["--time"]),
    (["fuzz", "--opset", "7"], ["opset 7"]),
    (["fuzz", "--resume", "/nonexistent/run"], ["not a tcfuzz run directory"]),
    (["fuzz", "--resume", "/tmp", "--seed", "3"], ["--seed", "cannot change"]),
    (["fuzz", "--resume", "/tmp", "--dynamic", "0.5"], ["--dynamic", "cannot change"]),
    (["fuzz", "--control-flow", "1.5"], ["--control-flow", "between 0 and 1"]),
    (["gen", "--out", "/tmp/unused", "--dynamic", "much"], ["--dynamic", "share"]),
    (["fuzz", "--ops", "Add,Frobnicate"], ["Frobnicate", "tcfuzz fuzz --ops list"]),
    (["gen", "--out", "/tmp/unused", "--dtypes", "float128"], ["float128", "tcfuzz gen --dtypes list"]),
    (["gen", "--out", "/tmp/unused", "--ops", "Conv", "--dtypes", "bool"], ["Conv", "--ops, --dtypes"]),
    (["run", "/nonexistent/model.onnx"], ["does not exist"]),
    (["frobnicate"], ["frobnicate"]),
])
def test_bad_input_gives_one_line(args, words):
    assert_one_line_error(tcfuzz(*args), *words)


def test_ops_and_dtypes_list_their_valid_names():
    assert {"Add", "Conv", "If"} <= set(tcfuzz("fuzz", "--ops", "list").stdout.split())
    assert {"float32", "bool"} <= set(tcfuzz("gen", "--dtypes", "list").stdout.split())


def test_gen_keeps_to_the_chosen_operators_and_dtypes(tmp_path):
    from fuzzer.graph.ir import Graph

    result = tcfuzz("gen", "-n", "4", "--ops", "Add,Relu", "--dtypes", "float32", "--dynamic", "1",
                    "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    graphs = [Graph.from_json(path.read_text()) for path in tmp_path.glob("*.graph.json")]
    assert {node.op for graph in graphs for node in graph.nodes} <= {"Add", "Relu"}
    assert {i.type.dtype.value for graph in graphs for i in graph.inputs} == {"float32"}
    assert any(graph.symbols for graph in graphs)


def test_malformed_model_gives_one_line(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not protobuf at all \x00\xff")
    assert_one_line_error(tcfuzz("run", str(bad)), "not a valid ONNX model")
    text = tmp_path / "notes.onnx"
    text.write_text("hello")
    assert_one_line_error(tcfuzz("run", str(text)), "not a valid ONNX model")


def test_unwritable_output_gives_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert_one_line_error(tcfuzz("gen", "--out", str(blocker / "models")), "cannot write")
    assert_one_line_error(tcfuzz("fuzz", "--max-tests", "1", "--out", str(blocker / "run")), "cannot write")


def test_existing_run_directory_is_not_overwritten(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(["fuzz", "--backends", "onnx-ref", "--max-tests", "2", "--nodes", "2",
                 "--out", str(run_dir)]) in (0, 1)
    assert main(["fuzz", "--backends", "onnx-ref", "--max-tests", "2", "--out", str(run_dir)]) == 2
    assert "tcfuzz: error:" in capsys.readouterr().err


def test_tir_mode_runs_a_campaign_and_resumes(tmp_path):
    pytest.importorskip("tvm")
    run_dir = tmp_path / "tir"
    first = tcfuzz("fuzz", "--mode", "tir", "--max-tests", "6", "--seed", "2", "--out", str(run_dir))
    assert first.returncode in (0, 1), first.stderr
    assert "tcfuzz tir" in first.stdout
    again = tcfuzz("fuzz", "--resume", str(run_dir), "--max-tests", "12")
    assert again.returncode in (0, 1), again.stderr
    assert_one_line_error(tcfuzz("fuzz", "--mode", "tir", "--nodes", "3"), "--mode tir")
