"""A backend with planted compiler bugs in single operator kernels, for triage tests.

``planted`` is the ONNX reference evaluator with three kernels replaced by faulty ones,
each wrong only under a condition, as real kernel bugs are:

- ``Mul`` adds 1 to its result when its inputs have different shapes (a broadcasting bug);
- ``Softmax`` segfaults when its axis is not the last one;
- ``Transpose`` raises when a permutation of rank 3 or more moves the last axis.

A test graph without these conditions runs correctly, so a finding points at one node,
and a reduced graph must keep that node and its condition. Load it as
``tests.planted_backends:PlantedBugs``.

``PlantedOptimizer`` is a plugin with a planted optimization bug, found by culprit search
through the backend hooks alone (``tests.planted_backends:PlantedOptimizer``).
"""

from __future__ import annotations

import ctypes
from typing import Any, ClassVar, Collection

import numpy as np

from fuzzer.execution.backends.onnx_reference import OnnxReference


def broadcasting_mul(self, a, b):
    product = np.multiply(a, b)
    return (product + np.ones((), product.dtype) if np.shape(a) != np.shape(b) else product,)


def crashing_softmax(self, x, axis=None):
    axis = self.axis if axis is None else axis
    if axis % max(np.ndim(x), 1) != np.ndim(x) - 1:
        ctypes.string_at(0)  # a null dereference in the kernel: SIGSEGV
    return super(type(self), self)._run(x, axis=axis)


def raising_transpose(self, x, perm=None):
    perm = self.perm if perm is None else perm
    if np.ndim(x) >= 3 and perm is not None and list(perm)[-1] != np.ndim(x) - 1:
        raise RuntimeError(f"transpose kernel: no tiling for permutation {list(perm)} of {x.shape}")
    return super(type(self), self)._run(x, perm=perm)


PLANTED_KERNELS = {"Mul": broadcasting_mul, "Softmax": crashing_softmax, "Transpose": raising_transpose}


class PlantedBugs(OnnxReference):
    name = "planted"
    description = "reference evaluator with planted bugs in its Mul, Softmax and Transpose kernels"
    role = "target"
    family = "planted"

    def setup(self) -> None:
        super().setup()
        from onnx.reference.ops import load_op

        self.load_op = load_op

    def compile(self, model: bytes) -> Any:
        import onnx

        opset = next(o.version for o in onnx.load_from_string(model).opset_import if o.domain in ("", "ai.onnx"))
        kernels = [type(name, (self.load_op("", name, opset),), {"_run": faulty})
                   for name, faulty in PLANTED_KERNELS.items()]
        return self.evaluator(model, new_ops=kernels)


# Make-believe optimizations, each applying to a model with its operator; fuse-bias is the bad one.
PLANTED_OPTIMIZATIONS = {"fold-matmul": "MatMul", "fuse-bias": "Add", "hoist-add": "Add", "drop-identity": "Identity"}


class PlantedOptimizer(OnnxReference):
    """The reference evaluator with the optimizations of ``PLANTED_OPTIMIZATIONS``; where the
    planted ``fuse-bias`` applies, every output is off by one. Its knobs are its own:
    ``optimizations`` and ``without`` are all that culprit search sees."""

    name = "planted-optimizer"
    description = "reference evaluator whose planted fuse-bias optimization is off by one"
    role = "target"
    family = "planted-optimizer"
    turned_off: ClassVar[tuple[str, ...]] = ()

    def applied(self, model: bytes) -> list[str]:
        import onnx

        ops = {node.op_type for node in onnx.load_from_string(model).graph.node}
        return [name for name, op in PLANTED_OPTIMIZATIONS.items() if op in ops and name not in self.turned_off]

    def optimizations(self, case) -> list[str]:
        return self.applied(case.model)

    @classmethod
    def without(cls, disabled: Collection[str], level: str | None = None) -> type[PlantedOptimizer]:
        return cls.variant(disabled, turned_off=cls.turned_off + tuple(disabled))

    def compile(self, model: bytes) -> Any:
        return super().compile(model), "fuse-bias" in self.applied(model)

    def run(self, compiled: Any, inputs) -> list[Any]:
        evaluator, off_by_one = compiled
        outputs = super().run(evaluator, inputs)
        return [output + 1 for output in outputs] if off_by_one else outputs


BACKENDS = ("tests.planted_backends:PlantedBugs", "onnx-ref", "ref-f64")


def planted_graph():
    """Ten nodes over two inputs and two outputs; only node 4, a broadcasting Mul, trips
    the planted bug."""
    from fuzzer.graph.ir import DType
    from tests.helpers import Builder

    builder = Builder()
    x, y = builder.input("x", DType.float32, (2, 3, 4)), builder.input("y", DType.float32, (2, 3, 4))
    w = builder.weight("w", np.linspace(0.5, 1.5, 4).astype(np.float32))
    value = builder.node("Neg", builder.node("Add", builder.node("Sigmoid", builder.node("Relu", x)), y))
    value = builder.node("Tanh", builder.node("Mul", value, w))
    magnitude = builder.node("Abs", y)
    exponent = builder.node("Exp", magnitude)
    return builder.graph(builder.node("Add", builder.node("Sub", value, magnitude), exponent), exponent)


def record_findings(store, evaluator, case) -> list[int]:
    """Run ``case`` through ``evaluator`` and store its findings as a campaign would."""
    outcomes = evaluator.outcomes_many([case])[0]
    return [store.record_finding(test_index=case.index, seed=case.seed, finding=finding,
                                 graph_json=case.graph.to_json(), case_hash=case.graph.content_hash,
                                 model=case.model, inputs=case.inputs, outcomes=outcomes, versions={})
            for finding in evaluator.judge(case, outcomes)]
