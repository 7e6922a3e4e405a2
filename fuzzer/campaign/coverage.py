"""Coverage feedback: what a test exercised, as a set of 32-bit *bits* in one space.

Three kinds of bit, told apart by their top two bits:

* ``ARC``: a branch arc (file, from line, to line) of a compiler's Python layer (the files
  its backend declares in ``coverage_include``), measured in the worker by coverage.py (the
  C tracer on Python 3.11, ``sysmon`` from 3.12). A worker reports only the arcs new to it
  since it started, so a payload stays small; the campaign keeps the global map.
* ``GRAPH``: a structural feature of the test's graph (operator, operator x dtype, operator
  pair along an edge, attribute value bucket, rank pattern), tagged by backend and by how
  that backend ended (ok, unsupported, error, ...).
* ``NOTED``: a rewrite the backend's optimizer applied (``Outcome.effects``: an ORT graph
  transformer that modified the graph, a TVM pass that changed the module, an Inductor
  counter that moved), so guided campaigns chase rewrites that have not fired yet.

The run store keeps each backend's effects with the number of tests they fired in and when
each first fired (``EffectTally``), for the report.
"""

from __future__ import annotations

import random
import threading
import time
import zlib
from dataclasses import dataclass
from typing import Iterable

from fuzzer.graph.ir import Graph
from fuzzer.execution.coverage_bits import ARC, GRAPH, NOTED, bit, kind_of
from fuzzer.execution.outcome import Outcome

# ------------------------------------------------------------------ structural features


def size_bucket(value: float) -> str:
    """Sign and log2 magnitude: 0, 1, 2-3, 4-7, ... fall into distinct buckets."""
    if value != value or value in (float("inf"), float("-inf")):
        return str(value)
    magnitude = int(abs(value))
    sign = "-" if value < 0 else ""
    if magnitude == 0 and value != 0:
        return f"{sign}frac"
    return f"{sign}{magnitude.bit_length()}"


def attribute_bucket(value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, tuple):
        return f"[{','.join(size_bucket(v) for v in value[:4])}{',...' if len(value) > 4 else ''}]"
    return size_bucket(value)


def graph_features(graph: Graph) -> set[str]:
    """Operators, operator x input dtype, operator pairs along edges, attribute buckets and
    rank patterns of ``graph``."""
    types = graph.types
    producers = {name: node.op for node in graph.nodes for name in node.outputs}
    found = set()
    for node in graph.nodes:
        read = [types[name] for name in node.inputs if name]
        dtype = (read[0] if read else node.output_types[0]).dtype.value
        found.add(f"op:{node.op}")
        found.add(f"dtype:{node.op}:{dtype}")
        found.update(f"edge:{producers[name]}>{node.op}" for name in node.inputs if name in producers)
        for key, value in node.attrs:
            if isinstance(value, Graph):  # a control-flow body
                found.add(f"attr:{node.op}.{key}=graph")
                found.update(f"{key}:{feature}" for feature in graph_features(value))
            else:
                found.add(f"attr:{node.op}.{key}={attribute_bucket(value)}")
        ranks = ",".join(str(t.rank) for t in read)
        found.add(f"rank:{node.op}:{ranks}>{','.join(str(t.rank) for t in node.output_types)}")
    return found


def fingerprint(graph: Graph | None, outcomes: Iterable[Outcome]) -> frozenset[int]:
    """All bits of one test: each backend's reported bits and effects, and the graph's features
    tagged by backend and status. Outcomes decided without running (declined) count for nothing."""
    features = graph_features(graph) if graph is not None else set()
    bits = set()
    for outcome in outcomes:
        if outcome.error_type == "Declined":
            continue
        bits |= outcome.coverage
        bits.update(bit(NOTED, f"effect:{effect}") for effect in outcome.effects)
        tag = zlib.crc32(f"{outcome.backend}/{outcome.status.value}".encode())
        bits.update(bit(GRAPH, feature, tag) for feature in features)
    return frozenset(bits)


# ------------------------------------------------------------------ campaign side


class CoverageMap:
    """How many observed tests covered each bit; not thread-safe (the campaign locks it)."""

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.by_kind = [0, 0, 0, 0]

    def update(self, bits: Iterable[int]) -> frozenset[int]:
        """Count one test's bits; returns those never seen before."""
        new = set()
        counts = self.counts
        for value in bits:
            seen = counts.get(value, 0)
            counts[value] = seen + 1
            if not seen:
                new.add(value)
                self.by_kind[kind_of(value)] += 1
        return frozenset(new)

    def rarest(self, bits: Iterable[int]) -> int:
        """The smallest count among ``bits`` (1 for bits never counted)."""
        return min((self.counts.get(value, 1) for value in bits), default=1)

    @property
    def branches(self) -> int:
        return self.by_kind[ARC]

    @property
    def features(self) -> int:
        return self.by_kind[GRAPH] + self.by_kind[NOTED]


# ------------------------------------------------------------------ time series in the run store

COVERAGE_SCHEMA = """
CREATE TABLE IF NOT EXISTS coverage_stats (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,
    seconds REAL NOT NULL,
    tests INTEGER NOT NULL,
    branches INTEGER NOT NULL,
    features INTEGER NOT NULL,
    corpus INTEGER NOT NULL
);
"""


@dataclass(frozen=True)
class CoveragePoint:
    seconds: float  # since the run began, resumed parts included
    tests: int
    branches: int  # compiler Python arcs covered
    features: int  # structural and noted features covered
    corpus: int  # corpus entries


def record_coverage(store, point: CoveragePoint) -> None:
    """Append one point to the run's coverage time series (``store``: a fuzzer.store.RunStore)."""
    store.ensure_tables(COVERAGE_SCHEMA)
    with store.transaction(write=True) as connection:
        connection.execute(
            "INSERT INTO coverage_stats (time, seconds, tests, branches, features, corpus) VALUES (?, ?, ?, ?, ?, ?)",
            (time.time(), point.seconds, point.tests, point.branches, point.features, point.corpus))


def has_table(connection, name: str) -> bool:
    """Whether the store has the extension table ``name`` (a run that never wrote one has not)."""
    return connection.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() \
        is not None


def coverage_series(store) -> list[dict]:
    """The run's coverage over time, in recording order: dicts with time, seconds, tests,
    branches, features, corpus; empty for a run without coverage feedback."""
    with store.transaction() as connection:
        if not has_table(connection, "coverage_stats"):
            return []
        rows = connection.execute(
            "SELECT time, seconds, tests, branches, features, corpus FROM coverage_stats ORDER BY id").fetchall()
    return [dict(row) for row in rows]


# ------------------------------------------------------------------ optimizer effects in the run store

EFFECTS_SCHEMA = """
CREATE TABLE IF NOT EXISTS effects (
    backend TEXT NOT NULL,
    effect TEXT NOT NULL,
    tests INTEGER NOT NULL,
    first_test INTEGER NOT NULL,
    first_seconds REAL NOT NULL,
    PRIMARY KEY (backend, effect)
);
"""


class EffectTally:
    """In how many tests each backend's effects fired, and the test and second each first
    fired in; kept in the run store (``save``), resumed from it. Not thread-safe."""

    def __init__(self, store) -> None:
        self.store = store  # fuzzer.store.RunStore
        self.rows = {(row["backend"], row["effect"]): row for row in effect_rows(store)}
        self._unsaved: set[tuple[str, str]] = set()

    def count(self, test: int, seconds: float, outcomes: Iterable[Outcome]) -> None:
        """Count the effects of one test's ``outcomes``, ``seconds`` into the run."""
        for outcome in outcomes:
            for effect in outcome.effects:
                key = (outcome.backend, effect)
                row = self.rows.setdefault(key, {"backend": outcome.backend, "effect": effect, "tests": 0,
                                                 "first_test": test, "first_seconds": seconds})
                row["tests"] += 1
                self._unsaved.add(key)

    def save(self) -> None:
        """Write the counts that changed since the last save, in one transaction."""
        if not self._unsaved:
            return
        self.store.ensure_tables(EFFECTS_SCHEMA)
        rows = [self.rows[key] for key in self._unsaved]
        with self.store.transaction(write=True) as connection:
            connection.executemany(
                "INSERT OR REPLACE INTO effects (backend, effect, tests, first_test, first_seconds) "
                "VALUES (:backend, :effect, :tests, :first_test, :first_seconds)", rows)
        self._unsaved.clear()


def effect_rows(store) -> list[dict]:
    """The run's effects: dicts with backend, effect, tests (in which it fired), first_test and
    first_seconds, by backend and most frequent first; empty for a run that recorded none."""
    with store.transaction() as connection:
        if not has_table(connection, "effects"):
            return []
        rows = connection.execute("SELECT backend, effect, tests, first_test, first_seconds FROM effects "
                                  "ORDER BY backend, tests DESC, effect").fetchall()
    return [dict(row) for row in rows]


# ------------------------------------------------------------------ scheduling


def compiler_bits(bits: Iterable[int]) -> frozenset[int]:
    """The bits a compiler reported: branch arcs and noted features."""
    return frozenset(value for value in bits if kind_of(value) != GRAPH)


def cost(graph: Graph, budget: int) -> float:
    """The relative cost of a test of ``graph``: its size against the node ``budget``, times
    the sizes a dynamic graph runs at."""
    from fuzzer.generation.generator import VARIANTS

    return (1 + len(graph.nodes) / budget) * (1 + VARIANTS if graph.symbols else 1)


@dataclass
class Candidate:
    """A corpus entry as the scheduler sees it."""

    hash: str
    graph: Graph
    bits: frozenset[int]
    hits: int  # times picked for mutation
    children: int = 0  # its mutants that joined the corpus in this session


class Scheduler:
    """Chooses what each test runs: a fresh graph from the test's seed, or a mutant of a
    corpus entry (which may splice parts of two other entries, the donors), and which tests
    join the corpus. Thread-safe.

    With ``feedback``, a test joins when it is the first to cover a compiler bit (a branch
    arc or a noted feature); structural novelty admits alone only while no compiler code is
    measured (backends without a Python layer). An entry's energy is
    ``(1 + children) * rarity / (cost * (1 + hits))``: mutants that joined make a lineage
    productive, rarity is ``1 / count`` of its rarest structural or noted bit (a worker
    reports each arc once, so arc counts tell nothing), cheap tests run sooner. Mutators are
    tried in an order weighted by their mutants that joined per cost spent. Without
    ``feedback`` (an ablation) every test joins and picks and mutator orders are uniform.
    An empty corpus starts from the seed blocks of ``corpus.seeds`` that suit ``options``.

    The plans of the last ``PLANS_KEPT`` shared tests are kept, so the lane of slow backends
    runs the same mutant as the lane that planned it.
    """

    PLANS_KEPT = 512
    REWEIGH_EVERY = 16  # picks between recomputing energies (counts keep changing)

    def __init__(self, corpus, coverage_map: CoverageMap, mutation_share: float, options,
                 feedback: bool = True) -> None:
        from fuzzer.generation.mutate import MUTATORS

        self.corpus = corpus  # corpus.corpus.Corpus
        self.coverage_map = coverage_map
        self.mutation_share = mutation_share
        self.feedback = feedback
        self.options = options  # fuzzer.generation.generator.GeneratorOptions of mutants' new parts
        entries = corpus.entries() or self._seed(corpus)
        self.candidates = [Candidate(e.hash, e.graph, frozenset(e.fingerprint), e.hits) for e in entries]
        for candidate in self.candidates:
            coverage_map.update(candidate.bits)
        self._plans: dict[int, tuple[Graph, str] | None] = {}
        self._lineage: dict[str, tuple[Candidate, str]] = {}  # mutant hash -> (parent, mutator), recent plans
        self._spent = dict.fromkeys(MUTATORS, 0.0)  # cost of the mutants planned, by mutator
        self._joined = dict.fromkeys(MUTATORS, 0)  # of them, joined the corpus
        self._admissions: list[tuple] = []  # (graph, bits, origin, inputs) not yet written
        self._unrecorded_picks: list[str] = []
        self._energy: list[float] = []
        self._picks = 0
        self._lock = threading.Lock()

    def _seed(self, corpus) -> list:
        """Add the seed blocks that suit the options to an empty corpus; its entries."""
        from corpus.seeds import seed_graphs
        from fuzzer.generation.mutate import admit
        from fuzzer.graph.rejected import Unsatisfiable

        for name, graph in seed_graphs().items():
            try:
                admit(graph, graph, self.options)
            except Unsatisfiable:
                continue
            corpus.add(graph, frozenset(), origin=f"seed:{name}")
        return corpus.entries()

    def plan(self, index: int, seed: int, shared: bool = False) -> tuple[Graph, str] | None:
        """The mutant test ``index`` runs and its origin, or None: a fresh graph from ``seed``.

        Whether a test mutates is drawn from its seed; which entry it mutates depends on the
        corpus at that moment, so a mutant is reproducible from its stored graph only. The
        plan of a ``shared`` test (one that a second lane runs too) is kept for that lane.
        """
        rng = random.Random(f"schedule {seed}")
        if rng.random() >= self.mutation_share:
            return None
        with self._lock:
            if index in self._plans:
                return self._plans[index]
            planned = self._mutant(rng)
            if shared:
                self._plans[index] = planned
                if len(self._plans) > self.PLANS_KEPT:
                    del self._plans[next(iter(self._plans))]
            return planned

    def _mutant(self, rng: random.Random) -> tuple[Graph, str] | None:
        from fuzzer.generation.mutate import mutate
        from fuzzer.graph.rejected import Unsatisfiable

        if not self.candidates:
            return None
        parent = self._choose(rng)
        others = [c.graph for c in self.candidates if c is not parent]
        weights = {name: (1 + self._joined[name]) / (1 + spent) for name, spent in self._spent.items()}
        try:
            graph, mutator = mutate(parent.graph, rng, donors=rng.sample(others, min(2, len(others))),
                                    options=self.options, weights=weights if self.feedback else None)
        except Unsatisfiable:
            return None
        parent.hits += 1
        self._spent[mutator] += cost(graph, self.options.nodes)
        self._lineage[graph.content_hash] = (parent, mutator)
        if len(self._lineage) > self.PLANS_KEPT:
            del self._lineage[next(iter(self._lineage))]
        self._unrecorded_picks.append(parent.hash)
        return graph, f"{mutator} of {parent.hash[:12]}"

    def _choose(self, rng: random.Random) -> Candidate:
        if not self.feedback:
            return rng.choice(self.candidates)
        if len(self._energy) != len(self.candidates) or self._picks % self.REWEIGH_EVERY == 0:
            counts, budget = self.coverage_map.counts, self.options.nodes
            self._energy = [
                (1 + c.children) / min((counts.get(b, 1) for b in c.bits if kind_of(b) != ARC), default=1)
                / cost(c.graph, budget) / (1 + c.hits) for c in self.candidates]
        self._picks += 1
        return rng.choices(self.candidates, self._energy)[0]

    def admit(self, graph: Graph, bits: frozenset[int], origin: str, inputs) -> None:
        """Queue a test that the coverage map has counted for the corpus, when it is worth
        keeping (see the class docstring); ``flush`` writes it."""
        with self._lock:
            if self.feedback and not self._novel(bits):
                return
            self._admissions.append((graph, bits, origin, inputs))
            if self.feedback and graph.content_hash in self._lineage:
                parent, mutator = self._lineage.pop(graph.content_hash)
                parent.children += 1
                self._joined[mutator] += 1

    def _novel(self, bits: frozenset[int]) -> bool:
        """Whether the test was the first to cover a compiler bit, or a structural one while
        no compiler code is measured."""
        counts, by_kind = self.coverage_map.counts, self.coverage_map.by_kind
        measured = compiler_bits(bits) if by_kind[ARC] or by_kind[NOTED] else bits
        return any(counts.get(value) == 1 for value in measured)

    def flush(self) -> int:
        """Write queued entries and picks to the corpus; how many entries joined (a graph the
        corpus holds already does not). The campaign calls this off the lanes' threads, so
        that durable writes never hold a test up."""
        with self._lock:
            admissions, self._admissions = self._admissions, []
            picks, self._unrecorded_picks = self._unrecorded_picks, []
        for entry_hash in picks:
            self.corpus.record_pick(entry_hash)
        joined = [Candidate(graph.content_hash, graph, bits, 0) for graph, bits, origin, inputs in admissions
                  if self.corpus.add(graph, bits, origin=origin, inputs=inputs)]
        with self._lock:
            self.candidates.extend(joined)
        return len(joined)
