"""The coverage-guided campaign: corpus growth, mutants, fresh-test determinism, admission,
energy, seeding, the ablation's uniform scheduler, CLI."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import pytest

from corpus.corpus import Corpus
from fuzzer.campaign.config import CampaignConfig, seed_for_test
from fuzzer.campaign.driver import Campaign, start_run
from fuzzer.cli import main
from fuzzer.execution.coverage_bits import ARC, GRAPH, NOTED, bit
from fuzzer.campaign.coverage import CoverageMap, Scheduler, coverage_series
from fuzzer.generation.generator import GeneratorOptions, generate_case, generate_graph
from fuzzer.generation.mutate import MUTATORS

OPTIONS = GeneratorOptions(nodes=4, input_budget=None)


def guided(seed: int, tests: int, **overrides) -> CampaignConfig:
    return CampaignConfig(backends=("onnx-ref",), seed=seed, nodes=4, max_tests=tests, input_budget=None,
                          single_compiler_every=0, coverage=True, **overrides)


@pytest.mark.slow
def test_guided_campaign_grows_a_corpus_of_fresh_tests_and_mutants(tmp_path):
    config = guided(seed=5, tests=80)
    with start_run(config, tmp_path / "run") as store:
        snapshot = Campaign(config, store).run(interval=0.02)  # the corpus is written at each interval
        series = coverage_series(store)
    with Corpus.open(tmp_path / "run" / "corpus") as corpus:
        entries = corpus.entries()
    assert snapshot.tests == 80 and snapshot.corpus == len(entries) > 5
    assert series and series[-1]["corpus"] == len(entries) and series[-1]["features"] == snapshot.features > 0
    fresh = [e for e in entries if e.origin.startswith("test ")]
    mutants = [e for e in entries if e.origin.split(" of ")[0] in MUTATORS]
    assert fresh and mutants
    for entry in fresh:  # a fresh test is exactly the unguided campaign's test of that index
        index = int(entry.origin.split()[1])
        assert entry.graph.content_hash == generate_case(seed_for_test(5, index), config.generator_options,
                                                          index).graph.content_hash


@pytest.mark.slow
def test_a_new_campaign_reuses_an_existing_corpus(tmp_path):
    shared = tmp_path / "shared-corpus"
    first = guided(seed=1, tests=15, corpus=str(shared))
    with start_run(first, tmp_path / "first") as store:
        grown = Campaign(first, store).run().corpus
    second = guided(seed=2, tests=1, corpus=str(shared))
    with start_run(second, tmp_path / "second") as store:
        campaign = Campaign(second, store)
        assert campaign.snapshot.corpus == grown > 0
        assert campaign.coverage_map.features > 0  # the map starts from the corpus's fingerprints
        campaign.run()


def picks_of_common_and_rare_entries(corpus_dir, plans: int, **scheduler_options) -> dict[str, int]:
    """Picks of two corpus entries after ``plans`` plans: one covers only a bit seen 50
    times, the other also a bit seen once."""
    common, rare = bit(GRAPH, "common"), bit(GRAPH, "rare")
    coverage_map = CoverageMap()
    for _ in range(50):
        coverage_map.update([common])
    with Corpus.open(corpus_dir) as corpus:
        corpus.add(generate_graph(1, OPTIONS), frozenset({common}), origin="common")
        corpus.add(generate_graph(2, OPTIONS), frozenset({common, rare}), origin="rare")
        scheduler = Scheduler(corpus, coverage_map, mutation_share=1.0, options=OPTIONS, **scheduler_options)
        for index in range(plans):
            scheduler.plan(index, seed=index)
        scheduler.flush()
        return {entry.origin: entry.hits for entry in corpus.entries()}


def test_scheduler_gives_rare_coverage_more_energy(tmp_path):
    hits = picks_of_common_and_rare_entries(tmp_path / "corpus", 120)
    assert hits["rare"] > 3 * hits["common"]


def test_scheduler_energy_decays_with_picks(tmp_path):
    shared = frozenset({bit(GRAPH, "shared")})
    with Corpus.open(tmp_path / "corpus") as corpus:
        corpus.add(generate_graph(1, OPTIONS), shared, origin="worn")
        corpus.add(generate_graph(2, OPTIONS), shared, origin="new")
        worn = next(e.hash for e in corpus.entries() if e.origin == "worn")
        for _ in range(30):
            corpus.record_pick(worn)
        scheduler = Scheduler(corpus, CoverageMap(), mutation_share=1.0, options=OPTIONS)
        for index in range(40):
            scheduler.plan(index, seed=index)
        scheduler.flush()
        hits = {entry.origin: entry.hits for entry in corpus.entries()}
    assert hits["new"] > 2 * (hits["worn"] - 30)


def admitted(scheduler: Scheduler, coverage_map: CoverageMap, seed: int, *bits: int) -> bool:
    """Count a test of ``bits`` in the map as the campaign does, offer it; whether it joined."""
    coverage_map.update(bits)
    scheduler.admit(generate_graph(seed, OPTIONS), frozenset(bits), f"test {seed}", None)
    return scheduler.flush() == 1


def test_feedback_admits_tests_first_to_cover_compiler_code(tmp_path):
    arc, passed, feature = bit(ARC, "f:1:2"), bit(NOTED, "pass-changed:FuseOps"), bit(GRAPH, "op:Relu")
    with Corpus.open(tmp_path / "corpus") as corpus:
        corpus.add(generate_graph(0, OPTIONS), frozenset(), origin="old")
        coverage_map = CoverageMap()
        scheduler = Scheduler(corpus, coverage_map, mutation_share=0.5, options=OPTIONS)
        assert admitted(scheduler, coverage_map, 1, feature)  # no compiler code measured yet: structure counts
        assert admitted(scheduler, coverage_map, 2, arc, feature)
        assert not admitted(scheduler, coverage_map, 3, arc, bit(GRAPH, "op:Tanh"))  # structural novelty alone
        assert admitted(scheduler, coverage_map, 4, arc, passed)
        unguided = Scheduler(corpus, coverage_map, mutation_share=0.5, options=OPTIONS, feedback=False)
        assert admitted(unguided, coverage_map, 5, arc)


def test_mutants_that_join_make_their_parent_productive(tmp_path):
    shared = frozenset({bit(GRAPH, "shared")})
    with Corpus.open(tmp_path / "corpus") as corpus:
        for seed in (1, 2):  # of the same size, which counts too
            corpus.add(generate_graph(seed, replace(OPTIONS, exact_size=True)), shared, origin=f"entry {seed}")
        coverage_map = CoverageMap()
        scheduler = Scheduler(corpus, coverage_map, mutation_share=1.0, options=OPTIONS)
        productive, other = scheduler.candidates
        index = 0
        while productive.children < 3:  # three of its mutants cover new arcs
            planned = scheduler.plan(index, seed=index)
            if planned is not None and productive.hash[:12] in planned[1]:
                new_arc = bit(ARC, f"f:{index}")
                coverage_map.update([new_arc])
                scheduler.admit(planned[0], frozenset({new_arc}), planned[1], None)
            index += 1
        for later in range(index, index + 200):
            scheduler.plan(later, seed=later)
    assert productive.hits > 1.5 * other.hits  # picks wear energy off: they grow as its square root


def test_without_feedback_entries_are_picked_uniformly(tmp_path):
    hits = picks_of_common_and_rare_entries(tmp_path / "corpus", 200, feedback=False)
    assert 0.6 < hits["rare"] / hits["common"] < 1.6


@pytest.mark.parametrize("opset, transformer", [(17, True), (13, False)])
def test_an_empty_corpus_starts_from_the_seed_blocks_that_suit_the_opset(tmp_path, opset, transformer):
    options = GeneratorOptions(opset=opset, input_budget=None)
    with Corpus.open(tmp_path / "corpus") as corpus:
        scheduler = Scheduler(corpus, CoverageMap(), mutation_share=0.5, options=options)
        origins = {entry.origin for entry in corpus.entries()}
    assert len(scheduler.candidates) == len(origins) >= 4
    assert all(origin.startswith("seed:") for origin in origins)
    assert ("seed:transformer_encoder_block" in origins) == transformer


def test_shared_tests_get_the_same_mutant_in_every_lane(tmp_path):
    with Corpus.open(tmp_path / "corpus") as corpus:
        corpus.add(generate_graph(3, OPTIONS), frozenset({bit(GRAPH, "x")}), origin="seed")
        scheduler = Scheduler(corpus, CoverageMap(), mutation_share=1.0, options=OPTIONS)
        plans = Counter()
        for index in range(20):
            first = scheduler.plan(index, seed=index, shared=True)
            assert scheduler.plan(index, seed=index, shared=True) == first
            plans[first is not None] += 1
    assert plans[True] > 0


def test_cli_refuses_coverage_changes_on_resume_and_corpus_without_coverage(tmp_path, capsys):
    assert main(["fuzz", "--corpus", str(tmp_path / "c"), "--no-coverage", "--max-tests", "1"]) == 2
    assert main(["fuzz", "--resume", str(tmp_path / "run"), "--coverage"]) == 2
    errors = capsys.readouterr().err
    assert "--no-coverage" in errors and "cannot change when resuming" in errors
