"""Shape profiles: each generated graph draws one, which sets its extents and size budgets.

``small`` keeps the generator's own options (throughput); ``vector`` draws extents at and
around multiples of 8/16/32/64 and primes, so that vectorized kernels run their tails and
remainder loops; ``large`` draws channel-like extents up to about 1e5 elements per tensor
within a FLOP budget, so that blocked kernels, tiling and parallel loops engage.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Mapping

SMALL_DIM = 6  # the extents a shrunk dimension of a vector or large tensor takes
PRIMES = (7, 11, 13, 17, 31, 37, 61, 67, 97, 127)
VECTOR_EXTENTS = tuple(sorted({e for m in (8, 16, 32, 64) for k in (1, 2) for e in (m * k - 1, m * k, m * k + 1)}
                              | set(PRIMES)))
LARGE_EXTENTS = (16, 31, 32, 48, 64, 96, 127, 128, 192, 256, 384, 512, 1000, 1024)


@dataclass(frozen=True)
class ShapeProfile:
    """Extents and budgets of one profile; ``extents`` empty: uniform in 1..max_dim, and
    budgets None: the generator options' own."""

    name: str
    extents: tuple[int, ...] = ()
    max_elements: int | None = None  # per tensor
    max_flops: int | None = None  # per graph

    def dim(self, rng: random.Random, max_dim: int) -> int:
        """One extent: a preferred one three times in four, else a small one."""
        if not self.extents:
            return rng.randint(1, max_dim)
        return rng.choice(self.extents) if rng.random() < 0.75 else rng.randint(1, SMALL_DIM)

    def shrink(self, rng: random.Random) -> int:
        """The extent that replaces one of a tensor over the element budget."""
        return rng.randint(1, SMALL_DIM) if self.extents else 1


PROFILES: dict[str, ShapeProfile] = {p.name: p for p in (
    ShapeProfile("small"),
    ShapeProfile("vector", VECTOR_EXTENTS, max_elements=8_192, max_flops=20_000_000),
    ShapeProfile("large", LARGE_EXTENTS, max_elements=65_536, max_flops=40_000_000),
)}
SMALL = PROFILES["small"]
CAMPAIGN_PROFILES = (("small", 0.6), ("vector", 0.3), ("large", 0.1))  # what campaigns draw by default


def checked_weights(weights: Mapping[str, float] | tuple[tuple[str, float], ...]) -> tuple[tuple[str, float], ...]:
    """``weights`` as (profile, weight) pairs in PROFILES order; ValueError for an unknown
    profile, a negative weight or a total that is not positive."""
    pairs = dict(weights)
    unknown = [name for name in pairs if name not in PROFILES]
    if unknown:
        raise ValueError(f"unknown shape profile {unknown[0]!r}; known: {', '.join(PROFILES)}")
    negative = [name for name, weight in pairs.items() if not weight >= 0]
    if negative:
        raise ValueError(f"shape profile {negative[0]} has weight {pairs[negative[0]]}; weights must be >= 0")
    if not sum(pairs.values()) > 0:
        raise ValueError("shape profile weights must sum to a positive number")
    return tuple((name, float(pairs[name])) for name in PROFILES if pairs.get(name))


def parse_weights(text: str) -> tuple[tuple[str, float], ...]:
    """``small=6,vector=3,large=1`` as checked (profile, weight) pairs."""
    pairs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, equals, weight = item.partition("=")
        try:
            pairs.append((name.strip(), float(weight)))
        except ValueError:
            raise ValueError(f"expected PROFILE=WEIGHT, got {item!r}") from None
        if not equals:
            raise ValueError(f"expected PROFILE=WEIGHT, got {item!r}")
    return checked_weights(pairs)


def draw_profile(rng: random.Random, weights: tuple[tuple[str, float], ...]) -> ShapeProfile:
    """A profile drawn by weight; one alone is returned without drawing (rng untouched)."""
    if len(weights) == 1:
        return PROFILES[weights[0][0]]
    return PROFILES[rng.choices([name for name, _ in weights], [w for _, w in weights])[0]]
