"""Backends own their knobs: culprit search sees only the hooks ``optimizations`` and
``without`` (and ``levels``, ``describe_culprit``), so a plugin that implements them gets it,
and every built-in backend's optimizations are the ones its ``without`` turns off."""

from __future__ import annotations

import numpy as np
import pytest

from fuzzer.execution.backends import builtin_backends, load_backend
from fuzzer.execution.backends.onnxruntime import OnnxRuntime
from fuzzer.execution.backends.torch_compile import INDUCTOR_OFF, Inductor
from fuzzer.execution.backends.tvm_relax import TvmRelax
from fuzzer.graph.case import TestCase
from fuzzer.graph.export_onnx import to_onnx_bytes
from fuzzer.graph.ir import DType, Graph, Input, Node, TensorType, Weight
from tests.helpers import culprit_of, fusion_case
from triage.culprit import Culprit, bisect, candidates_here, configured, tunable

PLUGIN = "tests.planted_backends:PlantedOptimizer"
TUNABLE = sorted(name for name, backend in builtin_backends().items() if tunable(backend))


def of_family(family: type) -> list[str]:
    return [name for name in TUNABLE if issubclass(builtin_backends()[name], family)]


def test_a_plugin_backend_gets_culprit_search_through_its_hooks(tmp_path):
    case = fusion_case()  # MatMul and Add: fold-matmul, fuse-bias and hoist-add apply
    assert candidates_here(PLUGIN, case) == ["fold-matmul", "fuse-bias", "hoist-add"]
    assert candidates_here(configured(PLUGIN, ["fuse-bias"]), case) == ["fold-matmul", "hoist-add"]
    assert culprit_of(tmp_path, case, PLUGIN) == Culprit(
        "planted-optimizer", "optimization", "fuse-bias",
        "planted-optimizer optimization fuse-bias: turning it off alone makes the finding vanish")


@pytest.mark.parametrize("name", ["onnx-ref", "torch", "aot-eager", "tests.planted_backends:PlantedBugs"])
def test_a_backend_without_the_hooks_has_no_culprit_search(name):
    def never(*arguments):
        raise AssertionError("nothing may be judged or probed")

    assert not tunable(load_backend(name))
    assert bisect(name, fusion_case(), never, candidates=never) is None
    with pytest.raises(TypeError, match="no optimizations that tcfuzz can turn off"):
        load_backend(configured(name))


@pytest.mark.parametrize("name", TUNABLE)
def test_a_configured_builtin_is_the_same_backend_at_its_level(name):
    backend = load_backend(name)
    variant = load_backend(configured(name, ["SomeOptimization"]))
    assert issubclass(variant, backend) and variant.name == name and variant.device == backend.device
    assert variant.description == f"{backend.description}, with SomeOptimization off"
    for level in backend.levels():
        assert backend.without((), level).levels() == backend.levels()[: backend.levels().index(level) + 1]


def transformed_case() -> TestCase:
    """MatMul, Add of a bias, Identity and a Mul by a constant subgraph: ONNX Runtime's rule-based
    transformers, ConstantFolding and MatMulAddFusion all change it."""
    rng = np.random.default_rng(1)
    row, bias = TensorType(DType.float32, (3, 5)), TensorType(DType.float32, (5,))
    graph = Graph(
        inputs=(Input("x", TensorType(DType.float32, (3, 4))),),
        weights=(Weight.from_array("w", rng.standard_normal((4, 5)).astype(np.float32)),
                 Weight.from_array("b", rng.standard_normal(5).astype(np.float32))),
        nodes=(Node("MatMul", ("x", "w"), ("m",), (row,)), Node("Add", ("m", "b"), ("a",), (row,)),
               Node("Identity", ("a",), ("i",), (row,)), Node("Add", ("b", "b"), ("c",), (bias,)),
               Node("Mul", ("i", "c"), ("y",), (row,))),
        outputs=("y",))
    return TestCase(graph, {"x": rng.standard_normal((3, 4)).astype(np.float32)}, to_onnx_bytes(graph, 17), 17, 0)


@pytest.mark.parametrize("name", [name for name in of_family(OnnxRuntime) if "cuda" not in name])
def test_onnxruntime_without_its_transformers_applies_none(name):
    case = transformed_case()
    on = candidates_here(name, case)
    assert ("MatMulAddFusion" in on) == (name != "ort-none")
    assert candidates_here(configured(name, on), case) == []
    variant = load_backend(configured(name, on))()
    variant.setup()
    outcome = variant.execute(case, lambda stage: None)
    assert outcome.ok, outcome.message
    weights = {weight.name: weight.array for weight in case.graph.weights}
    expected = (case.inputs["x"] @ weights["w"] + weights["b"]) * (2 * weights["b"])
    np.testing.assert_allclose(outcome.outputs["y"], expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", of_family(Inductor))
def test_inductor_without_its_switches_applies_none(name):
    """Inductor's optimizations do not depend on the case or on setup; that setup sets the
    switches is checked by tests/triage/test_culprit.py, which compiles."""
    backend = load_backend(name)
    on = backend().optimizations(fusion_case())
    assert on == list(INDUCTOR_OFF)
    variant = load_backend(configured(name, on))
    assert variant().optimizations(fusion_case()) == [] and variant.switched_off == tuple(INDUCTOR_OFF)


@pytest.mark.parametrize("name", of_family(TvmRelax))
def test_tvm_without_passes_builds_with_them_disabled(name):
    backend = load_backend(name)
    variant = load_backend(configured(name, ["FuseOps", "FuseTIRInner"]))
    assert variant.knobs() == {**backend.knobs(), "disabled_pass": ("FuseOps", "FuseTIRInner")}


@pytest.mark.slow
def test_tvm_without_its_fusion_passes_runs_none_of_them():
    """The lowering passes are required (without them the build fails), so only the optional
    passes that changed the module are turned off: none of them changes it any more."""
    case = fusion_case()
    on = candidates_here("tvm", case)
    optional = [name for name in on if name in ("AnnotateTIROpPattern", "FuseOps", "FuseTIRInner",
                                                "DeadCodeElimination", "tirx.StorageRewrite")]
    assert "FuseOps" in optional
    assert not set(candidates_here(configured("tvm", optional), case)) & set(optional)
