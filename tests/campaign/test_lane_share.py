"""Slow compilers get their share: a lane and a stream of tests each, and CPU by weight."""

from __future__ import annotations

import re

import pytest
from rich.console import Console

from fuzzer.campaign.config import CampaignConfig, Lane, plan_lanes, seed_for_test
from fuzzer.campaign.driver import Campaign, start_run
from fuzzer.campaign.progress import plain_line, summary_table
from fuzzer.campaign.shares import CpuMeter, FairShare, parse_lane_weights
from fuzzer.cli import default_backends, main
from fuzzer.store import RunStore
from reports.markdown import render_markdown
from reports.model import summarize
from reports.status import status_table

SLOW = "tests.fault_backends:SlowAlwaysWrong"  # family "faulty", always wrong: every test it runs is a finding
OTHER = "tests.fault_backends:SlowOtherAlwaysWrong"  # family "slow-other"


def slow_indices(store: RunStore, backend: str) -> list[int]:
    """The tests on which ``backend`` was found wrong: those its lane ran (and the reference could too)."""
    return sorted({f.test_index for f in store.findings() if f.backends == (backend,)})


# ---------------------------------------------------------------- weights


@pytest.mark.parametrize("text, weights", [
    ("fast=2,tvm=1,inductor=1", {"fast": 2.0, "tvm": 1.0, "inductor": 1.0}),
    (" fast = 0.5 , torch.compile=3", {"fast": 0.5, "torch.compile": 3.0}),
])
def test_lane_weights_parse(text, weights):
    assert parse_lane_weights(text) == weights


@pytest.mark.parametrize("text, words", [
    ("fast", "LANE=WEIGHT"), ("fast=", "LANE=WEIGHT"), ("=2", "LANE=WEIGHT"), ("fast=two", "'fast=two'"),
    ("fast=0", "positive"), ("fast=-1", "positive"), ("fast=nan", "positive"), ("fast=inf", "positive"),
    ("fast=1,,tvm=1", "got ''"), ("fast=1,fast=2", "fast is given two weights"),
])
def test_bad_lane_weights_say_what_is_wrong(text, words):
    with pytest.raises(ValueError, match=re.escape(words)):
        parse_lane_weights(text)


def test_each_slow_compiler_gets_a_lane_with_the_judges_and_its_weight():
    config = CampaignConfig(backends=("onnx-ref", "ort-none", SLOW, OTHER), reference="onnx-ref",
                            lane_weights={"fast": 2, "fault-slow-wrong": 3})  # a lane by one of its backends
    assert plan_lanes(config) == [Lane("fast", ("onnx-ref", "ort-none"), 2), Lane("faulty", ("onnx-ref", SLOW), 3),
                                  Lane("slow-other", ("onnx-ref", OTHER), 1)]
    alone = CampaignConfig(backends=("onnx-ref", SLOW), reference="onnx-ref")  # no fast backend but the judge
    assert plan_lanes(alone) == [Lane("fast", ("onnx-ref", SLOW), 2)]
    for weights, message in (({"tvm": 1}, "tvm is not a lane of this campaign; its lanes are fast, "
                                          "faulty (fault-slow-wrong), slow-other (fault-slow-other)"),
                             ({"onnx-ref": 1}, "onnx-ref is not a lane"),  # a judge belongs to every lane
                             ({"faulty": 1, SLOW: 2}, "lane faulty is given two weights")):
        with pytest.raises(ValueError, match=re.escape(message)):
            plan_lanes(CampaignConfig(backends=config.backends, reference="onnx-ref", lane_weights=weights))


def test_by_default_tvm_and_inductor_each_get_at_least_a_quarter_of_the_machine():
    backends = default_backends()
    if not {"tvm", "tvm-torch", "inductor", "aot-eager"} <= set(backends):
        pytest.skip("TVM or torch.compile cannot run here")
    lanes = {lane.name: lane for lane in plan_lanes(CampaignConfig(backends=backends, reference="onnx-ref"))}
    assert set(lanes) == {"fast", "tvm", "torch.compile"}
    assert set(lanes["tvm"].backends) == {"ref-f64", "onnx-ref", "tvm", "tvm-nofuse", "tvm-noopt", "tvm-torch"}
    assert set(lanes["torch.compile"].backends) == {"ref-f64", "onnx-ref", "inductor", "inductor-dynamic", "aot-eager"}
    total = sum(lane.weight for lane in lanes.values())
    assert lanes["tvm"].weight / total >= 0.25 and lanes["torch.compile"].weight / total >= 0.25


@pytest.mark.parametrize("args, words", [
    (["--lane-weights", "fast=0"], ["--lane-weights", "positive"]),
    (["--lane-weights", "tvm=1", "--backends", "onnx-ref,ort-none"], ["--lane-weights", "its lanes are fast"]),
])
def test_bad_lane_weights_give_one_line(args, words, tmp_path, capsys):
    assert main(["fuzz", "--max-tests", "1", "--out", str(tmp_path / "run"), *args]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("tcfuzz: error: ") and "\n" not in error and "Traceback" not in error
    assert all(word in error for word in words)
    assert not (tmp_path / "run" / "findings.db").exists()


# ---------------------------------------------------------------- the share


def test_a_lane_ahead_of_its_weight_waits_for_a_busy_lane_behind():
    share = FairShare({"fast": 1, "slow": 3})
    for name in ("fast", "slow"):
        share.start(name)
    assert not share.ahead("fast")  # nothing measured yet
    share.record(0.0, {"fast": 0.0, "slow": 0.0}, idle=0.0)
    share.record(2.0, {"fast": 3.0, "slow": 4.0}, idle=0.0)  # fast used 3 s for its quarter, slow 4 s for 3/4
    assert share.ahead("fast") and not share.ahead("slow")
    share.record(4.0, {"fast": 3.0, "slow": 8.5}, idle=0.0)  # slow caught up (within the slack)
    assert not share.ahead("fast") and not share.ahead("slow")
    share.record(6.0, {"fast": 3.5, "slow": 14.0}, idle=0.0)  # now fast is behind: slow waits
    assert share.ahead("slow") and not share.ahead("fast")


def test_nobody_waits_for_idle_cores_a_stuck_lane_or_a_lane_that_ended():
    share = FairShare({"fast": 1, "slow": 1})
    for name in ("fast", "slow"):
        share.start(name)
    share.record(0.0, {"fast": 0.0, "slow": 0.0}, idle=0.0)
    share.record(1.0, {"fast": 5.0, "slow": 1.0}, idle=0.8)  # 0.8 cores idle: room for both
    assert not share.ahead("fast")
    share.record(3.0, {"fast": 5.0, "slow": 1.0}, idle=0.8)  # no core idle, but slow used no CPU (a sleeping hang)
    assert not share.ahead("fast")
    share.record(4.0, {"fast": 6.0, "slow": 1.5}, idle=0.8)  # slow computes again
    assert share.ahead("fast")
    share.stop("slow")
    assert not share.ahead("fast")


def test_a_meter_counts_cpu_from_when_it_started():
    import os
    import time

    meter = CpuMeter(lambda: [("process", os.getpid())])
    assert meter.seconds == 0.0  # what ran before is not counted
    deadline = time.process_time() + 0.2
    while time.process_time() < deadline:
        pass
    assert 0.1 < meter.sample() < 30
    gone = CpuMeter(lambda: [("process", 2**22 + 1), ("thread", 2**22 + 1)])  # no such ids
    assert gone.sample() == 0.0


# ---------------------------------------------------------------- campaigns


class HeldFast(FairShare):
    """Holds the fast lane until the slow lanes have started ``turns`` batches, noting the
    tests done whenever a slow lane starts one."""

    def __init__(self, weights, campaign_of, turns: int) -> None:
        super().__init__(weights)
        self.campaign_of, self.turns, self.seen = campaign_of, turns, []

    def ahead(self, name: str) -> bool:
        if name != "fast":
            self.seen.append(self.campaign_of().snapshot.tests)
        return name == "fast" and len(self.seen) < self.turns


def test_the_fast_lane_yields_to_slow_lanes_ahead_of_it(tmp_path):
    config = CampaignConfig(backends=("onnx-ref", "ort-none", SLOW, OTHER), reference="onnx-ref", nodes=3,
                            max_tests=40)
    with start_run(config, tmp_path / "run") as store:
        campaign = Campaign(config, store)
        campaign.shares = held = HeldFast({lane.name: lane.weight for lane in campaign.lanes}, lambda: campaign, 6)
        snapshot = campaign.run()
        counted = {name: sum(counts.values()) for name, counts in campaign.outcome_counts.items()}
    assert held.seen[:5] == [0] * 5  # the fast lane ran no test while held
    assert snapshot.tests == 40 and counted["ort-none"] == 40
    assert counted["fault-slow-wrong"] >= 4 and counted["fault-slow-other"] >= 4


def test_each_slow_lane_runs_a_stream_of_its_own_judged_and_seeded_as_ever(tmp_path):
    config = CampaignConfig(backends=("onnx-ref", "ort-none", SLOW, OTHER), reference="onnx-ref", nodes=3,
                            seed=5, max_tests=120)
    with start_run(config, tmp_path / "run") as store:
        snapshot = Campaign(config, store).run()
        findings = [f for f in store.findings() if f.backends in (("fault-slow-wrong",), ("fault-slow-other",))]
        streams = {backend: slow_indices(store, backend) for backend in ("fault-slow-wrong", "fault-slow-other")}
    assert snapshot.tests == 120
    assert set(snapshot.lanes) == {"fast", "faulty", "slow-other"}
    for indices in streams.values():
        assert len(indices) >= 8  # not a sample of every 16th test: a stream of consecutive batches
        assert any(index + 1 in indices for index in indices)
        assert all(0 <= index < 120 for index in indices)
    assert all(f.seed == seed_for_test(5, f.test_index) and f.details.get("compared_with") == "onnx-ref"
               for f in findings if f.kind == "mismatch")


def test_status_and_reports_show_tests_and_time_per_backend(tmp_path):
    config = CampaignConfig(backends=("onnx-ref", "ort-none", SLOW), reference="onnx-ref", nodes=3, max_tests=16)
    with start_run(config, tmp_path / "run") as store:
        campaign = Campaign(config, store)
        snapshot = campaign.run()
        summary = summarize(store)
    rows = {row.name: row for row in summary.backend_rows}
    assert rows["ort-none"].tests == 16 and rows["fault-slow-wrong"].tests >= 4
    assert all(row.seconds > 0 for row in rows.values())
    console = Console(record=True, width=120)
    console.print(status_table(summary, now=0.0))
    text = console.export_text()
    assert re.search(r"backends\s+│\s+tests / time", text)
    assert re.search(rf"fault-slow-wrong\s+│\s+{rows['fault-slow-wrong'].tests} / \d+ s", text)
    assert "| seconds |" in render_markdown(summary).splitlines()[-len(rows) - 2]
    console = Console(record=True, width=120)
    console.print(summary_table(snapshot, outcomes=campaign.outcome_counts, seconds=campaign.backend_seconds))
    text = console.export_text()
    assert re.search(r"ort-none\s+│\s+\d+ / \d+ / \d+ s", text) and re.search(r"faulty\s+│\s+\d+% \(33%\)", text)
    assert "CPU by lane (weight) fast " in plain_line(snapshot)


def test_each_lane_avoids_what_most_of_its_compilers_decline_and_rechecks_it_now_and_then(tmp_path):
    config = CampaignConfig(backends=("ort-none", "ort-all", "torch", "ref-f64"), seed=1, max_tests=32)
    with start_run(config, tmp_path / "run") as store:
        campaign = Campaign(config, store)
        for name in ("ort-none", "ort-all"):  # two of the lane's three targets; the judge does not count
            campaign.support[name].unsupported = {("Add", "bfloat16")}
        campaign.support["ref-f64"].unsupported = {("Mul", "float16")}
        (lane,) = campaign.lanes
        options = campaign._lane_options(lane)
        assert ("Add", "bfloat16") in options.avoid and ("Mul", "float16") not in options.avoid
        campaign.lane_options[lane.name] = options
        submitted = []

        class Builder:  # records the options each batch is built with
            def submit(self, jobs, options):
                submitted.append(options)

        campaign._build(Builder(), [1, 2], "fast")
        campaign._build(Builder(), [16, 17], "fast")  # holds test 16: a recheck batch
        assert submitted == [options, config.generator_options]
