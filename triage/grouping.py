"""Grouping of signatures (:mod:`oracles.signature`): near-identical keys are one bug."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Iterable

SIMILARITY = 0.9  # difflib ratio above which two messages of one kind of failure are the same bug


@dataclass(frozen=True)
class KeyParts:
    """A key taken apart: kind/backend/stage/cause, the ``@`` frames, and the rest."""

    head: tuple[str, ...]
    frames: str
    message: str

    @classmethod
    def parse(cls, key: str) -> KeyParts:
        key = re.sub(r"~[0-9a-f]{8}$", "", key)  # a cut key's digest says nothing about similarity
        *head, rest = key.split("/", 4) if key.count("/") >= 4 else [*key.split("/"), ""]
        segments = rest.split("/")
        frames = "/".join(s for s in segments if s.startswith("@"))
        return cls(tuple(head), frames, "/".join(s for s in segments if not s.startswith("@")))


def near_identical(first: str, second: str, similarity: float = SIMILARITY) -> bool:
    """Same kind, backend, stage and cause, and either the same top frames or, where the
    frames do not disagree, messages at least ``similarity`` alike."""
    a, b = KeyParts.parse(first), KeyParts.parse(second)
    if a.head != b.head:
        return False
    if a.frames and a.frames == b.frames:
        return True
    if a.frames and b.frames:
        return False
    return difflib.SequenceMatcher(None, a.message, b.message).ratio() >= similarity


def group_signatures(signatures: Iterable[str], similarity: float = SIMILARITY) -> list[list[str]]:
    """The distinct ``signatures`` in groups of near-identical keys (transitively), groups
    and members in order of first appearance."""
    distinct = list(dict.fromkeys(signatures))
    parent = list(range(len(distinct)))

    def root(index: int) -> int:
        while parent[index] != index:
            parent[index] = parent[parent[index]]
            index = parent[index]
        return index

    for i in range(len(distinct)):
        for j in range(i + 1, len(distinct)):
            if root(i) != root(j) and near_identical(distinct[i], distinct[j], similarity):
                parent[max(root(i), root(j))] = min(root(i), root(j))
    groups: dict[int, list[str]] = {}
    for index, key in enumerate(distinct):
        groups.setdefault(root(index), []).append(key)
    return list(groups.values())
