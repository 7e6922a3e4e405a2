"""Apache TVM (Relax): ONNX and torch.export frontends, optimizing and plain builds, CPU and CUDA.

A build configuration is five knobs, all passed to ``tvm.compile``, and a device:

* ``fuse``: the Relax pipeline. True takes the llvm target's own pipeline
  (``relax.get_default_pipeline``), which runs AnnotateTIROpPattern, FoldConstant, FuseOps
  and FuseTIR after LegalizeOps; False takes ``tvm.compile``'s generic "default" pipeline,
  the one it picks for CPU targets, which legalizes and lowers without folding or fusing.
* ``opt_level``: the PassContext level. FuseOps reads it: at 0 it fuses nothing.
* ``config``: PassContext options of the TIR pipeline (here: TIR CSE and StorageRewrite, and
  ``tirx.disable_assert``, which drops the argument checks of each kernel's packed-API
  wrapper: they are most of the LLVM code and compile time, and the VM passes well-formed
  arguments; ``tvm-noopt`` keeps them, so a kernel called with wrong arguments still fails).
* ``llvm_opt_level``: LLVM's optimization level, a target option (None: LLVM's default).
* ``disabled_pass``: passes the PassContext skips (none here; ``without`` adds the passes
  culprit search turns off, ``optimizations`` names those that changed a module).
* ``device``: "cpu" (llvm target) or "cuda" (cuda target, llvm host; its target pipeline
  schedules every kernel with ``tvm.s_tir.dlight``'s default GPU rules).

The module-level functions below use only numpy, tvm and the frontend's own package (onnx,
torch): ``repro_source`` copies them into standalone reproduction scripts, so a script
imports, builds and runs exactly as the backend does.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import shutil
import textwrap
import traceback
from functools import cached_property
from typing import Any, Callable, ClassVar, Collection, Mapping, Sequence

import numpy as np

from fuzzer.execution.backends.base import Backend, Unsupported
from fuzzer.execution.backends.torch_eager import TORCH_EXPORT_CODE, TORCH_EXPORT_LOCK, exported_program_bytes
from fuzzer.execution.devices import gpu_present
from fuzzer.graph.case import TestCase


def import_onnx(model: bytes) -> Any:
    """The Relax module of an ONNX model; weights become constants, inputs keep their names."""
    import onnx
    from tvm.relax.frontend.onnx import from_onnx

    return from_onnx(onnx.load_from_string(model), keep_params_in_input=False, sanitize_input_names=False)


def import_exported_program(program: Any) -> tuple[Any, list[str]]:
    """The Relax module of a ``torch.export`` program (buffers and parameters become
    constants), and the names of the program's user inputs in positional order."""
    from tvm.relax.frontend.torch import from_exported_program

    return from_exported_program(program), list(program.graph_signature.user_inputs)


def compile_relax(module: Any, fuse: bool, opt_level: int, config: dict, llvm_opt_level: int | None,
                  instruments: tuple = (), device: str = "cpu", disabled_pass: Sequence[str] = ()) -> Any:
    """``module`` compiled by ``tvm.compile`` for the llvm CPU target, or for CUDA with an llvm
    host, without the passes named in ``disabled_pass``."""
    import tvm
    from tvm import relax

    host = {"kind": "llvm"} if llvm_opt_level is None else {"kind": "llvm", "opt-level": llvm_opt_level}
    target = tvm.target.Target(host) if device == "cpu" else tvm.target.Target({"kind": device}, host=host)
    pipeline = relax.get_default_pipeline(target) if fuse else "default"
    with tvm.transform.PassContext(opt_level=opt_level, config=config, instruments=list(instruments),
                                   disabled_pass=list(disabled_pass)):
        return tvm.compile(module, target=target, relax_pipeline=pipeline)


def build(module: Any, fuse: bool, opt_level: int, config: dict, llvm_opt_level: int | None,
          instruments: tuple = (), device: str = "cpu", disabled_pass: Sequence[str] = ()) -> Any:
    """Compile ``module`` (see ``compile_relax``) and load it into a Relax VM on ``device``."""
    import tvm
    from tvm import relax

    executable = compile_relax(module, fuse, opt_level, config, llvm_opt_level, instruments, device, disabled_pass)
    return relax.VirtualMachine(executable, tvm.device(device))


PASS_LISTS = frozenset({"sequential", "_pipeline"})  # names of pass sequences, not of passes


def pass_change_recorder(changed: Callable[[str], None]) -> Any:
    """A TVM pass instrument calling ``changed(name)`` for each pass (not pass list) after
    which the module's structural hash differs."""
    import tvm
    import tvm_ffi

    @tvm.instrument.pass_instrument
    class PassChanges:
        def __init__(self) -> None:
            self.last: tuple[Any, int] | None = None  # the module a pass returned and its hash

        def run_before_pass(self, module: Any, info: Any) -> None:
            if self.last is None or not module.same_as(self.last[0]):
                self.last = (module, tvm_ffi.structural_hash(module))

        def run_after_pass(self, module: Any, info: Any) -> None:
            before = self.last[1]
            self.last = (module, tvm_ffi.structural_hash(module))
            if self.last[1] != before and info.name not in PASS_LISTS:
                changed(info.name)

    return PassChanges()


def parameter_names(module: Any) -> list[str]:
    """The names of ``main``'s parameters, in the order the VM takes them."""
    return [parameter.name for parameter in module["main"].params]


def run_main(machine: Any, arrays: list[np.ndarray], device: str = "cpu") -> list[np.ndarray]:
    """Call ``main`` with ``arrays`` copied to ``device``; its result (a tensor, a shape or nested
    tuples) as a flat list of host arrays."""
    import tvm

    def flatten(value: Any) -> list[np.ndarray]:
        if isinstance(value, tvm.runtime.Tensor):
            return [value.numpy()]
        if isinstance(value, tvm.runtime.ShapeTuple):  # an ONNX Shape output that TVM computed statically
            return [np.array(value, dtype=np.int64)]
        return [array for item in value for array in flatten(item)]

    return flatten(machine["main"](*[tvm.runtime.tensor(np.asarray(a, order="C"), device=tvm.device(device))
                                     for a in arrays]))


# Refusals that a frontend's Python code raises (besides NotImplementedError and TVM's
# OpNotImplemented/OpAttributeUnImplemented, which derive from it).
FRONTEND_REFUSALS = ("not supported", "unsupported", "not implemented", "cannot handle")
FRONTEND_PACKAGE = "/tvm/relax/frontend/"
# Limitations that TVM states wherever it finds them, in C++ checks included.
DOCUMENTED_LIMITATIONS = (
    "only support float32 and float16 for now",  # layer_norm, instance_norm, group_norm legalization
)


def raised_in(error: BaseException) -> str:
    """The file of the innermost frame of ``error``'s traceback (C++ frames included) that is a
    source file: generated code such as FX's ``<eval_with_key>`` is skipped."""
    files = [frame.f_code.co_filename for frame, _ in traceback.walk_tb(error.__traceback__)]
    return next((name for name in reversed(files) if not name.startswith("<")), "")


class TvmRelax(Backend):
    """One TVM build configuration; subclasses choose the frontend and the knobs.

    ``prepare`` returns the Relax module and the graph-input names in the order of
    ``main``'s parameters.
    """

    # Relax pipeline, LLVM codegen and VM load: about half a second a graph, so 15 s is a hang.
    # At 30 s, five re-found import hangs (three configurations each) took 95% of the TVM
    # lane's time in a 10-minute campaign.
    timeout_factor = 1.5
    # Relax passes, operators and legalization (relax/transform/legalize_ops), TOPI; each
    # frontend adds its own code.
    coverage_include = ("*/tvm/relax/transform/*", "*/tvm/relax/op/*", "*/tvm/topi/*")
    # Kernel argument checks (kept in tvm-noopt) of an extent the VM was told.
    type_checks = ((r"Invalid \S+\.shape\[\d+\] on argument", "shape_mismatch"),)

    requires = ("apache-tvm", "onnx")
    family = "tvm"
    importer: ClassVar[Callable[..., Any]]  # the frontend function a reproduction copies
    repro_compile: ClassVar[str]  # compile_backend's statements that set ``module`` and ``names``
    repro_arguments: ClassVar[str] = "[inputs[name] for name in names]"  # the runner's arrays of ``inputs``
    fuse: ClassVar[bool]
    opt_level: ClassVar[int]
    config: ClassVar[dict[str, Any]] = {"tirx.disable_assert": True}
    llvm_opt_level: ClassVar[int | None] = None
    disabled_pass: ClassVar[tuple[str, ...]] = ()

    def setup(self) -> None:
        import tvm  # noqa: F401 - seconds to import: once per worker, not in its first test

    @classmethod
    def knobs(cls) -> dict[str, Any]:
        """This configuration as keyword arguments of ``compile_relax`` and ``build``."""
        return {"fuse": cls.fuse, "opt_level": cls.opt_level, "config": cls.config,
                "llvm_opt_level": cls.llvm_opt_level, "device": cls.device, "disabled_pass": cls.disabled_pass}

    def compile(self, prepared: tuple[Any, list[str]]) -> tuple[list[str], Any]:
        """The VM of the module and its input names; the passes that changed the module are
        recorded (``changed``)."""
        module, names = prepared
        self.changed.clear()
        return names, build(module, instruments=(self.pass_changes,), **self.knobs())

    def effects(self) -> tuple[str, ...]:
        return tuple(f"tvm:{name}" for name in dict.fromkeys(self.changed))

    def optimizations(self, case: TestCase) -> list[str]:
        """The Relax and TIR passes that changed the module while this configuration built it,
        exactly as ``compile`` builds it (its pipeline, PassContext config, target and device)."""
        module, _ = self.prepare(case)
        self.changed.clear()
        compile_relax(module, instruments=(self.pass_changes,), **self.knobs())
        return list(dict.fromkeys(self.changed))

    @classmethod
    def without(cls, disabled: Collection[str], level: str | None = None) -> type[TvmRelax]:
        return cls.variant(disabled, disabled_pass=cls.disabled_pass + tuple(disabled))

    @classmethod
    def describe_culprit(cls, name: str) -> tuple[str, str]:
        return "disabled_pass", f"TVM pass {name}: building without it alone makes the finding vanish"

    @cached_property
    def changed(self) -> list[str]:
        """The passes that changed the module in the last build, in order."""
        return []

    @cached_property
    def pass_changes(self) -> Any:
        """The instrument that records ``changed``."""
        return pass_change_recorder(self.changed.append)

    def run(self, compiled: tuple[list[str], Any], inputs: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        names, machine = compiled
        return run_main(machine, [inputs[name] for name in names], self.device)

    def is_unsupported(self, error: BaseException) -> bool:
        """Our own refusals, a frontend's explicit refusals, and documented limitations.

        A frontend refuses explicitly when its Python code raises NotImplementedError (TVM's
        OpNotImplemented for a missing converter included) or an error saying "not
        supported". Everything else is a bug: errors from passes, legalization, codegen or
        the VM, and C++ errors ("Check failed", type inference) even when a frontend called
        the C++ code, since that means the frontend built invalid IR from a valid model.
        """
        message = str(error)
        if isinstance(error, Unsupported) or any(marker in message for marker in DOCUMENTED_LIMITATIONS):
            return True
        if FRONTEND_PACKAGE not in raised_in(error):
            return False
        return isinstance(error, NotImplementedError) or any(m in message.lower() for m in FRONTEND_REFUSALS)

    @classmethod
    def repro_source(cls) -> str:
        shared = "\n\n".join(inspect.getsource(function)
                             for function in (cls.importer, compile_relax, build, parameter_names, run_main))
        return f"""from typing import Any, Sequence

import numpy as np


{shared}

def compile_backend(model: bytes):
    \"\"\"{cls.description}: a function of the inputs.\"\"\"
{textwrap.indent(cls.repro_compile, "    ")}
    machine = build(module, {", ".join(f"{key}={value!r}" for key, value in cls.knobs().items())})
    return lambda inputs: run_main(machine, {cls.repro_arguments}, {cls.device!r})


def run_backend(model: bytes, inputs: dict) -> list[np.ndarray]:
    return compile_backend(model)(inputs)
"""


class TvmOnnx(TvmRelax):
    """The ONNX frontend: ``from_onnx`` with weights as constants."""

    importer = staticmethod(import_onnx)
    coverage_include = ("*/tvm/relax/frontend/onnx/*", *TvmRelax.coverage_include)
    repro_compile = """module = import_onnx(model)
names = parameter_names(module)"""

    def prepare(self, case: TestCase) -> tuple[Any, list[str]]:
        module = import_onnx(case.model)
        return module, parameter_names(module)


class TvmOptimized(TvmOnnx):
    name = "tvm"
    description = ("TVM Relax from ONNX, llvm target pipeline (FoldConstant, FuseOps, FuseTIR), opt_level 3, "
                   "LLVM's default optimization")
    fuse = True
    opt_level = 3
    baseline = "tvm-noopt"


class TvmUnfused(TvmOnnx):
    name = "tvm-nofuse"
    description = "TVM Relax from ONNX, tvm.compile's generic pipeline (no folding or fusion), TIR and LLVM optimized"
    fuse = False
    opt_level = 3


class TvmUnoptimized(TvmOnnx):
    name = "tvm-noopt"
    description = ("TVM Relax from ONNX, no folding or fusion, opt_level 0, no TIR CSE or StorageRewrite, LLVM -O0, "
                   "kernel argument checks kept")
    fuse = False
    opt_level = 0
    optimizing = False
    config = {"tirx.disable_cse_tir": True, "tirx.disable_storage_rewrite": True}
    llvm_opt_level = 0


def has_module(name: str) -> bool:
    """Whether ``name`` can be imported (its parent packages are imported to find out)."""
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


class TvmCuda(TvmOptimized):
    """The ``tvm`` configuration on an NVIDIA GPU: CUDA kernels scheduled by dlight, compiled by NVRTC."""

    name = "tvm-cuda"
    description = "TVM Relax from ONNX, cuda target pipeline (FuseOps, FuseTIR, dlight GPU schedules), opt_level 3"
    device = "cuda"
    baseline = ""  # no CUDA build without optimizations
    timeout_factor = 6.0  # NVRTC compiles each kernel besides the LLVM host code

    @classmethod
    def missing(cls) -> str | None:
        if (reason := super().missing()) is not None:
            return reason
        if not gpu_present():
            return "no NVIDIA GPU on this machine"
        if not has_module("cuda.bindings") and shutil.which("nvcc") is None:
            return "TVM compiles CUDA with NVRTC or nvcc: pip install cuda-bindings, or put nvcc on PATH"
        import tvm

        return None if tvm.cuda(0).exist else "TVM sees no CUDA device (its CUDA runtime or the driver is missing)"


class TvmTorch(TvmRelax):
    """The PyTorch frontend: ``torch.export`` of the graph's torch lowering, then
    ``from_exported_program``. The lowering keeps the weights as buffers, which the frontend
    always binds as constants: ``main`` takes the graph inputs alone."""

    name = "tvm-torch"
    description = "TVM Relax from torch.export, llvm target pipeline (FoldConstant, FuseOps, FuseTIR), opt_level 3"
    requires = ("apache-tvm", "torch")
    importer = staticmethod(import_exported_program)
    coverage_include = ("*/tvm/relax/frontend/torch/*", *TORCH_EXPORT_CODE, *TvmRelax.coverage_include)
    # The artifact is the saved program; inputs come in graph-input order, as forward takes them.
    repro_compile = """import io
import torch
module, user_inputs = import_exported_program(torch.export.load(io.BytesIO(model)))
names = parameter_names(module)"""
    repro_arguments = "[dict(zip(user_inputs, inputs.values()))[name] for name in names]"
    fuse = True
    opt_level = 3

    def setup(self) -> None:
        super().setup()
        import torch

        from fuzzer.graph import export_torch, values

        torch.set_num_threads(1)
        self.torch, self.export, self.values = torch, export_torch, values

    def example_arguments(self, case: TestCase) -> list[Any]:
        """The graph's inputs as torch tensors, in the order forward takes them."""
        if case.graph is None:
            raise Unsupported("tvm-torch needs a tcfuzz graph to lower to torch; the model has none")
        return [self.values.to_torch(case.inputs[i.name]) for i in case.graph.inputs]

    def prepare(self, case: TestCase) -> tuple[Any, list[str]]:
        arguments = tuple(self.example_arguments(case))
        try:
            with TORCH_EXPORT_LOCK:
                program = self.torch.export.export(self.export.to_module(case.graph), arguments)
        except Exception as error:  # noqa: BLE001 - torch, not TVM, failed: TVM cannot be tested
            raise Unsupported(f"torch.export cannot export the graph's torch lowering: {error}") from error
        try:
            module, user_inputs = import_exported_program(program)
        except Exception as error:  # noqa: BLE001 - only torch's own failures are declined
            if not raised_in(error).startswith(os.path.dirname(self.torch.__file__) + os.sep):
                raise  # TVM's own failure: a finding
            raise Unsupported(f"torch failed inside TVM's import of the exported program, so TVM cannot be "
                              f"tested on it: {type(error).__name__}: {str(error).strip()[:200]}") from error
        by_parameter = dict(zip(user_inputs, (i.name for i in case.graph.inputs)))
        return module, [by_parameter[name] for name in parameter_names(module)]

    def repro_artifact(self, case: TestCase) -> bytes:
        return exported_program_bytes(self.torch, self.export.to_module(case.graph), self.example_arguments(case))


BACKENDS = [TvmOptimized, TvmUnfused, TvmUnoptimized, TvmTorch, TvmCuda]
