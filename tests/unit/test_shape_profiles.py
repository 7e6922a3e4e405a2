"""Shape profiles: weights are checked, each profile keeps its budgets, generation stays deterministic."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings, strategies as st

from fuzzer.generation.generator import GeneratorOptions, generate_graph, generated
from fuzzer.generation.profiles import CAMPAIGN_PROFILES, PROFILES, VECTOR_EXTENTS, draw_profile, parse_weights
from fuzzer.generation.stats import graph_statistics, size_bucket

MIXED = GeneratorOptions(shape_profiles=dict(CAMPAIGN_PROFILES), input_budget=None)


@pytest.mark.parametrize("text, message", [("small=1,huge=2", "unknown shape profile 'huge'"),
                                           ("small=-1", "weights must be >= 0"),
                                           ("small=0,vector=0", "sum to a positive"),
                                           ("small", "PROFILE=WEIGHT")])
def test_bad_weights_are_refused_in_one_line(text, message):
    with pytest.raises(ValueError, match=message) as error:
        parse_weights(text)
    assert "\n" not in str(error.value)


def test_weights_parse_in_profile_order():
    assert parse_weights("large=1,small=6,vector=3") == (("small", 6.0), ("vector", 3.0), ("large", 1.0))


def test_default_options_keep_todays_graphs():
    assert generate_graph(7, GeneratorOptions(input_budget=None)) == \
        generate_graph(7, GeneratorOptions(shape_profiles={"small": 2.0}, input_budget=None))


def test_vector_extents_sit_at_and_around_multiples_and_primes():
    assert {8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 13, 97} <= set(VECTOR_EXTENTS)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_each_profile_keeps_its_budgets_and_is_deterministic(seed):
    made = generated(seed, MIXED)
    profile = PROFILES[made.profile]
    limit = profile.max_elements or MIXED.max_elements
    assert all(t.numel <= limit for t in made.graph.types.values())
    assert generated(seed, MIXED) == made


def test_profiles_are_drawn_by_weight():
    rng = random.Random(0)
    drawn = [draw_profile(rng, parse_weights("small=6,vector=3,large=1")).name for _ in range(2000)]
    assert 0.5 < drawn.count("small") / 2000 < 0.7 and 0.05 < drawn.count("large") / 2000 < 0.15


def test_large_profile_reaches_large_tensors_and_stats_report_profiles():
    options = GeneratorOptions(shape_profiles={"large": 1.0}, input_budget=None)
    statistics = graph_statistics(generated(seed, options) for seed in range(20))
    assert statistics.profiles == {"large": 20}
    assert max(statistics.elements) >= 16_384
    assert size_bucket(1) == 1 and size_bucket(5) == 16 and size_bucket(16) == 16
