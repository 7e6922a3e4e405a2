"""Every operator spec, checked against ONNX itself: shape inference, the checker, the
reference evaluator, and the spec's torch lowering (which must agree with the reference)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx.reference import ReferenceEvaluator

from fuzzer.graph.export_torch import to_module
from fuzzer.generation.generator import GeneratorOptions, generate_case
from fuzzer.graph.ir import DType
from fuzzer.graph.export_onnx import DEFAULT_OPSET, to_onnx
from fuzzer.graph.ops import all_specs, get_spec
from fuzzer.graph.values import to_numpy, to_torch

GRAPHS_PER_OP = 12
# the reference evaluator computes some float64 ops (Erf) in float32
LOOSE = {DType.float16: 2e-2, DType.bfloat16: 8e-2, DType.float32: 1e-4, DType.float64: 1e-6}


def cases_for(op: str):
    options = GeneratorOptions(nodes=1, ops=frozenset({op}), opset=max(DEFAULT_OPSET, get_spec(op).since))
    for seed in range(GRAPHS_PER_OP):
        case = generate_case(seed, options)
        if any(node.op == op for node in case.graph.nodes):
            yield case


def assert_close(actual: np.ndarray, expected: np.ndarray, dtype: DType, where: str) -> None:
    assert actual.shape == expected.shape, f"{where}: shape {actual.shape} != {expected.shape}"
    if dtype.is_float:
        a, e = actual.astype(np.float64), expected.astype(np.float64)
        both_nan = np.isnan(a) & np.isnan(e)
        tol = LOOSE[dtype]
        ok = both_nan | (a == e) | (np.abs(a - e) <= tol + tol * np.abs(e))
        assert ok.all(), f"{where}: max error {np.nanmax(np.abs(a - e))}\n{a}\n{e}"
    else:
        np.testing.assert_array_equal(actual, expected, err_msg=where)


def run_both(graph, inputs: dict[str, np.ndarray], opset: int) -> onnx.ModelProto:
    """ONNX checker, strict shape inference, and the reference evaluator against torch."""
    import torch

    model = to_onnx(graph, opset)
    onnx.checker.check_model(model, full_check=True)
    onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    expected = ReferenceEvaluator(model).run(None, inputs)
    with torch.no_grad():
        actual = to_module(graph)(*(to_torch(inputs[i.name]) for i in graph.inputs))
    for name, want, got in zip(graph.outputs, expected, actual):
        declared = graph.types[name]
        got, want = to_numpy(got), np.asarray(want)
        assert got.dtype == want.dtype == declared.dtype.numpy, f"{name}: {got.dtype}, {want.dtype}, {declared}"
        assert_close(got, want, declared.dtype, f"opset {opset} {name}\n{graph}")
    return model


@pytest.mark.parametrize("op", sorted(s.name for s in all_specs()))
def test_operator_matches_onnx(op: str) -> None:
    import torch

    checked = 0
    for case in cases_for(op):
        model = onnx.load_from_string(case.model)
        onnx.checker.check_model(model, full_check=True)
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
        inferred_types = {v.name: v.type.tensor_type for v in
                          list(inferred.graph.value_info) + list(inferred.graph.output)}
        for node in case.graph.nodes:
            for name, declared in zip(node.outputs, node.output_types):
                if name not in inferred_types:
                    continue
                tensor_type = inferred_types[name]
                assert DType.from_onnx(tensor_type.elem_type) is declared.dtype, f"{op} {name}"
                dims = tuple(d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim)
                assert all(d is None or d == e for d, e in zip(dims, declared.shape)) and \
                    len(dims) == declared.rank, f"{op}: ONNX infers {dims}, spec says {declared}"
        expected = ReferenceEvaluator(model).run(None, dict(case.inputs))
        with torch.no_grad():
            actual = to_module(case.graph)(*(to_torch(case.inputs[i.name]) for i in case.graph.inputs))
        for name, want, got in zip(case.graph.outputs, expected, actual):
            declared = case.graph.types[name]
            got = to_numpy(got)
            assert got.dtype == declared.dtype.numpy, f"{op}: torch gives {got.dtype} for {declared}"
            assert np.asarray(want).dtype == declared.dtype.numpy, f"{op}: reference gives {want.dtype}"
            assert_close(got, np.asarray(want), declared.dtype, f"{op} {name}\n{case.graph}")
        checked += 1
    assert checked >= GRAPHS_PER_OP // 2, f"{op}: only {checked} graphs contained the operator"
