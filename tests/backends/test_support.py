"""Support learning: what a backend declines is learned, persisted, and never trusted blindly."""

from __future__ import annotations

import json

import pytest

from fuzzer.execution.support import SupportTable, SupportTableError, features
from fuzzer.campaign.config import CampaignConfig
from fuzzer.campaign.driver import Campaign, learned_avoidance, start_run, support_tables
from fuzzer.generation.generator import GeneratorOptions, generate_graph
from fuzzer.graph.ir import DType

VERSIONS = {"onnxruntime": "1.0"}


def graph_with(ops: set[str]):
    """A small float32 graph that uses every operator in ``ops``."""
    options = GeneratorOptions(nodes=2 * len(ops), ops=frozenset(ops), dtypes=frozenset({DType.float32}))
    return next(g for g in (generate_graph(seed, options) for seed in range(100))
                if {op for op, _ in features(g)} == ops)


def test_an_unsupported_outcome_pins_the_single_unknown_feature(tmp_path):
    table = SupportTable.load("ort-none", VERSIONS, tmp_path)
    relu = graph_with({"Relu"})
    table.learn(features(relu), unsupported=False)
    both = graph_with({"Relu", "Acosh"})
    assert table.learn(features(both), unsupported=True) == ("Acosh", "float32")
    assert table.declines(features(both)) == ("Acosh", "float32") and table.declines(features(relu)) is None
    table.save()
    again = SupportTable.load("ort-none", VERSIONS, tmp_path)
    assert again.unsupported == {("Acosh", "float32")} and ("Relu", "float32") in again.supported
    assert SupportTable.load("ort-none", {"onnxruntime": "2.0"}, tmp_path).unsupported == set()  # new version


def test_ambiguous_evidence_pins_nothing(tmp_path):
    table = SupportTable.load("b", VERSIONS, tmp_path)
    assert table.learn(features(graph_with({"Relu", "Acosh"})), unsupported=True) is None
    assert not table.unsupported


def test_untrustworthy_tables_are_refused_with_a_message(tmp_path):
    table = SupportTable.load("b", VERSIONS, tmp_path)
    table.learn(features(graph_with({"Relu"})), unsupported=False)
    table.save()
    data = json.loads(table.path.read_text())
    table.path.write_text(json.dumps({**data, "supported": []}))
    with pytest.raises(SupportTableError, match="no supported operator"):
        SupportTable.load("b", VERSIONS, tmp_path)
    table.path.write_text(json.dumps({**data, "unsupported": [[f"Op{i}", "float32"] for i in range(20)]}))
    with pytest.raises(SupportTableError, match="broken set-up"):
        SupportTable.load("b", VERSIONS, tmp_path)
    table.path.write_text(json.dumps(data))
    loaded = SupportTable.load("b", VERSIONS, tmp_path)
    loaded.supported.clear()
    with pytest.raises(SupportTableError, match="shrink"):
        loaded.save()


def test_campaign_learns_declines_and_feeds_the_generator(tmp_path):
    config = CampaignConfig(backends=("onnx-ref", "ort-none"), nodes=3, max_tests=150, seed=1)
    with start_run(config, tmp_path / "run") as store:
        Campaign(config, store).run()
        assert store.get_meta("unsupported")["ort-none"]
    tables = support_tables(config.backends)
    assert tables["ort-none"].unsupported and not tables["onnx-ref"].unsupported
    both = {"a": tables["ort-none"], "b": tables["ort-none"]}
    avoid = learned_avoidance(both)
    assert set(avoid) == tables["ort-none"].unsupported
    options = GeneratorOptions(nodes=6, avoid=frozenset(avoid))
    for seed in range(30):
        assert not features(generate_graph(seed, options)) & set(avoid)


def test_a_feature_pinned_by_one_unlucky_graph_is_learned_supported_again(tmp_path):
    """A decline can come from an attribute, not the operator (ORT's Conv refuses dilations with
    auto_pad): the campaign still runs every RECHECK_EVERY-th test, and a run unpins the feature."""
    from fuzzer.execution.backends import load_backend

    wrong = SupportTable.load("ort-none", load_backend("ort-none").versions())
    wrong.supported, wrong.unsupported = {("Abs", "float32")}, {("Relu", "float32")}
    wrong.save()
    config = CampaignConfig(backends=("onnx-ref", "ort-none"), nodes=2, max_tests=40, seed=1, ops=("Relu",),
                            dtypes=("float32",), input_budget=None)
    with start_run(config, tmp_path / "run") as store:
        Campaign(config, store).run()
    relearned = support_tables(config.backends)["ort-none"]
    assert ("Relu", "float32") in relearned.supported and ("Relu", "float32") not in relearned.unsupported
