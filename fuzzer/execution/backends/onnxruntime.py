"""ONNX Runtime: every graph optimization level on the CPU, threaded variants, and CUDA.

Its optimizations, for culprit search: first the graph optimization levels up to the
configured one, then the graph transformers (``disabled_optimizers``) that changed the
graph, read from ORT's verbose log.
"""

from __future__ import annotations

import os
import re
import tempfile
from typing import Any, ClassVar, Collection, Mapping

from fuzzer.execution.backends.base import Backend, Unsupported
from fuzzer.execution.devices import gpu_present
from fuzzer.execution.outcome import TestCase

UNSUPPORTED_MARKERS = (
    "data type is not supported",  # a CPU kernel registered without this dtype
    "No corresponding Numpy type for Tensor Type",  # bfloat16 outputs cannot reach numpy
    "can't be converted to MLDataType",  # bfloat16 numpy inputs cannot reach ORT
    "Dilation not supported for AutoPadType",  # documented Conv limitation
)

LEVELS = {"none": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED",
          "all": "ORT_ENABLE_ALL"}
MODIFIED = re.compile(r"GraphTransformer (\S+) modified: 1")  # a verbose log line of a transformer that acted


class OnnxRuntime(Backend):
    requires = ("onnxruntime",)
    family = "onnxruntime"
    level: ClassVar[str] = "none"  # a key of LEVELS
    threads: ClassVar[int] = 1  # intra-op threads
    provider: ClassVar[str] = "CPUExecutionProvider"
    disabled_optimizers: ClassVar[tuple[str, ...]] = ()  # graph transformers the session skips

    def setup(self) -> None:
        import onnxruntime

        self.ort = onnxruntime
        self.options = onnxruntime.SessionOptions()
        self.options.graph_optimization_level = getattr(onnxruntime.GraphOptimizationLevel, LEVELS[self.level])
        self.options.intra_op_num_threads = self.threads
        self.options.inter_op_num_threads = 1
        self.options.log_severity_level = 3

    def prepare(self, case: TestCase) -> bytes:
        return case.model

    def compile(self, model: bytes) -> Any:
        return self.ort.InferenceSession(model, self.options, providers=[self.provider],
                                         disabled_optimizers=list(self.disabled_optimizers))

    def run(self, session: Any, inputs: Mapping[str, Any]) -> list[Any]:
        return session.run(None, dict(inputs))

    def is_unsupported(self, error: BaseException) -> bool:
        """NOT_IMPLEMENTED kernels, kernels that reject a dtype, and bfloat16 at the numpy boundary."""
        return isinstance(error, (Unsupported, self.ort.capi.onnxruntime_pybind11_state.NotImplemented)) or \
            any(marker in str(error) for marker in UNSUPPORTED_MARKERS)

    def optimizations(self, case: TestCase) -> list[str]:
        """The graph transformers that modified this model, from ORT's verbose log."""
        previous = self.options.log_severity_level, self.options.log_verbosity_level
        self.options.log_severity_level, self.options.log_verbosity_level = 0, 1
        with tempfile.TemporaryFile() as log:
            saved = os.dup(2)
            os.dup2(log.fileno(), 2)
            try:
                self.compile(case.model)
            finally:
                os.dup2(saved, 2)
                os.close(saved)
                self.options.log_severity_level, self.options.log_verbosity_level = previous
            log.seek(0)
            text = log.read().decode(errors="replace")
        return list(dict.fromkeys(MODIFIED.findall(text)))

    @classmethod
    def without(cls, disabled: Collection[str], level: str | None = None) -> type[OnnxRuntime]:
        return cls.variant(disabled, disabled_optimizers=cls.disabled_optimizers + tuple(disabled),
                           level=level or cls.level)

    @classmethod
    def levels(cls) -> list[str]:
        return list(LEVELS)[: list(LEVELS).index(cls.level) + 1]

    @classmethod
    def describe_culprit(cls, name: str) -> tuple[str, str]:
        if name in LEVELS:
            return "graph_optimization_level", f"appears at ONNX Runtime level {name} ({LEVELS[name]})"
        return "disabled_optimizers", (f"ONNX Runtime graph transformer {name} (level {cls.level}): "
                                       "disabling it alone makes the finding vanish")

    @classmethod
    def repro_source(cls) -> str:
        return f'''
def run_backend(model, inputs):
    import onnxruntime
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.{LEVELS[cls.level]}
    options.intra_op_num_threads = {cls.threads}
    session = onnxruntime.InferenceSession(model, options, providers=["{cls.provider}"])
    return session.run(None, dict(inputs))
'''


def ort_backend(level: str, threads: int = 1, provider: str = "CPUExecutionProvider") -> type[OnnxRuntime]:
    on_cuda = provider == "CUDAExecutionProvider"
    name = "ort-" + ("cuda-" if on_cuda else "") + level + (f"-t{threads}" if threads > 1 else "")
    where = "CUDA" if on_cuda else "CPU"
    return type(name, (OnnxRuntime,), {
        "name": name, "level": level, "threads": threads, "provider": provider, "optimizing": level != "none",
        "description": f"ONNX Runtime {where}, {LEVELS[level]}, {threads} intra-op thread(s)",
        **({"device": "cuda", "missing": classmethod(cuda_provider_missing)} if on_cuda else {}),
    })


def cuda_provider_missing(cls) -> str | None:
    if not gpu_present():
        return "no NVIDIA GPU on this machine"
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        return "onnxruntime has no CUDAExecutionProvider (pip install onnxruntime-gpu)"
    return None


BACKENDS = [*(ort_backend(level) for level in LEVELS), ort_backend("all", threads=4),
            ort_backend("none", provider="CUDAExecutionProvider"),
            ort_backend("all", provider="CUDAExecutionProvider")]
