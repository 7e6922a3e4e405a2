"""Standalone repro scripts reproduce planted bugs (value and crash) and stay silent on a
correct compiler; bug reports carry the graph, the evidence and the script."""

from __future__ import annotations

import pytest

from fuzzer.graph.ir import DType, Node, TensorType
from fuzzer.execution.outcome import Stage
from oracles.finding import Finding, FindingKind
from triage.repro import ReproUnsupported, bug_report_markdown, verify_repro, write_repro
from tests.helpers import BROADCAST, T, case_of

CONCAT0 = case_of(Node("Concat", ("a", "b"), ("y",), (TensorType(DType.float32, (4, 3)),), (("axis", 0),)),
                  {"a": T, "b": T})
MISMATCH = Finding(FindingKind.MISMATCH, ("planted-broadcast",), Stage.COMPARE, "planted-broadcast differs",
                   {"compared_with": "onnx-ref", "output": "y", "dtype": "float32", "error_class": "magnitude"},
                   "mismatch/planted-broadcast/compare/float32/magnitude")
CRASH = Finding(FindingKind.CRASH, ("planted-abort",), Stage.PREPARE, "crash: SIGABRT",
                {"error_type": "SIGABRT", "exit_signal": 6, "signal": "SIGABRT", "message": "worker killed by SIGABRT"},
                "crash/planted-abort/prepare/SIGABRT/worker killed by sigabrt")


def written(tmp_path, source: str):
    path = tmp_path / "repro.py"
    path.write_text(source)
    return path


def test_value_bug_script_reproduces_on_the_buggy_backend_only(tmp_path):
    script = write_repro(BROADCAST, "tests.quality.planted_ort:PlantedBroadcast", "ref-f64", MISMATCH)
    assert "import fuzzer" not in script and "from fuzzer" not in script
    assert verify_repro(written(tmp_path, script))
    assert not verify_repro(written(tmp_path, write_repro(BROADCAST, "ort-none", "ref-f64", MISMATCH)))


def test_opt_mismatch_script_runs_the_unoptimized_build_as_reference(tmp_path):
    script = write_repro(BROADCAST, "tests.quality.planted_ort:PlantedBroadcast", "ort-none", MISMATCH)
    assert "def run_backend" in script.split("REFERENCE_SOURCE = ", 1)[1]
    assert verify_repro(written(tmp_path, script))


def test_crash_script_sees_the_abort_in_its_child_and_not_without_it(tmp_path):
    assert verify_repro(written(tmp_path, write_repro(CONCAT0, "tests.quality.planted_ort:PlantedAbort", None, CRASH)))
    assert not verify_repro(written(tmp_path, write_repro(BROADCAST, "tests.quality.planted_ort:PlantedAbort",
                                                          None, CRASH)))


def test_metamorphic_findings_have_no_standalone_script():
    finding = Finding(FindingKind.METAMORPHIC, ("ort-all",), Stage.COMPARE, "rewrite differs", {}, "metamorphic/x")
    with pytest.raises(ReproUnsupported, match="rewritten"):
        write_repro(BROADCAST, "ort-all", None, finding)


def test_bug_report_has_title_graph_evidence_and_script():
    report = bug_report_markdown(BROADCAST, "planted-broadcast", MISMATCH, "print('repro')",
                                 {"onnxruntime": "1.0"}, nodes_before=7)
    assert report.startswith("# planted-broadcast: planted-broadcast differs")
    for expected in ("- onnxruntime 1.0", "Add (a, b)", "reduced from 7", "output `y` (float32): magnitude",
                     "```python\nprint('repro')\n```"):
        assert expected in report
