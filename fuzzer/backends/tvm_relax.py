"""Apache TVM (Relax) on the CPU: ONNX and torch.export frontends, optimizing and plain builds.

A build configuration is four knobs, all passed to ``tvm.compile``:

* ``fuse``: the Relax pipeline. True takes the llvm target's own pipeline
  (``relax.get_default_pipeline``), which runs AnnotateTIROpPattern, FoldConstant, FuseOps
  and FuseTIR after LegalizeOps; False takes ``tvm.compile``'s generic "default" pipeline,
  the one it picks for CPU targets, which legalizes and lowers without folding or fusing.
* ``opt_level``: the PassContext level. FuseOps reads it: at 0 it fuses nothing.
* ``config``: PassContext options of the TIR pipeline (vectorization, TIR CSE, StorageRewrite).
* ``llvm_opt_level``: LLVM's optimization level, a target option (None: LLVM's default).

The module-level functions below use only numpy, onnx and tvm: ``repro_source`` copies them
into standalone reproduction scripts, so the script builds exactly as the backend does.
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar, Mapping

import numpy as np

from fuzzer.backends.base import Backend, Unsupported
from fuzzer.outcome import TestCase


def import_onnx(model: bytes) -> Any:
    """The Relax module of an ONNX model; weights become constants, inputs keep their names."""
    import onnx
    from tvm.relax.frontend.onnx import from_onnx

    return from_onnx(onnx.load_from_string(model), keep_params_in_input=False, sanitize_input_names=False)


def build(module: Any, fuse: bool, opt_level: int, config: dict, llvm_opt_level: int | None) -> Any:
    """Compile ``module`` for the llvm CPU target and load it into a Relax VM."""
    import tvm
    from tvm import relax

    target = tvm.target.Target({"kind": "llvm"} if llvm_opt_level is None else
                               {"kind": "llvm", "opt-level": llvm_opt_level})
    pipeline = relax.get_default_pipeline(target) if fuse else "default"
    with tvm.transform.PassContext(opt_level=opt_level, config=config):
        executable = tvm.compile(module, target=target, relax_pipeline=pipeline)
    return relax.VirtualMachine(executable, tvm.cpu())


def parameter_names(module: Any) -> list[str]:
    """The names of ``main``'s parameters, in the order the VM takes them."""
    return [parameter.name for parameter in module["main"].params]


def run_main(machine: Any, arrays: list[np.ndarray]) -> list[np.ndarray]:
    """Call ``main`` with ``arrays``; its result (a tensor or nested tuples) as a flat list."""
    import tvm

    def flatten(value: Any) -> list[np.ndarray]:
        if isinstance(value, tvm.runtime.Tensor):
            return [value.numpy()]
        return [array for item in value for array in flatten(item)]

    return flatten(machine["main"](*[tvm.runtime.tensor(np.ascontiguousarray(a)) for a in arrays]))


SHARED_FUNCTIONS = (import_onnx, build, parameter_names, run_main)

# Documented frontend limitations that TVM raises as plain Python exceptions. Anything
# raised by a pass, by legalization, by codegen or by the VM stays a bug whatever it says.
FRONTEND_PACKAGE = "tvm/relax/frontend/"
FRONTEND_UNSUPPORTED_MARKERS = ("not supported", "unsupported", "not implemented")


class TvmRelax(Backend):
    """One TVM build configuration; subclasses choose the frontend and the knobs."""

    requires = ("apache-tvm", "onnx")
    fuse: ClassVar[bool]
    opt_level: ClassVar[int]
    config: ClassVar[dict[str, Any]] = {}
    llvm_opt_level: ClassVar[int | None] = None

    def setup(self) -> None:
        import tvm

        self.tvm = tvm

    def compile(self, module: Any) -> Any:
        return module, build(module, self.fuse, self.opt_level, self.config, self.llvm_opt_level)

    def run(self, compiled: Any, inputs: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        module, machine = compiled
        return run_main(machine, self.arguments(module, inputs))

    def arguments(self, module: Any, inputs: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        return [inputs[name] for name in parameter_names(module)]

    def is_unsupported(self, error: BaseException) -> bool:
        """Our own refusals, and the frontends' documented "not supported" errors.

        ``OpNotImplemented`` and ``OpAttributeUnImplemented`` are TVM's error classes for an
        operator or attribute a frontend lacks. Other frontend errors count only when they
        are raised by the frontend's Python code and say so; C++ errors ("Check failed",
        InternalError) from any stage, including those reached from a frontend, are bugs.
        """
        if isinstance(error, (Unsupported, self.tvm.error.OpNotImplemented,
                              self.tvm.error.OpAttributeUnImplemented)):
            return True
        frames = inspect.getinnerframes(error.__traceback__, context=0) if error.__traceback__ else []
        raised_in_frontend = bool(frames) and FRONTEND_PACKAGE in frames[-1].filename.replace("\\", "/")
        message = str(error).lower()
        return raised_in_frontend and any(marker in message for marker in FRONTEND_UNSUPPORTED_MARKERS)

    @classmethod
    def repro_source(cls) -> str:
        shared = "\n\n".join(inspect.getsource(function) for function in SHARED_FUNCTIONS)
        return f"""import numpy as np

from typing import Any


{shared}

def run_backend(model: bytes, inputs: dict) -> list[np.ndarray]:
    \"\"\"{cls.description}.\"\"\"
    module = import_onnx(model)
    machine = build(module, fuse={cls.fuse!r}, opt_level={cls.opt_level!r}, config={cls.config!r},
                    llvm_opt_level={cls.llvm_opt_level!r})
    return run_main(machine, [inputs[name] for name in parameter_names(module)])
"""


class TvmOnnx(TvmRelax):
    """The ONNX frontend: ``from_onnx`` with weights as constants."""

    def prepare(self, case: TestCase) -> Any:
        return import_onnx(case.model)


class TvmOptimized(TvmOnnx):
    name = "tvm"
    description = "TVM Relax from ONNX, llvm target pipeline (FoldConstant, FuseOps, FuseTIR), opt_level 3"
    fuse = True
    opt_level = 3


class TvmUnfused(TvmOnnx):
    name = "tvm-nofuse"
    description = "TVM Relax from ONNX, tvm.compile's generic pipeline (no folding or fusion), TIR and LLVM optimized"
    fuse = False
    opt_level = 3


class TvmUnoptimized(TvmOnnx):
    name = "tvm-noopt"
    description = ("TVM Relax from ONNX, no folding or fusion, opt_level 0, "
                   "no TIR vectorization, CSE or storage rewrite, LLVM -O0")
    fuse = False
    opt_level = 0
    config = {"tirx.disable_vectorize": True, "tirx.disable_cse_tir": True,
              "tirx.disable_storage_rewrite": True}
    llvm_opt_level = 0


class TvmTorch(TvmRelax):
    """The PyTorch frontend: ``torch.export`` of the graph's torch lowering, then
    ``from_exported_program``, which binds the module's buffers (the weights) as constants."""

    name = "tvm-torch"
    description = "TVM Relax from torch.export, llvm target pipeline (FoldConstant, FuseOps, FuseTIR), opt_level 3"
    requires = ("apache-tvm", "torch")
    fuse = True
    opt_level = 3

    def setup(self) -> None:
        super().setup()
        import torch
        from tvm.relax.frontend.torch import from_exported_program

        from fuzzer import export_torch, values

        torch.set_num_threads(1)
        self.torch, self.export, self.values = torch, export_torch, values
        self.from_exported_program = from_exported_program

    def prepare(self, case: TestCase) -> Any:
        if case.graph is None:
            raise Unsupported("tvm-torch needs a tcfuzz graph to lower to torch; the model has none")
        example = tuple(self.values.to_torch(case.inputs[i.name]) for i in case.graph.inputs)
        program = self.torch.export.export(self.export.to_module(case.graph), example)
        return case.graph, self.from_exported_program(program)

    def compile(self, prepared: Any) -> Any:
        graph, module = prepared
        return graph, build(module, self.fuse, self.opt_level, self.config, self.llvm_opt_level)

    def arguments(self, graph: Any, inputs: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        # torch.export names the parameters after forward's *inputs: they come in graph order.
        return [inputs[i.name] for i in graph.inputs]

    @classmethod
    def repro_source(cls) -> str:
        raise NotImplementedError("tvm-torch cannot emit a standalone reproduction: it needs the "
                                  "graph's torch module source, which tcfuzz does not generate yet")


BACKENDS = [TvmOptimized, TvmUnfused, TvmUnoptimized, TvmTorch]
