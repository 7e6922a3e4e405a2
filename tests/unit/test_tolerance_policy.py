"""Error statistics, tolerance files and command-line overrides."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fuzzer.cli import main
from fuzzer.graph.ir import DType
from oracles.tolerance import (Tolerance, configured_policy, parse_statistic, policy_from_dict,
                               policy_to_dict)

A = np.array([1000.0, 1e-6, 5.0, 5.0])
B = np.array([1000.0, 0.01, 5.0, 5.0])  # one element off near zero


def test_elementwise_flags_the_element_max_and_quantile_forgive_it():
    assert Tolerance(1e-3, 1e-4).within(A, B).tolist() == [True, False, True, True]
    assert Tolerance(1e-3, 1e-4, "max").within(A, B).all()
    assert Tolerance(1e-3, 1e-4, "quantile", 0.7).within(A, B).all()
    assert not Tolerance(1e-3, 1e-4, "quantile", 0.9).within(A, B).all()


def test_max_statistic_still_catches_a_large_error():
    wrong = np.array([1100.0, 1e-6, 5.0, 5.0])
    assert not Tolerance(1e-3, 1e-4, "max").within(A, wrong).all()


def test_policy_round_trips_and_reads_user_files():
    policy = configured_policy("quantile:0.95")
    assert policy_from_dict(policy_to_dict(policy)) == policy
    user = policy_from_dict({"statistic": "max", "dtypes": {"float16": [0.1, 0.1]}, "outputs": {"y": [1, 2]}})
    assert user.for_output("y", DType.float32) == Tolerance(1, 2, "max")
    assert user.for_output("z", DType.float16) == Tolerance(0.1, 0.1, "max")
    assert user.for_output("z", DType.int32) is None  # integers stay exact
    with pytest.raises(ValueError, match="quantile"):
        parse_statistic("quantile:lots")
    with pytest.raises(ValueError, match="malformed"):
        policy_from_dict({"dtypes": {"float99": [1, 1]}})


def test_command_line_tolerances_reach_the_campaign(tmp_path, capsys):
    settings = tmp_path / "tolerances.json"
    settings.write_text(json.dumps({"outputs": {"v1_0": [0.5, 0.5]}}))
    run = tmp_path / "run"
    code = main(["fuzz", "--backends", "onnx-ref", "--max-tests", "2", "--nodes", "2", "--out", str(run),
                 "--tolerance-file", str(settings), "--tolerance", "v2_0=1e-2,1e-3", "--error-statistic", "max"])
    assert code in (0, 1)
    from fuzzer.store import RunStore

    with RunStore.open(run) as store:
        stored = policy_from_dict(store.config["campaign"]["tolerances"])
    assert stored.for_output("v1_0", DType.float32) == Tolerance(0.5, 0.5, "max")
    assert stored.for_output("v2_0", DType.float32) == Tolerance(1e-2, 1e-3, "max")
    assert main(["fuzz", "--error-statistic", "median", "--max-tests", "1"]) == 2
    assert "error statistic" in capsys.readouterr().err
