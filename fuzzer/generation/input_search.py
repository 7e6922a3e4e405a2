"""Numerically sane graph inputs: no NaN or Inf anywhere and every operator inside its domain.

:func:`search_inputs` starts from the seed's ordinary draw (:func:`fuzzer.graph.values.random_inputs`)
and checks it by running the graph node by node, through the operators' torch lowerings, at
its declared precision. When a node leaves its domain (Log of a negative number, Asin beyond
[-1, 1], a division by almost zero, a float16 Exp that overflows, ...) the search moves the
graph's float inputs by gradient steps on a loss that measures how far every node is outside
its domain, computed in float64; graphs that gradients cannot fix (integer inputs, argmax
paths) get a few fresh draws (positive, negative, integral, symmetric; then wider), each polished
by gradient steps. Weights are never changed: a violation that no input reaches is reported at once.

The search is deterministic for a graph and seed: its work is bounded by a number of node
evaluations (WORK: 30 graph evaluations at 10 nodes). ``budget_seconds`` (CPU time of the calling thread, so that a busy
machine does not shrink it) is a safety net on top; a search it cuts short depends on the
machine's speed, and its reason says so.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping

import numpy as np
import torch

import fuzzer.graph.export_torch  # noqa: F401 - installs how control-flow lowerings run their bodies
from fuzzer.graph.ir import FLOATS, DType, Graph, TensorType
from fuzzer.graph.ops import all_specs, get_spec
from fuzzer.graph.ops.spec import DomainKind, OpSpec, as_results
from fuzzer.graph.values import INTEGER_RANGES, random_inputs, to_torch

Tensor = torch.Tensor
# A domain rule: (node inputs, attributes, margin) -> (the inputs with every value outside the
# operator's domain moved ``margin`` inside it, a bool tensor that is True where values are outside).
Rule = Callable[[list[Tensor], Mapping[str, Any], float], tuple[list[Tensor], Tensor]]

SEARCH_MARGIN = 2.0 ** -7  # how far inside a domain bound the search moves values
DIVISOR_FLOOR = 2.0 ** -8  # divisors (and bases under negative exponents) must be at least this large
SEARCH_HEADROOM = 2.0 ** 8  # the search keeps magnitudes below max / SEARCH_HEADROOM ...
CHECK_HEADROOM = 2.0 ** 4  # ... and a clean value is below its dtype's max / CHECK_HEADROOM
WORK = 300  # node evaluations after the first check: the deterministic bound on a search's work
INITIAL_GRADIENT_STEPS = 16  # gradient steps on the first draw before sampling starts
DRAWS = 8  # fresh draws after the first descent fails (the work bound may stop them sooner)
REDRAW_STYLES = ("positive", "negative", "integral", "symmetric")
REDRAW_GROWTH = 8  # each round of fresh draws spans this many times the previous one
GRADIENT_STEPS_PER_DRAW = 4  # gradient steps on each fresh draw before the next one
OVERSHOOT = 1.25  # gradient steps go this much further than a linear model says is enough
PROGRESS = 0.9  # a gradient step makes progress when it cuts the best loss so far to this share ...
PATIENCE = 3  # ... and the descent stops after this many steps without progress
STALL_BOOST = 4.0  # a step after k steps without progress is STALL_BOOST**k times longer
MAX_MARGIN = 2.0 ** -2  # the deepest the search aims inside a domain
MAX_STEP = 4.0  # the largest change of one input element in one gradient step


@dataclass(frozen=True)
class InputSearchResult:
    inputs: dict[str, np.ndarray]  # the found inputs, or the seed's first draw when not clean
    clean: bool
    method: str  # what ended the search: "initial" (the first draw, clean or beyond help), "gradient" or "sampling"
    seconds: float  # wall-clock time of the search
    steps: int  # graph evaluations after the first check
    reason: str = ""  # why the inputs are not clean
    culprit: int | None = None  # the index of the node that ``reason`` names (None: an input, or clean)


# ---------------------------------------------------------------- domain rules


def interval(x: Tensor, low: float, high: float, open_bounds: bool, margin: float) -> tuple[Tensor, Tensor]:
    """Elements outside [low, high] (or (low, high)), and ``x`` with them moved ``margin``
    inside the nearer bound."""
    below = x <= low if open_bounds else x < low
    above = x >= high if open_bounds else x > high
    return torch.where(below, low + margin, torch.where(above, high - margin, x)), below | above


def divisor(x: Tensor, margin: float) -> tuple[Tensor, Tensor]:
    """Elements closer to zero than DIVISOR_FLOOR, and ``x`` with them moved beyond it (zero
    moves up)."""
    near = x.abs() < DIVISOR_FLOOR
    target = DIVISOR_FLOOR + margin
    return torch.where(near, torch.where(x < 0, -target, target), x), near


def elementwise(position: int, move: Callable[[Tensor, float], tuple[Tensor, Tensor]]) -> Rule:
    """A rule that holds ``move``'s condition on one float input."""
    def rule(xs: list[Tensor], attrs: Mapping[str, Any], margin: float) -> tuple[list[Tensor], Tensor]:
        if not xs[position].is_floating_point():
            return xs, torch.zeros((), dtype=torch.bool)  # integer divisors are non-zero weights by construction
        moved, outside = move(xs[position], margin)
        return [*xs[:position], moved, *xs[position + 1:]], outside
    return rule


def power(xs: list[Tensor], attrs: Mapping[str, Any], margin: float) -> tuple[list[Tensor], Tensor]:
    """Pow: a non-negative base under a fractional exponent, a divisor-like one under a negative one."""
    base, exponent = xs
    fractional = exponent != exponent.round()
    nonnegative, negative = interval(base, 0.0, math.inf, False, margin)
    away, near = divisor(base, margin)
    reciprocal = (exponent < 0) & ~fractional
    moved = torch.where(fractional, nonnegative, torch.where(reciprocal, away, base))
    return [moved, exponent], (fractional & negative) | (reciprocal & near)


def log_of_sum(xs: list[Tensor], attrs: Mapping[str, Any], margin: float) -> tuple[list[Tensor], Tensor]:
    """ReduceLogSum: every reduced sum positive; a move spreads a sum's shortfall evenly."""
    x = xs[0]
    sums = get_spec("ReduceSum").torch([x], {**attrs, "keepdims": 1})
    moved, outside = interval(sums, 0.0, math.inf, True, margin)
    return [x + (moved - sums) * (sums.numel() / x.numel())], outside


KIND_RULES: dict[DomainKind, Rule] = {DomainKind.POWER_BASE: power, DomainKind.SUMS: log_of_sum}


def domain_rule(spec: OpSpec) -> Rule | None:
    """The rule that holds ``spec.domain``: its kind's, a divisor's, or an interval's."""
    domain = spec.domain
    if domain is None:
        return None
    if domain.kind in KIND_RULES:
        return KIND_RULES[domain.kind]
    if domain.nonzero:
        return elementwise(domain.position, divisor)
    return elementwise(domain.position, lambda x, margin: interval(x, domain.low, domain.high,
                                                                   domain.open_bounds, margin))


RULES: dict[str, Rule] = {spec.name: rule for spec in all_specs() if (rule := domain_rule(spec)) is not None}


FLOAT_MAX = {dtype: float(torch.finfo(getattr(torch, dtype.value)).max) for dtype in FLOATS}


# ---------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class Problem:
    message: str
    reachable: bool  # whether new input values may fix it
    node: int | None = None  # the node at fault; None for a graph input


@dataclass(frozen=True)
class _Step:
    """One node, prepared for evaluation."""

    op: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    output_types: tuple[TensorType, ...]
    lowering: Callable[..., Any]
    attrs: Mapping[str, Any]
    search_attrs: Mapping[str, Any]  # float casts widen to float64 during the search
    rule: Rule | None
    straight_through: bool  # the loss passes its gradient through as the identity's (OpSpec.straight_through)


def search_attributes(op: str, attrs: Mapping[str, Any]) -> Mapping[str, Any]:
    """A node's attributes for the float64 search: a Cast to any float casts to float64."""
    if op == "Cast" and DType(attrs["to"]).is_float:
        return {**attrs, "to": DType.float64.value}
    return attrs


class Evaluator:
    """Runs a graph node by node through the operators' torch lowerings, either at declared
    precision looking for problems (``problems``) or in float64 as a differentiable distance
    from every domain (``loss``)."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.steps = [_Step(node.op, node.inputs, node.outputs, node.output_types, get_spec(node.op).torch,
                            node.attr, search_attributes(node.op, node.attr), RULES.get(node.op),
                            get_spec(node.op).straight_through)
                      for node in graph.nodes]
        self.weights = {w.name: to_torch(w.array) for w in graph.weights}
        self.wide_weights = {name: widen(t) for name, t in self.weights.items()}
        self.reached = self.input_reach()
        self.opaque: set[int] = set()  # nodes whose lowerings cannot differentiate their inputs

    def input_reach(self) -> dict[str, bool]:
        """Whether the values of some graph input flow into each value."""
        reached = {i.name: True for i in self.graph.inputs}
        reached.update((w.name, False) for w in self.graph.weights)
        for step in self.steps:
            blind = get_spec(step.op).type_only
            flows = any(reached[name] for position, name in enumerate(step.inputs) if position not in blind)
            reached.update((name, flows) for name in step.outputs)
        return reached

    def problems(self, inputs: Mapping[str, np.ndarray]) -> Iterator[Problem]:
        """Every node (in graph order) that reads values outside its domain or makes a
        non-finite or too large float, at declared precision; lazily, so that the first
        costs only the nodes up to it."""
        values: dict[str, Tensor] = dict(self.weights)
        for graph_input in self.graph.inputs:
            values[graph_input.name] = tensor = to_torch(inputs[graph_input.name])
            if too_large(tensor, graph_input.type.dtype, CHECK_HEADROOM):
                yield Problem(f"input {graph_input.name} is too large", True)
        for index, step in enumerate(self.steps):  # nothing here needs gradients, so none are recorded
            arguments = [values[name] for name in step.inputs]
            reachable = any(self.reached[name] for name in step.inputs)
            where = f"node {index} ({step.op})" + ("" if reachable else ", which no graph input reaches,")
            if step.rule is not None and step.rule(arguments, step.attrs, 0.0)[1].any():
                yield Problem(f"{where} reads values outside its domain", reachable, index)
            try:
                results = as_results(step.lowering(arguments, step.attrs))
            except Exception as error:  # noqa: BLE001 - e.g. a kernel torch lacks for float16
                yield Problem(f"node {index} ({step.op}) does not run in torch ({type(error).__name__})", False, index)
                return
            for result, output_type in zip(results, step.output_types):
                if too_large(result, output_type.dtype, CHECK_HEADROOM):
                    yield Problem(f"{where} makes NaN, Inf or values within "
                                  f"{CHECK_HEADROOM:g}x of the {output_type.dtype.value} range", reachable, index)
            values.update(zip(step.outputs, results))

    def loss(self, floats: Mapping[str, Tensor], others: Mapping[str, Tensor], margin: float) -> Tensor:
        """In float64: the sum of squared distances of every value outside a domain to
        ``margin`` inside it, plus the squared log-excess of magnitudes over max /
        SEARCH_HEADROOM of their declared dtype. Values outside a domain are moved into it
        before their node runs, so later nodes see finite values; gradients pass that move
        unchanged, and pass straight-through operators (Floor, Sign, ...) as if they were the identity."""
        values: dict[str, Tensor] = {**self.wide_weights, **others, **floats}
        terms = [magnitude_excess(floats[i.name], i.type.dtype) for i in self.graph.inputs
                 if i.name in floats and too_large(floats[i.name].detach(), i.type.dtype, SEARCH_HEADROOM)]
        for index, step in enumerate(self.steps):
            arguments = [values[name] for name in step.inputs]
            if step.rule is not None:
                moved, outside = step.rule(arguments, step.search_attrs, margin)
                if outside.any():
                    terms += [target - x for x, target in zip(arguments, moved) if target is not x]
                    arguments = [x if target is x else x + (target - x).detach() for x, target in zip(arguments, moved)]
            results = [widen(r) for r in as_results(self.differentiable(index, step, arguments))]
            if step.straight_through and arguments[0].requires_grad:
                results = [arguments[0] + (results[0] - arguments[0]).detach()]
            terms += [magnitude_excess(r, t.dtype) for r, t in zip(results, step.output_types)
                      if t.dtype.is_float and too_large(r.detach(), t.dtype, SEARCH_HEADROOM)]
            values.update(zip(step.outputs, results))
        return sum((torch.nan_to_num(t, nan=0.0, posinf=0.0, neginf=0.0).square().sum() for t in terms),
                   torch.zeros((), dtype=torch.float64))

    def differentiable(self, index: int, step: _Step, arguments: list[Tensor]) -> Any:
        """The node's lowering on ``arguments``, with gradients where torch can give them: a
        node whose lowering refuses inputs that need gradients (batch_norm's running mean)
        runs on detached inputs from then on."""
        if index not in self.opaque:
            try:
                return step.lowering(arguments, step.search_attrs)
            except RuntimeError:
                self.opaque.add(index)
        return step.lowering([x.detach() for x in arguments], step.search_attrs)


def widen(tensor: Tensor) -> Tensor:
    return tensor.double() if tensor.is_floating_point() else tensor


def too_large(tensor: Tensor, dtype: DType, headroom: float) -> bool:
    """Whether a float tensor holds NaN, Inf or a magnitude above its dtype's max / headroom."""
    return dtype.is_float and tensor.numel() > 0 and not tensor.abs().max().item() <= FLOAT_MAX[dtype] / headroom


def magnitude_excess(tensor: Tensor, dtype: DType) -> Tensor:
    """How far (in natural-log units) each element's magnitude exceeds max / SEARCH_HEADROOM."""
    return (torch.log1p(tensor.abs()) - math.log(FLOAT_MAX[dtype] / SEARCH_HEADROOM)).clamp(min=0)


# ---------------------------------------------------------------- search


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Tiny tensors gain nothing from intra-op threads and lose much to their start-up."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def redraw(graph: Graph, generator: np.random.Generator, attempt: int) -> dict[str, np.ndarray]:
    """Fresh inputs for sampling attempt ``attempt`` (from 1), in turn positive, negative,
    integral (floats too: Pow of a negative base needs them) and symmetric; the next four
    are REDRAW_GROWTH times wider, for inputs that flat stretches (Clip, HardSigmoid) hide
    from gradients."""
    scale = REDRAW_GROWTH ** ((attempt - 1) // len(REDRAW_STYLES))
    style = REDRAW_STYLES[(attempt - 1) % len(REDRAW_STYLES)]
    inputs = {}
    for graph_input in graph.inputs:
        shape, dtype = graph_input.type.shape, graph_input.type.dtype
        if dtype is DType.bool:
            array = generator.random(shape) < 0.5
        elif dtype.is_int:
            low, high = INTEGER_RANGES[dtype]
            low, high = {"positive": (1, high), "negative": (low, -1 if low < 0 else high)}.get(style, (low, high))
            array = generator.integers(low, high + 1, size=shape)
        elif style == "integral":
            array = generator.integers(-2 * scale, 2 * scale + 1, size=shape)
        else:
            low, high = {"positive": (0.125, 2.0), "negative": (-2.0, -0.125)}.get(style, (-2.0, 2.0))
            array = generator.uniform(low * scale, high * scale, size=shape)
        inputs[graph_input.name] = np.asarray(array).astype(dtype.numpy)
    return inputs


class _Search:
    """One search's state: its graph evaluator, random draws and remaining work."""

    def __init__(self, graph: Graph, seed: int, budget_seconds: float) -> None:
        start = time.thread_time()  # CPU time: other processes on a busy machine do not eat the budget
        self.graph = graph
        self.evaluator = Evaluator(graph)
        self.deadline = start + budget_seconds
        self.previous, self.slowest = start, 0.0  # when spend was last called; the longest gap between calls
        self.generator = np.random.default_rng((seed, 1))  # a stream apart from random_inputs(graph, seed)
        self.steps = 0
        self.problem: Problem | None = None  # the latest problem found

    def spend(self) -> bool:
        """Count one graph evaluation; False once the work bound is spent or the time budget
        would be overrun by a step as slow as the slowest so far."""
        now = time.thread_time()
        self.slowest = max(self.slowest, now - self.previous)
        self.previous = now
        if (self.steps + 1) * len(self.graph.nodes) > WORK or now + self.slowest >= self.deadline:
            return False
        self.steps += 1
        return True

    def check(self, inputs: Mapping[str, np.ndarray]) -> bool:
        """Whether ``inputs`` are clean; remembers the problem when they are not."""
        problem = next(self.evaluator.problems(inputs), None)
        if problem is None:
            return True
        self.problem = problem
        return False

    def descend(self, inputs: dict[str, np.ndarray], steps: int) -> dict[str, np.ndarray] | None:
        """Clean inputs found by up to ``steps`` gradient steps on the float inputs, or None.
        Inputs are checked at declared precision only once float64 puts every value inside its
        domain, so that a value that only rounding moves onto a bound (float32 sigmoid(19) is
        1, acosh's bound) is never taken as clean."""
        float_inputs = [i for i in self.graph.inputs if i.type.dtype.is_float]
        floats = {i.name: torch.tensor(inputs[i.name].astype(np.float64), requires_grad=True) for i in float_inputs}
        others = {i.name: to_torch(inputs[i.name]) for i in self.graph.inputs if i.name not in floats}
        margin, best, stalled = SEARCH_MARGIN, math.inf, 0
        for _ in range(steps if floats else 0):
            if not self.spend():
                break
            loss = self.evaluator.loss(floats, others, margin)
            if loss.item() == 0.0:
                candidate = {**inputs, **{i.name: floats[i.name].detach().numpy().astype(i.type.dtype.numpy)
                                          for i in float_inputs}}
                if not self.spend():
                    break
                if self.check(candidate):
                    return candidate
                margin *= 4  # declared precision undid what float64 reached: aim deeper inside
                if margin > MAX_MARGIN:
                    break
                continue
            if not loss.requires_grad:
                break  # what is wrong does not depend on the float inputs
            best, stalled = (loss.item(), 0) if loss.item() < PROGRESS * best else (best, stalled + 1)
            if stalled >= PATIENCE:
                break
            gradients = [torch.zeros_like(x) if g is None else torch.nan_to_num(g, nan=0.0, posinf=0.0, neginf=0.0)
                         for x, g in zip(floats.values(), torch.autograd.grad(loss, list(floats.values()),
                                                                               allow_unused=True))]
            norm = sum(g.square().sum() for g in gradients).item()
            if norm == 0.0:
                break
            # A Polyak step: for a loss sum(r**2) with linear residuals r, 2 * loss / norm zeroes
            # them; OVERSHOOT lands inside the bounds rather than on them, and each step without
            # progress is STALL_BOOST times longer, to cross flat stretches (Round, ReduceMin).
            size = 2 * OVERSHOOT * loss.item() / norm * STALL_BOOST ** stalled
            with torch.no_grad():
                for x, g in zip(floats.values(), gradients):
                    x -= (g * size).clamp(-MAX_STEP, MAX_STEP)
        return None


def search_inputs(graph: Graph, seed: int, budget_seconds: float = 0.1) -> InputSearchResult:
    """Inputs for ``graph`` under which no value is NaN or Inf or within CHECK_HEADROOM of its
    dtype's range and every operator stays inside its domain (see the module docstring)."""
    start = time.perf_counter()
    with single_thread():
        search = _Search(graph, seed, budget_seconds)
        initial = random_inputs(graph, seed)
        problems = list(search.evaluator.problems(initial))

        def result(inputs: dict[str, np.ndarray], method: str, problem: Problem | None = None,
                   cause: str = "") -> InputSearchResult:
            reason = problem.message + cause if problem else ""
            return InputSearchResult(inputs, problem is None, method, time.perf_counter() - start, search.steps,
                                     reason, problem.node if problem else None)

        if not problems:
            return result(initial, "initial")
        fixed = [p for p in problems if not p.reachable]
        if fixed:
            return result(initial, "initial", fixed[0])
        search.problem = problems[0]
        found = search.descend(initial, INITIAL_GRADIENT_STEPS)
        if found is not None:
            return result(found, "gradient")
        for attempt in range(1, DRAWS + 1):
            if not search.spend():
                break
            inputs = redraw(graph, search.generator, attempt)
            found = inputs if search.check(inputs) else search.descend(inputs, GRADIENT_STEPS_PER_DRAW)
            if found is not None:
                return result(found, "sampling")
        cause = ("the time budget ran out (a faster machine may find clean inputs)"
                 if time.thread_time() + search.slowest >= search.deadline else "none found within the work bound")
        return result(initial, "sampling", search.problem, f"; {cause}")
