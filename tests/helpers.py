"""Helpers that test modules in several directories share: the repository root and the command
line, hand-built graphs and outcomes, the operator checks against ONNX, and small planted cases.

Test modules import from here, never from one another. Fixtures live in the ``conftest.py``
of the nearest directory that uses them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx.reference import ReferenceEvaluator
from onnx.reference.op_run import OpRun

from fuzzer.campaign.config import CampaignConfig
from fuzzer.campaign.driver import Campaign, start_run
from fuzzer.graph.case import TestCase
from fuzzer.execution.outcome import Outcome, Stage, Status
from fuzzer.graph.export_onnx import to_onnx, to_onnx_bytes
from fuzzer.graph.ir import DType, Graph, Input, Node, TensorType, Weight, infer_outputs
from fuzzer.graph.ops import get_spec
from fuzzer.store import RunStore
from oracles.precision import REFERENCE, evaluate_reference, promote_to_float64
from oracles.tolerance import DEFAULT_POLICY, along_paths
from oracles.verdict import judge
from triage.culprit import find_culprit
from triage.rerun import Evaluator, find_stored

ROOT = Path(__file__).resolve().parent.parent  # the repository
TCFUZZ = Path(sys.executable).with_name("tcfuzz")  # the installed command


def tcfuzz(*args: str, installed: bool = False, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    """``tcfuzz ARGS`` run from the repository root, its output captured as text: through
    ``python -m fuzzer.cli``, or the installed ``tcfuzz`` script where ``installed``."""
    command = [str(TCFUZZ)] if installed else [sys.executable, "-m", "fuzzer.cli"]
    return subprocess.run([*command, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, **kwargs)


# --- outcomes and hand-built graphs ------------------------------------------------------


def ok(backend: str, **outputs: np.ndarray) -> Outcome:
    """``backend`` ran and returned ``outputs``."""
    return Outcome(backend, Status.OK, Stage.RUN, outputs)


class Builder:
    """A small graph written by hand, node types from the specs' shape inference."""

    def __init__(self) -> None:
        self.inputs: list[Input] = []
        self.weights: list[Weight] = []
        self.nodes: list[Node] = []
        self.types: dict[str, TensorType] = {}

    def input(self, name: str, dtype: DType, shape: tuple[int, ...]) -> str:
        self.inputs.append(Input(name, TensorType(dtype, shape)))
        self.types[name] = self.inputs[-1].type
        return name

    def weight(self, name: str, array: np.ndarray) -> str:
        self.weights.append(Weight.from_array(name, np.asarray(array)))
        self.types[name] = self.weights[-1].type
        return name

    def node(self, op: str, *inputs: str, outputs: tuple[str, ...] = (), **attrs) -> str:
        outputs = outputs or (f"v{len(self.nodes)}",)
        inferred = infer_outputs(op, tuple(self.types[name] for name in inputs), attrs, outputs)
        self.nodes.append(Node(op, inputs, outputs, inferred, tuple(attrs.items())))
        self.types.update(zip(outputs, inferred))
        return outputs[0]

    def graph(self, *outputs: str) -> Graph:
        return Graph(tuple(self.inputs), tuple(self.weights), tuple(self.nodes), outputs)


def verdict(graph: Graph, inputs: dict[str, np.ndarray], backends: dict[str, dict[str, np.ndarray]]):
    """Judge hand-made backend outputs against the real float64 reference of ``graph``."""
    expected = {name: graph.types[name] for name in graph.outputs}
    reference = Outcome(REFERENCE, Status.OK, Stage.RUN, evaluate_reference(graph, inputs))
    outcomes = [Outcome(b, Status.OK, Stage.RUN, {n: np.asarray(v, dtype=expected[n].dtype.numpy)
                                                  for n, v in outs.items()}) for b, outs in backends.items()]
    return judge(expected, outcomes + [reference], along_paths(graph, DEFAULT_POLICY), graph)


def assert_judged_in_float64(graph: Graph, seed: int) -> None:
    """Promotion leaves no float32 result in ``graph``, and the float64 judge evaluates it."""
    from fuzzer.graph.values import random_inputs

    for node in promote_to_float64(graph).nodes:
        assert all(t.dtype is not DType.float32 for t in node.output_types), f"{node}"
    values = evaluate_reference(graph, random_inputs(graph, seed))
    assert all(name in values for name in graph.outputs)


def declared(graph: Graph, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """What an honest backend computing at the declared precision returns (plain torch)."""
    values = evaluate_reference(graph, inputs)
    return {name: values[f"@ref:declared:{name}"] for name in graph.outputs}


def blamed(result) -> set[str]:
    """The backends a verdict's findings blame."""
    return {f.backends[0] for f in result.findings}


# --- operators against ONNX --------------------------------------------------------------

def spec_requantized(accumulated: np.ndarray, ratio, y_zero_point) -> tuple[np.ndarray]:
    """ONNX's requantization, ``saturate(round(x / y_scale) + y_zero_point)``: rounded (half to
    even) before the zero point is added."""
    dtype = np.asarray(y_zero_point).dtype
    info = np.iinfo(dtype)
    rounded = np.rint(accumulated * np.float64(ratio)) + np.asarray(y_zero_point).astype(np.int64)
    return (np.clip(rounded, info.min, info.max).astype(dtype),)


class QLinearMatMul(OpRun):
    """onnx.reference's QLinearMatMul rounds after adding the zero point (a known judge defect,
    oracles.judge_defects); the operator tests check against ONNX's formula instead."""

    def _run(self, a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point):
        product = np.matmul(a.astype(np.int64) - a_zero_point, b.astype(np.int64) - b_zero_point)
        return spec_requantized(product, a_scale * b_scale / y_scale, y_zero_point)


class QLinearConv(OpRun):
    """QLinearConv with ONNX's requantization (see QLinearMatMul), on the reference's convolution."""

    def _run(self, x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point, B=None,
             auto_pad=None, dilations=None, group=None, kernel_shape=None, pads=None, strides=None):
        from onnx.reference.ops.op_conv import _conv_implementation

        accumulated = _conv_implementation(
            x.astype(np.int64) - x_zero_point, w.astype(np.int64) - w_zero_point, B, auto_pad or self.auto_pad,
            dilations or self.dilations, group or self.group, kernel_shape or self.kernel_shape, pads or self.pads,
            strides or self.strides)
        return spec_requantized(accumulated, x_scale * w_scale / y_scale, y_zero_point)


def reference_evaluator(model) -> ReferenceEvaluator:
    """onnx.reference with its known defects that the operator tests would trip on corrected."""
    return ReferenceEvaluator(model, new_ops=[QLinearMatMul, QLinearConv])


# the reference evaluator computes some float64 ops (Erf) in float32
LOOSE = {DType.float16: 2e-2, DType.bfloat16: 8e-2, DType.float32: 1e-4, DType.float64: 1e-6}


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


def run_both(graph, inputs: dict[str, np.ndarray], opset: int, strict: bool = True) -> onnx.ModelProto:
    """ONNX checker and the reference evaluator against torch; where ``strict``, also strict
    shape inference and outputs of the declared dtype."""
    import torch

    from fuzzer.graph.export_torch import to_module
    from fuzzer.graph.values import to_numpy, to_torch

    model = to_onnx(graph, opset)
    onnx.checker.check_model(model, full_check=True)
    if strict:
        onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    expected = reference_evaluator(model).run(None, inputs)
    with torch.no_grad():
        actual = to_module(graph)(*(to_torch(inputs[i.name]) for i in graph.inputs))
    for name, want, got in zip(graph.outputs, expected, actual):
        declared = graph.types[name]
        got, want = to_numpy(got), np.asarray(want)
        if strict:
            assert got.dtype == want.dtype == declared.dtype.numpy, f"{name}: {got.dtype}, {want.dtype}, {declared}"
        assert_close(got, want, declared.dtype, f"opset {opset} {name}\n{graph}")
    return model

def weight(name: str, array: np.ndarray) -> Weight:
    """A weight holding ``array`` (its dtype and shape)."""
    array = np.asarray(array)
    return Weight(name, TensorType(DType.from_numpy(array.dtype), array.shape), array.tobytes())


def single_node(op: str, inputs: list[np.ndarray], attrs: dict, weights: tuple[Weight, ...] = (),
                opset: int = 20) -> list[np.ndarray]:
    """One node of ``op`` reading graph inputs then ``weights``, checked by :func:`run_both`
    against the reference; torch's outputs."""
    import torch

    from fuzzer.graph.export_torch import to_module
    from fuzzer.graph.values import to_numpy, to_torch

    graph_inputs = tuple(Input(f"x{k}", TensorType(DType.from_numpy(a.dtype), a.shape)) for k, a in enumerate(inputs))
    names = tuple(i.name for i in graph_inputs) + tuple(w.name for w in weights)
    types = tuple(i.type for i in graph_inputs) + tuple(w.type for w in weights)
    outputs = get_spec(op).infer(types, attrs)
    out_names = tuple(f"y{k}" for k in range(len(outputs)))
    graph = Graph(graph_inputs, tuple(weights), (Node(op, names, out_names, tuple(outputs), tuple(attrs.items())),),
                  out_names)
    feeds = {i.name: a for i, a in zip(graph_inputs, inputs)}
    run_both(graph, feeds, opset)
    with torch.no_grad():
        result = to_module(graph)(*(to_torch(feeds[i.name]) for i in graph.inputs))
    return [to_numpy(r) for r in result]



# --- planted cases -----------------------------------------------------------------------

T = TensorType(DType.float32, (2, 3))
ROW = TensorType(DType.float32, (3,))


def case_of(node: Node, inputs: dict[str, TensorType]) -> TestCase:
    """A one-node test case at opset 17 with standard-normal inputs."""
    graph = Graph(tuple(Input(n, t) for n, t in inputs.items()), (), (node,), node.outputs)
    rng = np.random.default_rng(1)
    arrays = {n: rng.standard_normal(t.shape).astype(np.float32) for n, t in inputs.items()}
    return TestCase(graph, arrays, to_onnx_bytes(graph, 17), 17, 0)


BROADCAST = case_of(Node("Add", ("a", "b"), ("y",), (T,)), {"a": T, "b": ROW})


def fusion_case() -> TestCase:
    """MatMul then Add of a bias: ONNX Runtime's MatMulAddFusion makes it a Gemm."""
    rng = np.random.default_rng(0)
    graph = Graph(
        inputs=(Input("x", TensorType(DType.float32, (3, 4))),),
        weights=(Weight.from_array("w", rng.standard_normal((4, 5)).astype(np.float32)),
                 Weight.from_array("b", rng.standard_normal(5).astype(np.float32))),
        nodes=(Node("MatMul", ("x", "w"), ("m",), (TensorType(DType.float32, (3, 5)),)),
               Node("Add", ("m", "b"), ("y",), (TensorType(DType.float32, (3, 5)),))),
        outputs=("y",))
    return TestCase(graph, {"x": rng.standard_normal((3, 4)).astype(np.float32)}, to_onnx_bytes(graph, 17), 17, 0)


def culprit_of(tmp_path: Path, case: TestCase, backend: str):
    """The culprit (a ``triage.culprit.Culprit`` or None) of the one finding ``backend`` shows
    on ``case`` against the ONNX reference, found as triage finds it: from a stored finding."""
    config = CampaignConfig(backends=("onnx-ref", backend), reference="onnx-ref")
    with RunStore.create(tmp_path / "run", {"campaign": config.to_dict()}) as store:
        with Evaluator.from_config(store.config) as evaluator:
            (finding,) = evaluator.evaluate(case)
        finding_id = store.record_finding(test_index=0, seed=0, finding=finding, graph_json=case.graph.to_json(),
                                          case_hash=case.graph.content_hash, model=case.model, inputs=case.inputs,
                                          outcomes=[], versions={})
        return find_culprit(store.config, case, find_stored(store, finding_id))


def run_with_findings(run_dir: Path, seed: int) -> RunStore:
    """The store of a short real campaign: two fast backends and one that answers wrongly on
    every 4th test."""
    config = CampaignConfig(backends=("ort-none", "onnx-ref", "tests.fault_backends:WrongAnswer"), seed=seed,
                            nodes=3, max_tests=12, reference="onnx-ref", input_budget=None)
    store = start_run(config, run_dir)
    Campaign(config, store).run()
    return store
