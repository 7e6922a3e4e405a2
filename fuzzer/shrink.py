"""Delta debugging, shared by graph reduction (``triage.reduce``) and TIR shrinking (``fuzzer.tir``)."""

from __future__ import annotations

import math
from typing import Callable, Sequence, TypeVar

Item = TypeVar("Item")


def ddmin(items: Callable[[], Sequence[Item]], remove_one_of: Callable[[list[list[Item]]], bool],
          stop: Callable[[], bool] = lambda: False) -> bool:
    """Remove chunks of ``items()`` (halves, then quarters, ... down to single items) for as long
    as ``remove_one_of(chunks)`` manages to remove one of the chunks it is offered (it applies the
    removal, so the next ``items()`` is smaller); whether anything was removed. ``stop`` ends
    the search early (a deadline)."""
    progress, parts = False, 2
    while (current := list(items())) and not stop():
        parts = min(parts, len(current))
        size = math.ceil(len(current) / parts)
        if remove_one_of([current[i:i + size] for i in range(0, len(current), size)]):
            progress, parts = True, max(parts - 1, 2)
        elif size == 1:
            return progress
        else:
            parts *= 2
    return progress
