"""Every operator's torch lowering computes on the device of its inputs: a tensor it makes on
the CPU breaks torch.compile on CUDA ("Expected all tensors to be on the same device").

Each operator's one-node graphs run through :mod:`fuzzer.graph.export_torch` with inputs and weights
on a device that is not the CPU: torch's "meta" device everywhere, and CUDA where torch has it,
whose values must also match the CPU's. Eager torch lets 0-d CPU tensors and CPU indices mix
with other devices, compiled code does not: so no aten operator may mix the device's tensors
with tensors elsewhere (an explicit copy onto the device aside), and every output must be on
the device. No pytest needed: ``scripts/gpu_check.sh`` calls :func:`check_lowering_on`.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from fuzzer.graph.export_onnx import DEFAULT_OPSET
from fuzzer.graph.export_torch import to_module
from fuzzer.generation.generator import GeneratorOptions, generate_graph
from fuzzer.graph.ir import Graph, Input, Node
from fuzzer.graph.ops import all_specs, get_spec
from fuzzer.graph.rejected import Unsatisfiable
from fuzzer.graph.values import random_inputs, to_numpy, to_torch
from oracles.tolerance import DEFAULT_TOLERANCES

SEEDS_PER_OP = 4
MISSING_KERNEL = "not implemented for"  # torch lacks the dtype's kernel on the device (integer matmul on CUDA)
# Operators whose lowering reads a tensor's value in Python, which a meta tensor does not have.
NEEDS_VALUES_ON_META = {"If": "bool(condition) picks the branch to run"}


def devices() -> list[str]:
    """The devices to check here: meta, and CUDA where available."""
    return ["meta"] + (["cuda"] if torch.cuda.is_available() else [])


class DeviceMixing(TorchDispatchMode):
    """Records the aten operators that mix tensors on ``device`` with tensors elsewhere."""

    def __init__(self, device: str) -> None:
        super().__init__()
        self.device, self.found = device, []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        places = {t.device.type for t in tree_leaves((args, kwargs, result)) if isinstance(t, torch.Tensor)}
        if func is not torch.ops.aten._to_copy.default and self.device in places and len(places) > 1:
            self.found.append(f"{func} mixes tensors on {', '.join(sorted(places))}")
        return result


def anchored(graph: Graph) -> Graph:
    """``graph``, or for a graph with neither inputs nor weights (Range alone), which has no
    device to follow, the graph with its first output also added to a new input."""
    if graph.inputs or graph.weights:
        return graph
    output = graph.outputs[0]
    anchor = Input("anchor", graph.types[output])
    total = Node("Add", (output, anchor.name), ("anchored",), (anchor.type,), ())
    return Graph((anchor,), (), (*graph.nodes, total), (*graph.outputs, "anchored"))


def same_values(actual: np.ndarray, expected: np.ndarray) -> bool:
    """Integers and bools exactly; floats within the dtype's default tolerance, NaN equal to NaN."""
    if actual.dtype != expected.dtype or actual.shape != expected.shape:
        return False
    tolerance = next((t for d, t in DEFAULT_TOLERANCES.items() if d.numpy == actual.dtype), None)
    if tolerance is None:
        return bool(np.array_equal(actual, expected))
    return bool(np.isclose(actual.astype(np.float64), expected.astype(np.float64), rtol=tolerance.rtol,
                           atol=tolerance.atol, equal_nan=True).all())


def lowering_failures(op: str, device: str) -> list[str]:
    """What goes wrong running ``op``'s one-node graphs on ``device``: an error, an operator
    mixing devices, an output off the device, or (off meta) a value unlike the CPU's."""
    options = GeneratorOptions(nodes=1, ops=frozenset({op}), opset=max(DEFAULT_OPSET, get_spec(op).since),
                               input_budget=None)
    failures = []
    for seed in range(SEEDS_PER_OP):
        try:
            graph = anchored(generate_graph(seed, options))
        except Unsatisfiable:
            continue
        if device == "meta" and any(t.runtime for t in graph.types.values()):
            continue  # an extent that only values give (NonZero of a value): meta tensors have none
        inputs = [to_torch(array) for array in random_inputs(graph, seed).values()]
        where = f"{op} on {device}, seed {seed}"
        try:
            with torch.no_grad():
                module = to_module(graph)
                on_cpu = module(*inputs)
                module, arguments = module.to(device), [x.to(device) for x in inputs]
                with DeviceMixing(device) as mixing:
                    on_device = module(*arguments)
        except Exception as error:  # noqa: BLE001 - every error but a missing kernel is a finding
            if MISSING_KERNEL in str(error):
                continue
            failures.append(f"{where}: {type(error).__name__}: {(str(error).splitlines() or [''])[0]}")
            continue
        failures += [f"{where}: {found}" for found in dict.fromkeys(mixing.found)]
        for name, got, want in zip(graph.outputs, on_device, on_cpu):
            if got.device.type != device:
                failures.append(f"{where}: output {name} is on {got.device}")
            elif device != "meta" and not get_spec(op).nondeterministic and \
                    not same_values(to_numpy(got), to_numpy(want)):
                failures.append(f"{where}: output {name} differs from the CPU's")
    return failures


def check_lowering_on(device: str) -> list[str]:
    """Every registered operator's failures on ``device`` (see :func:`lowering_failures`)."""
    if device == "cuda":
        torch.backends.cudnn.allow_tf32 = False  # convolutions in float32, as on the CPU
    return [failure for spec in sorted(all_specs(), key=lambda s: s.name)
            if not (device == "meta" and spec.name in NEEDS_VALUES_ON_META)
            for failure in lowering_failures(spec.name, device)]


def test_every_lowering_computes_on_the_device_of_its_inputs():
    failures = [failure for device in devices() for failure in check_lowering_on(device)]
    assert not failures, "\n".join(failures)


def test_operators_excused_from_meta_do_read_values():
    for op in NEEDS_VALUES_ON_META:
        assert lowering_failures(op, "meta"), f"{op} runs on meta: drop it from NEEDS_VALUES_ON_META"
