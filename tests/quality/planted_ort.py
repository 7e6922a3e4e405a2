"""ONNX Runtime with planted bugs, for the triage quality tests.

Each backend is ONNX Runtime (no graph optimizations) whose "compiler" first rewrites the
model with a bug that real kernels and passes have had, at the node that triggers it, so
only values computed from that node are wrong:

- ``PlantedBroadcast``: an Add or Mul whose inputs have different shapes doubles its
  result (a broadcasting slip);
- ``PlantedSliceOffByOne``: a Slice's loop stops one element early along the last axis;
- ``PlantedReduceAxis``: a ReduceMean divides by the size of the wrong axis;
- ``PlantedAbort``: a Concat along axis 0 aborts the process;
- ``PlantedIdentity``: an Identity doubles its input (found by the metamorphic oracle's
  ``identity_chain`` rewrite on graphs without Identity);
- ``PlantedShapeSlip``: a Relu drops the last element of its last axis (a tail-loop bug):
  a shape mismatch where its result is an output, an error where a consumer needs the
  right shape (a consequence of the same bug);
- ``PlantedDtypeSlip``: a Sigmoid that is a graph output returns float64.

``PlantedFusion`` is ONNX Runtime at the extended level whose result is off by one whenever
its MatMulAddFusion transformer turned a MatMul and an Add into a Gemm: a bug that lives in
one graph optimization, for culprit bisection.

Each backend's ``repro_source`` carries its bug, as a compiler's own code would. Load them
as ``tests.quality.planted_ort:ClassName``.
"""

from __future__ import annotations

import inspect
import os
import tempfile

from fuzzer.execution.backends.onnxruntime import OnnxRuntime


def with_shapes(model: bytes):
    """The model with inferred shapes, and each value's shape by name."""
    import onnx

    proto = onnx.shape_inference.infer_shapes(onnx.load_from_string(model))
    shapes = {value.name: [d.dim_value for d in value.type.tensor_type.shape.dim]
              for value in [*proto.graph.input, *proto.graph.value_info, *proto.graph.output]}
    shapes.update({tensor.name: list(tensor.dims) for tensor in proto.graph.initializer})
    return proto, shapes


def corrupt_outputs(model: bytes, triggers, corruption) -> bytes:
    """``model`` with every node for which ``triggers(node, shapes, proto)`` holds followed by the
    nodes ``corruption(node, value, result)`` returns: they turn the node's true output
    ``value`` into the buggy ``result`` that its consumers then read."""
    proto, shapes = with_shapes(model)
    nodes = []
    for index, node in enumerate(proto.graph.node):
        nodes.append(node)
        if triggers(node, shapes, proto):
            result = node.output[0]
            value = f"{result}__true{index}"
            node.output[0] = value
            nodes.extend(corruption(node, value, result, proto, shapes))
    del proto.graph.node[:]
    proto.graph.node.extend(nodes)
    proto.graph.ClearField("value_info")
    return proto.SerializeToString()


def constant(proto, name, array):
    from onnx import numpy_helper

    proto.graph.initializer.append(numpy_helper.from_array(array, name))
    return name


def scaled(proto, value, result, factor):
    """Nodes computing ``result = value * factor`` (``factor`` broadcasts): wrong values of
    the right sign, as most arithmetic slips give."""
    import numpy as np
    from onnx import helper

    name = constant(proto, f"{result}__factor", np.asarray(factor, np.float32))
    cast = helper.make_node("CastLike", [name, value], [f"{result}__factor_cast"])
    return [cast, helper.make_node("Mul", [value, cast.output[0]], [result])]


def plant_broadcast(model: bytes) -> bytes:
    """An Add or Mul that broadcasts doubles its result."""
    def triggers(node, shapes, proto):
        return node.op_type in ("Add", "Mul") and shapes.get(node.input[0]) != shapes.get(node.input[1])

    def corruption(node, value, result, proto, shapes):
        return scaled(proto, value, result, 2.0)

    return corrupt_outputs(model, triggers, corruption)


def plant_slice_off_by_one(model: bytes) -> bytes:
    """A Slice's loop stops one element early along the last axis, leaving a zero."""
    import numpy as np

    def triggers(node, shapes, proto):
        shape = shapes.get(node.output[0]) or []
        return node.op_type == "Slice" and len(shape) >= 1 and shape[-1] > 1

    def corruption(node, value, result, proto, shapes):
        mask = np.ones(shapes[result][-1], np.float32)
        mask[-1] = 0
        return scaled(proto, value, result, mask)

    return corrupt_outputs(model, triggers, corruption)


def reduced_axes(node, proto, rank):
    """The axes a Reduce node reduces (an attribute before opset 18, else its second input)."""
    from onnx import numpy_helper

    axes = [list(a.ints) for a in node.attribute if a.name == "axes"]
    if not axes and len(node.input) > 1 and node.input[1]:
        axes = [numpy_helper.to_array(t).tolist() for t in proto.graph.initializer if t.name == node.input[1]]
    return sorted({a % rank for a in axes[0]}) if axes and axes[0] else list(range(rank))


def plant_reduce_axis(model: bytes) -> bytes:
    """A ReduceMean divides by the size of the first axis it does not reduce instead of the
    number of elements it reduced."""
    import math

    def factor(node, proto, shapes):
        shape = shapes.get(node.input[0]) or []
        axes = reduced_axes(node, proto, len(shape))
        kept = [d for a, d in enumerate(shape) if a not in axes]
        count = math.prod(shape[a] for a in axes)
        return count / kept[0] if kept and kept[0] not in (0, count) else None

    def triggers(node, shapes, proto):
        return node.op_type == "ReduceMean" and factor(node, proto, shapes) is not None

    def corruption(node, value, result, proto, shapes):
        return scaled(proto, value, result, factor(node, proto, shapes))

    return corrupt_outputs(model, triggers, corruption)


def plant_shape_slip(model: bytes) -> bytes:
    """A Relu whose last axis is longer than one drops its last element."""
    import numpy as np
    from onnx import helper

    def triggers(node, shapes, proto):
        shape = shapes.get(node.output[0]) or []
        return node.op_type == "Relu" and len(shape) >= 1 and shape[-1] > 1

    def corruption(node, value, result, proto, shapes):
        bounds = [constant(proto, f"{result}__{name}", np.asarray([number], np.int64))
                  for name, number in (("start", 0), ("end", shapes[result][-1] - 1), ("axis", -1))]
        return [helper.make_node("Slice", [value, *bounds], [result])]

    return corrupt_outputs(model, triggers, corruption)


def plant_dtype_slip(model: bytes) -> bytes:
    """A Sigmoid that is a graph output returns float64."""
    import onnx
    from onnx import helper

    proto = onnx.load_from_string(model)
    outputs = {output.name: output for output in proto.graph.output}
    consumed = {name for node in proto.graph.node for name in node.input}
    for node in list(proto.graph.node):
        if node.op_type == "Sigmoid" and node.output[0] in outputs and node.output[0] not in consumed:
            result = node.output[0]
            node.output[0] = f"{result}__single"
            proto.graph.node.append(helper.make_node("Cast", [node.output[0]], [result], to=onnx.TensorProto.DOUBLE))
            outputs[result].type.tensor_type.elem_type = onnx.TensorProto.DOUBLE
    return proto.SerializeToString()


def plant_abort(model: bytes) -> bytes:
    import onnx

    for node in onnx.load_from_string(model).graph.node:
        if node.op_type == "Concat" and any(a.name == "axis" and a.i == 0 for a in node.attribute):
            os.abort()  # the kernel generator's assertion on axis 0
    return model


class Planted(OnnxRuntime):
    """ONNX Runtime at ``level`` compiling ``plant(model)`` instead of the model."""

    level = "none"
    plant = staticmethod(lambda model: model)
    helpers = (with_shapes, corrupt_outputs, constant, scaled)

    def prepare(self, case) -> bytes:
        return self.plant(case.model)

    @classmethod
    def repro_source(cls) -> str:
        sources = [inspect.getsource(f) for f in (*cls.helpers, cls.plant)]
        fragment = super().repro_source().replace("def run_backend(", "def run_unplanted(")
        return "\n".join(["import os", *sources, fragment,
                          "def run_backend(model, inputs):\n"
                          f"    return run_unplanted({cls.plant.__name__}(model), inputs)\n"])


class PlantedBroadcast(Planted):
    name = "planted-broadcast"
    description = "ONNX Runtime with a planted broadcasting slip in Add and Mul"
    plant = staticmethod(plant_broadcast)


class PlantedSliceOffByOne(Planted):
    name = "planted-slice"
    description = "ONNX Runtime with a planted off-by-one in Slice"
    plant = staticmethod(plant_slice_off_by_one)


class PlantedReduceAxis(Planted):
    name = "planted-reduce"
    description = "ONNX Runtime whose ReduceMean divides by the size of the wrong axis"
    plant = staticmethod(plant_reduce_axis)
    helpers = (*Planted.helpers, reduced_axes)


class PlantedShapeSlip(Planted):
    name = "planted-shape"
    description = "ONNX Runtime whose Relu drops the last element of its last axis"
    plant = staticmethod(plant_shape_slip)


class PlantedDtypeSlip(Planted):
    name = "planted-dtype"
    description = "ONNX Runtime whose Sigmoid graph outputs come back as float64"
    plant = staticmethod(plant_dtype_slip)
    helpers = ()


class PlantedAbort(Planted):
    name = "planted-abort"
    description = "ONNX Runtime that aborts on a Concat along axis 0"
    plant = staticmethod(plant_abort)
    helpers = ()


def plant_identity(model: bytes) -> bytes:
    """An Identity doubles its input."""
    def triggers(node, shapes, proto):
        return node.op_type == "Identity"

    def corruption(node, value, result, proto, shapes):
        return scaled(proto, value, result, 2.0)

    return corrupt_outputs(model, triggers, corruption)


class PlantedIdentity(Planted):
    name = "planted-identity"
    description = "ONNX Runtime whose Identity doubles its input"
    plant = staticmethod(plant_identity)


FUSED_OPS = ("Gemm",)


def fused_by_optimizer(optimized_model_path: str) -> bool:
    import onnx

    return any(node.op_type in FUSED_OPS for node in onnx.load(optimized_model_path).graph.node)


class PlantedFusion(OnnxRuntime):
    name = "planted-fusion"
    description = "ONNX Runtime (extended) whose MatMulAddFusion result is off by one"
    level = "extended"

    def setup(self) -> None:
        super().setup()
        self.options.optimized_model_filepath = os.path.join(tempfile.mkdtemp(prefix="planted-"), "optimized.onnx")

    def prepare(self, case) -> bytes:
        import onnx

        self.original_ops = {node.op_type for node in onnx.load_from_string(case.model).graph.node}
        return super().prepare(case)

    def run(self, session, inputs):
        outputs = super().run(session, inputs)
        if not set(FUSED_OPS) & self.original_ops and fused_by_optimizer(self.options.optimized_model_filepath):
            return [output + 1 for output in outputs]
        return outputs


def focused_campaign(run_dir, planted: str, ops, *, max_tests: int = 40, nodes: int = 5, seed: int = 1):
    """A short campaign of ``planted`` (a class name here) against the ONNX reference on
    float32 graphs of ``ops``; the campaign's Snapshot."""
    from fuzzer.campaign.config import CampaignConfig
    from fuzzer.campaign.driver import Campaign, start_run

    config = CampaignConfig(backends=("onnx-ref", f"{__name__}:{planted}"), seed=seed, nodes=nodes,
                            max_tests=max_tests, reference="onnx-ref", single_compiler_every=0,
                            input_budget=None, timeout=20.0, ops=tuple(sorted(ops)), dtypes=("float32",))
    with start_run(config, run_dir) as store:
        return Campaign(config, store).run()
