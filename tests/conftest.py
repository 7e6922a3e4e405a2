"""Every test learns backend support into its own cache, never the user's. Property tests
draw the same examples on every run (Hypothesis ``derandomize``): a test that passes today
passes on CI tomorrow, and the search for new failing graphs is the fuzzer's own job."""

from __future__ import annotations

import pytest
from hypothesis import settings

settings.register_profile("tcfuzz", derandomize=True)
settings.load_profile("tcfuzz")


@pytest.fixture(autouse=True)
def private_support_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("TCFUZZ_CACHE_DIR", str(tmp_path_factory.mktemp("tcfuzz-cache")))
