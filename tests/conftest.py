"""Every test learns backend support into its own cache, never the user's: the whole session
(module-scoped fixtures and subprocesses included) caches under a temporary directory, and
each test gets a fresh one. Property tests
draw the same examples on every run (Hypothesis ``derandomize``): a test that passes today
passes on CI tomorrow, and the search for new failing graphs is the fuzzer's own job."""

from __future__ import annotations

import os
import tempfile

import pytest
from hypothesis import settings

settings.register_profile("tcfuzz", derandomize=True)
settings.load_profile("tcfuzz")


SESSION_CACHE = tempfile.mkdtemp(prefix="tcfuzz-test-cache-")


def pytest_configure(config) -> None:
    """Caches of the session: tcfuzz's support tables and anything that follows XDG."""
    os.environ["TCFUZZ_CACHE_DIR"] = os.path.join(SESSION_CACHE, "tcfuzz")
    os.environ["XDG_CACHE_HOME"] = os.path.join(SESSION_CACHE, "xdg")


@pytest.fixture(autouse=True)
def private_support_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("TCFUZZ_CACHE_DIR", str(tmp_path_factory.mktemp("tcfuzz-cache")))
