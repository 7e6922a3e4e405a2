"""Fixtures of the triage tests."""

from __future__ import annotations

import pytest

from tests.planted_backends import BACKENDS
from triage.rerun import Evaluator


@pytest.fixture(scope="module")
def evaluator():
    """Running workers of the planted-bug backend and both references, shared by a module's tests."""
    with Evaluator(BACKENDS) as running:
        yield running
