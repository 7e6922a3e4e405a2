"""The performance oracle: slowdowns of a compiler's optimized configuration against its
baseline are timed, confirmed in fresh workers, and scored (oracles.performance,
fuzzer.campaign.performance, fuzzer.execution.backends.timed)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fuzzer.campaign.config import CampaignConfig
from fuzzer.campaign.driver import Campaign, start_run
from fuzzer.campaign.performance import timed_pairs, timed_tests
from fuzzer.execution.backends import UnknownBackend, load_backend
from fuzzer.store import RunStore
from oracles.optlevel import OPT_PAIRS, opt_pairs
from oracles.performance import (PENALTY, PerfPolicy, TimedTest, is_slowdown, relative_error, score_curves,
                                 speedup_score)
from reports.html import render_html
from reports.markdown import render_markdown
from reports.model import summarize
from tests.helpers import ROOT, tcfuzz
from triage.bugs import run_bugs
from triage.pipeline import triage_run

BASE = "tests.perf_backends:PlantedBaseline"


def timed(index: int, optimized_ms: float | None, baseline_ms: float | None = 1.0, error: float = 0.0,
          failed: str = "") -> TimedTest:
    return TimedTest(index, "planted", "fast", "slow", optimized_ms, baseline_ms, error, failed)


# ---------------------------------------------------------------- the pure oracle


def test_a_slowdown_needs_both_the_factor_and_the_floor():
    policy = PerfPolicy(factor=2.0, floor=0.0005)
    assert is_slowdown({"o": [0.003] * 5, "b": [0.001] * 5}, "o", "b", policy)
    assert not is_slowdown({"o": [0.0019] * 5, "b": [0.001] * 5}, "o", "b", policy)  # under 2x
    assert not is_slowdown({"o": [0.0003] * 5, "b": [0.0001] * 5}, "o", "b", policy)  # 3x, but 0.2 ms


def test_medians_ignore_a_minority_of_slow_runs():
    runs = {"o": [0.001, 0.009, 0.001, 0.009, 0.001], "b": [0.001] * 5}
    assert not is_slowdown(runs, "o", "b", PerfPolicy())


@pytest.mark.parametrize("settings", [{"factor": 1.0}, {"floor": -1.0}, {"every": 0}, {"confirmations": 0}])
def test_a_policy_that_cannot_hold_is_refused(settings):
    with pytest.raises(ValueError, match="performance policy"):
        PerfPolicy(**settings)


def test_relative_error_is_mixed_absolute_and_relative_and_strict_about_non_finite_values():
    expected = {"y": np.array([0.0, 100.0, np.nan, np.inf])}
    assert relative_error({"y": np.array([0.0, 100.0, np.nan, np.inf], np.float32)}, expected) == 0.0
    assert relative_error({"y": np.array([0.5, 100.0, np.nan, np.inf])}, expected) == pytest.approx(0.5)
    assert relative_error({"y": np.array([0.0, 101.0, np.nan, np.inf])}, expected) == pytest.approx(1 / 101)
    assert relative_error({"y": np.array([0.0, 100.0, 1.0, np.inf])}, expected) == math.inf
    assert relative_error({"y": np.zeros(3)}, expected) == math.inf
    assert relative_error({"y": np.array([0.0, 100.0, np.nan, np.inf]), "extra": np.ones(2)}, expected) == 0.0


def test_the_score_is_a_geometric_mean_with_a_penalty_for_wrong_or_failed_results():
    tests = [timed(0, 0.5), timed(1, 2.0), timed(2, 0.25, error=1e-3), timed(3, None, None, failed="optimized")]
    # speedups 2, 0.5, 4 (correct at 1e-2), and the penalty for the failure
    assert speedup_score(tests, 1e-2) == pytest.approx((2 * 0.5 * 4 * PENALTY) ** 0.25)
    # at 1e-4 the third result is wrong too
    assert speedup_score(tests, 1e-4) == pytest.approx((2 * 0.5 * PENALTY * PENALTY) ** 0.25)
    assert speedup_score([], 1e-2) is None


def test_score_curves_leave_out_tests_whose_baseline_failed():
    tests = [timed(0, 0.5), timed(1, None, None, failed="baseline"), timed(2, None, None, failed="pair")]
    [(compiler, curve)] = score_curves(tests, tolerances=(1e-3,)).items()
    assert (compiler, curve["tests"], curve["failed"], curve["median_speedup"]) == ("planted", 1, 0, 2.0)
    assert curve["score"] == {"1e-03": pytest.approx(2.0)}


# ---------------------------------------------------------------- backend facts and timed pairs


def test_optimization_pairs_are_the_backends_own_baselines():
    assert {("ort-none", "ort-all"), ("tvm-noopt", "tvm"), ("aot-eager", "inductor")} <= OPT_PAIRS
    for baseline, optimized in OPT_PAIRS:
        assert load_backend(baseline).compiler_name() == load_backend(optimized).compiler_name()
        assert not load_backend(baseline).optimizing and load_backend(optimized).optimizing


def test_a_plugin_backend_with_a_baseline_is_judged_against_it_at_every_optimization_level():
    planted = load_backend("tests.perf_backends:PlantedSlow")
    assert opt_pairs([planted, load_backend("ort-all")]) == {("planted-base", "planted-slow"), ("ort-none", "ort-all")}


def test_a_lane_times_the_pairs_whose_two_sides_it_runs():
    assert timed_pairs(("ort-none", "ort-all", "ort-basic", "ref-f64")) == {"ort-all": ("ort-all", "ort-none")}
    assert timed_pairs(("ort-all", "ref-f64")) == {}
    assert timed_pairs((BASE, "tests.perf_backends:PlantedSlow")) == {
        "tests.perf_backends:PlantedSlow": ("planted-slow", "planted-base")}


def test_a_backend_without_a_baseline_cannot_be_timed():
    with pytest.raises(UnknownBackend, match="no baseline"):
        load_backend("timed/ort-none")


# ---------------------------------------------------------------- in a campaign


def perf_campaign(tmp_path, optimized: str, tests: int = 24):
    config = CampaignConfig(backends=(BASE, f"tests.perf_backends:{optimized}"), seed=3, nodes=3, max_tests=tests,
                            input_budget=None, ops=("Tanh", "Add", "Relu", "Neg"), dtypes=("float32",),
                            perf=True, perf_every=2, timeout=30.0)
    store = start_run(config, tmp_path / "run")
    with store:
        Campaign(config, store).run()
        return store.findings(), timed_tests(store), store.get_meta("perf_seconds")


def test_a_planted_slowdown_is_found_confirmed_reduced_and_reproduced(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # the planted backends' module, for repro verification
    findings, timed_runs, perf_seconds = perf_campaign(tmp_path, "PlantedSlow")
    slowdowns = [f for f in findings if f.kind == "slowdown"]
    assert slowdowns, [f.summary for f in findings]
    for finding in slowdowns:
        assert finding.backends == ("planted-slow",) and finding.details["baseline"] == "planted-base"
        assert finding.signature.startswith("slowdown/planted-slow/run/than planted-base/")
        assert "Tanh" in finding.details["operators"]
        assert len(finding.details["confirmations"]) == 3 and min(finding.details["confirmations"]) >= 2
    assert len(timed_runs) == 12 and perf_seconds["fast"] > 0
    with_tanh = {f.test_index for f in slowdowns}
    assert all(t.speedup < 0.5 for t in timed_runs if t.test_index in with_tanh)

    triage_run(tmp_path / "run", reruns=2, time_budget=60)
    with RunStore.open(tmp_path / "run") as store:
        [bug] = run_bugs(store)
        summary = summarize(store)
    [(compiler, curve)] = summary.to_dict()["performance"]["compilers"].items()
    assert (compiler, curve["tests"]) == ("planted", 12) and curve["score"]["1e+00"] < 0.5  # Tanh: 100x slower
    assert "## Performance" in render_markdown(summary) and "Speedup score S(t)" in render_html(summary, tmp_path)
    assert (bug.kind, bug.compiler, bug.reduced_ops, bug.verified) == ("slowdown", "planted", ("Tanh",), True)
    script = (tmp_path / "run" / bug.repro).read_text()
    assert "def compile_backend(" in script


@pytest.mark.parametrize("optimized", ["PlantedNoisy", "PlantedTransient"])
def test_noise_and_one_off_slowness_are_never_reported(tmp_path, monkeypatch, optimized):
    monkeypatch.setenv("TCFUZZ_TRANSIENT_MARKER", str(tmp_path / "slow-once"))
    findings, timed_runs, _ = perf_campaign(tmp_path, optimized)
    assert not [f.summary for f in findings if f.kind == "slowdown"]
    assert timed_runs
    if optimized == "PlantedTransient":  # it was slow once, and the oracle saw it
        assert (tmp_path / "slow-once").exists()


@pytest.mark.parametrize("arguments, problem", [
    (["--perf", "--perf-factor", "1"], "--perf-factor 1.0 is no slowdown; give a factor over 1"),
    (["--perf", "--mode", "tir"], "--perf apply to graph campaigns"),
    (["--perf-every", "0"], "--perf-every"),
])
def test_bad_performance_options_get_one_line(tmp_path, arguments, problem):
    result = tcfuzz("fuzz", "--backends", "ort-none,ort-all", "--max-tests", "1", "--out", str(tmp_path / "run"),
                    *arguments)
    assert result.returncode == 2 and problem in result.stderr and "Traceback" not in result.stderr
