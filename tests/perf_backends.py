"""Backends with planted performance behaviour, for the performance oracle's tests.

Each is ONNX Runtime without graph optimizations, so its results are right; what differs is
how long ``run`` takes:

- ``PlantedBaseline``: as fast as ORT is;
- ``PlantedSlow``: 3 ms slower on every run of a graph with a Tanh node (a slowdown that an
  optimization of Tanh would cause, and that reduction must keep);
- ``PlantedNoisy``: every third run in a process takes 4 ms longer, whatever the graph: a
  noisy machine that a mean would mistake for a slowdown and a median does not;
- ``PlantedTransient``: slow in the first timed pair of a Tanh graph only (a marker file,
  ``$TCFUZZ_TRANSIENT_MARKER``, records that it happened), as when another process steals
  the CPU once: fresh-worker re-measurements must not confirm it.

Load them as ``tests.perf_backends:PlantedSlow`` etc.; their baseline is ``PlantedBaseline``.
"""

from __future__ import annotations

import os
import time
from typing import Any, Mapping

from fuzzer.execution.backends.onnxruntime import ort_backend

BASELINE = "tests.perf_backends:PlantedBaseline"
DELAY = 0.003  # seconds


class PlantedBaseline(ort_backend("none")):
    name = "planted-base"
    description = "ONNX Runtime without optimizations (the planted compilers' baseline)"
    family = "planted"
    optimizing = False


class PlantedOptimized(PlantedBaseline):
    baseline = BASELINE
    optimizing = True

    def compile(self, model: bytes) -> Any:
        self.has_tanh = b"Tanh" in model
        return super().compile(model)

    def delay(self) -> float:
        return 0.0

    def run(self, session: Any, inputs: Mapping[str, Any]) -> list[Any]:
        if wait := self.delay():
            time.sleep(wait)
        return super().run(session, inputs)


class PlantedSlow(PlantedOptimized):
    name = "planted-slow"
    description = "ONNX Runtime, 3 ms slower on graphs with a Tanh node"

    def delay(self) -> float:
        return DELAY if self.has_tanh else 0.0

    @classmethod
    def repro_source(cls) -> str:
        return super().repro_source().replace("def compile_backend(model):", "def ort_session(model):") + f"""

def compile_backend(model):
    import time
    run = ort_session(model)
    delay = {DELAY} if b"Tanh" in model else 0.0
    return lambda inputs: (time.sleep(delay), run(inputs))[1]
"""


class PlantedNoisy(PlantedOptimized):
    name = "planted-noisy"
    description = "ONNX Runtime, every third run 4 ms slower"
    runs = 0

    def delay(self) -> float:
        PlantedNoisy.runs += 1
        return 0.004 if PlantedNoisy.runs % 3 == 0 else 0.0


class PlantedTransient(PlantedOptimized):
    name = "planted-transient"
    description = "ONNX Runtime, slow in the first timed pair of a Tanh graph only"

    def compile(self, model: bytes) -> Any:
        self.runs_of_program = 0
        return super().compile(model)

    def delay(self) -> float:
        marker = os.environ["TCFUZZ_TRANSIENT_MARKER"]
        if not self.has_tanh or os.path.exists(marker):
            return 0.0
        self.runs_of_program += 1
        if self.runs_of_program == 6:  # a timed pair's warm-up and five timed runs: once is enough
            open(marker, "w").close()
        return DELAY
