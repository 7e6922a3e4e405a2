"""Campaigns with control flow and dynamic shapes: a dynamic graph runs as one dynamic model
at several sizes, its findings name the sizes, and a resumed campaign equals an unbroken one."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import onnx
import pytest

from fuzzer.store import RunStore
from fuzzer.campaign.config import CampaignConfig
from fuzzer.campaign.driver import Campaign, start_run
from fuzzer.graph.ir import Graph
from tests.helpers import tcfuzz

BACKENDS = ("ort-none", "onnx-ref", "ref-f64", "tests.fault_backends:WrongAnswer")


def fuzz(*args: str, cache: Path) -> subprocess.CompletedProcess:
    return tcfuzz("fuzz", *args, timeout=600, env={**os.environ, "TCFUZZ_CACHE_DIR": str(cache)})


def stored(run_dir: Path) -> set[tuple[int, str]]:
    with RunStore.open(run_dir) as store:
        return {(f.test_index, f.signature) for f in store.findings()}


def test_dynamic_graphs_run_at_several_sizes_and_findings_name_them(tmp_path):
    config = CampaignConfig(backends=BACKENDS, seed=3, nodes=4, max_tests=24, control_flow=0.5, dynamic=1.0,
                            reference="onnx-ref", input_budget=None, single_compiler_every=0)
    with start_run(config, tmp_path / "run") as store:
        snapshot = Campaign(config, store).run()
        counts = store.get_meta("outcomes")
        findings = store.findings()
        sized = [f for f in findings if "sizes" in f.details]
        assert snapshot.tests == 24
        assert sum(counts["onnx-ref"].values()) > 24  # dynamic graphs ran more than once
        assert set(counts) == {"ort-none", "onnx-ref", "ref-f64", "fault-wrong"}
        assert sized, [f.signature for f in findings]
        for finding in sized:
            graph = Graph.from_json(store.get_blob(finding.artifacts["graph.json"]).decode())
            assert finding.details["sizes"] == graph.symbols
            model = onnx.load_from_string(store.get_blob(finding.artifacts["model.onnx"]))
            assert any(d.dim_param for i in model.graph.input for d in i.type.tensor_type.shape.dim)


@pytest.mark.slow
def test_a_resumed_shape_campaign_matches_an_unbroken_one(tmp_path):
    common = ["--backends", ",".join(BACKENDS), "--nodes", "4", "--seed", "5", "--control-flow", "0.5",
              "--dynamic", "0.5", "--input-search", "0"]
    first = fuzz(*common, "--max-tests", "16", "--out", str(tmp_path / "resumed"), cache=tmp_path / "cache-a")
    assert first.returncode == 1, first.stderr
    resumed = fuzz("--resume", str(tmp_path / "resumed"), "--max-tests", "32", cache=tmp_path / "cache-a")
    assert resumed.returncode == 1, resumed.stderr
    unbroken = fuzz(*common, "--max-tests", "32", "--out", str(tmp_path / "unbroken"), cache=tmp_path / "cache-b")
    assert unbroken.returncode == 1, unbroken.stderr
    with RunStore.open(tmp_path / "resumed") as store:
        campaign = store.config["campaign"]
        assert (campaign["control_flow"], campaign["dynamic"]) == (0.5, 0.5)
        assert store.progress().tests == 32
    assert stored(tmp_path / "resumed") == stored(tmp_path / "unbroken")
