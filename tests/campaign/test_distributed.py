"""Scale-out: a campaign whose lanes run on a Ray cluster started here on loopback."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from fuzzer.campaign.config import CampaignConfig
from fuzzer.campaign.driver import Campaign, start_run

ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'tcfuzz[ray]'")
RAY = Path(sys.executable).with_name("ray")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def ray_head(tmp_path_factory):
    """A one-node Ray cluster on loopback, without token authentication (local only)."""
    environment = {**os.environ, "RAY_AUTH_MODE": "disabled",
                   "PYTHONPATH": os.pathsep.join(p for p in sys.path if p and os.path.isdir(p))}
    port = free_port()
    temp = tmp_path_factory.mktemp("ray")
    started = subprocess.run(
        [str(RAY), "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=2",
         "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp}"],
        env=environment, capture_output=True, text=True, timeout=180)
    assert started.returncode == 0, started.stderr[-2000:]
    previous = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    try:
        yield f"127.0.0.1:{port}"
    finally:
        if ray.is_initialized():
            ray.shutdown()
        subprocess.run([str(RAY), "stop", "--force"], env=environment, capture_output=True, timeout=120)
        shutil.rmtree(temp, ignore_errors=True)
        if previous is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = previous


@pytest.mark.slow
def test_findings_from_a_ray_cluster_arrive_in_the_drivers_store(ray_head, tmp_path):
    config = CampaignConfig(backends=("onnx-ref", "ort-none", "tests.fault_backends:Segfault",
                                      "tests.fault_backends:WrongAnswer"),
                            seed=3, nodes=3, max_tests=12, workers=2, timeout=5.0, ray=ray_head)
    with start_run(config, tmp_path / "run") as store:
        snapshot = Campaign(config, store).run()
        kinds = {(f.kind, f.backends[0]) for f in store.findings()}
        assert store.progress().next_index == 12
    assert snapshot.tests == 12
    # a crash inside a test is a finding (the worker under the actor restarts), never a task retry
    assert ("crash", "fault-segfault") in kinds and ("mismatch", "fault-wrong") in kinds
    assert snapshot.restarts == 3  # tests 1, 5 and 9 trigger the segfault
    assert snapshot.restarts_by_backend == {"tests.fault_backends:Segfault": 3}
    assert not (tmp_path / "run" / "workers").exists()  # the driver ran no worker itself


def test_a_backend_under_another_python_is_compared_with_itself(tmp_path):
    """--backend-python: ort-none@other runs in a worker started by another interpreter (here a
    wrapper around this one), with only tcfuzz's own directory on its path."""
    other = tmp_path / "other-python"
    other.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    other.chmod(0o755)
    config = CampaignConfig(backends=("onnx-ref", "ort-none", "ort-none@other"), seed=1, nodes=4,
                            max_tests=8, pythons={"ort-none@other": str(other)})
    with start_run(config, tmp_path / "run") as store:
        snapshot = Campaign(config, store).run()
        versions = store.get_meta("versions")
        assert not store.findings()  # one onnxruntime agrees with itself
    assert snapshot.tests == 8 and snapshot.valid > 0
    assert versions["onnxruntime@other"] == versions["onnxruntime"]
    logs = (tmp_path / "run" / "workers" / "lane0").iterdir()
    assert "ort-none_other.stderr.log" in {log.name for log in logs}


@pytest.mark.parametrize("arguments, message", [
    (["--backend-python", "ort-none@old=/no/such/python"], "/no/such/python is not an executable Python"),
    (["--backend-python", "ort-none@old"], "expected NAME=PATH"),
    (["--backend-python", f"ort-all@old={sys.executable}"],
     "--backend-python names ort-all@old, which is not in --backends"),
])
def test_bad_backend_python_is_one_line(arguments, message, tmp_path, capsys):
    from fuzzer.cli import main

    status = main(["fuzz", "--backends", "onnx-ref,ort-none@old", "--max-tests", "1", "--out",
                   str(tmp_path / "run"), *arguments])
    error = capsys.readouterr().err.strip()
    assert status == 2 and message in error and len(error.splitlines()) == 1
