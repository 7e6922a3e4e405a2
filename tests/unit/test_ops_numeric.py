"""Extra checks for the linalg, pooling, normalization and reduction specs: every opset
lowers and agrees with the reference evaluator, window geometry, and tie and no-op rules."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from fuzzer.graph.export_onnx import SUPPORTED_OPSETS
from fuzzer.graph.export_torch import to_module
from fuzzer.generation.generator import GeneratorOptions, generate_case
from fuzzer.graph.ir import DType, Graph, Input, Node, TensorType
from fuzzer.graph.ops import Family, all_specs, get_spec
from fuzzer.graph.ops.linalg import sliding_axes
from fuzzer.graph.rejected import ShapeError
from fuzzer.graph.values import to_numpy, to_torch
from tests.helpers import run_both

FAMILIES = (Family.LINALG, Family.POOLING, Family.NORMALIZATION, Family.REDUCTION)
OPS = sorted(s.name for s in all_specs() if s.family in FAMILIES)
SEEDS_PER_OPSET = 6


def single_node(op: str, x: np.ndarray, attrs: dict) -> tuple[Graph, dict[str, np.ndarray]]:
    x_type = TensorType(DType.from_numpy(x.dtype), x.shape)
    outputs = get_spec(op).infer((x_type,), attrs)
    names = tuple(f"y{i}" for i in range(len(outputs)))
    node = Node(op, ("x",), names, tuple(outputs), tuple(attrs.items()))
    graph = Graph((Input("x", x_type),), (), (node,), names)
    return graph, {"x": x}


@pytest.mark.parametrize("op", OPS)
def test_every_opset_lowers_and_agrees(op: str) -> None:
    spec = get_spec(op)
    for opset in SUPPORTED_OPSETS:
        if opset < spec.since:
            continue
        for seed in range(SEEDS_PER_OPSET):
            case = generate_case(seed, GeneratorOptions(nodes=1, ops=frozenset({op}), opset=opset))
            onnx.checker.check_model(onnx.load_from_string(case.model), full_check=True)
            if op == "BatchNormalization" and opset < 14:
                continue  # the opset-9 reference reads the default momentum as training mode
            run_both(case.graph, dict(case.inputs), opset, strict=False)


def test_sliding_axes_follow_onnx() -> None:
    def geometry(attrs, ceil_mode=False):
        return [(a.begin, a.end, a.out) for a in sliding_axes((5,), (2,), attrs, ceil_mode)]

    assert geometry({"strides": (2,), "auto_pad": "SAME_UPPER"}) == [(0, 1, 3)]
    assert geometry({"strides": (2,), "auto_pad": "SAME_LOWER"}) == [(1, 0, 3)]
    assert geometry({"strides": (2,), "dilations": (2,), "auto_pad": "SAME_UPPER"}) == [(1, 1, 3)]
    assert geometry({"strides": (2,), "auto_pad": "VALID"}) == [(0, 0, 2)]
    assert geometry({"strides": (2,), "pads": (1, 0)}) == [(1, 0, 3)]
    assert geometry({"strides": (2,)}, ceil_mode=True) == [(0, 0, 3)]
    with pytest.raises(ShapeError):
        sliding_axes((2,), (3,), {})


@pytest.mark.parametrize("op", ["ReduceSum", "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceSumSquare",
                                "ReduceMean", "ReduceProd"])
@pytest.mark.parametrize("opset", [13, 17, 18])
def test_noop_with_empty_axes_keeps_elementwise_steps(op: str, opset: int) -> None:
    """Below the opset that has noop_with_empty_axes the lowering reduces a new unit axis."""
    x = np.random.default_rng(0).uniform(0.5, 2.0, (2, 3)).astype(np.float32)
    graph, inputs = single_node(op, x, {"axes": (), "keepdims": 1, "noop_with_empty_axes": 1})
    assert graph.types["y0"].shape == (2, 3)
    run_both(graph, inputs, opset, strict=False)


def test_topk_breaks_ties_by_lower_index() -> None:
    x = np.array([[1, 3, 3, 1, 2]], dtype=np.int32)
    for largest, values, indices in [(1, [3, 3, 2], [1, 2, 4]), (0, [1, 1, 2], [0, 3, 4])]:
        graph, inputs = single_node("TopK", x, {"axis": -1, "k": 3, "largest": largest, "sorted": 1})
        run_both(graph, inputs, 17, strict=False)
        got = to_module(graph)(to_torch(x))
        assert to_numpy(got[0]).tolist() == [values] and to_numpy(got[1]).tolist() == [indices]


@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
@pytest.mark.parametrize("select_last_index", [0, 1])
def test_arg_reduce_ties(op: str, select_last_index: int) -> None:
    x = np.array([[2, 0, 2, 0], [1, 1, 1, 1]], dtype=np.int8)
    graph, inputs = single_node(op, x, {"axis": 1, "keepdims": 0, "select_last_index": select_last_index})
    run_both(graph, inputs, 17, strict=False)
