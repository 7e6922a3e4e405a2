"""ONNX Runtime: every graph optimization level on the CPU, threaded variants, and CUDA.

Its optimizations, for culprit search: first the graph optimization levels up to the
configured one, then the graph transformers (``disabled_optimizers``) that changed the
graph, read from ORT's INFO log, which every compile captures (``effects``).
"""

from __future__ import annotations

import os
import re
import tempfile
import zlib
from typing import Any, ClassVar, Collection, Mapping

from fuzzer.execution.backends.base import Backend, Unsupported
from fuzzer.execution.devices import gpu_present
from fuzzer.graph.case import TestCase

UNSUPPORTED_MARKERS = (
    "data type is not supported",  # a CPU kernel registered without this dtype
    "No corresponding Numpy type for Tensor Type",  # bfloat16 outputs cannot reach numpy
    "can't be converted to MLDataType",  # bfloat16 numpy inputs cannot reach ORT
    "Dilation not supported for AutoPadType",  # documented Conv limitation
    "operator does not support double yet",  # RNN, GRU and LSTM kernels: float32 only
)

LEVELS = {"none": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED",
          "all": "ORT_ENABLE_ALL"}
APPLIED = re.compile(r"GraphTransformer (\S+) modified: ([01])")  # the INFO log line of each transformer run
SEVERE = re.compile(r"\[[EF]:onnxruntime:")  # an ERROR or FATAL log line: what ORT prints when not capturing


class OnnxRuntime(Backend):
    requires = ("onnxruntime",)
    family = "onnxruntime"
    level: ClassVar[str] = "none"  # a key of LEVELS
    threads: ClassVar[int] = 1  # intra-op threads
    provider: ClassVar[str] = "CPUExecutionProvider"
    disabled_optimizers: ClassVar[tuple[str, ...]] = ()  # graph transformers the session skips
    # Share of compiles (drawn from the model's bytes) whose log is read for ``effects``: INFO
    # logging costs ort-all about 25% of its tests/s, so a quarter of the tests pay it (none on ort-none).
    effects_share: ClassVar[float] = 0.25

    def setup(self) -> None:
        import onnxruntime

        self.ort = onnxruntime
        self.options = onnxruntime.SessionOptions()
        self.options.graph_optimization_level = getattr(onnxruntime.GraphOptimizationLevel, LEVELS[self.level])
        self.options.intra_op_num_threads = self.threads
        self.options.inter_op_num_threads = 1
        self.log = tempfile.TemporaryFile()  # stderr while a session is created
        self.applied: list[str] = []  # transformers that ran on the last graph whose log was read
        self.fired: list[str] = []  # of them, those that modified it

    def prepare(self, case: TestCase) -> bytes:
        return case.model

    def compile(self, model: bytes) -> Any:
        return self.session(model, capture=self.optimizing and sampled(model, self.effects_share))

    def session(self, model: bytes, capture: bool) -> Any:
        """The session of ``model``. With ``capture``, ORT logs at INFO level, to stderr while it
        optimizes: the log is read for the transformers that ran (``applied``) and those that
        modified the graph (``fired``), and its errors go on to stderr."""
        self.fired = []
        self.options.log_severity_level = 1 if capture else 3
        saved = os.dup(2) if capture else None
        if saved is not None:
            self.log.seek(0)
            self.log.truncate()
            os.dup2(self.log.fileno(), 2)
        try:
            return self.ort.InferenceSession(model, self.options, providers=[self.provider],
                                             disabled_optimizers=list(self.disabled_optimizers))
        finally:
            if saved is not None:
                os.dup2(saved, 2)
                os.close(saved)
                self.log.seek(0)
                text = self.log.read().decode(errors="replace")
                runs = APPLIED.findall(text)
                self.applied = sorted({name for name, _ in runs})
                self.fired = list(dict.fromkeys(name for name, modified in runs if modified == "1"))
                kept = "".join(line for line in text.splitlines(keepends=True) if SEVERE.search(line))
                if kept:
                    os.write(2, kept.encode())

    def effects(self) -> tuple[str, ...]:
        return tuple(f"ort:{name}" for name in self.fired)

    def run(self, session: Any, inputs: Mapping[str, Any]) -> list[Any]:
        return session.run(None, dict(inputs))

    def is_unsupported(self, error: BaseException) -> bool:
        """NOT_IMPLEMENTED kernels, kernels that reject a dtype, and bfloat16 at the numpy boundary."""
        return isinstance(error, (Unsupported, self.ort.capi.onnxruntime_pybind11_state.NotImplemented)) or \
            any(marker in str(error) for marker in UNSUPPORTED_MARKERS)

    def optimizations(self, case: TestCase) -> list[str]:
        """The graph transformers that modified this model, from ORT's log."""
        self.session(case.model, capture=True)
        return list(self.fired)

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
def compile_backend(model):
    import onnxruntime
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.{LEVELS[cls.level]}
    options.intra_op_num_threads = {cls.threads}
    session = onnxruntime.InferenceSession(model, options, providers=["{cls.provider}"],
                                           disabled_optimizers={list(cls.disabled_optimizers)!r})
    return lambda inputs: session.run(None, dict(inputs))


def run_backend(model, inputs):
    return compile_backend(model)(inputs)
'''


def sampled(model: bytes, share: float) -> bool:
    """Whether ``model`` falls in a ``share`` of all models (the same answer every time)."""
    return zlib.crc32(model) < share * 2**32


def ort_backend(level: str, threads: int = 1, provider: str = "CPUExecutionProvider") -> type[OnnxRuntime]:
    on_cuda = provider == "CUDAExecutionProvider"
    name = "ort-" + ("cuda-" if on_cuda else "") + level + (f"-t{threads}" if threads > 1 else "")
    where = "CUDA" if on_cuda else "CPU"
    return type(name, (OnnxRuntime,), {
        "name": name, "level": level, "threads": threads, "provider": provider, "optimizing": level != "none",
        "baseline": "ort-" + ("cuda-" if on_cuda else "") + "none" if level == "all" and threads == 1 else "",
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
