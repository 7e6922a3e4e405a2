"""Operator specifications as declarative data.

An :class:`OpSpec` says which inputs an operator accepts (dtypes and ranks of its
*anchor*, the input the generator picks first), how to choose its attributes and its
other inputs given the anchor (``propose``), how to infer output types (``infer``), and
how to lower it to ONNX and to torch. Specs are data: the generator, exporters,
validator and mutators all read them, and none of them special-cases an operator. The
facts that oracles, mutators, the input search and ONNX import rely on (exact results,
ties, commutativity, ONNX's constant inputs, ...) are fields too, checked by
:func:`check_spec` when the registry loads.
"""

from __future__ import annotations

import enum
import importlib
import math
import random
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from fuzzer.graph.ir import DType, Node, TensorType
from fuzzer.graph.rejected import ShapeError


class Family(enum.Enum):
    """Operator families, in registration order; each value names its module in fuzzer.graph.ops."""

    ELEMENTWISE = "elementwise"
    ACTIVATION = "activation"
    LOGIC = "logic"
    LINALG = "linalg"
    POOLING = "pooling"
    NORMALIZATION = "normalization"
    REDUCTION = "reduction"
    SHAPE = "shape"
    INDEXING = "indexing"
    BITWISE = "bitwise"
    QUANTIZATION = "quantization"
    SIGNAL = "signal"
    SPECTRAL = "spectral"
    RECURRENT = "recurrent"
    SAMPLING = "sampling"
    LOSS = "loss"
    SEQUENCE = "sequence"
    CONSTANTS = "constants"  # Constant, and the operators whose output extents follow their inputs' values
    CONTROL = "control"  # If, Loop, Scan: added on purpose (GeneratorOptions.control_flow), never drawn


class SpecError(RuntimeError):
    """An operator spec or group that contradicts itself or the registry: a bug in tcfuzz's tables."""


class LazyModule:
    """A module imported only when a lowering first runs (keeps torch out of the generator).

    Before the module is imported, ``lazy.name`` is a callable stand-in that imports it and
    calls the real ``name``; afterwards attributes are the real ones.
    """

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        module = sys.modules.get(self._name)
        if module is not None:
            return getattr(module, attr)
        return _Deferred(self._name, attr)


class _Deferred:
    def __init__(self, module: str, attr: str) -> None:
        self.module, self.attr = module, attr

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        module = sys.modules.get(self.module) or importlib.import_module(self.module)  # no import call once
        return getattr(module, self.attr)(*args, **kwargs)  # loaded: tracers (torch.cond's) skip imports


torch = LazyModule("torch")
F = LazyModule("torch.nn.functional")


@dataclass(frozen=True)
class Operand:
    """An input the operator needs besides the anchor.

    ``values`` fixes its contents (indices in range, non-zero divisors): such an
    operand always becomes a weight. ``name`` reuses an existing value instead.
    """

    type: TensorType
    values: np.ndarray | None = field(default=None, compare=False)
    condition: bool = False  # a bool scalar the generator derives from the anchor (ReduceSum > 0)


ANCHOR = None  # marks the anchor's slot in Proposal.inputs


@dataclass(frozen=True)
class Proposal:
    attrs: Mapping[str, Any]
    inputs: tuple[Operand | None, ...] = (ANCHOR,)  # ANCHOR marks where the anchor goes


Propose = Callable[[random.Random, TensorType], Proposal]
Infer = Callable[[tuple[TensorType, ...], Mapping[str, Any]], tuple[TensorType, ...]]
# (input types, attributes) -> bounds of the output values that no input moves, or None
Pinned = Callable[[tuple[TensorType, ...], Mapping[str, Any]], tuple[float, float] | None]
TorchLowering = Callable[..., Any]  # (inputs: list[Tensor], attrs: dict) -> Tensor | tuple
ConstantsRule = Callable[[tuple[TensorType, ...], tuple[np.ndarray | None, ...], Mapping[str, Any]], str | None]


def as_results(result: Any) -> tuple[Any, ...]:
    """A lowering's result as a tuple: lowerings return one tensor, or a tuple or list of them."""
    return tuple(result) if isinstance(result, (tuple, list)) else (result,)


# (body, opset, name, outer_names=None, loop_condition=None) -> onnx.GraphProto; see export_onnx.subgraph
SubgraphExporter = Callable[..., Any]


class OnnxBuilder:
    """What an ONNX lowering may use: emit nodes, add constant initializers, and export
    control-flow bodies through the exporter's ``subgraph`` (the specs import no exporter)."""

    def __init__(self, opset: int, prefix: str, subgraph: SubgraphExporter) -> None:
        self.opset = opset
        self._prefix = prefix
        self._subgraph = subgraph
        self._count = 0
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []

    def subgraph(self, body: Any, name: str, **options: Any) -> Any:
        """``body`` (an IR graph) as an ONNX subgraph named ``name`` at this builder's opset."""
        return self._subgraph(body, self.opset, name, **options)

    def constant(self, array: np.ndarray) -> str:
        from onnx import numpy_helper

        name = f"{self._prefix}_c{self._count}"
        self._count += 1
        self.initializers.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def temporary(self) -> str:
        name = f"{self._prefix}_t{self._count}"
        self._count += 1
        return name

    def node(self, op: str, inputs: Sequence[str], outputs: Sequence[str], **attrs: Any) -> None:
        from onnx import helper

        clean = {k: list(v) if isinstance(v, tuple) else v for k, v in attrs.items()}
        self.nodes.append(helper.make_node(op, list(inputs), list(outputs), **clean))


OnnxLowering = Callable[[OnnxBuilder, Node], None]


def lower_as_is(builder: OnnxBuilder, node: Node) -> None:
    """Default ONNX lowering: one node with the IR attributes as ONNX attributes."""
    builder.node(node.op, node.inputs, node.outputs, **node.attr)


def no_attrs(rng: random.Random, anchor: TensorType) -> Proposal:
    return Proposal({})


class DomainKind(enum.Enum):
    """What the bounds of a :class:`Domain` constrain."""

    VALUES = "values"  # every element of the input
    SUMS = "sums"  # every sum the operator reduces the input to (ReduceLogSum)
    POWER_BASE = "power base"  # a base: non-negative under a fractional exponent, non-zero under a negative one


@dataclass(frozen=True)
class Domain:
    """The values one input of an operator must hold: within [low, high] ((low, high) with
    ``open_bounds``), or away from zero when ``nonzero`` (divisors); ``kind`` says what the
    bounds constrain."""

    position: int
    low: float = -math.inf
    high: float = math.inf
    open_bounds: bool = False
    nonzero: bool = False
    kind: DomainKind = DomainKind.VALUES

    def admits(self, value_range: tuple[float, float]) -> bool:
        """Whether values known to lie in ``value_range`` can meet this domain with room to
        spare: the two intervals overlap in more than a point."""
        return min(value_range[1], self.high) > max(value_range[0], self.low)

    def holds(self, bounds: tuple[float, float]) -> bool:
        """Whether values that no input moves, known to lie in ``bounds``, are inside this
        domain; for a divisor, whether they are other than zero alone."""
        if self.nonzero:
            return bounds != (0.0, 0.0)
        if self.open_bounds:
            return self.low < bounds[0] and bounds[1] < self.high
        return self.low <= bounds[0] and bounds[1] <= self.high


# Window attributes that ONNX defaults for an input with ``spatial`` spatial axes.
WINDOW_DEFAULTS: Mapping[str, Callable[[int], Any]] = {
    "strides": lambda spatial: (1,) * spatial,
    "dilations": lambda spatial: (1,) * spatial,
    "group": lambda spatial: 1,
    "pads": lambda spatial: (0,) * 2 * spatial,
    "output_padding": lambda spatial: (0,) * spatial,
}


@dataclass(frozen=True)
class OnnxForm:
    """Where an operator's ONNX form differs from its IR form, for reading ONNX models."""

    constant_inputs: Mapping[int, str] = field(default_factory=dict)  # ONNX input position -> IR attribute
    scalar_inputs: frozenset[str] = frozenset()  # of those attributes, the ones the IR holds as a number
    value_inputs: frozenset[str] = frozenset()  # of those attributes, the ones the IR reads as an input when computed
    defaults: Mapping[str, Any] = field(default_factory=dict)  # attributes ONNX may omit, with its default
    dropped: frozenset[str] = frozenset()  # ONNX attributes without effect in inference (not modelled)
    window: tuple[str, ...] = ()  # window attributes of WINDOW_DEFAULTS to fill in for the input's rank
    data_input: bool = True  # ONNX input 0 is data; False: every ONNX input is a constant (a window's size)
    not_imported: str = ""  # why ONNX import reads no node of this operator ("": it does)


def constant_input(attribute: str, scalar: bool = False, **form: Any) -> OnnxForm:
    """The ONNX form of an operator whose second ONNX input the IR holds as ``attribute``
    (a number when ``scalar``); ``form`` gives OnnxForm's other fields."""
    return OnnxForm(constant_inputs={1: attribute}, scalar_inputs=frozenset({attribute} if scalar else ()), **form)


@dataclass(frozen=True)
class OpSpec:
    name: str
    family: Family
    dtypes: frozenset[DType]  # anchor dtypes the operator accepts
    infer: Infer
    torch: TorchLowering
    propose: Propose = no_attrs
    ranks: tuple[int, int] = (0, 4)  # anchor rank range, inclusive
    onnx: OnnxLowering = lower_as_is
    since: int = 13  # first opset (>= 13) in which this spec's ONNX lowering is valid
    nondeterministic: bool = False
    dtype_since: Mapping[DType, int] = field(default_factory=dict)  # dtypes newer than ``since``
    domain: Domain | None = None  # the input whose values the operator restricts (Log, Div, ...)
    value_range: tuple[float, float] | None = None  # bounds of every output value, whatever the inputs
    type_only: tuple[int, ...] = ()  # inputs read for their type and shape only (Shape, Size)
    keeps_values: bool = False  # every output value is an input value (movement, selection)
    # The inputs whose values move the output values freely (None: all but ``type_only``); fewer
    # for piecewise-constant outputs (Hardmax: none) and normalized ones (LayerNormalization: its bias).
    steering: tuple[int, ...] | None = None
    # Output values the operator writes whatever its inputs hold (Trilu's zeros, Softmax over
    # one element); with ``keeps_values``, the pinned values of the steering inputs add to them.
    pinned: Pinned | None = None
    # What the float64 judge (oracles.precision) evaluates instead of ``torch``, where the torch
    # kernel that compilers lower departs from ONNX's steps in ways only float64 shows: exact
    # constants for float32 ones, 0 * Inf in taps of weight zero, intermediates hidden in a kernel.
    reference: TorchLowering | None = None
    # Facts about the operator that consumers read instead of keeping name sets (checked by check_spec).
    exact: bool = False  # float results exact whatever the implementation (movement, selection, rounding)
    ties: bool = False  # the output index or one-hot position depends on the order of the values (ArgMax)
    min_max: bool = False  # takes a minimum or maximum: whether NaN propagates, which of -0/+0 returns, varies
    zero_sign: bool = False  # maps a zero of either sign to an infinity of that sign (Div, Reciprocal)
    integer_arithmetic: bool = False  # computes integer results arithmetically: they may overflow the dtype
    float32_constants: bool = False  # its ONNX form carries float32 constants (attributes, function bodies)
    # Its float results are sums of products, linear in each float operand (Conv, MatMul, ReduceSum):
    # the summation order, which implementations choose freely, moves a result by up to a few ULPs
    # of the sum of its terms' magnitudes, which the lowering gives on absolute operands.
    accumulates: bool = False
    # ONNX types its float operands and results float32 only (quantization's scales): the float64
    # judge runs it at its declared types, between casts (oracles.precision.promote_to_float64).
    float32_only: bool = False
    # A node of it without inputs computes its result from its attributes alone, in numpy: a
    # torch module holds it as a constant, as an ONNX compiler folds it (torch.compile cannot
    # trace the numpy).
    constant_result: bool = False
    # It takes values whose extents only the run gives (NonZero's count): each output element
    # follows the input elements at its position, or sums them (elementwise operators, casts,
    # sums), whatever the extent, even zero. Which output axes keep such an extent, its shape
    # rule says (fuzzer.graph.ops.infer_types).
    extent_free: bool = False
    # Why the values of its constant inputs (None: computed) leave its result undefined, or None:
    # two scatter updates to one element (fuzzer.graph.ops.undefined_by_constants).
    constants_rule: ConstantsRule | None = None
    commutative: bool = False  # swapping its two operands keeps the result
    # The implementation compilers share between it and its kin (HannWindow, HammingWindow and
    # BlackmanWindow are one cosine-sum kernel): a bug in one is one bug, named by the kernel.
    kernel: str = ""
    largest_first: bool = False  # the reference evaluator needs the first operand at the result's shape
    fixed_input_types: bool = False  # proposals hold invariants shape inference misses: mutants keep its input types
    straight_through: bool = False  # piecewise constant along the identity: the input search passes gradients
    dtype_attr: tuple[str, str | None] | None = None  # the attribute naming the output dtype, and its default
    onnx_form: OnnxForm = OnnxForm()  # how ONNX spells it, where not as the IR does

    def steers(self, position: int) -> bool:
        """Whether the input at ``position`` moves the output values freely."""
        return position in self.steering if self.steering is not None else position not in self.type_only

    def dtypes_at(self, opset: int) -> frozenset[DType]:
        return frozenset(d for d in self.dtypes if self.dtype_since.get(d, self.since) <= opset)

    def accepts(self, anchor: TensorType, opset: int) -> bool:
        return (self.dtype_since.get(anchor.dtype, self.since) <= opset and anchor.dtype in self.dtypes
                and self.ranks[0] <= anchor.rank <= self.ranks[1] and (self.extent_free or not anchor.runtime))


# ---------------------------------------------------------------- shape helpers


def broadcast(*shapes: tuple[int, ...]) -> tuple[int, ...]:
    """Numpy/ONNX multidirectional broadcasting; raises ShapeError when incompatible."""
    rank = max(len(s) for s in shapes)
    result = []
    for axis in range(rank):
        dims = {s[axis - rank + len(s)] for s in shapes if axis - rank + len(s) >= 0}
        dims.discard(1)
        if len(dims) > 1:
            raise ShapeError(f"shapes {', '.join(map(str, shapes))} do not broadcast")
        result.append(dims.pop() if dims else 1)
    return tuple(result)


def broadcastable_shape(rng: random.Random, shape: tuple[int, ...]) -> tuple[int, ...]:
    """A random shape that broadcasts against ``shape`` without changing the result shape."""
    choice = rng.random()
    if choice < 0.4:
        return shape
    keep = rng.randint(0, len(shape)) if choice < 0.7 else len(shape)
    tail = shape[len(shape) - keep:]
    return tuple(1 if rng.random() < 0.3 else d for d in tail)


def normalize_axis(axis: int, rank: int) -> int:
    if not -rank <= axis < max(rank, 1):
        raise ShapeError(f"axis {axis} is out of range for rank {rank}")
    return axis % max(rank, 1)


def same_as_first(types: tuple[TensorType, ...], attrs: Mapping[str, Any]) -> tuple[TensorType, ...]:
    return (types[0],)


# ---------------------------------------------------------------- consistency


def check_spec(spec: OpSpec, family: Family) -> None:
    """Raise :class:`SpecError`, naming the operator and the contradicting fields, unless
    ``spec`` belongs to ``family`` and its fields agree with each other."""
    def fail(reason: str) -> None:
        raise SpecError(f"operator {spec.name}: {reason}")

    if spec.family is not family:
        fail(f"family is {spec.family}, but module fuzzer.graph.ops.{family.value} defines it")
    if spec.steering is not None and set(spec.steering) & set(spec.type_only):
        fail(f"steering {spec.steering} and type_only {spec.type_only} share an input; "
             "an input read for its type only moves no value")
    if spec.min_max and spec.integer_arithmetic:
        fail("min_max and integer_arithmetic contradict: a minimum or maximum returns an input value, "
             "it cannot overflow")
    if spec.exact and spec.accumulates:
        fail("exact and accumulates contradict: a sum's rounding depends on its order")
    if spec.exact and spec.float32_constants:
        fail("exact and float32_constants contradict: a result that depends on rounded constants is not exact")
    if spec.domain is not None and spec.domain.nonzero and spec.domain.kind is not DomainKind.VALUES:
        fail(f"domain is nonzero and of kind {spec.domain.kind.value}: a divisor constrains its values")
    if spec.dtype_attr is not None and spec.dtype_attr[1] not in (None, *(d.value for d in DType)):
        fail(f"dtype_attr default {spec.dtype_attr[1]!r} is not a dtype")
    form = spec.onnx_form
    if form.data_input and any(position < 1 for position in form.constant_inputs):
        fail(f"onnx_form.constant_inputs {dict(form.constant_inputs)} names input 0, the data itself")
    if not (form.scalar_inputs | form.value_inputs) <= set(form.constant_inputs.values()):
        fail(f"onnx_form.scalar_inputs {sorted(form.scalar_inputs)} and value_inputs {sorted(form.value_inputs)} "
             "are not all in onnx_form.constant_inputs")
    if form.dropped & set(form.defaults):
        fail(f"onnx_form.dropped and onnx_form.defaults share {sorted(form.dropped & set(form.defaults))}")
    unknown = set(form.window) - set(WINDOW_DEFAULTS)
    if unknown:
        fail(f"onnx_form.window names {sorted(unknown)}, not window attributes {sorted(WINDOW_DEFAULTS)}")
