"""Seeded generation of valid random graphs from the operator specs.

Graphs grow by forward insertion: pick an operator, pick an *anchor* among existing values
it accepts (or a fresh graph input), let the spec propose attributes and its other inputs,
reuse existing values of the proposed types where possible (fan-out) or create inputs and
weights, and keep the node when shape inference and the size budget accept it. The same
seed and options always give the same graph.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import warnings
from collections import Counter
import math
import random
from dataclasses import dataclass, field
from functools import cache
from typing import Iterable

import numpy as np
import onnx

from fuzzer.graph.export_onnx import DEFAULT_OPSET, to_onnx, to_onnx_bytes
from fuzzer.graph.ir import ALL_DTYPES, DType, Graph, Input, Node, TensorType, Weight, name_extents, resized
from fuzzer.graph.ops import all_specs, get_spec, infer_types
from fuzzer.graph.ops.control import BODIES
from fuzzer.graph.ops.spec import ANCHOR, Domain, Family, OpSpec
from fuzzer.graph.rejected import InvalidGraph, Rejected, Unsatisfiable
from fuzzer.graph.case import TestCase
from fuzzer.graph.values import random_array, random_inputs
from fuzzer.generation.patterns import PATTERNS, Instance, available, instantiate
from fuzzer.generation.profiles import SMALL, ShapeProfile, checked_weights, draw_profile

ANCHORS_PER_OPERATOR = 4
SYMBOL = "N"  # the symbolic leading dimension of a dynamic graph's inputs
VARIANTS = 2  # sizes besides its own at which every dynamic graph is known to run
DEFAULT_DTYPES = frozenset(DType)
BODY_NODES = (1, 3)
BODY_ATTEMPTS = 8
BODY_OPSET = 13  # bodies use operators valid at every supported opset
PATTERN_ATTEMPTS = 8


@dataclass(frozen=True)
class GeneratorOptions:
    nodes: int = 10
    opset: int = DEFAULT_OPSET
    dtypes: frozenset[DType] = DEFAULT_DTYPES  # dtypes of fresh graph inputs and anchors
    ops: frozenset[str] | None = None  # None: every operator available at ``opset``
    max_rank: int = 4
    max_dim: int = 6
    max_elements: int = 4096  # per tensor
    max_flops: int = 20_000_000  # per graph, estimated: keeps every test cheap on every backend
    backward_share: float = 0.2  # chance that a node is inserted before an input (it then computes it)
    exact_size: bool = False  # False: half of the graphs get a random size in 1..nodes
    weight_share: float = 0.3  # chance that a fresh operand is a weight, not an input
    reuse_share: float = 0.6  # chance to reuse an existing value of the right type
    output_share: float = 0.2  # chance that a consumed value is also a graph output
    float_bias: float = 0.6  # chance that a fresh anchor is a float when the op allows it
    attempts_per_node: int = 30
    avoid: frozenset[tuple[str, str]] = frozenset()  # (operator, dtype) pairs backends decline
    input_budget: float | None = 0.1  # seconds of input search per graph; None: plain random inputs
    control_flow: float = 0.0  # share of graphs with a control-flow node (If, Loop, Scan)
    dynamic: float = 0.0  # share of graphs whose inputs have a symbolic leading dimension
    # (profile, weight) pairs (a mapping is accepted): each graph draws its shape profile by weight
    shape_profiles: tuple[tuple[str, float], ...] = (("small", 1.0),)
    pattern_share: float = 0.0  # share of graphs with a pattern of fuzzer.generation.patterns
    near_miss_share: float = 0.5  # share of inserted patterns that are one edit away from matching
    max_patterns: int = 1  # a graph with patterns holds 1..max_patterns of them (fusions that meet)

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape_profiles", checked_weights(self.shape_profiles))
        if self.nodes < 1:
            raise ValueError(f"nodes must be at least 1, got {self.nodes}")
        if self.max_patterns < 1:
            raise ValueError(f"max_patterns must be at least 1, got {self.max_patterns}")
        unknown = set(self.dtypes) - ALL_DTYPES
        if unknown or not self.dtypes:
            raise ValueError(f"dtypes must be a non-empty subset of {sorted(d.value for d in ALL_DTYPES)}")
        for share in ("control_flow", "dynamic", "pattern_share", "near_miss_share"):
            if not 0.0 <= getattr(self, share) <= 1.0:
                raise ValueError(f"{share} must be a share in [0, 1], got {getattr(self, share)}")

    def specs(self) -> list[OpSpec]:
        return eligible_specs(self.opset, self.dtypes, self.ops)

    def profiled(self, profile: ShapeProfile) -> GeneratorOptions:
        """These options within ``profile``'s budgets (the small profile keeps them)."""
        if profile is SMALL:
            return self
        return dataclasses.replace(self, max_elements=profile.max_elements, max_flops=profile.max_flops,
                                   max_dim=max(profile.extents))


@cache
def eligible_specs(opset: int, dtypes: frozenset[DType], ops: frozenset[str] | None) -> list[OpSpec]:
    """The operators a generator may use at ``opset`` with these dtypes and operators."""
    chosen = [s for s in all_specs() if s.since <= opset and s.dtypes_at(opset) & dtypes
              and (s.name in ops if ops is not None else s.family is not Family.CONTROL)]
    if ops is not None:
        missing = set(ops) - {s.name for s in chosen}
        if missing:
            raise ValueError(f"operators {', '.join(sorted(missing))} are unknown, need a newer "
                             f"opset than {opset}, or accept none of the chosen dtypes")
    if not chosen:
        raise ValueError("no operator matches the chosen operators, dtypes and opset")
    return chosen


@dataclass
class GraphBuilder:
    rng: random.Random
    options: GeneratorOptions
    inputs: list[Input] = field(default_factory=list)
    weights: list[Weight] = field(default_factory=list)
    nodes: list[Node] = field(default_factory=list)
    values: dict[str, TensorType] = field(default_factory=dict)
    driven: set[str] = field(default_factory=set)  # values that some graph input's values flow into
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)  # known bounds of values
    pinned: dict[str, tuple[float, float]] = field(default_factory=dict)  # bounds of values no input moves
    flops: int = 0
    names: itertools.count = field(default_factory=itertools.count)
    closed: bool = False  # a control-flow body: no fresh graph inputs, fresh operands are weights
    profile: ShapeProfile = SMALL  # the extents of fresh tensors
    patterns: list[str] = field(default_factory=list)  # patterns inserted, "name" or "name~near-miss"
    extra_outputs: list[str] = field(default_factory=list)  # intermediate values that must be graph outputs
    # Patterns' intermediate values: never drawn as graph outputs (an optimizer fuses no node whose
    # result is a graph output), unless a near-miss makes one an extra output on purpose.
    kept_inside: set[str] = field(default_factory=set)

    def random_type(self, dtypes: frozenset[DType], ranks: tuple[int, int]) -> TensorType:
        rng, options = self.rng, self.options
        floats = sorted((d for d in dtypes if d.is_float), key=lambda d: d.value)
        pool = floats if floats and rng.random() < options.float_bias else sorted(dtypes, key=lambda d: d.value)
        low, high = ranks[0], min(ranks[1], options.max_rank)
        if low > high:
            raise Unsatisfiable(f"rank range {ranks} exceeds max_rank {options.max_rank}")
        rank = rng.randint(low, high)
        shape = [self.profile.dim(rng, options.max_dim) for _ in range(rank)]
        while np.prod(shape) > options.max_elements:
            shape[rng.randrange(rank)] = self.profile.shrink(rng)
        return TensorType(rng.choice(pool), tuple(shape))

    def fresh_name(self, prefix: str) -> str:
        return f"{prefix}{next(self.names)}"

    def add_node(self, spec: OpSpec, backward: bool = False) -> None:
        """Insert one node of ``spec``: forward (it reads existing values) or backward (it is
        put before everything and computes an existing graph input, which it replaces)."""
        rng, options = self.rng, self.options
        staged: list[Input | Weight] = []
        target = None
        candidates = [name for name, t in self.values.items()
                      if spec.accepts(t, options.opset) and t.dtype in options.dtypes]
        if backward:
            targets = [i for i in self.inputs if spec.accepts(i.type, options.opset) and i.type.dtype in options.dtypes]
            if not targets:
                raise Unsatisfiable(f"no graph input that {spec.name} could compute")
            target = rng.choice(targets)
            anchor, anchor_name = target.type, self.fresh_name("x")
            staged.append(Input(anchor_name, anchor))
        elif candidates and (self.closed or rng.random() < 0.9):
            # Prefer recent values so that graphs grow deep as well as wide.
            anchor_name = candidates[min(int(rng.expovariate(0.7)), len(candidates) - 1) * -1 - 1]
            anchor = self.values[anchor_name]
        elif self.closed:
            raise Unsatisfiable(f"no value in the body that {spec.name} accepts")
        else:
            dtypes = spec.dtypes_at(options.opset) & options.dtypes
            if not dtypes:
                raise Unsatisfiable(f"{spec.name} accepts none of the chosen dtypes")
            anchor = self.random_type(dtypes, spec.ranks)
            anchor_name = self.fresh_name("x")
            staged.append(Input(anchor_name, anchor))
        if (spec.name, anchor.dtype.value) in options.avoid:
            raise Unsatisfiable(f"{spec.name} on {anchor.dtype.value} is declined by most backends")
        proposal = spec.propose(rng, anchor)
        if ANCHOR not in proposal.inputs:  # the anchor only chose a type (Range, some Casts)
            staged = [s for s in staged if s.name != anchor_name]
        driven = self.driven | {s.name for s in staged if isinstance(s, Input)}
        domain = spec.domain
        derived: list[Node] = []  # nodes that compute a condition operand
        names = []
        for position, operand in enumerate(proposal.inputs):
            restricted = domain is not None and domain.position == position
            if operand is ANCHOR:
                if restricted and not self.can_reach_domain(anchor_name, driven, domain):
                    raise Unsatisfiable(f"{spec.name}'s domain is out of the input search's reach from {anchor_name}")
                names.append(anchor_name)
                continue
            if operand.condition:
                if target is not None:
                    raise Unsatisfiable(f"a backward {spec.name} cannot derive its condition")
                names.append(self.derive_condition(anchor_name, anchor, staged, derived))
                continue
            if operand.values is not None:
                weight = Weight.from_array(self.fresh_name("w"), np.asarray(operand.values))
                staged.append(weight)
                names.append(weight.name)
                continue
            # A backward node comes first: it may read graph inputs and weights only.
            sources = self.sources() - {target.name} if target else None
            readable = [name for name in self.values if sources is None or name in sources]  # in definition order
            matching = [name for name in readable if self.values[name] == operand.type
                        and (not restricted or self.can_reach_domain(name, driven, domain))]
            if matching and rng.random() < options.reuse_share:
                names.append(rng.choice(matching))
            elif not restricted and (self.closed or rng.random() < options.weight_share):
                gen = np.random.default_rng(rng.getrandbits(32))
                weight = Weight.from_array(self.fresh_name("w"), np.asarray(random_array(gen, operand.type)))
                staged.append(weight)
                names.append(weight.name)
            else:
                staged.append(Input(self.fresh_name("x"), operand.type))
                names.append(staged[-1].name)
        types = {**self.values, **{s.name: s.type for s in staged},
                 **{name: t for node in derived for name, t in zip(node.outputs, node.output_types)}}
        input_types = tuple(types[n] for n in names)
        outputs = infer_types(spec, input_types, proposal.attrs)
        if any(not 1 <= t.numel <= options.max_elements for t in outputs):
            raise Unsatisfiable(f"{spec.name} output size is outside the element budget")
        if target is not None and outputs[0] != target.type:
            raise Unsatisfiable(f"{spec.name} cannot compute {target.type}")
        flops = estimated_flops(spec, input_types, outputs)
        if self.flops + flops > options.max_flops:
            raise Unsatisfiable(f"{spec.name} would exceed the graph's FLOP budget")
        output_driven = any(name in driven for position, name in enumerate(names) if spec.steers(position))
        if target is not None and not output_driven:
            raise Unsatisfiable(f"{spec.name} would compute input {target.name} from constants only")
        weights = {s.name: value_bounds(s.array) for s in staged if isinstance(s, Weight) and s.type.numel}
        value_range = self.output_range(spec, names, {**self.ranges, **weights})
        pinned = self.output_pinned(spec, names, {**self.pinned, **weights}, input_types, proposal.attrs)
        if target is not None and not self.fits_readers(target.name, value_range, pinned):
            raise Unsatisfiable(f"{spec.name}'s values are outside the domain of a reader of {target.name}")
        output_names = tuple(f"v{next(self.names)}" for _ in outputs)
        if target is not None:
            output_names = (target.name, *output_names[1:])
            self.inputs.remove(target)
        outputs = name_extents(outputs, output_names)
        for item in staged:
            (self.inputs if isinstance(item, Input) else self.weights).append(item)
            self.values[item.name] = item.type
        for item in derived:
            self.nodes.append(item)
            self.values.update(zip(item.outputs, item.output_types))
            self.driven.update(item.outputs if anchor_name in driven else ())
        node = Node(spec.name, tuple(names), output_names, outputs, tuple(proposal.attrs.items()))
        self.nodes.insert(0, node) if target is not None else self.nodes.append(node)
        self.values.update(zip(output_names, outputs))
        if output_driven:
            self.driven.update(output_names)
        self.driven.update(s.name for s in staged if isinstance(s, Input))
        self.ranges.update(weights)
        self.pinned.update(weights)
        if value_range is not None:
            self.ranges.update((name, value_range) for name in output_names)
        if pinned is not None:
            self.pinned.update((name, pinned) for name in output_names)
        if domain is not None and not domain.nonzero:  # clean inputs keep the value inside the domain
            read = names[domain.position]
            low, high = self.ranges.get(read, (-math.inf, math.inf))
            self.ranges[read] = (max(low, domain.low), min(high, domain.high))
        self.flops += flops

    def add_pattern(self) -> None:
        """One pattern of PATTERNS available under the options (a near-miss in
        ``near_miss_share`` of them), its first input bound to an existing value when one
        fits; raises Unsatisfiable when none fits after PATTERN_ATTEMPTS tries."""
        options = self.options
        eligible = [p for p in PATTERNS if available(p, options.opset, options.ops)]
        if not eligible:
            raise Unsatisfiable("no pattern's operators are all available")
        for _ in range(PATTERN_ATTEMPTS):
            pattern = self.rng.choice(eligible)
            try:
                fixed = {name: t for name, t in self.values.items() if not t.runtime}  # patterns bind known extents
                instance = instantiate(pattern, self.rng, self.profile, options.max_dim, options.max_elements,
                                       fixed, self.fresh_name, self.rng.random() < options.near_miss_share,
                                       options.dtypes, options.opset)
                self.commit(instance)
                return
            except Unsatisfiable:
                continue
        raise Unsatisfiable("no pattern fits the graph's budgets")

    def commit(self, instance: Instance) -> None:
        """Add a pattern instance, unless it breaks the FLOP budget or an avoided (operator, dtype)."""
        types = {**self.values, **{i.name: i.type for i in (*instance.inputs, *instance.weights)}}
        flops = 0
        for node in instance.nodes:
            input_types = tuple(types[n] for n in node.inputs)
            if any((node.op, t.dtype.value) in self.options.avoid for t in input_types):
                raise Unsatisfiable(f"pattern {instance.pattern}: {node.op} is declined by most backends")
            flops += estimated_flops(get_spec(node.op), input_types, node.output_types)
            types.update(zip(node.outputs, node.output_types))
        if self.flops + flops > self.options.max_flops:
            raise Unsatisfiable(f"pattern {instance.pattern} would exceed the graph's FLOP budget")
        self.inputs += instance.inputs
        self.weights += instance.weights
        self.driven.update(i.name for i in instance.inputs)
        self.ranges.update((w.name, value_bounds(w.array)) for w in instance.weights)
        self.pinned.update((w.name, value_bounds(w.array)) for w in instance.weights)
        for node in instance.nodes:
            self.nodes.append(node)
            if self.driven.intersection(node.inputs):
                self.driven.update(node.outputs)
        self.values.update((n, types[n]) for n in [*(i.name for i in (*instance.inputs, *instance.weights)),
                                                    *(o for node in instance.nodes for o in node.outputs)])
        self.extra_outputs += instance.extra
        self.kept_inside.update(o for node in instance.nodes[:-1] for o in node.outputs)
        self.patterns.append(instance.pattern + (f"~{instance.miss}" if instance.miss else ""))
        self.flops += flops

    def derive_condition(self, name: str, tensor_type: TensorType, staged: list[Input | Weight],
                         derived: list[Node]) -> str:
        """A bool scalar computed from value ``name``: ReduceSum(name) > 0; the zero it is
        compared with joins ``staged``, the two nodes join ``derived``."""
        total, zero, flag = self.fresh_name("v"), self.fresh_name("w"), self.fresh_name("v")
        staged.append(Weight.from_array(zero, np.zeros((), tensor_type.dtype.numpy)))
        derived += [Node("ReduceSum", (name,), (total,), (tensor_type.with_shape(()),),
                         (("axes", ()), ("keepdims", 0))),
                    Node("Greater", (total, zero), (flag,), (TensorType(DType.bool, ()),))]
        return flag

    def output_range(self, spec: OpSpec, names: list[str], known: dict[str, tuple[float, float]]
                     ) -> tuple[float, float] | None:
        """Known bounds of a node's output values (``known``: bounds by value name): the
        spec's own, or the union of its steering inputs' when it only moves or selects values."""
        if spec.value_range is not None:
            return spec.value_range
        steering = [name for position, name in enumerate(names) if spec.steers(position)]
        if spec.keeps_values and all(name in known for name in steering):
            return union(known[name] for name in steering)
        return None

    def output_pinned(self, spec: OpSpec, names: list[str], known: dict[str, tuple[float, float]],
                      input_types: tuple[TensorType, ...], attrs: dict) -> tuple[float, float] | None:
        """Bounds of the output values of a node that no graph input moves (``known``: such
        bounds by value name): those the spec writes, and those of its steering inputs when
        it only moves or selects values."""
        parts = [spec.pinned(input_types, attrs)] if spec.pinned is not None else []
        if spec.keeps_values:
            parts += [known[name] for position, name in enumerate(names) if spec.steers(position) and name in known]
        return union(p for p in parts if p is not None)

    def fits_readers(self, name: str, value_range: tuple[float, float] | None,
                     pinned: tuple[float, float] | None) -> bool:
        """Whether values bounded by ``value_range``, of which those no input moves lie in
        ``pinned``, suit every node that reads ``name`` at its operator's restricted input."""
        return all((value_range is None or domain.admits(value_range)) and (pinned is None or domain.holds(pinned))
                   for node in self.nodes
                   if (domain := get_spec(node.op).domain) is not None and node.inputs[domain.position] == name)

    def can_reach_domain(self, name: str, driven: set[str], domain: Domain) -> bool:
        """Whether the input search can bring value ``name`` into ``domain``: some graph input
        drives it, its known bounds leave room inside the domain, and the values no input
        moves lie inside it."""
        return (name in driven and domain.admits(self.ranges.get(name, (-math.inf, math.inf)))
                and (name not in self.pinned or domain.holds(self.pinned[name])))

    def sources(self) -> set[str]:
        """Values defined before every node: graph inputs and weights."""
        return {i.name for i in self.inputs} | {w.name for w in self.weights}

    def graph(self) -> Graph:
        consumed = {name for node in self.nodes for name in node.inputs}
        produced = [name for node in self.nodes for name in node.outputs]
        outputs = [name for name in produced if name not in consumed or name in self.extra_outputs
                   or (name not in self.kept_inside and self.rng.random() < self.options.output_share)]
        return Graph(tuple(self.inputs), tuple(self.weights), tuple(self.nodes), tuple(outputs))


def union(bounds: Iterable[tuple[float, float]]) -> tuple[float, float] | None:
    """The smallest interval that holds every interval of ``bounds``; None when there is none."""
    bounds = list(bounds)
    return (min(b[0] for b in bounds), max(b[1] for b in bounds)) if bounds else None


def value_bounds(array: np.ndarray) -> tuple[float, float]:
    """The least and greatest value of a non-empty array, as floats (bool as 0 and 1)."""
    return float(array.min()), float(array.max())


def estimated_flops(spec: OpSpec, inputs: tuple[TensorType, ...], outputs: tuple[TensorType, ...]) -> int:
    """An upper estimate of a node's arithmetic: each output element of a contraction costs
    the size of what it reduces over (bounded by the second operand); others touch each
    element once."""
    touched = sum(t.numel for t in inputs) + sum(t.numel for t in outputs)
    if spec.family is Family.LINALG and len(inputs) > 1 and inputs[1].rank:
        return touched + sum(t.numel for t in outputs) * max(1, inputs[1].numel // inputs[1].shape[0])
    return touched


@dataclass(frozen=True)
class Generated:
    """A generated graph with the shape profile it drew and the patterns inserted into it."""

    graph: Graph
    profile: str
    patterns: tuple[str, ...]


def generate_graph(seed: int, options: GeneratorOptions = GeneratorOptions()) -> Graph:
    """A valid graph of ``options.nodes`` nodes (fewer only if attempts run out)."""
    return generated(seed, options).graph


def generated(seed: int, options: GeneratorOptions = GeneratorOptions()) -> Generated:
    """:func:`generate_graph`'s graph with its profile and patterns. A graph draws its
    profile first, then (with ``pattern_share``) the node counts at which patterns go in."""
    rng = random.Random(seed)
    profile = draw_profile(rng, options.shape_profiles)
    options = options.profiled(profile)
    specs = options.specs()
    builder = GraphBuilder(rng, options, profile=profile)
    size = options.nodes if options.exact_size or rng.random() < 0.5 else rng.randint(1, options.nodes)
    pattern_at = []
    if options.pattern_share and rng.random() < options.pattern_share:
        count = rng.randint(1, options.max_patterns) if options.max_patterns > 1 else 1
        pattern_at = sorted(rng.randrange(size) for _ in range(count))
    attempts = 0
    while len(builder.nodes) < size and attempts < options.nodes * options.attempts_per_node:
        if pattern_at and len(builder.nodes) >= pattern_at[0]:
            pattern_at.pop(0)
            with contextlib.suppress(Unsatisfiable):
                builder.add_pattern()
            continue
        spec = rng.choice(specs)
        backward = bool(builder.inputs) and rng.random() < options.backward_share
        # Several anchors per chosen operator, so that constraint-heavy operators (whose
        # proposals often fail) are not starved in favour of easy ones.
        for _ in range(ANCHORS_PER_OPERATOR):
            attempts += 1
            try:
                builder.add_node(spec, backward)
                break
            except Rejected:
                continue
    if options.control_flow and rng.random() < options.control_flow:
        add_control_flow(builder)
    if not builder.nodes:
        raise Unsatisfiable(f"no node could be generated from seed {seed} with {options}")
    graph = builder.graph()
    if options.dynamic and rng.random() < options.dynamic:
        graph = with_symbolic_batch(graph, rng, options)
    return Generated(graph, profile.name, tuple(builder.patterns))


def with_symbolic_batch(graph: Graph, rng: random.Random, options: GeneratorOptions) -> Graph:
    """``graph`` with the leading dimension of its inputs that share the most common one
    named SYMBOL, when the graph follows that symbol at VARIANTS other sizes; else ``graph``."""
    leading = Counter(i.type.shape[0] for i in graph.inputs if i.type.rank)
    for size, _ in leading.most_common(2):
        marked = Graph(tuple(Input(i.name, i.type, ((0, SYMBOL),)) if i.type.rank and i.type.shape[0] == size else i
                             for i in graph.inputs), graph.weights, graph.nodes, graph.outputs)
        if len(concrete_variants(marked, rng, VARIANTS + 1, options.max_elements)) > VARIANTS:
            return marked
    return graph


def runs_on_reference(model: onnx.ModelProto, graph: Graph) -> bool:
    """Whether ``model`` runs on the ONNX reference evaluator with ``graph``'s input shapes and
    gives its output shapes."""
    from onnx.reference import ReferenceEvaluator

    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            outputs = ReferenceEvaluator(model).run(None, random_inputs(graph, 0))
    except Exception:  # noqa: BLE001 - any failure disqualifies these sizes
        return False
    return len(outputs) == len(graph.outputs) and all(graph.types[name].admits(np.shape(o))
                                                      for name, o in zip(graph.outputs, outputs))


def concrete_variants(graph: Graph, rng: random.Random, count: int = VARIANTS + 1,
                      max_elements: int = GeneratorOptions.max_elements) -> list[Graph]:
    """Up to ``count`` instances of a dynamic graph at different sizes of its symbols, the
    graph's own sizes first: each is valid, keeps every tensor within ``max_elements``,
    exports to the same ONNX operators and constants, so that one model serves them all, and
    runs on the reference evaluator (window sizes stay in range); indexing nodes keep their
    shapes, since their index constants were drawn for them."""
    symbols = graph.symbols
    if not symbols:
        return [graph]
    model = to_onnx(graph)
    reference = model.graph
    variants = [graph]
    candidates = list(range(1, max(symbols.values()) * 2 + 2))
    rng.shuffle(candidates)
    for size in candidates:
        if len(variants) >= count:
            break
        sizes = dict.fromkeys(symbols, size)
        if sizes == symbols:
            continue
        try:
            variant = resized(graph, sizes)
        except InvalidGraph:
            continue
        exported = to_onnx(variant).graph
        # Index constants fit the sizes they were drawn for: indexing nodes must see the same shapes.
        indexed = {name for node in graph.nodes if get_spec(node.op).family is Family.INDEXING for name in node.inputs}
        if (all(t.numel <= max_elements for t in variant.types.values())
                and all(variant.types[name] == graph.types[name] for name in indexed)
                and exported.node == reference.node and exported.initializer == reference.initializer
                and runs_on_reference(model, variant)):
            variants.append(variant)
    return variants


def add_control_flow(builder: GraphBuilder) -> None:
    """One If, Loop or Scan node, its bodies generated like small graphs of their own (none
    when the chosen operators name no control-flow operator)."""
    ops = builder.options.ops
    specs = [s for s in all_specs() if s.family is Family.CONTROL and s.since <= builder.options.opset
             and (ops is None or s.name in ops)]
    for _ in range(builder.options.attempts_per_node if specs else 0):
        try:
            builder.add_node(builder.rng.choice(specs))
            return
        except Rejected:
            continue


def generate_body(rng: random.Random, inputs: tuple[TensorType, ...], returns: tuple[TensorType | None, ...]) -> Graph:
    """A control-flow body of BODY_NODES nodes reading ``inputs`` (named ``b0``, ``b1``, ...)
    whose outputs have the types in ``returns`` (None: any type), each a distinct node
    output; its operators have no value domain, so no value inside needs the input search,
    and no ties (ArgMax, TopK): the guards that excuse near-ties read top-level nodes only."""
    options = GeneratorOptions(nodes=BODY_NODES[1], opset=BODY_OPSET, ops=body_operators(),
                               backward_share=0.0, weight_share=0.2, input_budget=None)
    for _ in range(BODY_ATTEMPTS):
        builder = GraphBuilder(rng, options, closed=True)
        builder.inputs = [Input(f"b{index}", tensor_type) for index, tensor_type in enumerate(inputs)]
        builder.values = {i.name: i.type for i in builder.inputs}
        builder.driven = set(builder.values)
        for _ in range(rng.randint(*BODY_NODES) * options.attempts_per_node):
            if len(builder.nodes) >= BODY_NODES[1]:
                break
            try:
                builder.add_node(rng.choice(options.specs()))
            except Rejected:
                continue
        produced = [(name, t) for node in builder.nodes for name, t in zip(node.outputs, node.output_types)]
        chosen: list[str] = []
        for wanted in returns:
            fits = [name for name, t in produced if (wanted is None or t == wanted) and name not in chosen]
            if not fits:
                break
            chosen.append(rng.choice(fits))
        if len(chosen) == len(returns):
            return Graph(tuple(builder.inputs), tuple(builder.weights), tuple(builder.nodes), tuple(chosen))
    raise Unsatisfiable(f"no body of types {', '.join(map(str, inputs))} returns {returns}")


@cache
def body_operators() -> frozenset[str]:
    return frozenset(s.name for s in all_specs() if s.family is not Family.CONTROL and s.domain is None
                     and not s.nondeterministic and not s.ties and s.since <= BODY_OPSET)


def make_case(graph: Graph, seed: int, opset: int = DEFAULT_OPSET, index: int = 0,
              input_budget: float | None = None) -> TestCase:
    """A test case; with ``input_budget``, inputs come from the numerical input search."""
    if input_budget is None:
        inputs, clean = random_inputs(graph, seed), None
    else:
        from fuzzer.generation.input_search import search_inputs  # imports torch, once per process

        found = search_inputs(graph, seed, input_budget)
        inputs, clean = found.inputs, found.clean
    return TestCase(graph, inputs, to_onnx_bytes(graph, opset), opset, seed, index, clean)


def generate_case(seed: int, options: GeneratorOptions = GeneratorOptions(), index: int = 0) -> TestCase:
    return make_case(generate_graph(seed, options), seed, options.opset, index, options.input_budget)


BODIES.make = generate_body  # how control-flow operators get their bodies
