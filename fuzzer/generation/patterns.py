"""A pattern library, kept as data: subgraph templates of what real models contain and
optimizers rewrite, each naming the optimizer passes it targets.

A :class:`Pattern` is one declarative entry of PATTERNS: graph-side operands (``inputs``,
the first of which may bind to an existing value of the graph), constant operands
(``weights``), and ``steps`` (nodes) over them; shapes are written with symbols
(``"B S H*D"``) whose sizes the graph's shape profile draws. Each pattern also has
near-misses, one edit away from matching: its declared ``misses`` (an attribute, an
operator or a shape), and two every pattern gets: another float dtype, and an
intermediate value that is also a graph output (an extra consumer). A template whose
operators are not registered is skipped. PATTERNS is checked when this module loads: a
malformed entry raises :class:`PatternError` naming it and the field.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from fuzzer.graph.ir import DType, Input, Node, TensorType, Weight, infer_outputs
from fuzzer.graph.ops import get_spec, registry
from fuzzer.graph.rejected import ShapeError, Unsatisfiable
from fuzzer.graph.values import random_array
from fuzzer.generation.profiles import ShapeProfile

SOURCE = "fuzzer/generation/patterns.py"
DTYPE = "float32"  # the dtype patterns match in; near-misses use another
MISS_DTYPES = ("float64", "float16")
SHRINKS = 64  # halvings of the largest drawn symbol before an instance gives up on the budgets
TOKEN = re.compile(r"^(\d+|[A-Za-z_]\w*)(\*(\d+|[A-Za-z_]\w*))*$")
INITS = ("random", "positive", "range", "reversed")


class PatternError(ValueError):
    """A malformed template: the message names the file, the entry and the field."""


@dataclass(frozen=True)
class Dims:
    """An attribute value written as sizes of symbols (Reshape's shape, Expand's)."""

    shape: str


@dataclass(frozen=True)
class Tensor:
    """An operand: its shape in symbols; ``init`` (weights) is random, positive, range
    (0, 1, 2, ... in order), reversed (..., 1, 0), ``same:<weight>`` (another weight's values: a shared constant)
    or a number; ``dtype`` None is the pattern's."""

    shape: str
    init: str | float = "random"
    dtype: str | None = None


@dataclass(frozen=True)
class Step:
    op: str
    inputs: str  # value names, space-separated
    outputs: str
    attrs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Miss:
    """A declared near-miss: attributes set on steps (by index), steps' operators replaced
    (a replaced step takes the miss's attributes only), or operands replaced."""

    name: str
    attrs: Mapping[int, Mapping[str, Any]] = field(default_factory=dict)
    ops: Mapping[int, str] = field(default_factory=dict)
    operands: Mapping[str, Tensor | str] = field(default_factory=dict)


@dataclass(frozen=True)
class Pattern:
    name: str
    targets: tuple[str, ...]  # "tool:Pass" names of the rewrites it exercises
    inputs: Mapping[str, Tensor | str]  # a plain string is a shape
    steps: tuple[Step, ...]
    weights: Mapping[str, Tensor | str] = field(default_factory=dict)
    misses: tuple[Miss, ...] = ()

    def operand(self, name: str, miss: Miss | None = None) -> Tensor:
        """Operand ``name`` as a Tensor, as near-miss ``miss`` changes it."""
        spec = miss.operands[name] if miss and name in miss.operands else {**self.inputs, **self.weights}[name]
        return spec if isinstance(spec, Tensor) else Tensor(spec)

    @property
    def ops(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys([s.op for s in self.steps] + [op for m in self.misses for op in m.ops.values()]))


@dataclass(frozen=True)
class Instance:
    """A pattern's nodes with the operands they add, ready for a graph builder; ``extra``:
    intermediate values that must become graph outputs."""

    pattern: str
    miss: str | None
    inputs: tuple[Input, ...]
    weights: tuple[Weight, ...]
    nodes: tuple[Node, ...]
    extra: tuple[str, ...] = ()


def check_pattern(pattern: Pattern, seen: frozenset[str] = frozenset()) -> Pattern:
    """``pattern``, or raise PatternError naming the entry and field that is malformed."""
    def fail(where: str, reason: str) -> None:
        raise PatternError(f"{SOURCE}: pattern {pattern.name!r}: {where}: {reason}")

    if not pattern.name or pattern.name in seen:
        fail("name", "empty or used by another pattern")
    if not pattern.targets or not all(isinstance(t, str) and re.match(r"^\w[\w.-]*:\S+$", t) for t in pattern.targets):
        fail("targets", "give one or more 'tool:Pass' names")
    if not pattern.inputs or not pattern.steps:
        fail("inputs" if not pattern.inputs else "steps", "must not be empty")
    defined = set(pattern.inputs) | set(pattern.weights)
    if set(pattern.inputs) & set(pattern.weights):
        fail("weights", f"names {sorted(set(pattern.inputs) & set(pattern.weights))} are inputs too")
    operands = [(name, name, None) for name in [*pattern.inputs, *pattern.weights]]
    operands += [(f"misses.{m.name}.operands.{name}", name, m) for m in pattern.misses for name in m.operands
                 if name in pattern.inputs or name in pattern.weights]
    for where, name, miss in operands:
        operand = pattern.operand(name, miss)
        if not all(TOKEN.match(t) for t in operand.shape.split()):
            fail(f"{where}.shape", f"{operand.shape!r} is not a space-separated list of sizes, symbols and products")
        if operand.dtype is not None and operand.dtype not in {d.value for d in DType}:
            fail(f"{where}.dtype", f"{operand.dtype!r} is not a dtype")
        init = operand.init
        if not (isinstance(init, (int, float)) or init in INITS
                or isinstance(init, str) and init.startswith("same:") and init[5:] in pattern.weights):
            fail(f"{where}.init", f"{init!r} is not {', '.join(INITS)}, same:<weight> or a number")
    for index, step in enumerate(pattern.steps):
        if not isinstance(step.op, str) or not step.op:
            fail(f"steps[{index}].op", "must name an operator")
        undefined = [n for n in step.inputs.split() if n not in defined]
        if undefined:
            fail(f"steps[{index}].inputs", f"{undefined[0]!r} is defined by no input, weight or earlier step")
        outputs = step.outputs.split()
        if not outputs or set(outputs) & defined:
            fail(f"steps[{index}].outputs", "must name new values")
        defined.update(outputs)
        for key, value in step.attrs.items():
            if isinstance(value, Dims) and not all(TOKEN.match(t) for t in value.shape.split()):
                fail(f"steps[{index}].attrs.{key}", f"{value.shape!r} is not a list of sizes and symbols")
    for miss in pattern.misses:
        if not miss.name:
            fail("misses", "a near-miss needs a name")
        if any(not 0 <= k < len(pattern.steps) for k in [*miss.attrs, *miss.ops]):
            fail(f"misses.{miss.name}", "names a step index out of range")
        unknown = [n for n in miss.operands if n not in pattern.inputs and n not in pattern.weights]
        if unknown:
            fail(f"misses.{miss.name}.operands", f"{unknown[0]!r} is no operand")
    return pattern


def checked(patterns: list[Pattern]) -> tuple[Pattern, ...]:
    seen: set[str] = set()
    for pattern in patterns:
        check_pattern(pattern, frozenset(seen))
        seen.add(pattern.name)
    return tuple(patterns)


def available(pattern: Pattern, opset: int, ops: frozenset[str] | None) -> bool:
    """Whether every operator of ``pattern`` is registered, valid at ``opset`` and allowed."""
    known = registry()
    return all(op in known and known[op].since <= opset and (ops is None or op in ops) for op in pattern.ops)


def size(token: str, sizes: Mapping[str, int]) -> int:
    return math.prod(int(part) if part.isdigit() else sizes[part] for part in token.split("*"))


def symbols(pattern: Pattern, miss: Miss | None) -> list[str]:
    """The pattern's symbols in order of first use."""
    texts = [pattern.operand(name, miss).shape for name in [*pattern.inputs, *pattern.weights]]
    texts += [v.shape for s in pattern.steps for v in s.attrs.values() if isinstance(v, Dims)]
    parts = [p for text in texts for token in text.split() for p in token.split("*")]
    return list(dict.fromkeys(p for p in parts if not p.isdigit()))


def bind(shape: str, tensor_type: TensorType) -> dict[str, int] | None:
    """Sizes of the plain symbols of ``shape`` that make it ``tensor_type``'s shape, or None."""
    tokens = shape.split()
    if len(tokens) != tensor_type.rank:
        return None
    sizes: dict[str, int] = {}
    for token, dim in zip(tokens, tensor_type.shape):
        if TOKEN.match(token) and "*" not in token and not token.isdigit():
            if sizes.setdefault(token, dim) != dim:
                return None
    try:
        return sizes if all(size(t, sizes) == d for t, d in zip(tokens, tensor_type.shape)) else None
    except KeyError:  # a product of symbols that the value does not fix
        return None


def weight_array(rng: random.Random, operand: Tensor, tensor_type: TensorType, made: Mapping[str, np.ndarray]
                 ) -> np.ndarray:
    init, dtype = operand.init, tensor_type.dtype.numpy
    if isinstance(init, (int, float)):
        return np.full(tensor_type.shape, init, dtype)
    if init.startswith("same:"):
        return made[init[5:]]
    array = np.asarray(random_array(np.random.default_rng(rng.getrandbits(32)), tensor_type))
    if init == "positive":
        return (np.abs(array.astype(np.float64)) + 0.5).astype(dtype)
    if init in ("range", "reversed"):
        order = np.arange(tensor_type.numel)
        return (order if init == "range" else order[::-1]).reshape(tensor_type.shape).astype(dtype)
    return array


def instantiate(pattern: Pattern, rng: random.Random, profile: ShapeProfile, max_dim: int, max_elements: int,
                values: Mapping[str, TensorType], fresh: Callable[[str], str], near_miss: bool,
                dtypes: frozenset[DType] = frozenset(DType), opset: int = 17) -> Instance:
    """One instance of ``pattern`` (a near-miss when ``near_miss``): its first input bound to
    a value of ``values`` when one fits, symbols drawn from ``profile`` and halved until each
    tensor holds at most ``max_elements``; names come from ``fresh``. Raises Unsatisfiable
    when the operators refuse the sizes or dtypes."""
    misses = [*pattern.misses, Miss("dtype"), *([Miss("extra consumer")] if len(pattern.steps) > 1 else [])]
    miss = rng.choice(misses) if near_miss else None
    dtype = DType(DTYPE)
    if miss is not None and miss.name == "dtype":
        dtype = DType(rng.choice(MISS_DTYPES))
    if dtype not in dtypes:
        raise Unsatisfiable(f"pattern {pattern.name} needs {dtype.value}, not among the chosen dtypes")
    anchor, *_ = pattern.inputs
    anchor_dtype = DType(pattern.operand(anchor, miss).dtype or dtype.value)
    bindings = [(name, b) for name, t in values.items()
                if t.dtype is anchor_dtype and (b := bind(pattern.operand(anchor, miss).shape, t)) is not None]
    bound_name, sizes = rng.choice(bindings) if bindings and rng.random() < 0.7 else (None, {})
    drawn = [s for s in symbols(pattern, miss) if s not in sizes]
    sizes = {**sizes, **{s: profile.dim(rng, max_dim) for s in drawn}}
    for _ in range(SHRINKS):
        types, steps = typed(pattern, miss, dtype, sizes, opset)
        if all(t.numel <= max_elements for t in types.values()) or not drawn:
            break
        largest = max(drawn, key=lambda s: sizes[s])
        sizes[largest] = max(1, sizes[largest] // 2)
    if any(t.numel > max_elements or not t.numel for t in types.values()):
        raise Unsatisfiable(f"pattern {pattern.name} does not fit the element budget")
    names = {name: bound_name if name == anchor and bound_name else fresh("w" if name in pattern.weights else "x")
             for name in [*pattern.inputs, *pattern.weights]}
    made: dict[str, np.ndarray] = {}
    weights = []
    for name in pattern.weights:
        made[name] = weight_array(rng, pattern.operand(name, miss), types[name], made)
        weights.append(Weight.from_array(names[name], made[name]))
    nodes = []
    for step, (op, attrs) in zip(pattern.steps, steps):
        names.update((local, fresh("v")) for local in step.outputs.split())
        nodes.append(Node(op, tuple(names[n] for n in step.inputs.split()),
                          tuple(names[n] for n in step.outputs.split()),
                          tuple(types[n] for n in step.outputs.split()), tuple(attrs.items())))
    extra = (rng.choice([o for node in nodes[:-1] for o in node.outputs]),) \
        if miss is not None and miss.name == "extra consumer" else ()
    inputs = tuple(Input(names[n], types[n]) for n in pattern.inputs if names[n] != bound_name)
    return Instance(pattern.name, miss.name if miss else None, inputs, tuple(weights), tuple(nodes), extra)


def typed(pattern: Pattern, miss: Miss | None, dtype: DType, sizes: Mapping[str, int], opset: int
          ) -> tuple[dict[str, TensorType], list[tuple[str, dict[str, Any]]]]:
    """The types of every value of ``pattern`` at ``sizes``, and each step's operator and
    attributes; Unsatisfiable when an operator refuses them."""
    types = {name: TensorType(DType(pattern.operand(name, miss).dtype or dtype.value),
                              tuple(size(t, sizes) for t in pattern.operand(name, miss).shape.split()))
             for name in [*pattern.inputs, *pattern.weights]}
    steps = []
    for index, step in enumerate(pattern.steps):
        op = miss.ops.get(index, step.op) if miss else step.op
        changed = miss.attrs.get(index, {}) if miss else {}
        attrs = dict(changed) if op != step.op else {**step.attrs, **changed}
        attrs = {k: tuple(size(t, sizes) for t in v.shape.split()) if isinstance(v, Dims) else v
                 for k, v in attrs.items()}
        input_types = tuple(types[n] for n in step.inputs.split())
        if input_types and not any(get_spec(op).accepts(t, opset) for t in input_types):
            raise Unsatisfiable(f"pattern {pattern.name}: {op} accepts none of {', '.join(map(str, input_types))}")
        try:
            types.update(zip(step.outputs.split(), infer_outputs(op, input_types, attrs, tuple(step.outputs.split()))))
        except ShapeError as error:
            raise Unsatisfiable(f"pattern {pattern.name}: {op} refuses its sizes: {error}") from None
        steps.append((op, attrs))
    return types, steps


def windowed(op: str, inputs: str, outputs: str, **attrs: Any) -> Step:
    """A 2-D Conv or AveragePool step with every window attribute spelled out (3x3 pools)."""
    window = {"auto_pad": "NOTSET", "pads": (0, 0, 0, 0), "strides": (1, 1)}
    extra = {"dilations": (1, 1), "group": 1} if op == "Conv" else {"kernel_shape": (3, 3), "ceil_mode": 0}
    return Step(op, inputs, outputs, {**window, **extra, **attrs})


GELU = (Step("Div", "x sqrt2", "a"), Step("Erf", "a", "b"), Step("Add", "b one", "c"),
        Step("Mul", "x c", "d"), Step("Mul", "d half", "y"))
LAYER_NORM = (Step("ReduceMean", "x", "mean", {"axes": (-1,), "keepdims": 1}), Step("Sub", "x mean", "d"),
              Step("Pow", "d two", "sq"), Step("ReduceMean", "sq", "var", {"axes": (-1,), "keepdims": 1}),
              Step("Add", "var eps", "ve"), Step("Sqrt", "ve", "sd"), Step("Div", "d sd", "n"),
              Step("Mul", "n gamma", "g"), Step("Add", "g beta", "y"))
HEADS = {"axis": -1}

PATTERNS: tuple[Pattern, ...] = checked([
    Pattern("matmul_add", ("ort:MatMulAddFusion", "tvm:FuseOps", "inductor:addmm"),
            inputs={"x": "M K"}, weights={"w": "K N", "b": "N"},
            steps=(Step("MatMul", "x w", "t"), Step("Add", "t b", "y")),
            misses=(Miss("bias over rows", operands={"b": "M N"}),)),
    Pattern("batched_matmul_add", ("ort:MatMulAddFusion", "ort:MatMulScaleFusion", "inductor:baddbmm"),
            inputs={"x": "B M K"}, weights={"w": "K N", "b": "N"},
            steps=(Step("MatMul", "x w", "t"), Step("Add", "t b", "y")),
            misses=(Miss("batched weight", operands={"w": "B K N"}),)),
    Pattern("gemm_activation", ("ort:GemmActivationFusion", "tvm:FuseOps"),
            inputs={"x": "M K"}, weights={"w": "K N", "b": "N"},
            steps=(Step("Gemm", "x w b", "t", {"alpha": 1.0, "beta": 1.0, "transA": 0, "transB": 0}),
                   Step("Relu", "t", "y")),
            misses=(Miss("unfusable activation", ops={1: "Softplus"}), Miss("scaled", attrs={0: {"alpha": 0.5}}))),
    Pattern("conv_batchnorm_relu", ("ort:ConvBNFusion", "ort:ConvActivationFusion", "tvm:FoldScaleAxis",
                                    "inductor:conv_bn_fold"),
            inputs={"x": "N C H W"},
            weights={"w": "K C 3 3", "b": "K", "scale": "K", "shift": "K", "mean": "K",
                     "var": Tensor("K", "positive")},
            steps=(windowed("Conv", "x w b", "c", pads=(1, 1, 1, 1)),
                   Step("BatchNormalization", "c scale shift mean var", "n", {"epsilon": 1e-5}),
                   Step("Relu", "n", "y")),
            misses=(Miss("strided", attrs={0: {"strides": (2, 2)}}), Miss("sigmoid activation", ops={2: "Sigmoid"}))),
    Pattern("conv_mul_add", ("ort:ConvMulFusion", "ort:ConvAddFusion", "tvm:FoldScaleAxis"),
            inputs={"x": "N C H W"}, weights={"w": "K C 1 1", "s": "K 1 1", "t": "K 1 1"},
            steps=(windowed("Conv", "x w", "c"), Step("Mul", "c s", "m"), Step("Add", "m t", "y")),
            misses=(Miss("per-pixel scale", operands={"s": "K H W"}),)),
    Pattern("gelu_decomposition", ("ort:GeluFusion", "ort:BiasGeluFusion", "inductor:pointwise_fusion"),
            inputs={"x": "B S C"}, weights={"sqrt2": Tensor("", 1.4142135), "one": Tensor("", 1.0),
                                             "half": Tensor("", 0.5)},
            steps=GELU,
            misses=(Miss("tanh instead of erf", ops={1: "Tanh"}),)),
    Pattern("layernorm_decomposition", ("ort:LayerNormFusionL1", "ort:SimplifiedLayerNormFusion", "tvm:FuseOps"),
            inputs={"x": "B S C"}, weights={"two": Tensor("", 2.0), "eps": Tensor("", 1e-5), "gamma": "C", "beta": "C"},
            steps=LAYER_NORM,
            misses=(Miss("mean over two axes", attrs={0: {"axes": (-2, -1)}, 3: {"axes": (-2, -1)}}),
                    Miss("cubed deviation", operands={"two": Tensor("", 3.0)}))),
    Pattern("skip_layernorm", ("ort:SkipLayerNormFusion", "ort:LayerNormFusion"),
            inputs={"x": "B S C", "skip": "B S C"}, weights={"gamma": "C", "beta": "C"},
            steps=(Step("Add", "x skip", "s"),
                   Step("LayerNormalization", "s gamma beta", "y", {"axis": -1, "epsilon": 1e-5})),
            misses=(Miss("broadcast skip", operands={"skip": "S C"}),
                    Miss("normalize two axes", attrs={1: {"axis": -2}}, operands={"gamma": "S C", "beta": "S C"}))),
    Pattern("attention", ("ort:AttentionFusion", "ort:MultiHeadAttention", "inductor:sdpa_pattern",
                          "tvm:FuseOps"),
            inputs={"q": "B S H*D", "k": "B S H*D", "v": "B S H*D"}, weights={"scale": Tensor("", 0.125)},
            steps=(Step("Reshape", "q", "q4", {"shape": Dims("B S H D")}),
                   Step("Transpose", "q4", "qt", {"perm": (0, 2, 1, 3)}),
                   Step("Reshape", "k", "k4", {"shape": Dims("B S H D")}),
                   Step("Transpose", "k4", "kt", {"perm": (0, 2, 3, 1)}),
                   Step("Reshape", "v", "v4", {"shape": Dims("B S H D")}),
                   Step("Transpose", "v4", "vt", {"perm": (0, 2, 1, 3)}),
                   Step("MatMul", "qt kt", "scores"), Step("Mul", "scores scale", "scaled"),
                   Step("Softmax", "scaled", "p", HEADS), Step("MatMul", "p vt", "o"),
                   Step("Transpose", "o", "ot", {"perm": (0, 2, 1, 3)}),
                   Step("Reshape", "ot", "y", {"shape": Dims("B S H*D")})),
            misses=(Miss("softmax over queries", attrs={8: {"axis": -2}}),
                    Miss("scale by a vector", operands={"scale": Tensor("S", 0.125)}))),
    Pattern("transpose_inverse_pair", ("ort:TransposeOptimizer", "tvm:SimplifyExpr", "onnxsim:eliminate_transpose"),
            inputs={"x": "A B C D"},
            steps=(Step("Transpose", "x", "t", {"perm": (0, 2, 3, 1)}),
                   Step("Transpose", "t", "y", {"perm": (0, 3, 1, 2)})),
            misses=(Miss("not inverse", attrs={1: {"perm": (0, 2, 1, 3)}}),)),
    Pattern("reshape_chain", ("ort:ReshapeFusion", "tvm:SimplifyExpr", "onnxsim:fuse_consecutive_reshapes"),
            inputs={"x": "A B C"},
            steps=(Step("Reshape", "x", "r", {"shape": Dims("A B*C")}),
                   Step("Reshape", "r", "s", {"shape": Dims("A*B C")}),
                   Step("Reshape", "s", "y", {"shape": Dims("A B C")})),
            misses=(Miss("transposed middle", ops={1: "Transpose"}, attrs={1: {"perm": (1, 0)}}),)),
    Pattern("cast_chain", ("ort:CastElimination", "ort:CastChainElimination", "tvm:SimplifyExpr"),
            inputs={"x": "A B"},
            steps=(Step("Cast", "x", "w", {"to": "float64"}), Step("Cast", "w", "y", {"to": "float32"})),
            misses=(Miss("lossy round trip", attrs={0: {"to": "float16"}}),)),
    Pattern("slice_concat_space_to_depth", ("ort:SpaceToDepthFusion", "tvm:FuseOps"),
            inputs={"x": "N C 2*H 2*W"},
            steps=(Step("Slice", "x", "a", {"starts": (0, 0), "ends": (2**31, 2**31), "axes": (2, 3), "steps": (2, 2)}),
                   Step("Slice", "x", "b", {"starts": (1, 0), "ends": (2**31, 2**31), "axes": (2, 3), "steps": (2, 2)}),
                   Step("Slice", "x", "c", {"starts": (0, 1), "ends": (2**31, 2**31), "axes": (2, 3), "steps": (2, 2)}),
                   Step("Slice", "x", "d", {"starts": (1, 1), "ends": (2**31, 2**31), "axes": (2, 3), "steps": (2, 2)}),
                   Step("Concat", "a b c d", "y", {"axis": 1})),
            misses=(Miss("concat along height", attrs={4: {"axis": 2}}),)),
    # ORT's GatherToSliceFusion wants a Range computed at run time; constant indices are folded first
    Pattern("gather_range_to_slice", ("tvm:SimplifyExpr", "inductor:pointwise_fusion"),
            inputs={"x": "A D"}, weights={"i": Tensor("D", "range", "int64")},
            steps=(Step("Gather", "x i", "y", {"axis": 1}),),
            misses=(Miss("reversed indices", operands={"i": Tensor("D", "reversed", "int64")}),)),
    Pattern("pad_conv", ("ort:PadFusion", "tvm:FoldExplicitPadding"),
            inputs={"x": "N C H W"}, weights={"w": "K C 3 3"},
            steps=(Step("Pad", "x", "p", {"pads": (0, 0, 1, 1, 0, 0, 1, 1), "mode": "constant"}),
                   windowed("Conv", "p w", "y")),
            misses=(Miss("edge padding", attrs={0: {"mode": "edge"}}),)),
    Pattern("pad_pool", ("ort:PadFusion", "tvm:FoldExplicitPadding"),
            inputs={"x": "N C H W"},
            steps=(Step("Pad", "x", "p", {"pads": (0, 0, 1, 1, 0, 0, 1, 1), "mode": "constant"}),
                   windowed("AveragePool", "p", "y", count_include_pad=1)),
            misses=(Miss("padding excluded from the mean", attrs={1: {"count_include_pad": 0}}),)),
    Pattern("where_not", ("ort:NotWhereFusion", "tvm:SimplifyExpr"),
            inputs={"x": "A B", "c": Tensor("A B", dtype="bool"), "z": "A B"},
            steps=(Step("Not", "c", "n"), Step("Where", "n x z", "y"))),
    # ORT has no rule for the pair (its UnsqueezeElimination folds an Unsqueeze of a constant)
    Pattern("unsqueeze_squeeze", ("tvm:SimplifyExpr", "inductor:view_fusion"),
            inputs={"x": "A B"},
            steps=(Step("Unsqueeze", "x", "u", {"axes": (0,)}), Step("Squeeze", "u", "y", {"axes": (0,)})),
            misses=(Miss("other axis", attrs={1: {"axes": (2,)}}, operands={"x": "A 1"}),)),
    # ORT removes no node that reads a graph input: the eliminations below read a computed value
    Pattern("expand_identity", ("ort:ExpandElimination", "tvm:SimplifyExpr"),
            inputs={"x": "A B"},
            steps=(Step("Abs", "x", "a"), Step("Expand", "a", "e", {"shape": Dims("A B")}), Step("Relu", "e", "y")),
            misses=(Miss("real broadcast", operands={"x": "1 B"}),)),
    Pattern("noop_arithmetic", ("ort:NoopElimination", "tvm:SimplifyExpr", "inductor:pointwise_fusion"),
            inputs={"x": "A B"}, weights={"zero": Tensor("", 0.0), "one": Tensor("", 1.0)},
            steps=(Step("Neg", "x", "n"), Step("Add", "n zero", "a"), Step("Mul", "a one", "m"),
                   Step("Relu", "m", "y")),
            misses=(Miss("a zero that broadcasts", operands={"zero": Tensor("2 A B", 0.0)}),
                    Miss("one that is not", operands={"one": Tensor("", 1.0078125)}))),
    Pattern("identity_dropout", ("ort:EliminateIdentity", "ort:EliminateDropout", "tvm:SimplifyExpr"),
            inputs={"x": "A B C"},
            steps=(Step("Sigmoid", "x", "s"), Step("Identity", "s", "i"), Step("Dropout", "i", "d"),
                   Step("Tanh", "d", "y"))),
    Pattern("reciprocal_mul", ("ort:DivMulFusion", "tvm:SimplifyExpr"),
            inputs={"x": "A B", "z": "A B"}, weights={"one": Tensor("", 1.0)},
            steps=(Step("Exp", "x", "e"), Step("Div", "one e", "r"), Step("Mul", "z r", "y")),
            misses=(Miss("numerator two", operands={"one": Tensor("", 2.0)}),)),
    Pattern("relu_clip", ("ort:FuseReluClip", "tvm:SimplifyExpr", "inductor:pointwise_fusion"),
            inputs={"x": "A B"},
            steps=(Step("Neg", "x", "n"), Step("Relu", "n", "r"), Step("Clip", "r", "c", {"min": -1.0, "max": 6.0}),
                   Step("Tanh", "c", "y")),
            misses=(Miss("absolute value, not relu", ops={1: "Abs"}),)),
    Pattern("silu_chain", ("ort:QuickGeluFusion", "ort:ActivationFusion", "inductor:pointwise_fusion"),
            inputs={"x": "A B C"},
            steps=(Step("Sigmoid", "x", "s"), Step("Mul", "x s", "m"), Step("Relu", "m", "r"), Step("Relu", "r", "y")),
            misses=(Miss("hard sigmoid", ops={0: "HardSigmoid"}),)),
    Pattern("duplicated_subexpression", ("ort:CommonSubexpressionElimination", "tvm:EliminateCommonSubexpr"),
            inputs={"x": "A B"}, weights={"w": "B", "w2": Tensor("B", "same:w")},
            steps=(Step("Mul", "x w", "a"), Step("Exp", "a", "e1"), Step("Mul", "x w2", "b"), Step("Exp", "b", "e2"),
                   Step("Add", "e1 e2", "y")),
            misses=(Miss("different operator", ops={3: "Sigmoid"}),)),
    Pattern("qdq_pair", ("ort:QDQPropagation", "ort:QDQFinalCleanup", "tvm:FakeQuantizationToInteger"),
            inputs={"x": "A B"}, weights={"s": Tensor("", 0.05), "z": Tensor("", 128, "uint8")},
            steps=(Step("QuantizeLinear", "x s z", "q"), Step("DequantizeLinear", "q s z", "y"))),
    # ---- ONNX Runtime's CPU fusions that random graphs never reach (each verified to fire alone)
    Pattern("rms_norm", ("ort:SimplifiedLayerNormFusion", "inductor:pointwise_fusion"),
            inputs={"x": "B S C"}, weights={"two": Tensor("", 2.0), "eps": Tensor("", 1e-6), "gamma": "C"},
            steps=(Step("Pow", "x two", "sq"), Step("ReduceMean", "sq", "ms", {"axes": (-1,), "keepdims": 1}),
                   Step("Add", "ms eps", "v"), Step("Sqrt", "v", "r"), Step("Div", "x r", "n"),
                   Step("Mul", "n gamma", "y")),
            misses=(Miss("mean over the sequence", attrs={1: {"axes": (-2,)}}),)),
    Pattern("bias_gelu", ("ort:BiasGeluFusion", "ort:GeluFusionL2", "inductor:pointwise_fusion"),
            inputs={"x": "B S C"}, weights={"b": "C", "sqrt2": Tensor("", 1.4142135), "one": Tensor("", 1.0),
                                             "half": Tensor("", 0.5)},
            steps=(Step("Add", "x b", "h"), Step("Div", "h sqrt2", "a"), Step("Erf", "a", "e"),
                   Step("Add", "e one", "c"), Step("Mul", "h c", "d"), Step("Mul", "d half", "y")),
            misses=(Miss("bias over rows", operands={"b": "S C"}),)),
    Pattern("tanh_gelu", ("ort:FastGeluFusion", "inductor:pointwise_fusion"),
            inputs={"x": "B S C"}, weights={"three": Tensor("", 3.0), "k": Tensor("", 0.044715),
                                             "r": Tensor("", 0.7978846), "one": Tensor("", 1.0),
                                             "half": Tensor("", 0.5)},
            steps=(Step("Pow", "x three", "x3"), Step("Mul", "x3 k", "kx3"), Step("Add", "x kx3", "i"),
                   Step("Mul", "i r", "ri"), Step("Tanh", "ri", "t"), Step("Add", "t one", "u"),
                   Step("Mul", "x half", "hx"), Step("Mul", "hx u", "g"),
                   Step("Add", "g x", "y")),  # a consumer: ORT fuses no GELU whose result is a graph output
            misses=(Miss("sigmoid instead of tanh", ops={4: "Sigmoid"}),
                    Miss("square", operands={"three": Tensor("", 2.0)}))),
    Pattern("matmul_transposed_operand", ("ort:MatmulTransposeFusion", "tvm:FuseOps", "inductor:bmm"),
            inputs={"a": "B M K", "b": "B N K"},
            steps=(Step("Transpose", "b", "bt", {"perm": (0, 2, 1)}), Step("MatMul", "a bt", "y"))),
    Pattern("gather_each_index", ("ort:GatherSliceToSplitFusion", "tvm:SimplifyExpr"),
            inputs={"x": "A 2 C"}, weights={"i0": Tensor("", 0, "int64"), "i1": Tensor("", 1, "int64")},
            steps=(Step("Relu", "x", "r"), Step("Gather", "r i0", "g0", {"axis": 1}),
                   Step("Gather", "r i1", "g1", {"axis": 1}), Step("Mul", "g0 g1", "y")),
            misses=(Miss("same index twice", operands={"i1": Tensor("", 0, "int64")}),)),
    Pattern("dynamic_quantized_matmul", ("ort:DynamicQuantizeMatMulFusion", "ort:MatMulIntegerToFloatFusion"),
            inputs={"x": "M K"}, weights={"w": Tensor("K N", dtype="uint8"), "wz": Tensor("", 128, "uint8"),
                                           "ws": Tensor("", 0.02)},
            steps=(Step("DynamicQuantizeLinear", "x", "q qs qz"), Step("MatMulInteger", "q w qz wz", "i"),
                   Step("Cast", "i", "f", {"to": "float32"}), Step("Mul", "qs ws", "s"), Step("Mul", "f s", "y"))),
    Pattern("integer_matmul_rescale", ("ort:MatMulIntegerToFloatFusion",),
            inputs={"x": Tensor("M K", dtype="uint8"), "xs": Tensor("")},
            weights={"xz": Tensor("", 128, "uint8"), "w": Tensor("K N", dtype="uint8"),
                     "wz": Tensor("", 128, "uint8"), "ws": Tensor("", 0.02)},
            steps=(Step("MatMulInteger", "x w xz wz", "i"), Step("Cast", "i", "f", {"to": "float32"}),
                   Step("Mul", "xs ws", "s"), Step("Mul", "f s", "y"))),
    Pattern("conv_residual_relu", ("ort:ConvAddActivationFusion", "ort:NchwcTransformer", "tvm:FuseOps"),
            # grouped: NchwcTransformer, which takes plain convolutions first on x86, leaves it
            inputs={"x": "N 2*C H W", "r": "N 2*K H W"}, weights={"w": "2*K C 3 3", "b": "2*K"},
            steps=(windowed("Conv", "x w b", "c", pads=(1, 1, 1, 1), group=2), Step("Add", "c r", "s"),
                   Step("Relu", "s", "y")),
            misses=(Miss("broadcast residual", operands={"r": "N 2*K 1 1"}),)),
    Pattern("relu_quantize", ("ort:Level2_RuleBasedTransformer", "tvm:FakeQuantizationToInteger"),
            inputs={"x": "A B"}, weights={"s": Tensor("", 0.05), "z": Tensor("", 0, "uint8")},
            steps=(Step("Relu", "x", "r"), Step("QuantizeLinear", "r s z", "y")),
            misses=(Miss("zero point inside the range", operands={"z": Tensor("", 128, "uint8")}),)),
    Pattern("bias_skip_layernorm", ("ort:BiasSkipLayerNormFusion", "ort:SkipLayerNormFusion"),
            inputs={"x": "B S K", "skip": "B S N"}, weights={"w": "B K N", "b": "N", "gamma": "N", "beta": "N"},
            steps=(Step("MatMul", "x w", "m"), Step("Add", "b m", "mb"), Step("Add", "skip mb", "s"),
                   Step("LayerNormalization", "s gamma beta", "y", {"axis": -1, "epsilon": 1e-5})),
            misses=(Miss("bias over rows", operands={"b": "S N"}),)),
    Pattern("transpose_quantize", ("ort:QDQPropagationTransformer",),
            inputs={"x": "A B"}, weights={"s": Tensor("", 0.05), "z": Tensor("", 128, "uint8")},
            steps=(Step("Transpose", "x", "t", {"perm": (1, 0)}), Step("QuantizeLinear", "t s z", "y"))),
])
