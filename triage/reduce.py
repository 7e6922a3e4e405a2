"""Signature-pinned reduction of a finding's test case.

The graph shrinks by passes, each a named method of :class:`Reducer` listed once in
:data:`PASSES`: drop graph outputs, remove nodes (ddmin: halves, quarters, ... then one
by one; a removed node's values become graph inputs fed with what the reference computed
for them, and nodes nothing reads any more go too), shrink extents, narrow float dtypes
to float32, move attributes toward simpler values the operator's spec proposes, and
simplify input values (zeros, ones, small integers). Every candidate runs in isolated
workers through :class:`~triage.rerun.Evaluator` and passes one gate,
:meth:`Reducer.reproduces`: the finding with the same kind, blamed backends and
signature (for a value mismatch also the same first divergent operator) must still be
there. After each accepted step the best case so far is stored in the run's
``reductions`` table, and a later call resumes from it.
"""

from __future__ import annotations

import hashlib
import math
import random
import time
from dataclasses import dataclass, replace
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

from fuzzer.shrink import ddmin
from fuzzer.store import RunStore, StoredFinding, arrays_to_npz, npz_to_arrays
from fuzzer.execution.backends import load_backend
from fuzzer.campaign.config import CampaignConfig, split_backends
from fuzzer.graph.export_onnx import to_onnx_bytes
from fuzzer.graph.ir import DType, Graph, Input, Node, TensorType, Weight, infer_outputs
from fuzzer.graph.ops import get_spec, undefined_by_constants
from fuzzer.graph.rejected import InvalidGraph, Rejected
from fuzzer.graph.case import TestCase
from fuzzer.graph.values import random_array
from oracles.finding import Finding, FindingKind
from oracles.precision import REFERENCE
from oracles.bug_keys import backend_facts
from triage.localize import intermediate_values, localize
from triage.rerun import Evaluator, campaign_config, find_stored, stored_case
from triage.grouping import near_identical

SCHEMA = """
CREATE TABLE IF NOT EXISTS reductions (
    finding_id INTEGER PRIMARY KEY,
    graph_json TEXT NOT NULL,
    inputs_sha TEXT NOT NULL,
    signature TEXT NOT NULL,
    operator TEXT NOT NULL,  -- the first divergent operator a value mismatch must keep ('' if none)
    nodes_before INTEGER NOT NULL,
    nodes_after INTEGER NOT NULL,
    tests INTEGER NOT NULL,
    seconds REAL NOT NULL,
    done INTEGER NOT NULL
);
"""
BATCH = 4  # candidates evaluated together; the first that reproduces is taken
VALUE_KINDS = frozenset({FindingKind.MISMATCH, FindingKind.OPT_MISMATCH})
JUDGE_REJECTIONS = frozenset({FindingKind.ERROR, FindingKind.CRASH, FindingKind.HANG})
# Kinds that the blamed backend, what it was compared with and the judges decide alone.
NARROW_KINDS = frozenset({"crash", "hang", "oom", "error", "shape_mismatch", "dtype_mismatch", "mismatch",
                          "opt_mismatch"})


class ReductionUnsupported(ValueError):
    """The finding has no graph to reduce (an external model, a TIR-mode run)."""


class NotReproducible(ReductionUnsupported):
    """The finding's test case no longer shows the finding."""


@dataclass(frozen=True)
class Reduction:
    finding_id: int
    case: TestCase  # reduced, with .model exported at the run's opset and .inputs
    signature: str  # the pinned signature, as the evaluator computes it for the original case
    nodes_before: int
    nodes_after: int
    tests: int  # candidates evaluated
    seconds: float
    done: bool  # False when the budget ran out (resumable)


@dataclass(frozen=True)
class Target:
    """What must stay true of every accepted candidate."""

    kind: FindingKind
    backends: tuple[str, ...]
    signature: str
    operator: str = ""  # first divergent operator of a value mismatch, when localization found it
    compared_with: str = ""  # the backend the mismatch is measured against

    def matches(self, finding: Finding) -> bool:
        """The same kind, backends and signature; a slowdown's signature names the graph's
        operators, so any slowdown of the same pair matches."""
        return (finding.kind is self.kind and finding.backends == self.backends
                and (finding.signature == self.signature or self.kind is FindingKind.SLOWDOWN))


# ---------------------------------------------------------------- graph surgery (pure)


def retyped(inputs: Sequence[Input], weights: Sequence[Weight], nodes: Sequence[Node],
            outputs: Sequence[str]) -> Graph:
    """A graph whose node output types are inferred again from its sources' types."""
    types = {i.name: i.type for i in inputs} | {w.name: w.type for w in weights}
    typed = []
    for node in nodes:
        try:
            inferred = infer_outputs(node.op, tuple(types[n] for n in node.inputs), node.attr, node.outputs,
                                     node.output_types)
        except Rejected as error:
            raise InvalidGraph(f"{node.op}: {error}") from error
        typed.append(replace(node, output_types=inferred))
        types.update(zip(node.outputs, inferred))
    return Graph(tuple(inputs), tuple(weights), tuple(typed), tuple(outputs))


def pruned(graph: Graph) -> Graph:
    """``graph`` without outputs that are sources, nodes no output depends on, and unused sources."""
    sources = {i.name for i in graph.inputs} | {w.name for w in graph.weights}
    outputs = tuple(name for name in graph.outputs if name not in sources)
    live, kept = set(outputs), []
    for node in reversed(graph.nodes):
        if live & set(node.outputs):
            kept.append(node)
            live.update(name for name in node.inputs if name)
    return Graph(tuple(i for i in graph.inputs if i.name in live), tuple(w for w in graph.weights if w.name in live),
                 tuple(reversed(kept)), outputs)


def rebuilt(case: TestCase, build: Callable[[], tuple[Graph, Mapping[str, np.ndarray]]]) -> TestCase | None:
    """The case of the graph and feed ``build`` returns (pruned, exported), or None when
    the result is invalid or empty."""
    try:
        graph, feed = build()
        graph = pruned(graph)
    except Rejected:
        return None
    if not graph.nodes or undefined_by_constants(graph):  # cut extents renumber negative indices
        return None
    try:
        model = to_onnx_bytes(graph, case.opset)
    except (ValueError, TypeError):  # onnx.helper refuses an attribute value the reduction left
        return None
    return TestCase(graph, {i.name: np.asarray(feed[i.name]) for i in graph.inputs}, model, case.opset,
                    case.seed, case.index)


def without_outputs(case: TestCase, dropped: set[str]) -> TestCase | None:
    graph = case.graph
    return rebuilt(case, lambda: (Graph(graph.inputs, graph.weights, graph.nodes,
                                        tuple(o for o in graph.outputs if o not in dropped)), case.inputs))


def without_nodes(case: TestCase, dropped: set[str], values: Mapping[str, np.ndarray],
                  bypass: bool = True) -> TestCase | None:
    """``case`` without the nodes whose first output is in ``dropped``. With ``bypass``, a
    removed value's readers (and the graph outputs) read instead one of its node's inputs of
    the same type where there is one; other removed values become graph inputs fed with
    ``values`` (random values where absent). A removed value whose extent only the run gave
    becomes an input of the extent its value has (its bound without one), and the nodes
    after it are typed again."""
    graph = case.graph

    def build():
        alias: dict[str, str] = {}
        feed, inputs, nodes = dict(case.inputs), list(graph.inputs), []
        generator = np.random.default_rng(case.seed)
        fixed = False  # a value of a run-time extent became an input
        for node in graph.nodes:
            node = replace(node, inputs=tuple(alias.get(name, name) for name in node.inputs))
            if node.outputs[0] not in dropped:
                nodes.append(node)
                continue
            for name, tensor_type in zip(node.outputs, node.output_types):
                same = [i for i in node.inputs if bypass and i and graph.types[i] == tensor_type]
                if same:
                    alias[name] = same[0]
                    continue
                if tensor_type.runtime:
                    fixed = True
                    tensor_type = tensor_type.with_shape(np.shape(values[name]) if name in values else
                                                         tensor_type.shape)
                inputs.append(Input(name, tensor_type))
                feed[name] = values[name] if name in values else random_array(generator, tensor_type)
        outputs = tuple(dict.fromkeys(alias.get(name, name) for name in graph.outputs))
        if fixed:
            return retyped(inputs, graph.weights, nodes, outputs), feed
        return Graph(tuple(inputs), graph.weights, tuple(nodes), outputs), feed

    return rebuilt(case, build)


def with_branch_inlined(case: TestCase, index: int, branch: str) -> TestCase | None:
    """``case`` with the If node at ``index`` replaced by the nodes of its ``branch`` (its
    values renamed apart), whichever branch the condition picks: an error inside a body is
    the error of the body's operator, not of If."""
    graph = case.graph
    node = graph.nodes[index]
    body = node.attr[branch]
    prefix = f"{node.outputs[0]}.{branch}."

    def build():
        renamed = {i.name: outer for i, outer in zip(body.inputs, node.inputs[1:])}
        renamed.update((w.name, prefix + w.name) for w in body.weights)
        weights = (*graph.weights, *(Weight.from_array(prefix + w.name, w.array) for w in body.weights))
        inlined = []
        for inner in body.nodes:
            outputs = tuple(prefix + name for name in inner.outputs)
            inlined.append(replace(inner, inputs=tuple(renamed.get(name, name) for name in inner.inputs),
                                   outputs=outputs))
            renamed.update(zip(inner.outputs, outputs))
        alias = {outer: renamed.get(name, name) for outer, name in zip(node.outputs, body.outputs)}
        after = [replace(n, inputs=tuple(alias.get(name, name) for name in n.inputs)) for n in graph.nodes[index + 1:]]
        outputs = tuple(dict.fromkeys(alias.get(name, name) for name in graph.outputs))
        return Graph(graph.inputs, weights, (*graph.nodes[:index], *inlined, *after), outputs), case.inputs

    return rebuilt(case, build)


def with_sources(case: TestCase, change: Callable[[TensorType, np.ndarray], tuple[TensorType, np.ndarray] | None],
                 names: set[str] | None = None) -> TestCase | None:
    """``case`` with inputs and weights (those in ``names``, or all) changed by ``change``
    (type and value to new type and value, or None to keep), node types inferred again."""
    graph = case.graph

    def build():
        feed, inputs, weights = dict(case.inputs), [], []
        for source in graph.inputs:
            changed = (change(source.type, np.asarray(feed[source.name]))
                       if names is None or source.name in names else None)
            if changed:
                inputs.append(Input(source.name, changed[0]))
                feed[source.name] = changed[1]
            else:
                inputs.append(source)
        for weight in graph.weights:
            changed = change(weight.type, weight.array) if names is None or weight.name in names else None
            weights.append(Weight.from_array(weight.name, changed[1]) if changed else weight)
        return retyped(inputs, weights, graph.nodes, graph.outputs), feed

    return rebuilt(case, build)


def extent_changer(old: int, new: int, axis: int | None = None):
    """Every axis of extent ``old`` (or only ``axis``) cut to ``new``, keeping the leading values."""
    def change(tensor_type: TensorType, array: np.ndarray):
        axes = [a for a, d in enumerate(tensor_type.shape) if d == old and (axis is None or a == axis)]
        if not axes:
            return None
        index = tuple(slice(0, new) if a in axes else slice(None) for a in range(tensor_type.rank))
        return tensor_type.with_shape(new if a in axes else d for a, d in enumerate(tensor_type.shape)), \
            np.ascontiguousarray(array[index])
    return change


def to_float32(tensor_type: TensorType, array: np.ndarray):
    if not tensor_type.dtype.is_float or tensor_type.dtype is DType.float32:
        return None
    with np.errstate(over="ignore", invalid="ignore"):
        return tensor_type.with_dtype(DType.float32), array.astype(np.float32)


def value_changer(simplify: Callable[[np.ndarray], np.ndarray]):
    def change(tensor_type: TensorType, array: np.ndarray):
        try:
            simpler = np.asarray(simplify(array)).astype(array.dtype)
        except TypeError:  # rounding booleans
            return None
        return None if np.array_equal(simpler, array) else (tensor_type, simpler)
    return change


VALUE_SIMPLIFICATIONS = (np.zeros_like, np.ones_like, np.round, lambda a: np.clip(np.round(a), -2, 2))


def with_attributes(case: TestCase, index: int, attrs: Mapping[str, object]) -> TestCase | None:
    graph = case.graph
    nodes = list(graph.nodes)
    nodes[index] = Node(nodes[index].op, nodes[index].inputs, nodes[index].outputs, nodes[index].output_types,
                        tuple(attrs.items()))
    return rebuilt(case, lambda: (retyped(graph.inputs, graph.weights, nodes, graph.outputs), case.inputs))


def simplicity(value: object) -> float:
    """Smaller is simpler: the magnitude of a number or of a tuple's entries."""
    if isinstance(value, (int, float)):
        return abs(value)
    if isinstance(value, tuple):
        return sum(abs(v) for v in value) + len(value)
    return math.inf


def simpler_attributes(node: Node, anchor: TensorType, tries: int = 24) -> list[dict[str, object]]:
    """Attribute sets for ``node``: each attribute dropped (the ONNX default) or set to a
    simpler value the operator's spec proposes for the same anchor type."""
    current = node.attr
    found: list[dict[str, object]] = [{k: v for k, v in current.items() if k != name} for name in current]
    proposals = []
    for seed in range(tries):
        try:
            proposals.append(get_spec(node.op).propose(random.Random(seed), anchor).attrs)
        except Rejected:
            continue
    for name, value in current.items():
        options = {proposal[name] for proposal in proposals if name in proposal
                   and isinstance(proposal[name], type(value)) and simplicity(proposal[name]) < simplicity(value)}
        found += [{**current, name: option} for option in sorted(options, key=simplicity)]
    return found


# ---------------------------------------------------------------- the reducer


class Reducer:
    """Shrinks one case while :meth:`reproduces` holds; stops at a fixpoint or the deadline."""

    PASSES = ("drop_outputs", "remove_nodes", "inline_branches", "shrink_extents", "narrow_dtypes",
              "simplify_attributes", "simplify_values")

    def __init__(self, case: TestCase, target: Target, evaluator: Evaluator, deadline: float,
                 on_accept: Callable[[Reducer], None] = lambda reducer: None) -> None:
        self.case = case
        self.target = target
        self.evaluator = evaluator
        self.deadline = deadline
        self.on_accept = on_accept
        self.tests = 0
        self.seen: set[str] = set()
        self.intermediates_backend = next(
            (n for n in (REFERENCE, target.compared_with, evaluator.fallback_reference, *evaluator.names.values())
             if n and n in evaluator.names.values() and n not in target.backends), None)

    @property
    def out_of_time(self) -> bool:
        return time.monotonic() >= self.deadline

    def run(self) -> bool:
        """Apply the passes until none makes progress; whether that fixpoint was reached."""
        progress = True
        while progress:
            progress = False
            for name in self.PASSES:
                if self.out_of_time:
                    return False
                progress |= getattr(self, name)()
        return not self.out_of_time

    # ------------------------------------------------------------ the gate

    def reproduces(self, findings: Sequence[Finding], candidate: TestCase) -> bool:
        """The one check: the pinned finding is still there (and a value mismatch still
        starts at the same operator), and no judge fails on the candidate (a candidate that
        the reference evaluator rejects has left the ONNX specification: an index out of
        range after an extent shrank, say)."""
        if not any(self.target.matches(finding) for finding in findings):
            return False
        specs = {name: spec for spec, name in self.evaluator.names.items()}
        if any(finding.kind in JUDGE_REJECTIONS and finding.backends != self.target.backends
               and backend_facts(finding.backends[0], specs).role == "judge" for finding in findings):
            return False
        if not self.target.operator:
            return True
        found = localize(candidate, self.target.backends[0], self.target.compared_with, evaluator=self.evaluator)
        return found is not None and found.op == self.target.operator

    def first_reproducing(self, candidates: Iterable[TestCase | None]) -> TestCase | None:
        """Evaluate candidates in batches; the first that passes the gate becomes current."""
        fresh = []
        for candidate in candidates:
            if candidate is None:
                continue
            key = candidate.graph.content_hash + hashlib.sha256(arrays_to_npz(candidate.inputs)).hexdigest()
            if key not in self.seen:
                self.seen.add(key)
                fresh.append(candidate)
        for start in range(0, len(fresh), BATCH):
            if self.out_of_time:
                return None
            batch = fresh[start:start + BATCH]
            self.tests += len(batch)
            for candidate, findings in zip(batch, self.evaluator.evaluate_many(batch)):
                if self.reproduces(findings, candidate):
                    self.case = candidate
                    self.on_accept(self)
                    return candidate
        return None

    def ddmin(self, items: Callable[[], list[str]], *variants: Callable[[set[str]], TestCase | None]) -> bool:
        """Remove chunks of ``items()`` (:func:`fuzzer.shrink.ddmin`) while the gate holds; each
        chunk is tried through every variant of removal, in order."""
        return ddmin(items, lambda chunks: self.first_reproducing(
            variant(set(chunk)) for chunk in chunks for variant in variants) is not None,
            lambda: self.out_of_time)

    # ------------------------------------------------------------ passes

    def drop_outputs(self) -> bool:
        if len(self.case.graph.outputs) < 2:
            return False
        return self.ddmin(lambda: list(self.case.graph.outputs), lambda chunk: without_outputs(self.case, chunk))

    def remove_nodes(self) -> bool:
        values: dict[str, np.ndarray] = {}
        computed_for: TestCase | None = None

        def without(chunk: set[str], bypass: bool) -> TestCase | None:
            nonlocal values, computed_for
            if computed_for is not self.case and self.intermediates_backend:
                values = intermediate_values(self.case, self.intermediates_backend, self.evaluator)
                computed_for = self.case
            return without_nodes(self.case, chunk, values, bypass)

        return self.ddmin(lambda: [node.outputs[0] for node in self.case.graph.nodes],
                          lambda chunk: without(chunk, True), lambda chunk: without(chunk, False))

    def until_no_candidate_reproduces(self, candidates: Callable[[], list[TestCase | None]]) -> bool:
        """Take the first reproducing candidate of ``candidates()`` (made from the current case)
        again and again; whether any was taken."""
        progress = False
        while not self.out_of_time and self.first_reproducing(candidates()):
            progress = True
        return progress

    def inline_branches(self) -> bool:
        """Replace an If by either of its branches (the first that still shows the finding)."""
        return self.until_no_candidate_reproduces(lambda: [
            with_branch_inlined(self.case, index, branch)
            for index, node in enumerate(self.case.graph.nodes) if node.op == "If"
            for branch in ("then_branch", "else_branch")])

    def shrink_extents(self) -> bool:
        def candidates() -> list[TestCase | None]:
            graph = self.case.graph
            sources = [(s.name, s.type) for s in (*graph.inputs, *graph.weights)]
            extents = sorted({d for _, t in sources for d in t.shape if d > 1}, reverse=True)
            return [with_sources(self.case, extent_changer(d, new)) for d in extents for new in sorted({1, d // 2})] + \
                [with_sources(self.case, extent_changer(d, 1, axis), {name})
                 for name, t in sources for axis, d in enumerate(t.shape) if d > 1]
        return self.until_no_candidate_reproduces(candidates)

    def narrow_dtypes(self) -> bool:
        graph = self.case.graph
        names = [s.name for s in (*graph.inputs, *graph.weights)
                 if s.type.dtype.is_float and s.type.dtype is not DType.float32]
        candidates = [with_sources(self.case, to_float32)] + [with_sources(self.case, to_float32, {n}) for n in names]
        return bool(names) and self.first_reproducing(candidates) is not None

    def simplify_attributes(self) -> bool:
        progress = False
        for index in range(len(self.case.graph.nodes)):
            if index >= len(self.case.graph.nodes) or self.out_of_time:
                break
            node = self.case.graph.nodes[index]
            anchor = self.case.graph.types[node.inputs[0]] if node.inputs and node.inputs[0] else None
            if anchor is None or not node.attrs:
                continue
            options = simpler_attributes(node, anchor)
            progress |= self.first_reproducing(
                with_attributes(self.case, index, attrs) for attrs in options) is not None
        return progress

    def simplify_values(self) -> bool:
        progress = False
        for name in [i.name for i in self.case.graph.inputs] + [w.name for w in self.case.graph.weights
                                                                if w.type.dtype.is_float]:
            if self.out_of_time:
                break
            candidates = [with_sources(self.case, value_changer(simplify), {name})
                          for simplify in VALUE_SIMPLIFICATIONS]
            progress |= self.first_reproducing(candidates) is not None
        return progress


# ---------------------------------------------------------------- store and entry points


def judging_backends(config: CampaignConfig, stored: StoredFinding) -> list[str]:
    """The run's backends needed to judge ``stored`` again, from the campaign lane that found
    it (:func:`fuzzer.campaign.config.split_backends`; the lane of slow compilers when it blames one
    of them). A failure or a type disagreement needs only the blamed backend and the judges;
    a value disagreement also the backend it was compared with; a slowdown its timed pair;
    other kinds the whole lane."""
    if stored.kind is FindingKind.SLOWDOWN:  # the timed pair alone: it runs both sides
        spec = next(spec for spec in config.backends if load_backend(spec).name == stored.backends[0])
        return [f"timed/{spec}"]
    every_test, sampled = split_backends(config)
    slow_blamed = any(spec in stored.backends or load_backend(spec).name in stored.backends
                      for spec in sampled if spec not in every_test)
    lane = list(sampled if slow_blamed else every_test)
    if stored.kind not in NARROW_KINDS:
        return lane
    needed = {*stored.backends, stored.compared_with, config.reference}
    return [spec for spec in lane if (backend := load_backend(spec)).name in needed or backend.role == "judge"]


def _supported_case(store: RunStore, finding_id: int) -> TestCase:
    if store.config.get("mode") == "tir":
        raise ReductionUnsupported(f"finding {finding_id} is from a TIR-mode run; TIR findings are shrunk "
                                   "by the TIR campaign itself (fuzzer.tir)")
    case = stored_case(store, finding_id)
    if case.graph is None:
        raise ReductionUnsupported(f"finding {finding_id} is on an external ONNX model without a tcfuzz graph; "
                                   "only generated graphs can be reduced")
    return case


def _pin(stored: StoredFinding, case: TestCase, evaluator: Evaluator) -> Target:
    """The finding as the evaluator sees it on the original case (exact signature first,
    else a near-identical one of the same kind and backends)."""
    kind = stored.kind
    candidates = [f for f in evaluator.evaluate(case) if f.kind is kind and f.backends == stored.backends]
    found = next((f for f in candidates if f.signature == stored.signature), None) or next(
        (f for f in candidates if near_identical(f.signature, stored.signature)), None)
    if found is None:
        raise NotReproducible(f"finding {stored.id} ({stored.signature}) does not reproduce on its stored test case; "
                              f"got {[f.signature for f in candidates] or 'no finding'} "
                              f"from {', '.join(stored.backends)}")
    compared_with = str(found.details.get("compared_with", ""))
    operator = ""
    if kind in VALUE_KINDS and compared_with:
        located = localize(case, stored.backends[0], compared_with, evaluator=evaluator)
        operator = located.op if located else ""
    return Target(kind, stored.backends, found.signature, operator, compared_with)


def _save(store: RunStore, finding_id: int, reduction: Reduction, target: Target) -> None:
    inputs_sha = store.put_blob(arrays_to_npz(reduction.case.inputs))
    with store.transaction(write=True) as connection:
        connection.execute(
            "INSERT OR REPLACE INTO reductions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (finding_id, reduction.case.graph.to_json(), inputs_sha, target.signature, target.operator,
             reduction.nodes_before, reduction.nodes_after, reduction.tests, reduction.seconds, int(reduction.done)))


def _load_row(store: RunStore, finding_id: int):
    store.ensure_tables(SCHEMA)
    with store.transaction() as connection:
        return connection.execute("SELECT * FROM reductions WHERE finding_id = ?", (finding_id,)).fetchone()


def load_reduction(store: RunStore, finding_id: int) -> Reduction | None:
    """The stored reduction of a finding (finished or a checkpoint), or None."""
    row = _load_row(store, finding_id)
    if row is None:
        return None
    stored = find_stored(store, finding_id)
    graph = Graph.from_json(row["graph_json"])
    opset = campaign_config(store.config).opset
    case = TestCase(graph, npz_to_arrays(store.get_blob(row["inputs_sha"])), to_onnx_bytes(graph, opset), opset,
                    stored.seed, stored.test_index)
    return Reduction(finding_id, case, row["signature"], row["nodes_before"], row["nodes_after"], row["tests"],
                     row["seconds"], bool(row["done"]))


def reduce_finding(store: RunStore, finding_id: int, *, evaluator: Evaluator | None = None,
                   time_budget: float = 300.0) -> Reduction:
    """Reduce a finding's test case within ``time_budget`` seconds, resuming from its
    checkpoint if one is stored; a finished reduction is returned as stored."""
    case = _supported_case(store, finding_id)
    previous = load_reduction(store, finding_id)
    if previous is not None and previous.done:
        return previous
    stored = find_stored(store, finding_id)
    if evaluator is None:
        backends = judging_backends(campaign_config(store.config), stored)
        with Evaluator.from_config(store.config, backends, rewrites=stored.on_rewrite) as own:
            return reduce_finding(store, finding_id, evaluator=own, time_budget=time_budget)
    started = time.monotonic()
    row = _load_row(store, finding_id)
    if previous is not None:
        target = Target(stored.kind, stored.backends, row["signature"], row["operator"],
                        stored.compared_with)
        case, nodes_before, tests_before, seconds_before = (previous.case, previous.nodes_before, previous.tests,
                                                            previous.seconds)
    else:
        target = _pin(stored, case, evaluator)
        nodes_before, tests_before, seconds_before = len(case.graph.nodes), 1, 0.0

    def snapshot(reducer: Reducer, done: bool = False) -> Reduction:
        return Reduction(finding_id, reducer.case, target.signature, nodes_before, len(reducer.case.graph.nodes),
                         tests_before + reducer.tests, seconds_before + time.monotonic() - started, done)

    reducer = Reducer(case, target, evaluator, started + time_budget,
                      on_accept=lambda r: _save(store, finding_id, snapshot(r), target))
    done = reducer.run()
    result = snapshot(reducer, done)
    _save(store, finding_id, result, target)
    return result

