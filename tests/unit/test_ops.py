"""Every operator spec, checked against ONNX itself: shape inference, the checker, the
reference evaluator, and the spec's torch lowering (which must agree with the reference)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from fuzzer.graph.export_torch import to_module
from fuzzer.generation.generator import GeneratorOptions, generate_case
from fuzzer.graph.ir import DType
from fuzzer.graph.export_onnx import DEFAULT_OPSET, with_explicit_defaults
from fuzzer.graph.ops import all_specs, get_spec
from fuzzer.graph.values import to_numpy, to_torch
from tests.helpers import assert_close, reference_evaluator

GRAPHS_PER_OP = 12


def cases_for(op: str):
    options = GeneratorOptions(nodes=1, ops=frozenset({op}), opset=max(DEFAULT_OPSET, get_spec(op).since))
    for seed in range(GRAPHS_PER_OP):
        case = generate_case(seed, options)
        if any(node.op == op for node in case.graph.nodes):
            yield case


@pytest.mark.parametrize("op", sorted(s.name for s in all_specs()))
def test_operator_matches_onnx(op: str) -> None:
    import torch

    checked = 0
    for case in cases_for(op):
        model = onnx.load_from_string(case.model)
        onnx.checker.check_model(with_explicit_defaults(model), full_check=True)
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
        expected = reference_evaluator(model).run(None, dict(case.inputs))
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
