"""The validity step: a reduced graph that breaks the ONNX specification is an invalid test,
and one that conforms is never called invalid because of a checker defect."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

from fuzzer.graph.case import TestCase
from fuzzer.graph.export_onnx import with_explicit_defaults
from triage.pipeline import spec_violation


def case_of(node: onnx.NodeProto, shape=(2, 3, 2, 2), output_shape=None) -> TestCase:
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, output_shape or shape)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return TestCase(None, {"x": np.ones(shape, np.float32)}, model.SerializeToString(), 17, 0)


def test_mean_variance_normalization_with_its_default_axes_is_valid():
    """onnx 1.23's full checker fails on this valid node; written out, its default passes."""
    case = case_of(helper.make_node("MeanVarianceNormalization", ["x"], ["y"]))
    assert spec_violation(case) is None


def test_omitted_attributes_are_written_at_their_defaults_and_given_ones_kept():
    node = helper.make_node("LeakyRelu", ["x"], ["y"])
    model = with_explicit_defaults(onnx.load_from_string(case_of(node).model))
    assert {a.name: a.f for a in model.graph.node[0].attribute} == {"alpha": np.float32(0.01)}
    given = onnx.load_from_string(case_of(helper.make_node("LeakyRelu", ["x"], ["y"], alpha=0.5)).model)
    assert [(a.name, a.f) for a in with_explicit_defaults(given).graph.node[0].attribute] == [("alpha", 0.5)]


def test_a_model_that_contradicts_shape_inference_is_invalid():
    case = case_of(helper.make_node("Relu", ["x"], ["y"]), output_shape=(2, 3, 2, 5))
    assert spec_violation(case).startswith(("onnx.checker", "strict shape inference"))
