"""Coverage bits, and the worker's side of coverage feedback.

A bit is 32 bits in one space; its top two bits say its kind: ``ARC`` (a branch arc of a
compiler's Python layer, measured in the worker by :class:`ArcCollector`), ``GRAPH`` (a
structural feature of a test's graph) or ``NOTED`` (a rewrite an optimizer applied). The
campaign's coverage map (``fuzzer.campaign.coverage``) keeps them.
"""

from __future__ import annotations

import sys
import zlib
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    from fuzzer.execution.backends.base import Backend

ARC, GRAPH, NOTED = 0, 1, 2
KIND_SHIFT = 30
HASH_MASK = (1 << KIND_SHIFT) - 1


def bit(kind: int, text: str, tag: int = 0) -> int:
    """The bit of ``text`` (in the namespace ``tag``, e.g. a file's or a backend's hash)."""
    return kind << KIND_SHIFT | zlib.crc32(text.encode(), tag) & HASH_MASK


def kind_of(value: int) -> int:
    return value >> KIND_SHIFT


def stable_name(filename: str) -> str:
    """A source file's name from its package root on, the same in every environment."""
    _, found, rest = filename.rpartition("-packages/")
    return rest if found else filename


class ArcCollector:
    """One coverage.py measurement kept running for the worker's life.

    Per test, ``collect`` reads the tracer's raw arc sets, keeps the arcs this worker has
    not seen before, and clears the sets in place (as coverage.py itself does when it
    flushes). Nothing is written to coverage.py's SQLite data, which is what makes its
    ``get_data`` slow.
    """

    def __init__(self, include: Sequence[str]) -> None:
        import coverage

        self._coverage = coverage.Coverage(data_file=None, branch=True, config_file=False, include=list(include))
        if sys.version_info >= (3, 12):
            self._coverage.set_option("run:core", "sysmon")
            self._coverage.set_option("run:disable_warnings", ["no-sysmon"])  # falls back to ctrace itself
        self._seen: dict[str, set] = {}
        self._file_tags: dict[str, int] = {}

    def start(self) -> None:
        self._coverage.start()

    def collect(self) -> frozenset[int]:
        """Bits of the arcs new to this worker since the last call."""
        bits = set()
        raw = self._coverage._collector.data  # filename -> arcs; coverage.py's own flush clears these too
        for filename, live in list(raw.items()):
            seen = self._seen.setdefault(filename, set())
            fresh = live - seen  # one C-level operation: atomic under the GIL
            live.clear()
            if fresh:
                seen |= fresh
                tag = self._file_tags.get(filename)
                if tag is None:
                    tag = self._file_tags[filename] = zlib.crc32(stable_name(filename).encode())
                bits.update(bit(ARC, repr(arc), tag) for arc in fresh)
        return frozenset(bits)


def collector_for(backend: type[Backend]) -> ArcCollector | None:
    """A collector for the compiler code a backend class declares (``coverage_include``);
    None when it declares none."""
    include = backend.coverage_include
    return ArcCollector(include) if include else None
