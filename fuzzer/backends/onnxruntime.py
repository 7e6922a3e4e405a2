"""ONNX Runtime on the CPU, with graph optimizations off and fully on."""

from __future__ import annotations

from typing import Any, Mapping

from fuzzer.backends.base import Backend, Unsupported
from fuzzer.outcome import TestCase


UNSUPPORTED_MARKERS = (
    "data type is not supported",  # a CPU kernel registered without this dtype
    "No corresponding Numpy type for Tensor Type",  # bfloat16 outputs cannot reach numpy
    "can't be converted to MLDataType",  # bfloat16 numpy inputs cannot reach ORT
    "Dilation not supported for AutoPadType",  # documented Conv limitation
)


class OnnxRuntime(Backend):
    requires = ("onnxruntime",)
    level: str  # name of an onnxruntime.GraphOptimizationLevel member

    def setup(self) -> None:
        import onnxruntime

        self.ort = onnxruntime
        self.options = onnxruntime.SessionOptions()
        self.options.graph_optimization_level = getattr(onnxruntime.GraphOptimizationLevel, self.level)
        self.options.intra_op_num_threads = 1
        self.options.inter_op_num_threads = 1
        self.options.log_severity_level = 3

    def prepare(self, case: TestCase) -> bytes:
        return case.model

    def compile(self, model: bytes) -> Any:
        return self.ort.InferenceSession(model, self.options, providers=["CPUExecutionProvider"])

    def run(self, session: Any, inputs: Mapping[str, Any]) -> list[Any]:
        return session.run(None, dict(inputs))

    def is_unsupported(self, error: BaseException) -> bool:
        """NOT_IMPLEMENTED kernels, kernels that reject a dtype, and bfloat16 at the numpy boundary."""
        return isinstance(error, (Unsupported, self.ort.capi.onnxruntime_pybind11_state.NotImplemented)) or \
            any(marker in str(error) for marker in UNSUPPORTED_MARKERS)


class OrtDisableAll(OnnxRuntime):
    name = "ort-none"
    description = "ONNX Runtime CPU, ORT_DISABLE_ALL"
    level = "ORT_DISABLE_ALL"


class OrtEnableAll(OnnxRuntime):
    name = "ort-all"
    description = "ONNX Runtime CPU, ORT_ENABLE_ALL"
    level = "ORT_ENABLE_ALL"


BACKENDS = [OrtDisableAll, OrtEnableAll]
