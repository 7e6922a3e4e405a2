"""Every test learns backend support into its own cache, never the user's."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def private_support_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("TCFUZZ_CACHE_DIR", str(tmp_path_factory.mktemp("tcfuzz-cache")))
