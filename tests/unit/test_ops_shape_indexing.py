"""Shape and indexing operators beyond test_ops.py: every opset 13..21 (where the lowerings
change), every dtype, mixed multi-node graphs, onnxruntime's acceptance of the models, and
the lowering choices and invariants that random graphs exercise only by chance."""

from __future__ import annotations

import itertools

import numpy as np
import onnx
import pytest

from fuzzer.graph.export_onnx import SUPPORTED_OPSETS
from fuzzer.generation.generator import GeneratorOptions, generate_case, generate_graph
from fuzzer.graph.ir import ALL_DTYPES, DType, Graph, Input, Node, TensorType
from fuzzer.graph.ops import Family, all_specs, get_spec
from fuzzer.graph.ops.shape import INT64_MAX, INT64_MIN
from tests.helpers import run_both

SPECS = [s for s in all_specs() if s.family in (Family.SHAPE, Family.INDEXING)]
NAMES = sorted(s.name for s in SPECS)


def assert_onnxruntime_accepts(model: onnx.ModelProto) -> None:
    """onnxruntime may lack a kernel for a dtype, but must not call the model invalid."""
    import onnxruntime

    try:
        onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    except Exception as error:  # noqa: BLE001 - the message tells a missing kernel apart
        assert "NOT_IMPLEMENTED" in str(error), str(error)


@pytest.mark.parametrize("op", NAMES)
def test_every_opset_and_dtype(op: str) -> None:
    since = get_spec(op).since
    for opset, seed in itertools.product(range(max(since, SUPPORTED_OPSETS.start), SUPPORTED_OPSETS.stop), range(3)):
        case = generate_case(seed, GeneratorOptions(nodes=3, ops=frozenset({op}), opset=opset, dtypes=ALL_DTYPES))
        assert_onnxruntime_accepts(run_both(case.graph, dict(case.inputs), opset))


@pytest.mark.parametrize("opset", list(SUPPORTED_OPSETS))
def test_mixed_graphs(opset: int) -> None:
    ops = frozenset(s.name for s in SPECS if s.since <= opset)
    for seed in range(4):
        case = generate_case(seed, GeneratorOptions(nodes=10, ops=ops, opset=opset))
        assert_onnxruntime_accepts(run_both(case.graph, dict(case.inputs), opset))


def single(op: str, inputs: list[np.ndarray], attrs: dict) -> tuple[Graph, dict[str, np.ndarray]]:
    graph_inputs = tuple(Input(f"x{k}", TensorType(DType.from_numpy(a.dtype), a.shape)) for k, a in enumerate(inputs))
    types = tuple(i.type for i in graph_inputs)
    outputs = get_spec(op).infer(types, attrs)
    names = tuple(f"y{k}" for k in range(len(outputs)))
    node = Node(op, tuple(i.name for i in graph_inputs), names, tuple(outputs), tuple(attrs.items()))
    return Graph(graph_inputs, (), (node,), names), {i.name: a for i, a in zip(graph_inputs, inputs)}


def onnx_ops(model: onnx.ModelProto) -> list[str]:
    return [n.op_type for n in model.graph.node]


@pytest.mark.parametrize("opset", [13, 17, 18, 21])
def test_split_num_outputs_lowering(opset: int) -> None:
    x = np.arange(7 * 2, dtype=np.float32).reshape(7, 2)
    for parts in (1, 3, 7):
        model = run_both(*single("Split", [x], {"num_outputs": parts}), opset)
        split = model.graph.node[0]
        has_attribute = any(a.name == "num_outputs" for a in split.attribute)
        assert has_attribute == (opset >= 18)
        assert (len(split.input) == 2) == (opset < 18 and 7 % parts != 0)


@pytest.mark.parametrize("opset", [13, 15, 16, 21])
@pytest.mark.parametrize("op", ["ScatterElements", "ScatterND"])
def test_scatter_reductions_lower_before_opset_16(op: str, opset: int) -> None:
    options = GeneratorOptions(nodes=1, ops=frozenset({op}), opset=opset)
    reduced = [case for case in (generate_case(seed, options) for seed in range(40))
               if case.graph.nodes[0].attr.get("reduction", "none") != "none"]
    assert reduced
    for case in reduced[:6]:
        model = run_both(case.graph, dict(case.inputs), opset)
        assert onnx_ops(model)[-1] == op and (len(onnx_ops(model)) == 1) == (opset >= 16)


@pytest.mark.parametrize("op", ["ScatterElements", "ScatterND"])
def test_scatter_targets_are_unique(op: str) -> None:
    for seed in range(60):
        graph = generate_graph(seed, GeneratorOptions(nodes=1, ops=frozenset({op})))
        node = graph.nodes[0]
        weights = {w.name: w.array for w in graph.weights}
        indices = weights[node.inputs[1]].astype(np.int64)
        data = graph.types[node.inputs[0]]
        if op == "ScatterND":
            depth = indices.shape[-1]
            targets = (indices.reshape(-1, depth) % np.asarray(data.shape[:depth])).tolist()
            assert len({tuple(t) for t in targets}) == len(targets), f"{graph}"
        else:
            axis = node.attr.get("axis", 0) % data.rank
            lines = np.moveaxis(indices % data.shape[axis], axis, -1).reshape(-1, indices.shape[axis])
            assert all(len(set(line)) == len(line) for line in lines.tolist()), f"{graph}"


@pytest.mark.parametrize("starts, ends, steps", [
    ((INT64_MIN, 0), (INT64_MAX, 4), (1, 2)),
    ((INT64_MAX, -1), (INT64_MIN, -1000), (-1, -2)),
    ((-2, 5), (-7, 1000), (-3, 1)),
    ((4, -4), (-1000, INT64_MAX), (-2, 3)),
])
def test_slice_clamping_matches_numpy(starts, ends, steps) -> None:
    x = np.arange(5 * 6, dtype=np.int64).reshape(5, 6)
    attrs = {"starts": starts, "ends": ends, "axes": (0, -1), "steps": steps}
    graph, inputs = single("Slice", [x], attrs)
    want = x[slice(starts[0], ends[0], steps[0]), slice(starts[1], ends[1], steps[1])]
    assert graph.types["y0"].shape == want.shape
    for opset in (13, 21):
        run_both(graph, inputs, opset)


@pytest.mark.parametrize("opset", [14, 15])
def test_shape_start_end_before_and_after_opset_15(opset: int) -> None:
    x = np.zeros((2, 3, 4, 5), dtype=np.float32)
    for attrs in ({"start": -3}, {"end": -1}, {"start": 1, "end": 100}, {"start": -100, "end": 2}):
        model = run_both(*single("Shape", [x], attrs), opset)
        assert onnx_ops(model) == (["Shape"] if opset >= 15 else ["Shape", "Slice"])


def test_range_and_constant_of_shape_build_from_attributes() -> None:
    x = np.zeros((2, 3), dtype=np.int8)
    run_both(*single("ConstantOfShape", [x], {}), 17)
    run_both(*single("ConstantOfShape", [x], {"dtype": "bool", "value": 1}), 17)
    run_both(*single("ConstantOfShape", [np.zeros((), np.float32)], {"dtype": "int64", "value": -3}), 17)
    graph, inputs = single("Range", [], {"start": 2.0, "limit": -1.25, "delta": -0.5, "dtype": "float32"})
    assert graph.types["y0"].shape == (7,)
    run_both(graph, inputs, 13)
