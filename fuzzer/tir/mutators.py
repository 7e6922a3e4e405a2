"""IR mutators: small named rewrites of one site of a PrimFunc, chosen at random.

Each mutator is a ``rewrite(node, context, rng)`` function registered once with
``@mutator(site)``, where ``site(node, context)`` says which nodes it may rewrite. A
traversal with ``tvm_ffi.structural_mutate`` counts the sites, and a second identical
traversal rewrites the one drawn, so a mutation is a pure function of the IR and the
random seed. The traversal tracks what makes a mutant a *valid program* rather than
a program the compiler may legitimately miscompile:

- only value expressions of stores are rewritten, never indices, extents, bindings,
  divisors or shift amounts (no division by zero, no shifts past the bit width);
- inside a block, no expression that loads a buffer the block writes is rewritten;
  only a whole reduction block may switch to another commutative reducer;
- loads read new positions only through ``floormod(e, extent)``;
- a store wrapped in a condition keeps writing the same element in the else branch,
  and loops shrink only when they write parameters (which start initialized), so no
  intermediate buffer is read before it is written;
- loops become parallel or vectorized only when every block under them binds the loop
  to data-parallel iterators; integers never get new multiplications (no overflow).

After a mutation, the read/write regions of every block are recomputed.
``check_valid`` is the filter a mutant must pass before it is built.
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import tvm
import tvm_ffi
from tvm import ir, s_tir, tirx
from tvm.tirx.expr import BinaryOpExpr

from fuzzer.tir.case import ANY_MUTATOR

FLOAT_DTYPES = frozenset({"float16", "float32", "float64", "bfloat16"})
WIDER_DTYPE = {"float16": "float32", "float32": "float64", "int8": "int32", "int16": "int32",
               "int32": "int64", "uint8": "int32"}
DATA_PARALLEL = 0  # IterVar.iter_type of a spatial block iterator
MAX_VECTOR_EXTENT = 16


class NotApplicable(Exception):
    """The mutator finds no site in this function."""


class InvalidMutant(Exception):
    """The mutant fails the well-formedness or bounds check: a program error, not a compiler bug."""


# ---------------------------------------------------------------------------- traversal


@dataclass(frozen=True)
class Context:
    """Where the traversal is. Buffers and variables are keyed by object handle."""

    region: str = "statement"  # "statement", "value" (a store's value) or "frozen"
    parameters: frozenset[int] = frozenset()
    written: frozenset[int] = frozenset()  # buffers the innermost block writes
    scope: tuple[tuple[Any, int, int], ...] = ()  # (variable, min, extent) usable in indices
    block_allocations: list | None = None  # new buffers for the innermost block to own; None outside blocks
    under_parallel: bool = False


def key(node: Any) -> int:
    return node.__chandle__()


def dtype_of(expression: Any) -> str:
    return str(expression.ty.dtype)


def _constant_range(node_range_min: Any, extent: Any) -> tuple[int, int] | None:
    """(min, extent) of a range with constant bounds that is not empty, else None."""
    if isinstance(node_range_min, tirx.IntImm) and isinstance(extent, tirx.IntImm) and extent.value > 0:
        return int(node_range_min.value), int(extent.value)
    return None


_DIVISION_LIKE = (tirx.Div, tirx.Mod, tirx.FloorDiv, tirx.FloorMod, tirx.LShift, tirx.RShift)
_OPAQUE = (tirx.AssertStmt, tirx.Bind, tirx.AllocBuffer, tirx.DeclBuffer, tirx.AttrStmt,
           tirx.Evaluate, tirx.While, tirx.Ramp, tirx.Broadcast, tirx.Shuffle, tirx.Let, ir.TensorLoad)
PURE_CALLS = frozenset({
    "tirx.exp", "tirx.exp2", "tirx.exp10", "tirx.log", "tirx.log2", "tirx.log10", "tirx.log1p",
    "tirx.sqrt", "tirx.rsqrt", "tirx.sin", "tirx.cos", "tirx.tan", "tirx.sinh", "tirx.cosh",
    "tirx.tanh", "tirx.asin", "tirx.acos", "tirx.atan", "tirx.asinh", "tirx.acosh", "tirx.atanh",
    "tirx.erf", "tirx.sigmoid", "tirx.floor", "tirx.ceil", "tirx.round", "tirx.trunc",
    "tirx.nearbyint", "tirx.fabs", "tirx.pow", "tirx.atan2", "tirx.fmod", "tirx.hypot",
    "tirx.copysign", "tirx.nextafter", "tirx.isnan", "prim.if_then_else", "prim.likely",
})
IF_THEN_ELSE = "prim.if_then_else"


class Traversal:
    """One pass of ``structural_mutate`` over a function body that tracks a Context.

    Counts the nodes for which ``is_site`` holds; when ``target`` is that count,
    replaces the node with ``rewrite(node, context)`` instead of descending into it.
    """

    def __init__(self, function: tirx.PrimFunc, is_site: Callable[[Any, Context], bool],
                 rewrite: Callable[[Any, Context], Any] | None = None, target: int = -1) -> None:
        self.is_site, self.rewrite, self.target = is_site, rewrite, target
        self.count = 0
        self.context = Context(parameters=frozenset(key(p) for p in function.params))
        self.handlers = {
            s_tir.SBlockRealize: self._realize, s_tir.SBlock: self._block, tirx.For: self._loop,
            tirx.BufferStore: self._store, tirx.IfThenElse: self._if, ir.Call: self._call,
            **{kind: self._division for kind in _DIVISION_LIKE},
            **{kind: self._keep for kind in _OPAQUE},
        }

    def run(self, statement: Any) -> Any:
        return tvm_ffi.structural_mutate(statement, self._visit)

    @contextlib.contextmanager
    def entering(self, **changes: Any) -> Iterator[None]:
        saved = self.context
        self.context = dataclasses.replace(saved, **changes)
        try:
            yield
        finally:
            self.context = saved

    def _visit(self, node: Any, mutator: Any) -> Any:
        if isinstance(node, (tirx.Stmt, ir.Expr)) and self.context.region != "frozen" and \
                self.is_site(node, self.context):
            index, self.count = self.count, self.count + 1
            if index == self.target:
                return self.rewrite(node, self.context)
        handler = self.handlers.get(type(node))
        return handler(node, mutator) if handler else mutator.default_mutate(node)

    def _keep(self, node: Any, mutator: Any) -> Any:
        return node

    def _realize(self, realize: Any, mutator: Any) -> Any:
        block = mutator.mutate(realize.block)
        if block.same_as(realize.block):
            return realize
        return s_tir.SBlockRealize(realize.iter_values, realize.predicate, block)

    def _block(self, block: Any, mutator: Any) -> Any:
        scope = tuple((iv.var, *bounds) for iv in block.iter_vars
                      if (bounds := _constant_range(iv.dom.min, iv.dom.extent)))
        # Scratch buffers of the block carry values of what it writes: they count as written.
        written = frozenset(key(buffer) for buffer in [*(r.source for r in block.writes), *block.alloc_buffers])
        allocations: list[Any] = []
        with self.entering(written=written, scope=scope, block_allocations=allocations):
            body = mutator.mutate(block.body)
        if body.same_as(block.body):
            return block
        return s_tir.SBlock(block.iter_vars, block.reads, block.writes, block.name_hint, body, block.init,
                            [*block.alloc_buffers, *allocations], block.match_buffers, block.annotations)

    def _loop(self, loop: Any, mutator: Any) -> Any:
        bounds = _constant_range(loop.min, loop.extent)
        scope = self.context.scope + ((loop.loop_var, *bounds),) if bounds else self.context.scope
        with self.entering(scope=scope, under_parallel=self.context.under_parallel or
                           loop.kind == tirx.ForKind.PARALLEL):
            body = mutator.mutate(loop.body)
        if body.same_as(loop.body):
            return loop
        return tirx.For(loop.loop_var, loop.min, loop.extent, loop.kind, body, loop.thread_binding,
                        loop.annotations, loop.step)

    def _store(self, store: Any, mutator: Any) -> Any:
        with self.entering(region="value"):
            value = mutator.mutate(store.value)
        return store if value.same_as(store.value) else tirx.BufferStore(store.buffer, value, store.indices)

    def _if(self, statement: Any, mutator: Any) -> Any:
        with self.entering(region="value"):
            condition = mutator.mutate(statement.condition)
        then_case = mutator.mutate(statement.then_case)
        else_case = mutator.mutate(statement.else_case) if statement.else_case is not None else None
        return tirx.IfThenElse(condition, then_case, else_case)

    def _call(self, call: Any, mutator: Any) -> Any:
        return mutator.default_mutate(call) if getattr(call.op, "name", "") in PURE_CALLS else call

    def _division(self, node: Any, mutator: Any) -> Any:
        left = mutator.mutate(node.a)
        return node if left.same_as(node.a) else type(node)(left, node.b)


# ---------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class Mutator:
    name: str
    is_site: Callable[[Any, Context], bool]
    rewrite: Callable[[Any, Context, random.Random], Any]


MUTATORS: dict[str, Mutator] = {}


def mutator(is_site: Callable[[Any, Context], bool]) -> Callable:
    """Register ``rewrite`` under its function name, with the predicate naming its sites."""

    def register(rewrite: Callable[[Any, Context, random.Random], Any]) -> Callable:
        MUTATORS[rewrite.__name__] = Mutator(rewrite.__name__, is_site, rewrite)
        return rewrite

    return register


def count_sites(function: tirx.PrimFunc, name: str) -> int:
    traversal = Traversal(function, MUTATORS[name].is_site)
    traversal.run(function.body)
    return traversal.count


def mutate(function: tirx.PrimFunc, name: str, rng: random.Random) -> tirx.PrimFunc:
    """``function`` with one random site rewritten by mutator ``name``."""
    sites = count_sites(function, name)
    if sites == 0:
        raise NotApplicable(f"{name}: no site")
    chosen = MUTATORS[name]
    traversal = Traversal(function, chosen.is_site, lambda node, context: chosen.rewrite(node, context, rng),
                          rng.randrange(sites))
    return refresh_access_regions(function.with_body(traversal.run(function.body)))


def apply_mutations(function: tirx.PrimFunc, steps: Sequence[tuple[str, int]]
                    ) -> tuple[tirx.PrimFunc, list[tuple[str, int]]]:
    """Apply ``(mutator, seed)`` steps in order; the mutant and the steps that changed it.

    A step named ``ANY_MUTATOR`` uses the mutator its seed picks; a step without a site
    changes nothing and is left out of the steps returned.
    """
    applied = []
    for name, seed in steps:
        if name == ANY_MUTATOR:
            name = random.Random(seed).choice(sorted(MUTATORS))
        try:
            function = mutate(function, name, random.Random(seed))
        except NotApplicable:
            continue
        applied.append((name, seed))
    return function, applied


def check_valid(function: tirx.PrimFunc) -> None:
    """Raise InvalidMutant unless the function is well formed and provably in bounds."""
    try:
        s_tir.analysis.verify_well_formed(function)
        s_tir.analysis.OOBChecker()(tvm.IRModule({"main": function}))
    except Exception as error:  # noqa: BLE001 - both checks report by raising
        raise InvalidMutant(f"{type(error).__name__}: {str(error).strip().splitlines()[0][:300]}") from None


def refresh_access_regions(function: tirx.PrimFunc) -> tirx.PrimFunc:
    """Recompute the read and write regions of every block from its body."""
    buffers = {parameter: parameter for parameter in function.params}

    def collect(block: Any) -> None:
        buffers.update({buffer: buffer for buffer in block.alloc_buffers})

    tvm_ffi.structural_walk(function.body, (s_tir.SBlock, collect))

    def refresh(block: Any) -> Any:
        if not block.iter_vars and block.name_hint == "root":
            return block
        local = {key(buffer) for buffer in block.alloc_buffers}
        reads, writes = ([region for region in regions if key(region.source) not in local]
                         for regions in s_tir.analysis.get_sblock_read_write_region(block, buffers))
        return s_tir.SBlock(block.iter_vars, reads, writes, block.name_hint, block.body, block.init,
                            block.alloc_buffers, block.match_buffers, block.annotations)

    return function.with_body(tvm_ffi.structural_map(function.body, (s_tir.SBlock, refresh)))


# ---------------------------------------------------------------------------- helpers


def loads_written(expression: Any, context: Context) -> bool:
    """Whether ``expression`` loads a buffer that the enclosing block writes."""
    found = []

    def check(load: Any) -> None:
        if key(load.source) in context.written:
            found.append(load)

    tvm_ffi.structural_walk(expression, (ir.TensorLoad, check))
    return bool(found)


def free_loads(expression: Any, context: Context) -> list[Any]:
    """Loads in ``expression`` of buffers the enclosing block does not write, outside guards.

    A load under ``if_then_else`` or ``Select`` may be in bounds only where its guard
    holds (padding reads ``x[i - 1]`` under ``i >= 1``): it is never copied elsewhere.
    """
    loads = []

    def visit(node: Any) -> Any:
        if isinstance(node, tirx.Select) or getattr(getattr(node, "op", None), "name", "") == IF_THEN_ELSE:
            return tvm_ffi.WalkResult.SKIP
        if isinstance(node, ir.TensorLoad) and key(node.source) not in context.written:
            loads.append(node)
        return None

    tvm_ffi.structural_walk(expression, visit, order="pre")
    return loads


def constant(value: float, dtype: str) -> Any:
    return tirx.const(value, dtype)


def perturb(expression: Any, rng: random.Random) -> Any:
    """A different value of the same dtype, computed from ``expression`` or not."""
    dtype = dtype_of(expression)
    if dtype == "bool":
        return tirx.Not(expression)
    if dtype in FLOAT_DTYPES:
        return rng.choice((lambda: expression * constant(2, dtype), lambda: expression + constant(1, dtype),
                           lambda: constant(round(rng.uniform(-2, 2), 3), dtype)))()
    return rng.choice((lambda: expression + constant(1, dtype), lambda: constant(rng.randint(0, 3), dtype)))()


def random_condition(context: Context, value: Any, rng: random.Random) -> Any:
    """A boolean over an in-scope index or a value the statement already loads."""
    loads = free_loads(value, context) if value is not None else []
    if loads and (not context.scope or rng.random() < 0.4):
        load = rng.choice(loads)
        return tirx.GT(load, constant(0, dtype_of(load))) if dtype_of(load) != "bool" else load
    if not context.scope:
        return constant(rng.random() < 0.5, "bool")
    variable, low, extent = rng.choice(context.scope)
    dtype = dtype_of(variable)
    pivot = constant(low + rng.randrange(extent), dtype)
    return rng.choice((lambda: tirx.LT(variable, pivot), lambda: tirx.GE(variable, pivot),
                       lambda: tirx.EQ(tirx.FloorMod(variable, constant(2, dtype)), constant(0, dtype))))()


def is_statement_site(node: Any, context: Context) -> bool:
    return isinstance(node, tirx.BufferStore) and context.region == "statement" and \
        dtype_of(node.value) != "handle"


def is_value_site(node: Any, context: Context) -> bool:
    """A value expression that holds no load of a buffer its block writes."""
    return context.region == "value" and isinstance(node, ir.Expr) and not isinstance(node, tirx.Var) \
        and dtype_of(node) != "handle" and not loads_written(node, context)


def can_vary(store: Any, context: Context) -> bool:
    """Whether ``alternative_value`` can give ``store`` another value.

    A value that reads what its block writes must be a reduction update ``x op y`` with
    only ``x`` reading it, so that the alternative is the same reduction of another ``y``.
    """
    value = store.value
    if not loads_written(value, context):
        return True
    return type(value) in REDUCERS and loads_written(value.a, context) != loads_written(value.b, context)


def alternative_value(store: Any, context: Context, rng: random.Random) -> Any:
    """Another value for ``store`` (see ``can_vary``)."""
    value = store.value
    if not loads_written(value, context):
        return perturb(value, rng)
    if loads_written(value.a, context):
        return type(value)(value.a, perturb(value.b, rng))
    return type(value)(perturb(value.a, rng), value.b)


# ---------------------------------------------------------------------------- mutators


@mutator(lambda node, context: is_value_site(node, context) and isinstance(node, (tirx.IntImm, tirx.FloatImm)))
def change_constant(node: Any, context: Context, rng: random.Random) -> Any:
    dtype, value = dtype_of(node), node.value
    if dtype == "bool":
        return constant(not value, dtype)
    if dtype in FLOAT_DTYPES:
        choices = [0.0, 1.0, -1.0, 0.5, 2.0, -value, value * 2, value + 1, round(rng.uniform(-4, 4), 3)]
    else:
        low = 0 if dtype.startswith("u") else -4
        choices = [c for c in (0, 1, -1, 2, value + 1, value - 1, -value) if low <= c <= 8]
    choices = [c for c in choices if c != value] or [value + 1]
    return constant(rng.choice(choices), dtype)


ARITHMETIC = (tirx.Add, tirx.Sub, tirx.Mul, tirx.Div, tirx.Min, tirx.Max)
OPERATOR_GROUPS = (ARITHMETIC, (tirx.LT, tirx.LE, tirx.GT, tirx.GE, tirx.EQ, tirx.NE), (tirx.And, tirx.Or),
                   (tirx.BitwiseAnd, tirx.BitwiseOr, tirx.BitwiseXor))
REDUCERS = (tirx.Add, tirx.Mul, tirx.Min, tirx.Max)  # commutative and associative


def without_overflow_or_division(group: tuple[type, ...], node: Any, context: Context) -> tuple[type, ...]:
    if dtype_of(node) not in FLOAT_DTYPES:  # no integer division, no new overflow
        return tuple(g for g in group if g not in (tirx.Div, tirx.Mul))
    if not free_loads(node.b, context):  # TVM's constant folder rejects x / 0.0
        return tuple(g for g in group if g is not tirx.Div)
    return group


def operator_choices(node: Any, context: Context) -> tuple[type, ...]:
    """Operators that may replace binary ``node`` in its context (empty: not a site)."""
    if not is_value_site(node, context) or not isinstance(node, BinaryOpExpr):
        return ()
    group = next((g for g in OPERATOR_GROUPS if type(node) in g), ())
    if group is ARITHMETIC:
        group = without_overflow_or_division(group, node, context)
    if group and group[0] is tirx.BitwiseAnd and dtype_of(node) in FLOAT_DTYPES:
        return ()
    return tuple(g for g in group if g is not type(node))


@mutator(lambda node, context: bool(operator_choices(node, context)))
def swap_binary_operator(node: Any, context: Context, rng: random.Random) -> Any:
    return rng.choice(operator_choices(node, context))(node.a, node.b)


def reducer_choices(block: Any, context: Context) -> tuple[type, ...]:
    """Other reducers for a block whose body is the single update ``x = x op y``."""
    if not isinstance(block, s_tir.SBlock) or block.init is None or not isinstance(block.body, tirx.BufferStore):
        return ()
    update = block.body.value
    if type(update) not in REDUCERS:
        return ()
    return tuple(g for g in without_overflow_or_division(REDUCERS, update, context) if g is not type(update))


@mutator(lambda node, context: bool(reducer_choices(node, context)))
def swap_reducer(node: Any, context: Context, rng: random.Random) -> Any:
    """Make a reduction block reduce with another commutative operator; its init stays."""
    store = node.body
    update = rng.choice(reducer_choices(node, context))(store.value.a, store.value.b)
    return s_tir.SBlock(node.iter_vars, node.reads, node.writes, node.name_hint,
                        tirx.BufferStore(store.buffer, update, store.indices), node.init,
                        node.alloc_buffers, node.match_buffers, node.annotations)


def registered(names: Sequence[str]) -> tuple[str, ...]:
    """The operators among ``names`` that this TVM build registers."""
    found = []
    for name in names:
        with contextlib.suppress(Exception):
            found.append(ir.Op.get(name).name)
    return tuple(found)


UNARY_INTRINSICS = registered(("tirx.exp", "tirx.exp2", "tirx.log", "tirx.log2", "tirx.log1p", "tirx.sqrt",
                               "tirx.sin", "tirx.cos", "tirx.tanh", "tirx.sigmoid", "tirx.erf", "tirx.floor",
                               "tirx.ceil", "tirx.round", "tirx.trunc", "tirx.atan", "tirx.asinh", "tirx.sinh",
                               "tirx.cosh", "tirx.fabs"))
BINARY_INTRINSICS = registered(("tirx.pow", "tirx.atan2", "tirx.hypot", "tirx.copysign", "tirx.nextafter"))
# tirx.fmod is registered but has no LLVM lowering in TVM 0.27: it is left out.


def intrinsic_choices(node: Any) -> tuple[str, ...]:
    name = getattr(getattr(node, "op", None), "name", "")
    for group in (UNARY_INTRINSICS, BINARY_INTRINSICS):
        if name in group:
            return tuple(other for other in group if other != name)
    return ()


@mutator(lambda node, context: is_value_site(node, context) and isinstance(node, ir.Call) and
         dtype_of(node) in ("float32", "float64") and bool(intrinsic_choices(node)))
def swap_intrinsic(node: Any, context: Context, rng: random.Random) -> Any:
    return tirx.call_intrin(dtype_of(node), rng.choice(intrinsic_choices(node)), *node.args)


def subtree_nodes(statement: Any, kind: type | tuple[type, ...]) -> list[Any]:
    found = []
    tvm_ffi.structural_walk(statement, (kind, found.append))
    return found


def is_data_parallel(loop: Any) -> bool:
    """Every store under ``loop`` is in a block that binds the loop only to spatial iterators."""
    realizes = subtree_nodes(loop.body, s_tir.SBlockRealize)
    if not realizes:
        return False
    stores_in_blocks = sum(len(subtree_nodes(r.block.body, tirx.BufferStore)) for r in realizes)
    if stores_in_blocks != len(subtree_nodes(loop.body, tirx.BufferStore)):
        return False  # a store outside every block: no iterator says it is independent
    for realize in realizes:
        for iter_var, binding in zip(realize.block.iter_vars, realize.iter_values):
            uses = subtree_nodes(binding, tirx.Var)
            if any(use.same_as(loop.loop_var) for use in uses) and iter_var.iter_type != DATA_PARALLEL:
                return False
    return True


def loop_kind_choices(loop: Any, context: Context) -> list[int]:
    if not isinstance(loop, tirx.For) or context.region != "statement" or loop.thread_binding is not None:
        return []
    kinds = [tirx.ForKind.SERIAL, tirx.ForKind.UNROLLED]
    if is_data_parallel(loop):
        if not context.under_parallel and not any(inner.kind == tirx.ForKind.PARALLEL
                                                  for inner in subtree_nodes(loop.body, tirx.For)):
            kinds.append(tirx.ForKind.PARALLEL)
        bounds = _constant_range(loop.min, loop.extent)
        if bounds and bounds[1] <= MAX_VECTOR_EXTENT and not subtree_nodes(loop.body, tirx.For):
            kinds.append(tirx.ForKind.VECTORIZED)
    return [kind for kind in kinds if kind != loop.kind]


@mutator(lambda node, context: bool(loop_kind_choices(node, context)))
def change_loop_kind(node: Any, context: Context, rng: random.Random) -> Any:
    return tirx.For(node.loop_var, node.min, node.extent, rng.choice(loop_kind_choices(node, context)),
                    node.body, node.thread_binding, node.annotations, node.step)


def writes_only_parameters(statement: Any, context: Context) -> bool:
    stored = [store.buffer for store in subtree_nodes(statement, tirx.BufferStore)]
    stored += [region.source for block in subtree_nodes(statement, s_tir.SBlock) for region in block.writes]
    return all(key(buffer) in context.parameters for buffer in stored)


def is_extent_site(node: Any, context: Context) -> bool:
    return isinstance(node, tirx.For) and context.region == "statement" and node.thread_binding is None \
        and node.kind in (tirx.ForKind.SERIAL, tirx.ForKind.UNROLLED) \
        and _constant_range(node.min, node.extent) is not None


def guard_loop_body(loop: Any, bound: Any) -> Any:
    """The body of ``loop`` running only while its variable is below ``bound``."""
    guard = tirx.LT(loop.loop_var, bound)
    if not subtree_nodes(loop.body, s_tir.SBlockRealize):
        return tirx.IfThenElse(guard, loop.body, None)

    def restrict(realize: Any) -> Any:
        bound_here = any(use.same_as(loop.loop_var) for value in realize.iter_values
                         for use in subtree_nodes(value, tirx.Var))
        if not bound_here:
            return realize
        return s_tir.SBlockRealize(realize.iter_values, tirx.And(realize.predicate, guard), realize.block)

    return tvm_ffi.structural_map(loop.body, (s_tir.SBlockRealize, restrict))


@mutator(is_extent_site)
def change_loop_extent(node: Any, context: Context, rng: random.Random) -> Any:
    """Grow a loop behind a guard, or shrink a block-free loop whose every write goes to a parameter.

    Loops around blocks never shrink: schedule primitives regenerate loops over a block's
    whole iteration domain, as S-TIR allows them to.
    """
    extent = int(node.extent.value)
    grown = rng.choice((extent + 1, extent + 2, 2 * extent))
    choices = [grown]
    if extent > 1 and writes_only_parameters(node.body, context) and \
            not subtree_nodes(node.body, s_tir.SBlockRealize):
        choices.append(rng.randint(1, extent - 1))
    new_extent = rng.choice(choices)
    body = guard_loop_body(node, node.extent) if new_extent > extent else node.body
    return tirx.For(node.loop_var, node.min, constant(new_extent, dtype_of(node.extent)), node.kind, body,
                    node.thread_binding, node.annotations, node.step)


def index_expression(context: Context, extent: int, dtype: str, rng: random.Random) -> Any:
    """An index in [0, extent): ``floormod`` of an expression over in-scope variables."""
    if not context.scope or rng.random() < 0.15:
        return constant(rng.randrange(extent), dtype)

    def variable() -> Any:
        chosen = rng.choice(context.scope)[0]
        return chosen if dtype_of(chosen) == dtype else tirx.Cast(dtype, chosen)

    c = constant(rng.randint(1, 3), dtype)
    expression = rng.choice((lambda: variable() + c, lambda: c - variable(), lambda: variable() * c + variable(),
                             lambda: variable() + variable()))()
    return tirx.FloorMod(expression, constant(extent, dtype))


@mutator(lambda node, context: is_value_site(node, context) and isinstance(node, ir.TensorLoad) and
         len(node.indices) > 0 and all(isinstance(e, tirx.IntImm) and e.value > 0 for e in node.source.ty.shape))
def substitute_index(node: Any, context: Context, rng: random.Random) -> Any:
    indices = list(node.indices)
    dimension = rng.randrange(len(indices))
    extent = int(node.source.ty.shape[dimension].value)
    indices[dimension] = index_expression(context, extent, dtype_of(indices[dimension]), rng)
    return tirx.BufferLoad(node.source, indices)


@mutator(lambda node, context: is_statement_site(node, context) and can_vary(node, context))
def wrap_in_condition(node: Any, context: Context, rng: random.Random) -> Any:
    """``if c: store else: store'`` where both branches write the same element."""
    otherwise = tirx.BufferStore(node.buffer, alternative_value(node, context, rng), node.indices)
    branches = (node, otherwise) if rng.random() < 0.5 else (otherwise, node)
    return tirx.IfThenElse(random_condition(context, node.value, rng), *branches)


@mutator(lambda node, context: is_statement_site(node, context) and dtype_of(node.value) != "bool")
def wrap_in_allocation(node: Any, context: Context, rng: random.Random) -> Any:
    """Route the stored value through a fresh one-element local buffer."""
    dtype = dtype_of(node.value)
    scratch = tirx.decl_buffer((1,), dtype, name=f"scratch_{rng.randrange(10**6)}", scope="local", layout=None)
    zero = constant(0, "int32")
    statements = [tirx.BufferStore(scratch, node.value, [zero]),
                  tirx.BufferStore(node.buffer, tirx.BufferLoad(scratch, [zero]), node.indices)]
    if context.block_allocations is not None:
        context.block_allocations.append(scratch)
        return tirx.SeqStmt(statements)
    return tirx.SeqStmt([tirx.AllocBuffer(scratch), *statements])


@mutator(is_statement_site)
def wrap_in_assert(node: Any, context: Context, rng: random.Random) -> Any:
    """Precede the store with an assertion that always holds."""
    if context.scope:
        variable, low, extent = rng.choice(context.scope)
        dtype = dtype_of(variable)
        condition = tirx.And(tirx.GE(variable, constant(low, dtype)), tirx.LT(variable, constant(low + extent, dtype)))
    else:
        condition = constant(True, "bool")
    # The FFI constructor takes (condition, kind, message); the Python wrapper names them in another order.
    check = tirx._ffi_api.AssertStmt(condition, ir.StringImm("RuntimeError"),
                                     [ir.StringImm("tcfuzz: always true")], None)
    return tirx.SeqStmt([check, node])


@mutator(is_statement_site)
def wrap_in_loop(node: Any, context: Context, rng: random.Random) -> Any:
    """Repeat the store in a new serial or unrolled loop of one to three iterations."""
    kind = rng.choice((tirx.ForKind.SERIAL, tirx.ForKind.UNROLLED))
    return tirx.For(tirx.Var(f"repeat_{rng.randrange(10**6)}", "int32"), constant(0, "int32"),
                    constant(rng.randint(1, 3), "int32"), kind, node)


@mutator(is_value_site)
def wrap_in_select(node: Any, context: Context, rng: random.Random) -> Any:
    other = perturb(node, rng)
    branches = (node, other) if rng.random() < 0.5 else (other, node)
    return tirx.Select(random_condition(context, node, rng), *branches)


@mutator(lambda node, context: is_value_site(node, context) and dtype_of(node) in WIDER_DTYPE)
def wrap_in_cast(node: Any, context: Context, rng: random.Random) -> Any:
    """Widen and narrow back: the value is unchanged."""
    dtype = dtype_of(node)
    return tirx.Cast(dtype, tirx.Cast(WIDER_DTYPE[dtype], node))
