"""What a campaign is asked to do and what it reports, without the driver: its configuration,
the lanes it splits the machine into, each test's seed, and the throughput snapshot that
progress displays, reports and triage read."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Mapping

from fuzzer.execution.backends import load_backend
from fuzzer.generation.generator import DEFAULT_DTYPES, GeneratorOptions
from fuzzer.graph.ir import DType
from oracles.performance import PerfPolicy


@dataclass(frozen=True)
class CampaignConfig:
    backends: tuple[str, ...]
    seed: int = 0
    nodes: int = 10
    opset: int = 17
    time_budget: float | None = None  # seconds for this invocation
    max_tests: int | None = None  # total over the campaign, resumed runs included
    workers: int = 1
    timeout: float = 10.0
    memory_mb: int = 4096
    reference: str | None = None  # the backend that wins ties in the differential vote
    avoid: tuple[tuple[str, str], ...] = ()  # (operator, dtype) pairs most backends decline
    single_compiler_every: int = 8  # every Nth test also gets the metamorphic and determinism oracles
    input_budget: float | None = 0.1  # seconds of numerical input search per graph; None: random inputs
    tolerances: dict | None = None  # oracles.tolerance.policy_to_dict form; None: the defaults
    lane_weights: dict[str, float] | None = None  # lane (or one of its backends) -> weight; others: the default
    coverage: bool = False  # coverage feedback: measure, keep a corpus, mutate its entries
    corpus: str | None = None  # corpus directory; None: RUN/corpus
    mutation_share: float = 0.5  # with coverage, the share of tests that mutate a corpus entry
    feedback: bool = True  # False (an ablation): every test joins the corpus, entries are picked uniformly
    control_flow: float = 0.0  # share of graphs with an If, Loop or Scan node
    dynamic: float = 0.0  # share of graphs with a symbolic leading dimension, each run at several sizes
    shape_profiles: dict[str, float] | None = None  # profile -> weight (fuzzer.generation.profiles); None: small
    pattern_share: float = 0.0  # share of graphs with optimizer patterns or near-misses of them
    max_patterns: int = 1  # a graph with patterns holds 1..max_patterns of them
    ops: tuple[str, ...] = ()  # the operators graphs are made of; (): every one
    dtypes: tuple[str, ...] = ()  # dtypes of fresh inputs and anchors; (): every one
    pythons: dict[str, str] | None = None  # backend -> Python executable of another environment
    ray: str | None = None  # Ray cluster address: lanes' workers run on its nodes
    perf: bool = False  # the performance oracle: time sampled tests (fuzzer.campaign.performance)
    perf_every: int = 32  # ... every Nth test
    perf_factor: float = 2.0  # a slowdown: the optimized median at least this many times its baseline's
    perf_floor_ms: float = 0.5  # ... and at least this many milliseconds longer

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "backends": list(self.backends), "avoid": [list(f) for f in self.avoid]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CampaignConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{**{k: v for k, v in data.items() if k in known},
                      "backends": tuple(data["backends"]),
                      "avoid": tuple(tuple(f) for f in data.get("avoid", ())),
                      "ops": tuple(data.get("ops", ())), "dtypes": tuple(data.get("dtypes", ()))})

    @property
    def perf_policy(self) -> PerfPolicy:
        return PerfPolicy(factor=self.perf_factor, floor=self.perf_floor_ms / 1e3, every=self.perf_every)

    @property
    def generator_options(self) -> GeneratorOptions:
        return GeneratorOptions(nodes=self.nodes, opset=self.opset, avoid=frozenset(self.avoid),
                                input_budget=self.input_budget, control_flow=self.control_flow,
                                dynamic=self.dynamic, ops=frozenset(self.ops) or None,
                                dtypes=frozenset(DType(d) for d in self.dtypes) or DEFAULT_DTYPES,
                                pattern_share=self.pattern_share, max_patterns=self.max_patterns,
                                **({"shape_profiles": self.shape_profiles} if self.shape_profiles else {}))


FAST_LANE = "fast"
# The fast lane weighs this much unless lane_weights says otherwise; each slow compiler's lane 1.
# On the default backends the fast lane gets half of the CPU (its ORT, torch and reference
# backends take milliseconds and find most bugs), TVM and Inductor a quarter each: TVM's four
# configurations and judges take about 1.2 CPU seconds per test, Inductor's three about 12.
FAST_LANE_WEIGHT = 2.0


@dataclass(frozen=True)
class Lane:
    """Backends that run tests together, and the weight of their share of the machine."""

    name: str  # FAST_LANE, or the slow compiler (Backend.compiler_name) whose configurations it runs
    backends: tuple[str, ...]
    weight: float = 1.0


def plan_lanes(config: CampaignConfig) -> list[Lane]:
    """The fast lane, then a lane per slow compiler (those whose ``timeout_factor`` is over 1)
    with the references that judge it, so that compilers taking seconds per graph neither
    hold the fast backends back nor are crowded out by them. Without a fast backend other
    than the references, every backend runs in one lane. Raises ValueError for
    ``lane_weights`` that name no lane."""
    classes = {spec: load_backend(spec) for spec in config.backends}
    references = tuple(b for b in config.backends if classes[b].is_reference or b == config.reference)
    families: dict[str, list[str]] = {}
    for spec in config.backends:
        if classes[spec].timeout_factor > 1:
            families.setdefault(classes[spec].compiler_name(), []).append(spec)
    slow = {spec for family in families.values() for spec in family}
    fast = tuple(b for b in config.backends if b not in slow)
    lanes = [Lane(FAST_LANE, fast)] + [Lane(name, (*references, *specs)) for name, specs in families.items()]
    if not families or set(fast) <= set(references):
        lanes = [Lane(FAST_LANE, config.backends)]
    aliases = {lane.name: lane.name for lane in lanes} | {
        name: lane.name for lane in lanes[1:] for spec in lane.backends if spec not in references
        for name in (spec, classes[spec].name)}
    weights: dict[str, float] = {}
    for name, weight in (config.lane_weights or {}).items():
        if name not in aliases:
            known = ", ".join(lane.name if lane.name == FAST_LANE else f"{lane.name} ("
                              + ", ".join(classes[b].name for b in lane.backends if b not in references) + ")"
                              for lane in lanes)
            raise ValueError(f"{name} is not a lane of this campaign; its lanes are {known}")
        if aliases[name] in weights:
            raise ValueError(f"lane {aliases[name]} is given two weights; give it one")
        weights[aliases[name]] = weight
    return [replace(lane, weight=weights.get(lane.name, FAST_LANE_WEIGHT if lane.name == FAST_LANE else 1.0))
            for lane in lanes]


def split_backends(config: CampaignConfig) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(the fast lane's backends, those of every slow compiler's lane with their judges)."""
    fast, *slow = plan_lanes(config)
    return fast.backends, tuple(dict.fromkeys(spec for lane in slow for spec in lane.backends))


def seed_for_test(campaign_seed: int, index: int) -> int:
    """The seed of test ``index``: independent of how many lanes ran before."""
    digest = hashlib.sha256(f"{campaign_seed}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


class Throughput:
    """Tests per second and the share of valid tests, of anything that counts ``tests``,
    ``valid`` and ``seconds`` (a live snapshot, a stored run's summary)."""

    tests: int
    valid: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.tests / self.seconds if self.seconds > 0 else 0.0

    @property
    def valid_share(self) -> float:
        return self.valid / self.tests if self.tests else 0.0


@dataclass
class Snapshot(Throughput):
    """What a progress display shows; also the campaign's final summary."""

    tests: int = 0
    valid: int = 0
    seconds: float = 0.0
    findings: Counter = field(default_factory=Counter)  # by kind
    signatures: set[str] = field(default_factory=set)
    bugs: set[str] = field(default_factory=set)  # cluster keys (triage.bugs): the likely bugs before triage
    suppressed: Counter = field(default_factory=Counter)  # false alarms a guard explained, by guard
    restarts: int = 0
    restarts_by_backend: Counter = field(default_factory=Counter)  # of the lanes that have ended
    stopping_reason: str = ""
    branches: int = 0  # compiler Python arcs covered (with coverage feedback)
    features: int = 0  # structural and compiler-noted features covered
    corpus: int = 0  # corpus entries
    lanes: dict[str, tuple[float, float]] = field(default_factory=dict)  # lane -> (CPU seconds, its weight's share)
