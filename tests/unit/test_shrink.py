"""Delta debugging (fuzzer.shrink.ddmin), shared by graph reduction and TIR shrinking."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from fuzzer.shrink import ddmin


def shrink(items: list[int], keeps: callable) -> tuple[list[int], bool]:
    current = list(items)

    def remove_one_of(chunks: list[list[int]]) -> bool:
        for chunk in chunks:
            candidate = [item for item in current if item not in chunk]
            if keeps(candidate):
                current[:] = candidate
                return True
        return False

    return current, ddmin(lambda: current, remove_one_of)


@given(st.lists(st.integers(0, 40), unique=True, max_size=30), st.data())
def test_ddmin_keeps_exactly_what_a_monotone_gate_needs(items, data):
    needed = set(data.draw(st.lists(st.sampled_from(items), unique=True))) if items else set()
    result, removed = shrink(items, lambda candidate: needed <= set(candidate))
    assert set(result) == needed and removed == (len(needed) < len(items))


def test_ddmin_finds_a_one_minimal_list_for_a_pair_that_must_stay_together():
    result, _ = shrink(list(range(16)), lambda candidate: {3, 11} <= set(candidate) or {5} <= set(candidate))
    assert result in ([5], [3, 11])


def test_ddmin_stops_when_told():
    calls = []
    assert not ddmin(lambda: [1, 2, 3], lambda chunks: calls.append(chunks) or False, stop=lambda: True)
    assert calls == []
