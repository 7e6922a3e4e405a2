"""What each backend supports, learned from its outcomes and kept across runs.

A *feature* is an (operator, dtype) pair: the dtype is the node's first input's (or its
first output's, for nodes without inputs). A graph that ran on a backend proves all its
features supported there; an "unsupported" outcome whose graph has exactly one feature
not yet proven supported pins that feature as unsupported. Tables are stored per backend
and package versions, so an upgrade relearns. A table that is empty, that shrank, or that
declares most of what it has seen unsupported is refused with a message, never used: such
a table comes from a broken backend set-up and would silently stop testing.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from fuzzer.graph.ir import Graph

Feature = tuple[str, str]
MOST = 0.8  # a share of unsupported features above this means a broken set-up


class SupportTableError(Exception):
    """A support table that must not be trusted; the message says how to relearn."""


def default_cache_dir() -> Path:
    base = os.environ.get("TCFUZZ_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "tcfuzz")
    return Path(base) / "support"


def features(graph: Graph) -> set[Feature]:
    types = graph.types
    return {(node.op, (types[node.inputs[0]] if node.inputs and node.inputs[0] else node.output_types[0]).dtype.value)
            for node in graph.nodes}


@dataclass
class SupportTable:
    backend: str
    versions: Mapping[str, str]
    path: Path
    supported: set[Feature] = field(default_factory=set)
    unsupported: set[Feature] = field(default_factory=set)
    _saved_supported: int = 0

    @classmethod
    def load(cls, backend: str, versions: Mapping[str, str], cache_dir: Path | None = None) -> SupportTable:
        key = hashlib.sha256(json.dumps(dict(versions), sort_keys=True).encode()).hexdigest()[:12]
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in backend)
        path = (cache_dir or default_cache_dir()) / f"{safe}@{key}.json"
        table = cls(backend, dict(versions), path)
        if path.exists():
            try:
                data = json.loads(path.read_text())
                table.supported = {tuple(f) for f in data["supported"]}
                table.unsupported = {tuple(f) for f in data["unsupported"]}
            except (ValueError, KeyError, TypeError) as error:
                raise SupportTableError(f"support table {path} is unreadable ({error}); delete it to relearn") from None
            table._saved_supported = len(table.supported)
            table.check()
        return table

    def check(self) -> None:
        seen = len(self.supported) + len(self.unsupported)
        if not self.supported:
            raise SupportTableError(f"support table {self.path} for {self.backend} holds no supported operator; "
                                    "the backend probably failed to set up. Delete the file to relearn")
        if seen >= 10 and len(self.unsupported) > MOST * seen:
            raise SupportTableError(
                f"support table {self.path} marks {len(self.unsupported)} of {seen} operator/dtype pairs "
                f"unsupported by {self.backend}; that points to a broken set-up. Delete the file to relearn")

    def learn(self, found: set[Feature], unsupported: bool) -> Feature | None:
        """Record one outcome of a graph with features ``found``; returns the feature newly
        pinned as unsupported, if any."""
        if not unsupported:
            self.supported |= found
            self.unsupported -= found
            return None
        unknown = found - self.supported
        if len(unknown) == 1 and not unknown <= self.unsupported:
            self.unsupported |= unknown
            return next(iter(unknown))
        return None

    def declines(self, found: set[Feature]) -> Feature | None:
        """One of the features ``found`` that this backend is known not to support, if any."""
        return next(iter(sorted(found & self.unsupported)), None)

    def save(self) -> None:
        """Write atomically; refuse to replace a table with one that knows less."""
        if len(self.supported) < self._saved_supported:
            raise SupportTableError(f"support table {self.path} would shrink from {self._saved_supported} to "
                                    f"{len(self.supported)} supported pairs; refusing to save")
        if not self.supported:
            return  # nothing learned yet: an empty table is never written
        self.check()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {"backend": self.backend, "versions": dict(self.versions),
                "supported": sorted(self.supported), "unsupported": sorted(self.unsupported)}
        with tempfile.NamedTemporaryFile("w", dir=self.path.parent, delete=False, suffix=".tmp") as handle:
            json.dump(data, handle, indent=1)
        os.replace(handle.name, self.path)
        self._saved_supported = len(self.supported)
