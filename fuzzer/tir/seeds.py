"""Seed PrimFuncs, described by plain-data specs that a worker turns into TIR.

A spec is a JSON-serializable dict. ``{"source": "te", "family": ..., ...}`` is a
tensor-expression program (elementwise, broadcast, reduction, matmul, conv, softmax)
with its own numpy reference; ``{"source": "script", "name": ...}`` is one of the
TVMScript texts in ``SCRIPTS``; ``{"source": "relax", "graph_seed": ...,
"relax_passes": [...]}`` is a PrimFunc that ``relax.transform.LegalizeOps`` makes from a
graph of our generator, followed by a random selection and order of Relax passes
(``fuse`` makes multi-block fused PrimFuncs); a Relax pass that fails there makes the
seed unavailable.
``random_seed_spec`` needs no TVM; ``build_seed`` imports it.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

FLOAT_DTYPES = ("float32", "float64", "float16")
WIDE_INT_DTYPES = ("int32", "int64")
ELEMENTWISE_DTYPES = FLOAT_DTYPES + WIDE_INT_DTYPES + ("int8",)
MAX_DIM = 8
INT_BOUND = {"int8": 4, "int32": 8, "int64": 8}  # inputs lie in [-bound, bound]: no overflow


class SeedUnavailable(Exception):
    """The spec names no usable PrimFunc (a graph the frontend rejects, a dynamic shape)."""


# ---------------------------------------------------------------------------- expressions
# An expression is ["input", k], ["const", value] or [operator, operand...].

BINARY_OPERATORS = ("add", "sub", "mul", "max", "min")
UNARY_FLOAT_OPERATORS = ("exp", "tanh", "abs", "neg", "sigmoid", "sqrt_abs")
UNARY_INT_OPERATORS = ("abs", "neg")
INT8_OPERATORS = ("add", "sub", "max", "min")  # products of int8 inputs could overflow


def random_expression(rng: random.Random, operands: int, dtype: str, depth: int) -> list:
    """A random expression tree over inputs 0..operands-1 that uses every input."""
    unused = list(range(operands))
    rng.shuffle(unused)

    def leaf() -> list:
        if unused:
            return ["input", unused.pop()]
        if rng.random() < 0.2:
            return ["const", rng.choice((-2, -1, 1, 2, 3)) if dtype not in FLOAT_DTYPES
                    else round(rng.uniform(-2, 2), 2)]
        return ["input", rng.randrange(operands)]

    def grow(level: int) -> list:
        if level == 0:
            return leaf()
        if dtype == "int8":
            binary, unary = INT8_OPERATORS, ()
        elif dtype in FLOAT_DTYPES:
            binary, unary = BINARY_OPERATORS, UNARY_FLOAT_OPERATORS
        else:
            binary, unary = BINARY_OPERATORS, UNARY_INT_OPERATORS
        if unary and rng.random() < 0.25:
            return [rng.choice(unary), grow(level - 1)]
        return [rng.choice(binary), grow(level - 1), grow(rng.randrange(level))]

    tree = grow(depth)
    while unused:  # fold in inputs the tree did not reach
        tree = [rng.choice(INT8_OPERATORS), tree, ["input", unused.pop()]]
    return tree


def _evaluate(tree: list, leaf: Callable[[list], Any], operators: Mapping[str, Callable]) -> Any:
    if tree[0] in ("input", "const"):
        return leaf(tree)
    return operators[tree[0]](*(_evaluate(child, leaf, operators) for child in tree[1:]))


def _te_operators(dtype: str) -> dict[str, Callable]:
    from tvm import tirx

    return {
        "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
        "max": tirx.Max, "min": tirx.Min, "neg": lambda a: tirx.const(0, dtype) - a,
        "abs": tirx.abs, "exp": tirx.exp, "tanh": tirx.tanh, "sigmoid": tirx.sigmoid,
        "sqrt_abs": lambda a: tirx.sqrt(tirx.abs(a)),
    }


NUMPY_OPERATORS: dict[str, Callable] = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "max": np.maximum, "min": np.minimum,
    "neg": np.negative, "abs": np.abs, "exp": np.exp, "tanh": np.tanh,
    "sigmoid": lambda a: (1 / (1 + np.exp(-a))).astype(a.dtype),
    "sqrt_abs": lambda a: np.sqrt(np.abs(a)),
}


def _te_expression(tree: list, values: list, dtype: str) -> Any:
    from tvm import tirx

    def leaf(node: list) -> Any:
        return values[node[1]] if node[0] == "input" else tirx.const(node[1], dtype)

    return _evaluate(tree, leaf, _te_operators(dtype))


def _numpy_expression(tree: list, values: list, dtype: str) -> np.ndarray:
    def leaf(node: list) -> Any:
        return values[node[1]] if node[0] == "input" else np.asarray(node[1], dtype=dtype)

    with np.errstate(all="ignore"):
        return np.asarray(_evaluate(tree, leaf, NUMPY_OPERATORS), dtype=dtype)


# ---------------------------------------------------------------------------- TE families


def _random_shape(rng: random.Random, rank: int, max_elements: int = 256) -> list[int]:
    while True:
        shape = [rng.randint(1, MAX_DIM) for _ in range(rank)]
        if math.prod(shape) <= max_elements:
            return shape


@dataclass(frozen=True)
class Family:
    """A kind of TE program: how to draw its parameters, build it and compute it in numpy."""

    dtypes: tuple[str, ...]
    propose: Callable[[random.Random, str], dict]
    build: Callable[[dict], tuple[list, list]]  # spec -> (input tensors, output tensors)
    reference: Callable[[dict, list[np.ndarray]], np.ndarray]  # input arrays -> the output


def _broadcast_propose(rng: random.Random, dtype: str) -> dict:
    shape = _random_shape(rng, rng.randint(1, 3))
    operands = rng.randint(1, 3)
    # Each input keeps a dimension or broadcasts it (size 1).
    shapes = [[d if rng.random() < 0.7 else 1 for d in shape] for _ in range(operands)]
    shapes[0] = list(shape)
    rng.shuffle(shapes)
    return {"shape": shape, "inputs": shapes,
            "expr": random_expression(rng, operands, dtype, rng.randint(1, 3))}


def _broadcast_build(spec: dict) -> tuple[list, list]:
    from tvm import te

    dtype = spec["dtype"]
    inputs = [te.placeholder(tuple(s), dtype, name=f"in{k}") for k, s in enumerate(spec["inputs"])]

    def body(*index):
        values = [tensor[tuple(0 if size == 1 else i for size, i in zip(shape, index))]
                  for tensor, shape in zip(inputs, spec["inputs"])]
        return _te_expression(spec["expr"], values, dtype)

    return inputs, [te.compute(tuple(spec["shape"]), body, name="out")]


def _broadcast_reference(spec: dict, arrays: list[np.ndarray]) -> list[np.ndarray]:
    result = _numpy_expression(spec["expr"], arrays, spec["dtype"])
    return np.broadcast_to(result, spec["shape"]).copy()


def _reduction_propose(rng: random.Random, dtype: str) -> dict:
    shape = _random_shape(rng, rng.randint(1, 3), 64 if dtype == "float16" else 256)
    axes = sorted(rng.sample(range(len(shape)), rng.randint(1, len(shape))))
    return {"shape": shape, "axes": axes, "reducer": rng.choice(("sum", "max", "min")),
            "epilogue": rng.random() < 0.4}


def _reduction_build(spec: dict) -> tuple[list, list]:
    from tvm import te

    dtype, shape, axes = spec["dtype"], spec["shape"], spec["axes"]
    data = te.placeholder(tuple(shape), dtype, name="data")
    reduce_axes = [te.reduce_axis((0, shape[a]), name=f"r{a}") for a in axes]
    kept = [a for a in range(len(shape)) if a not in axes]
    reducer = {"sum": te.sum, "max": te.max, "min": te.min}[spec["reducer"]]

    def body(*index):
        position, reduced = iter(index), iter(reduce_axes)
        full = [next(reduced) if a in axes else next(position) for a in range(len(shape))]
        return reducer(data[tuple(full)], axis=reduce_axes)

    out_shape = tuple(shape[a] for a in kept) or ()
    result = te.compute(out_shape, body, name="reduced")
    if spec["epilogue"]:
        result = te.compute(out_shape, lambda *i: result[i] * _const(2, dtype) + _const(1, dtype),
                            name="scaled")
    return [data], [result]


def _const(value: float, dtype: str) -> Any:
    from tvm import tirx

    return tirx.const(value, dtype)


def _reduction_reference(spec: dict, arrays: list[np.ndarray]) -> list[np.ndarray]:
    dtype = spec["dtype"]
    wide = arrays[0].astype(np.float64) if dtype in FLOAT_DTYPES else arrays[0]
    reduced = {"sum": np.sum, "max": np.max, "min": np.min}[spec["reducer"]](wide, axis=tuple(spec["axes"]))
    reduced = np.asarray(reduced).astype(dtype)
    if spec["epilogue"]:
        reduced = (reduced * np.asarray(2, dtype) + np.asarray(1, dtype)).astype(dtype)
    return reduced


def _matmul_propose(rng: random.Random, dtype: str) -> dict:
    reduce_bound = 8 if dtype == "float16" else MAX_DIM
    return {"m": rng.randint(1, MAX_DIM), "n": rng.randint(1, MAX_DIM), "k": rng.randint(1, reduce_bound),
            "batch": rng.choice((0, 0, 2, 3)), "bias": rng.random() < 0.5, "relu": rng.random() < 0.5}


def _matmul_build(spec: dict) -> tuple[list, list]:
    from tvm import te, tirx

    dtype, batch = spec["dtype"], spec["batch"]
    lead = (batch,) if batch else ()
    a = te.placeholder(lead + (spec["m"], spec["k"]), dtype, name="a")
    b = te.placeholder(lead + (spec["k"], spec["n"]), dtype, name="b")
    k = te.reduce_axis((0, spec["k"]), name="k")

    def product(*index):
        *outer, i, j = index
        return te.sum(a[(*outer, i, k)] * b[(*outer, k, j)], axis=k)

    result = te.compute(lead + (spec["m"], spec["n"]), product, name="matmul")
    inputs = [a, b]
    if spec["bias"]:
        bias = te.placeholder((spec["n"],), dtype, name="bias")
        inputs.append(bias)
        previous = result
        result = te.compute(previous.shape, lambda *i: previous[i] + bias[i[-1]], name="biased")
    if spec["relu"]:
        previous = result
        result = te.compute(previous.shape, lambda *i: tirx.Max(previous[i], _const(0, dtype)), name="relu")
    return inputs, [result]


def _matmul_reference(spec: dict, arrays: list[np.ndarray]) -> list[np.ndarray]:
    dtype = spec["dtype"]
    wide = [x.astype(np.float64) if dtype in FLOAT_DTYPES else x for x in arrays]
    result = np.matmul(wide[0], wide[1]).astype(dtype)
    if spec["bias"]:
        result = (result + arrays[2]).astype(dtype)
    if spec["relu"]:
        result = np.maximum(result, np.asarray(0, dtype))
    return result


def _conv_propose(rng: random.Random, dtype: str) -> dict:
    dims, pad = rng.randint(1, 2), rng.randint(0, 1)
    size = [rng.randint(2, 6) for _ in range(dims)]
    return {"dims": dims, "channels": rng.randint(1, 3), "filters": rng.randint(1, 3), "size": size,
            "kernel": [rng.randint(1, min(3, s + 2 * pad)) for s in size], "pad": pad}


def _conv_build(spec: dict) -> tuple[list, list]:
    from tvm import te, tirx

    dtype, pad = spec["dtype"], spec["pad"]
    size, kernel = spec["size"], spec["kernel"]
    data = te.placeholder((spec["channels"], *size), dtype, name="data")
    weight = te.placeholder((spec["filters"], spec["channels"], *kernel), dtype, name="weight")
    padded_size = [s + 2 * pad for s in size]

    def pad_body(c, *x):
        inside = tirx.all(*(tirx.all(p >= pad, p < s + pad) for p, s in zip(x, size)))
        source = data[(c, *(tirx.Max(tirx.Min(p - pad, s - 1), 0) for p, s in zip(x, size)))]
        return tirx.if_then_else(inside, source, _const(0, dtype))

    padded = te.compute((spec["channels"], *padded_size), pad_body, name="padded")
    channel = te.reduce_axis((0, spec["channels"]), name="rc")
    window = [te.reduce_axis((0, k), name=f"r{d}") for d, k in enumerate(kernel)]
    out_size = [p - k + 1 for p, k in zip(padded_size, kernel)]

    def conv_body(f, *y):
        return te.sum(padded[(channel, *(yy + r for yy, r in zip(y, window)))] *
                      weight[(f, channel, *window)], axis=[channel, *window])

    return [data, weight], [te.compute((spec["filters"], *out_size), conv_body, name="conv")]


def _conv_reference(spec: dict, arrays: list[np.ndarray]) -> list[np.ndarray]:
    dtype, pad = spec["dtype"], spec["pad"]
    data, weight = (x.astype(np.float64) if dtype in FLOAT_DTYPES else x for x in arrays)
    data = np.pad(data, [(0, 0)] + [(pad, pad)] * spec["dims"])
    kernel = spec["kernel"]
    out_size = [s - k + 1 for s, k in zip(data.shape[1:], kernel)]
    result = np.zeros((spec["filters"], *out_size), dtype=data.dtype)
    for offset in np.ndindex(*kernel):
        window = data[(slice(None), *(slice(o, o + s) for o, s in zip(offset, out_size)))]
        result += np.tensordot(weight[(slice(None), slice(None), *offset)], window, axes=([1], [0]))
    return result.astype(dtype)


def _softmax_propose(rng: random.Random, dtype: str) -> dict:
    return {"shape": _random_shape(rng, rng.randint(1, 2), 64)}


def _softmax_build(spec: dict) -> tuple[list, list]:
    from tvm import te, tirx

    shape = tuple(spec["shape"])
    data = te.placeholder(shape, spec["dtype"], name="data")
    last = te.reduce_axis((0, shape[-1]), name="k")
    peak = te.compute(shape[:-1], lambda *i: te.max(data[(*i, last)], axis=last), name="peak")
    shifted = te.compute(shape, lambda *i: tirx.exp(data[i] - peak[i[:-1]]), name="shifted")
    last_again = te.reduce_axis((0, shape[-1]), name="k2")
    total = te.compute(shape[:-1], lambda *i: te.sum(shifted[(*i, last_again)], axis=last_again), name="total")
    result = te.compute(shape, lambda *i: shifted[i] / total[i[:-1]], name="softmax")
    return [data], [result]


def _softmax_reference(spec: dict, arrays: list[np.ndarray]) -> list[np.ndarray]:
    wide = arrays[0].astype(np.float64)
    shifted = np.exp(wide - wide.max(axis=-1, keepdims=True))
    return (shifted / shifted.sum(axis=-1, keepdims=True)).astype(spec["dtype"])


FAMILIES: dict[str, Family] = {
    "broadcast": Family(ELEMENTWISE_DTYPES, _broadcast_propose, _broadcast_build, _broadcast_reference),
    "reduction": Family(FLOAT_DTYPES + WIDE_INT_DTYPES, _reduction_propose, _reduction_build,
                        _reduction_reference),
    "matmul": Family(FLOAT_DTYPES + WIDE_INT_DTYPES, _matmul_propose, _matmul_build, _matmul_reference),
    "conv": Family(FLOAT_DTYPES + ("int32",), _conv_propose, _conv_build, _conv_reference),
    "softmax": Family(("float32", "float64"), _softmax_propose, _softmax_build, _softmax_reference),
}

# ---------------------------------------------------------------------------- TVMScript seeds

SCRIPTS: dict[str, str] = {
    # a sequential scan in plain loops (no blocks): schedules do not apply, passes do
    "prefix_sum": '''
@T.prim_func
def main(A: T.Buffer((16,), "float32"), B: T.Buffer((16,), "float32")):
    B[0] = A[0]
    for i in range(15):
        B[i + 1] = B[i] + A[i + 1]
''',
    # index arithmetic, a guard and a transposed read inside blocks
    "guarded_transpose": '''
@T.prim_func(s_tir=True)
def main(A: T.Buffer((8, 6), "float32"), B: T.Buffer((6, 8), "float32")):
    for i, j in T.grid(6, 8):
        with T.sblock("transpose"):
            vi, vj = T.axis.remap("SS", [i, j])
            B[vi, vj] = T.if_then_else(vi < 3, A[vj, vi] * T.float32(2), A[7 - vj, 5 - vi])
''',
    # integer bit manipulation with shifts by constants
    "bit_mix": '''
@T.prim_func(s_tir=True)
def main(A: T.Buffer((12,), "int32"), B: T.Buffer((12,), "int32"), C: T.Buffer((12,), "int32")):
    for i in range(12):
        with T.sblock("mix"):
            vi = T.axis.spatial(12, i)
            C[vi] = T.bitwise_xor(A[vi] << 2, B[vi]) + T.shift_right(A[vi], 1) - (B[vi] & 7)
''',
    # a block-local scratch buffer and two stages
    "staged_local": '''
@T.prim_func(s_tir=True)
def main(A: T.Buffer((4, 16), "float32"), B: T.Buffer((4, 16), "float32")):
    scratch = T.sblock_alloc_buffer((4, 16), "float32")
    for i, j in T.grid(4, 16):
        with T.sblock("stage0"):
            vi, vj = T.axis.remap("SS", [i, j])
            scratch[vi, vj] = A[vi, vj] * A[vi, vj] - T.float32(0.5)
    for i, j in T.grid(4, 16):
        with T.sblock("stage1"):
            vi, vj = T.axis.remap("SS", [i, j])
            B[vi, vj] = T.max(scratch[vi, vj], scratch[vi, 15 - vj])
''',
    # a product reduction with a select in the operand
    "select_product": '''
@T.prim_func(s_tir=True)
def main(A: T.Buffer((6, 5), "float64"), B: T.Buffer((6,), "float64")):
    for i, k in T.grid(6, 5):
        with T.sblock("product"):
            vi, vk = T.axis.remap("SR", [i, k])
            with T.init():
                B[vi] = T.float64(1)
            B[vi] = B[vi] * T.Select(A[vi, vk] > T.float64(0), A[vi, vk] + T.float64(1), T.float64(0.5))
''',
}

# ---------------------------------------------------------------------------- specs


# Relax passes run after LegalizeOps, in groups that only make sense together.
RELAX_PASS_GROUPS = {
    "fold_constant": ("FoldConstant",),
    "fuse": ("AnnotateTIROpPattern", "FuseOps", "FuseTIR"),
    "dead_code": ("DeadCodeElimination",),
    "canonicalize": ("CanonicalizeBindings",),
}


def random_seed_spec(rng: random.Random, *, relax_share: float = 0.15, script_share: float = 0.1,
                     relax_nodes: int = 4) -> dict:
    """A random seed spec; drawing it needs no TVM."""
    draw = rng.random()
    if draw < relax_share:
        groups = rng.sample(sorted(RELAX_PASS_GROUPS), rng.randint(0, len(RELAX_PASS_GROUPS)))
        return {"source": "relax", "graph_seed": rng.getrandbits(32), "nodes": relax_nodes,
                "relax_passes": groups, "function": rng.getrandbits(16)}
    if draw < relax_share + script_share:
        return {"source": "script", "name": rng.choice(sorted(SCRIPTS))}
    family_name = rng.choice(sorted(FAMILIES))
    family = FAMILIES[family_name]
    dtype = rng.choice(family.dtypes)
    return {"source": "te", "family": family_name, "dtype": dtype, **family.propose(rng, dtype)}


def build_seed(spec: Mapping[str, Any]) -> Any:
    """The PrimFunc a spec describes, named ``main``; SeedUnavailable if there is none."""
    builders = {"te": _build_te, "script": _build_script, "relax": _build_relax}
    return builders[spec["source"]](spec).with_attr("global_symbol", "main")


def _build_te(spec: Mapping[str, Any]) -> Any:
    from tvm import te

    inputs, outputs = FAMILIES[spec["family"]].build(dict(spec))
    return te.create_prim_func([*inputs, *outputs])


def _build_script(spec: Mapping[str, Any]) -> Any:
    import tvm

    return tvm.script.from_source(SCRIPTS[spec["name"]])


def _build_relax(spec: Mapping[str, Any]) -> Any:
    import onnx
    import tvm
    from tvm import relax, tirx
    from tvm.relax.frontend.onnx import from_onnx

    from fuzzer.graph.export_onnx import to_onnx_bytes
    from fuzzer.tir.relax_pipelines import frontend_graph

    try:  # the seed's graph, exported as generate_case does; its inputs are not needed
        model = to_onnx_bytes(frontend_graph(spec["graph_seed"], spec["nodes"]))
        passes = [relax.transform.LegalizeOps()] + [getattr(relax.transform, name)()
                                                    for group in spec.get("relax_passes", ())
                                                    for name in RELAX_PASS_GROUPS[group]]
        module = tvm.ir.transform.Sequential(passes)(from_onnx(onnx.load_from_string(model),
                                                               keep_params_in_input=False))
    except Exception as error:  # noqa: BLE001 - generator and frontend reject many graphs
        raise SeedUnavailable(f"graph {spec['graph_seed']} does not legalize: {error}") from None
    functions = [function for _, function in sorted(module.functions_items(), key=lambda item: item[0].name_hint)
                 if isinstance(function, tirx.PrimFunc) and is_static_and_direct(function)]
    if not functions:
        raise SeedUnavailable(f"graph {spec['graph_seed']} legalizes to no static PrimFunc")
    return functions[spec["function"] % len(functions)]


def is_static_and_direct(function: Any) -> bool:
    """Whether the function's behaviour is defined for any input values.

    Every parameter must be a buffer of constant shape; no index may read memory
    (``take``, ``gather``: out-of-bounds reads would depend on the inputs); integers may
    be divided or shifted only by constants (a zero divisor traps, a long shift is
    undefined).
    """
    import tvm_ffi
    from tvm import ir, tirx

    for parameter in function.params:
        if not isinstance(parameter.ty, tirx.BufferType) or \
                not all(isinstance(extent, tirx.IntImm) for extent in parameter.ty.shape):
            return False
    unsafe = []

    def check_indices(access: Any) -> None:
        for index in access.indices:
            tvm_ffi.structural_walk(index, (ir.TensorLoad, unsafe.append))

    def check_divisor(operation: Any) -> None:
        if not str(operation.ty.dtype).startswith("float") and not isinstance(operation.b, tirx.IntImm):
            unsafe.append(operation)

    divisions = (tirx.Div, tirx.Mod, tirx.FloorDiv, tirx.FloorMod, tirx.LShift, tirx.RShift)
    tvm_ffi.structural_walk(function.body, [(ir.TensorLoad, check_indices), (tirx.BufferStore, check_indices),
                                            (divisions, check_divisor)])
    return not unsafe


def numpy_reference(spec: Mapping[str, Any], inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray] | None:
    """The expected output of an unmutated TE seed, by parameter name; None for other seeds.

    ``inputs`` holds every parameter in order; a TE seed's output is its last one.
    """
    if spec["source"] != "te":
        return None
    *operands, output = inputs
    return {output: FAMILIES[spec["family"]].reference(dict(spec), [inputs[name] for name in operands])}
