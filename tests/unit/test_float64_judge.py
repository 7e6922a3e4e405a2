"""The float64 judge (``ref-f64``) on the cases where hand-judging a campaign found it, not the
compiler, on the wrong side: each test is a tiny graph with the backends' honest answers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from fuzzer.graph.ir import DType
from fuzzer.graph.ops.indexing import resize_skipping_zero_taps, torch_resize
from oracles.precision import evaluate_reference
from tests.helpers import Builder, blamed, declared, verdict

F32_SIXTH = float(np.float32(1 / 6))


def test_sign_of_nan_is_left_undefined():
    b = Builder()
    b.node("Sign", b.input("x", DType.float32, (3,)), outputs=("y",))
    x = np.float32([np.nan, -2.0, 3.0])
    result = verdict(b.graph("y"), {"x": x}, {"propagates": {"y": [np.nan, -1, 1]}, "zero": {"y": [0, -1, 1]}})
    assert result.findings == []


def test_resize_taps_of_weight_zero_make_no_nan():
    """Upsampling [1, Inf, 2]: the first output weighs the Inf by 0, which compilers skip."""
    b = Builder()
    b.node("Resize", b.input("x", DType.float32, (1, 1, 3)), outputs=("y",), mode="linear", sizes=(1, 1, 6))
    graph = b.graph("y")
    x = np.float32([[[1.0, np.inf, 2.0]]])
    skipping = np.float32([[[1.0, np.inf, np.inf, np.inf, np.inf, 2.0]]])
    assert np.array_equal(evaluate_reference(graph, {"x": x})["y"], skipping)
    multiplying = skipping.copy()
    multiplying[..., 0] = np.nan
    assert verdict(graph, {"x": x}, {"skips": {"y": skipping}, "multiplies": {"y": multiplying}}).findings == []


@pytest.mark.parametrize("mode", ["linear", "cubic"])
def test_resize_judge_equals_interpolation_on_finite_values(mode):
    x = torch.randn((1, 3, 5, 7), dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    attrs = {"mode": mode, "sizes": (1, 3, 9, 4)}
    assert torch.allclose(resize_skipping_zero_taps([x], attrs), torch_resize([x], attrs), rtol=1e-12, atol=1e-12)


def test_resize_judge_needs_the_memory_of_its_output_only():
    """A 64-channel cubic upsampling of 128x128 to 256x256 once took gigabytes: every input
    position was weighed for every output position. Measured in a process of its own."""
    script = (
        "import resource, torch\n"
        "from fuzzer.graph.ops.indexing import resize_skipping_zero_taps\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "y = resize_skipping_zero_taps([torch.ones((1, 64, 128, 128), dtype=torch.float64)],\n"
        "                              {'mode': 'cubic', 'sizes': (1, 64, 256, 256)})\n"
        "assert torch.allclose(y, torch.ones_like(y))\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)\n")
    grown_kib = int(subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                                   cwd=Path(__file__).parents[2]).stdout)
    assert grown_kib < 512 * 1024  # the output is 32 MiB; the old way needed over 2 GiB


def test_hard_swish_uses_its_float32_alpha():
    """1 / HardSwish(x) just above -3: x * (x / 6 + 0.5) and x * (float32(1/6) * x + 0.5) differ by
    a third there, and the ONNX model holds the float32 alpha."""
    b = Builder()
    b.node("Reciprocal", b.node("HardSwish", b.input("x", DType.float32, (1,))), outputs=("y",))
    graph = b.graph("y")
    x = np.nextafter(np.float32([-3.0]), np.float32(0))
    wide = x.astype(np.float64)
    onnx = (1 / np.float32(wide * np.clip(F32_SIXTH * wide + 0.5, 0, 1))).astype(np.float32)
    result = verdict(graph, {"x": x}, {"onnx": {"y": onnx}, "torch": declared(graph, {"x": x})})
    assert result.findings == []


def test_batch_normalization_uses_its_float32_epsilon():
    """A float64 BatchNormalization with epsilon 0.1 (float32 in the model), then a cancellation
    that leaves 1e-4 of it: the epsilon's float32 rounding shows at 7e-6 of the result."""
    b = Builder()
    channel = [b.weight(name, np.array([value])) for name, value in
               (("scale", 1.0), ("bias", 0.0), ("mean", 0.0), ("var", 1.0))]
    normalized = b.node("BatchNormalization", b.input("x", DType.float64, (1, 1)), *channel, epsilon=0.1)
    near = np.array([[0.9999 * 2 / np.sqrt(1.1)]])
    b.node("Reciprocal", b.node("Sub", normalized, b.weight("near", near)), outputs=("y",))
    onnx = 1 / (2 / np.sqrt(1 + float(np.float32(0.1))) - near)
    assert verdict(b.graph("y"), {"x": np.array([[2.0]])}, {"onnx": {"y": onnx}}).findings == []


def test_float16_overflow_between_nodes_blames_no_backend():
    """(x * x) - (x * x) at x = 300: float16 overflows to Inf, Inf - Inf is NaN; a fused kernel
    that keeps the product in float32 gets 0, as float64 does. Neither is blamed."""
    b = Builder()
    square = b.node("Mul", b.input("x", DType.float16, (2,)), "x")
    b.node("Sub", square, square, outputs=("y",))
    graph = b.graph("y")
    x = np.float16([300.0, 2.0])
    result = verdict(graph, {"x": x}, {"per-node": {"y": [np.nan, 0]}, "fused": {"y": [0, 0]},
                                         "wrong": {"y": [np.nan, 1]}})
    assert blamed(result) == {"wrong"}


def test_float16_overflow_inside_an_operator_blames_no_backend():
    """InstanceNormalization of values near 200 in float16: the sum of squares overflows, the
    variance is Inf and the output is the bias (channel 0); channel 1 stays in range."""
    b = Builder()
    scale, bias = b.weight("scale", np.float16([1.0, 1.0])), b.weight("bias", np.float16([0.5, -0.5]))
    b.node("InstanceNormalization", b.input("x", DType.float16, (1, 2, 2, 2)), scale, bias, outputs=("y",),
           epsilon=1e-5)
    graph = b.graph("y")
    x = np.float16([[[[200, -150], [180, -210]], [[1, 2], [3, 4]]]])
    wide = declared(graph, {"x": x})["y"]
    narrow = wide.copy()
    narrow[0, 0] = 0.5
    wrong = narrow.copy()
    wrong[0, 1, 0, 0] = 7.0
    result = verdict(graph, {"x": x}, {"wide": {"y": wide}, "narrow": {"y": narrow}, "wrong": {"y": wrong}})
    assert blamed(result) == {"wrong"}


def test_prelu_keeps_zero_whatever_the_slope():
    """ONNX PRelu is x for x >= 0: 0 stays 0 even with a NaN slope (the judge made 0 * NaN)."""
    b = Builder()
    b.node("PRelu", b.input("x", DType.float32, (2,)), b.input("slope", DType.float32, (2,)), outputs=("y",))
    graph = b.graph("y")
    inputs = {"x": np.float32([0.0, -1.0]), "slope": np.float32([np.nan, 0.5])}
    assert np.array_equal(evaluate_reference(graph, inputs)["y"], [0.0, -0.5])
    assert verdict(graph, inputs, {"onnx": {"y": [0.0, -0.5]}}).findings == []


def test_quantized_graphs_are_judged_and_a_flip_on_a_rounding_tie_blames_no_backend():
    """x * 1.25 quantized at scale 1: 2 * 1.25 = 2.5 is a tie (to even: 2). One ulp of the
    product either way rounds to 2 or 3, so a backend that gets 3 there is not to blame; one
    that is off by one where the product is 1.25 is."""
    b = Builder()
    product = b.node("Mul", b.input("x", DType.float32, (2,)), b.weight("k", np.float32([1.25, 1.25])))
    b.node("QuantizeLinear", product, b.weight("s", np.float32(1.0)), b.weight("z", np.uint8(10)), outputs=("y",))
    graph = b.graph("y")
    x = np.float32([2.0, 1.0])
    assert evaluate_reference(graph, {"x": x})["y"].tolist() == [12, 11]
    result = verdict(graph, {"x": x}, {"tie": {"y": np.uint8([13, 11])}, "wrong": {"y": np.uint8([12, 12])},
                                       "honest": {"y": np.uint8([12, 11])}})
    assert blamed(result) == {"wrong"}


def test_control_flow_bodies_are_judged_in_float64():
    """A Loop adding 0.1 (float32's 0.1) three times: the judge's body runs in float64, where
    the sum is exact to float64; at float32 it would be 0.3000000119."""
    from fuzzer.graph.ir import Graph, Input, Node, TensorType, Weight

    x = TensorType(DType.float32, (1,))
    body = Graph((Input("i", TensorType(DType.int64, ())), Input("v", x)),
                 (Weight.from_array("tenth", np.float32([0.1])),), (Node("Add", ("v", "tenth"), ("s",), (x,)),), ("s",))
    graph = Graph((Input("x", x),), (), (Node("Loop", ("x",), ("y",), (x,), (("body", body), ("trip_count", 3))),),
                  ("y",))
    judged = evaluate_reference(graph, {"x": np.float32([0.0])})["y"]
    assert judged.dtype == np.float64 and judged[0] == 3 * float(np.float32(0.1))
