"""Random ``tvm.s_tir.Schedule`` traces, recorded as replayable JSON.

A trace is a list of steps such as ``{"primitive": "split", "block": "C", "loop": 1,
"factors": [null, 4]}``: blocks are named, loops are indices into
``get_loops(block)`` at the time of the step. Each primitive is a ``propose`` function
(a random step for the current schedule, or None) and an ``apply`` function (performs
a step); generation keeps only the steps that TVM accepts, so ``replay`` of a recorded
trace performs exactly the same transformations again.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import tvm_ffi
from tvm import s_tir, tirx
from tvm.s_tir import Schedule
from tvm.s_tir.schedule import ScheduleError

REJECTIONS = (ScheduleError, ValueError, TypeError, IndexError)  # a primitive that does not apply here
SCOPES = ("global", "local")


class ScheduleInternalError(Exception):
    """A schedule primitive failed with an internal error (not a precondition check)."""


@dataclass(frozen=True)
class Primitive:
    name: str
    propose: Callable[[Schedule, random.Random], dict | None]
    apply: Callable[[Schedule, dict], None]


PRIMITIVES: dict[str, Primitive] = {}


def primitive(apply: Callable[[Schedule, dict], None]) -> Callable:
    """Register a ``propose`` function (named after the primitive) with its ``apply``."""

    def register(propose: Callable[[Schedule, random.Random], dict | None]) -> Callable:
        PRIMITIVES[propose.__name__] = Primitive(propose.__name__, propose, apply)
        return propose

    return register


# ---------------------------------------------------------------------------- schedule state


def blocks(schedule: Schedule) -> list[Any]:
    """Every schedulable, uniquely named block of ``main`` except the root, in program order.

    Blocks nested in a reduction's init (as ``blockize`` makes them) are not schedulable.
    """
    found = []
    tvm_ffi.structural_walk(schedule.mod["main"].body, (s_tir.SBlock, found.append), order="pre")
    found = [block for block in found if block.name_hint != "root" and is_schedulable(schedule, block)]
    names = [block.name_hint for block in found]
    return [block for block in found if names.count(block.name_hint) == 1]  # steps name their blocks


def is_schedulable(schedule: Schedule, block: Any) -> bool:
    try:
        return schedule.get_sref(block) is not None
    except IndexError:
        return False


def loop_extents(schedule: Schedule, block_name: str) -> list[int | None]:
    extents = []
    for loop in schedule.get_loops(schedule.get_sblock(block_name)):
        extent = schedule.get(loop).extent
        extents.append(int(extent.value) if isinstance(extent, tirx.IntImm) else None)
    return extents


def block_loop(schedule: Schedule, step: dict) -> Any:
    return schedule.get_loops(schedule.get_sblock(step["block"]))[step["loop"]]


def is_parameter(schedule: Schedule, buffer: Any) -> bool:
    return any(parameter.same_as(buffer) for parameter in schedule.mod["main"].params)


def pick_block(schedule: Schedule, rng: random.Random, accept: Callable[[Any], bool] = lambda b: True) -> Any:
    candidates = [block for block in blocks(schedule) if accept(block)]
    return rng.choice(candidates) if candidates else None


def pick_loop(schedule: Schedule, rng: random.Random, min_extent: int = 1) -> tuple[str, int, int] | None:
    """A random (block, loop index, extent) with a constant extent of at least ``min_extent``."""
    block = pick_block(schedule, rng)
    if block is None:
        return None
    loops = [(i, e) for i, e in enumerate(loop_extents(schedule, block.name_hint)) if e and e >= min_extent]
    if not loops:
        return None
    index, extent = rng.choice(loops)
    return block.name_hint, index, extent


# ---------------------------------------------------------------------------- primitives


def _loop_step(schedule: Schedule, rng: random.Random, min_extent: int = 1) -> dict | None:
    picked = pick_loop(schedule, rng, min_extent)
    return None if picked is None else {"block": picked[0], "loop": picked[1]}


def _factors(rng: random.Random, extent: int) -> list[int | None]:
    factor = rng.randint(2, min(extent, 8))
    if extent >= 6 and rng.random() < 0.3:
        return [None, factor, rng.randint(1, 3)]
    return [None, factor] if rng.random() < 0.5 else [factor, None]


@primitive(lambda s, step: s.split(block_loop(s, step), step["factors"]))
def split(schedule: Schedule, rng: random.Random) -> dict | None:
    picked = pick_loop(schedule, rng, min_extent=2)
    return None if picked is None else {"block": picked[0], "loop": picked[1], "factors": _factors(rng, picked[2])}


@primitive(lambda s, step: s.loop_partition(block_loop(s, step), step["factors"]))
def loop_partition(schedule: Schedule, rng: random.Random) -> dict | None:
    return split(schedule, rng)


def _apply_reorder(schedule: Schedule, step: dict) -> None:
    loops = schedule.get_loops(schedule.get_sblock(step["block"]))
    schedule.reorder(*(loops[i] for i in step["order"]))


@primitive(_apply_reorder)
def reorder(schedule: Schedule, rng: random.Random) -> dict | None:
    block = pick_block(schedule, rng, lambda b: len(schedule.get_loops(schedule.get_sblock(b.name_hint))) >= 2)
    if block is None:
        return None
    count = len(schedule.get_loops(schedule.get_sblock(block.name_hint)))
    order = rng.sample(range(count), rng.randint(2, count))
    return {"block": block.name_hint, "order": order}


def _apply_fuse(schedule: Schedule, step: dict) -> None:
    loops = schedule.get_loops(schedule.get_sblock(step["block"]))
    schedule.fuse(*loops[step["loop"]:step["loop"] + step["count"]])


@primitive(_apply_fuse)
def fuse(schedule: Schedule, rng: random.Random) -> dict | None:
    block = pick_block(schedule, rng, lambda b: len(schedule.get_loops(schedule.get_sblock(b.name_hint))) >= 2)
    if block is None:
        return None
    count = len(schedule.get_loops(schedule.get_sblock(block.name_hint)))
    size = rng.randint(2, min(3, count))
    return {"block": block.name_hint, "loop": rng.randrange(count - size + 1), "count": size}


@primitive(lambda s, step: s.parallel(block_loop(s, step)))
def parallel(schedule: Schedule, rng: random.Random) -> dict | None:
    return _loop_step(schedule, rng)


@primitive(lambda s, step: s.vectorize(block_loop(s, step)))
def vectorize(schedule: Schedule, rng: random.Random) -> dict | None:
    return _loop_step(schedule, rng)


@primitive(lambda s, step: s.unroll(block_loop(s, step)))
def unroll(schedule: Schedule, rng: random.Random) -> dict | None:
    return _loop_step(schedule, rng)


@primitive(lambda s, step: s.annotate(block_loop(s, step), step["key"], step["value"]))
def annotate_unroll(schedule: Schedule, rng: random.Random) -> dict | None:
    """Pragmas that steer the UnrollLoop pass."""
    step = _loop_step(schedule, rng)
    if step is None:
        return None
    key = rng.choice(("pragma_auto_unroll_max_step", "pragma_unroll_explicit"))
    return {**step, "key": key, "value": rng.choice((0, 1) if key == "pragma_unroll_explicit" else (2, 8, 64))}


@primitive(lambda s, step: s.add_unit_loop(s.get_sblock(step["block"])))
def add_unit_loop(schedule: Schedule, rng: random.Random) -> dict | None:
    block = pick_block(schedule, rng)
    return None if block is None else {"block": block.name_hint}


@primitive(lambda s, step: s.compute_inline(s.get_sblock(step["block"])))
def compute_inline(schedule: Schedule, rng: random.Random) -> dict | None:
    return add_unit_loop(schedule, rng)


@primitive(lambda s, step: s.reverse_compute_inline(s.get_sblock(step["block"])))
def reverse_compute_inline(schedule: Schedule, rng: random.Random) -> dict | None:
    return add_unit_loop(schedule, rng)


@primitive(lambda s, step: s.cache_read(s.get_sblock(step["block"]), step["buffer"], step["scope"]))
def cache_read(schedule: Schedule, rng: random.Random) -> dict | None:
    block = pick_block(schedule, rng, lambda b: len(b.reads) > 0)
    if block is None:
        return None
    return {"block": block.name_hint, "buffer": rng.randrange(len(block.reads)), "scope": rng.choice(SCOPES)}


@primitive(lambda s, step: s.cache_write(s.get_sblock(step["block"]), step["buffer"], step["scope"]))
def cache_write(schedule: Schedule, rng: random.Random) -> dict | None:
    block = pick_block(schedule, rng, lambda b: len(b.writes) > 0)
    if block is None:
        return None
    return {"block": block.name_hint, "buffer": rng.randrange(len(block.writes)), "scope": rng.choice(SCOPES)}


def _intermediate_write(schedule: Schedule, rng: random.Random) -> dict | None:
    """A block and the index of a written buffer that is not a parameter."""
    def writes_intermediate(block: Any) -> bool:
        return any(not is_parameter(schedule, region.source) for region in block.writes)

    block = pick_block(schedule, rng, writes_intermediate)
    if block is None:
        return None
    indices = [i for i, region in enumerate(block.writes) if not is_parameter(schedule, region.source)]
    return {"block": block.name_hint, "buffer": rng.choice(indices)}


def intermediate_block(schedule: Schedule, step: dict) -> Any:
    """The step's block, checked to write an intermediate buffer at ``step["buffer"]``.

    Changing a parameter's layout or scope changes the function's interface, not just
    its schedule: a shrunk trace that would do it must fail to replay.
    """
    block = schedule.get_sblock(step["block"])
    if is_parameter(schedule, schedule.get(block).writes[step["buffer"]].source):
        raise ValueError(f"{step['primitive']} would change parameter buffer {step['buffer']} of {step['block']}")
    return block


@primitive(lambda s, step: s.set_scope(intermediate_block(s, step), step["buffer"], step["scope"]))
def set_scope(schedule: Schedule, rng: random.Random) -> dict | None:
    step = _intermediate_write(schedule, rng)
    return None if step is None else {**step, "scope": rng.choice(SCOPES)}


@primitive(lambda s, step: s.storage_align(intermediate_block(s, step), step["buffer"], step["axis"],
                                           step["factor"], step["offset"]))
def storage_align(schedule: Schedule, rng: random.Random) -> dict | None:
    step = _intermediate_write(schedule, rng)
    if step is None:
        return None
    rank = len(schedule.get(schedule.get_sblock(step["block"])).writes[step["buffer"]].source.ty.shape)
    if rank < 2:
        return None
    return {**step, "axis": rng.randrange(rank - 1), "factor": rng.choice((2, 4, 8)), "offset": rng.randint(0, 1)}


def reversed_axes(*index):  # unannotated: repro scripts copy its source
    return tuple(reversed(index))


@primitive(lambda s, step: s.transform_layout(intermediate_block(s, step), ("write", step["buffer"]), reversed_axes))
def transform_layout(schedule: Schedule, rng: random.Random) -> dict | None:
    """Reverse the axes of an intermediate buffer."""
    return _intermediate_write(schedule, rng)


@primitive(lambda s, step: s.decompose_reduction(s.get_sblock(step["block"]), block_loop(s, step)))
def decompose_reduction(schedule: Schedule, rng: random.Random) -> dict | None:
    block = pick_block(schedule, rng, lambda b: b.init is not None)
    if block is None:
        return None
    count = len(schedule.get_loops(schedule.get_sblock(block.name_hint)))
    return None if count == 0 else {"block": block.name_hint, "loop": rng.randrange(count)}


@primitive(lambda s, step: s.rfactor(block_loop(s, step), step["factor_axis"]))
def rfactor(schedule: Schedule, rng: random.Random) -> dict | None:
    step = decompose_reduction(schedule, rng)
    return None if step is None else {**step, "factor_axis": 0}


@primitive(lambda s, step: s.blockize(block_loop(s, step)))
def blockize(schedule: Schedule, rng: random.Random) -> dict | None:
    return _loop_step(schedule, rng)


def _compute_at_step(schedule: Schedule, rng: random.Random) -> dict | None:
    candidates = blocks(schedule)
    if len(candidates) < 2:
        return None
    block, target = rng.sample(candidates, 2)
    count = len(schedule.get_loops(schedule.get_sblock(target.name_hint)))
    if count == 0:
        return None
    return {"block": block.name_hint, "target": target.name_hint, "loop": rng.randrange(count)}


def _target_loop(schedule: Schedule, step: dict) -> Any:
    return schedule.get_loops(schedule.get_sblock(step["target"]))[step["loop"]]


@primitive(lambda s, step: s.compute_at(s.get_sblock(step["block"]), _target_loop(s, step)))
def compute_at(schedule: Schedule, rng: random.Random) -> dict | None:
    return _compute_at_step(schedule, rng)


@primitive(lambda s, step: s.reverse_compute_at(s.get_sblock(step["block"]), _target_loop(s, step)))
def reverse_compute_at(schedule: Schedule, rng: random.Random) -> dict | None:
    return _compute_at_step(schedule, rng)


# ---------------------------------------------------------------------------- traces


def apply_step(schedule: Schedule, step: dict) -> None:
    PRIMITIVES[step["primitive"]].apply(schedule, step)


def random_trace(function: tirx.PrimFunc, rng: random.Random, length: int,
                 primitives: Sequence[str] | None = None,
                 log: Callable[[str], None] | None = None) -> tuple[tirx.PrimFunc, list[dict]]:
    """Up to ``length`` random steps that TVM accepts; the scheduled function and its trace.

    A step that fails with an internal error (not a rejection) raises
    ScheduleInternalError, whose second argument is the trace up to and including that
    step. ``log`` receives each step as JSON before it runs and ``"ok"`` after TVM
    accepts it, so that a step that kills the process can be read from its log
    (``fuzzer.tir.case.trace_from_log``).
    """
    schedule = Schedule(function)
    names = sorted(primitives or PRIMITIVES)
    trace: list[dict] = []
    for _ in range(3 * length):
        if len(trace) == length:
            break
        name = rng.choice(names)
        try:
            proposal = PRIMITIVES[name].propose(schedule, rng)
        except REJECTIONS:
            continue
        if proposal is None:
            continue
        step = {"primitive": name, **proposal}
        candidate = schedule.copy()
        if log:
            log(json.dumps(step, sort_keys=True))
        try:
            apply_step(candidate, step)
        except REJECTIONS:
            continue
        except Exception as error:  # noqa: BLE001 - InternalError and friends: a finding
            raise ScheduleInternalError(f"{type(error).__name__} in {name}: {error}", [*trace, step]) from error
        schedule = candidate
        trace.append(step)
        if log:
            log("ok")
    return schedule.mod["main"], trace


def replay_schedule(function: tirx.PrimFunc, trace: Sequence[dict]) -> Schedule:
    """A schedule of ``function`` after every step of ``trace``, in order."""
    schedule = Schedule(function)
    for step in trace:
        apply_step(schedule, step)
    return schedule


def replay(function: tirx.PrimFunc, trace: Sequence[dict]) -> tirx.PrimFunc:
    """``function`` transformed by every step of ``trace``, in order."""
    return replay_schedule(function, trace).mod["main"]
