"""The backend interface: one small class per compiler configuration.

A backend runs inside an isolated worker process (``fuzzer.worker``). Its module must
import nothing heavy at import time: ``setup`` does that once per worker. Each test then
goes through ``prepare`` (convert the test case into the compiler's input form),
``compile`` and ``run``; the stage an exception escapes from is recorded.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from typing import Any, ClassVar, Mapping, Sequence

import numpy as np

from fuzzer.outcome import TestCase


class Unsupported(Exception):
    """Raised by a backend for a documented limitation: never reported as a bug."""


class Backend:
    name: ClassVar[str]
    description: ClassVar[str]
    requires: ClassVar[tuple[str, ...]] = ()  # distributions that must be installed
    device: ClassVar[str] = "cpu"

    @classmethod
    def missing(cls) -> str | None:
        """Why this backend cannot run here (without importing it), or None."""
        for distribution in cls.requires:
            try:
                importlib.metadata.version(distribution)
            except importlib.metadata.PackageNotFoundError:
                return f"package {distribution!r} is not installed (pip install {distribution})"
        return None

    @classmethod
    def versions(cls) -> dict[str, str]:
        return {d: importlib.metadata.version(d) for d in cls.requires}

    def setup(self) -> None:
        """Heavy imports and one-time initialization, in the worker process."""

    def prepare(self, case: TestCase) -> Any:
        return case

    def compile(self, prepared: Any) -> Any:
        raise NotImplementedError

    def run(self, compiled: Any, inputs: Mapping[str, np.ndarray]) -> Sequence[np.ndarray]:
        """Outputs in the order of the graph's outputs."""
        raise NotImplementedError

    def is_unsupported(self, error: BaseException) -> bool:
        """Whether ``error`` is a documented limitation rather than a bug."""
        return isinstance(error, Unsupported)


REQUIRED_METHODS = ("compile", "run")


def check_backend_class(target: str, candidate: Any) -> type[Backend]:
    """Reject a registration that is not a usable Backend, naming what is wrong."""
    if not (isinstance(candidate, type) and issubclass(candidate, Backend)):
        raise TypeError(f"backend {target} is not a subclass of fuzzer.backends.base.Backend")
    for attribute in ("name", "description"):
        if not isinstance(getattr(candidate, attribute, None), str):
            raise TypeError(f"backend {target} lacks the class attribute {attribute!r}")
    for method in REQUIRED_METHODS:
        if getattr(candidate, method) is getattr(Backend, method):
            raise TypeError(f"backend {target} ({candidate.name}) does not implement {method}()")
    return candidate
