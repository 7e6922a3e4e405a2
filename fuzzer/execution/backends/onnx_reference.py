"""The ONNX reference evaluator (``onnx.reference``): the specification, run in numpy."""

from __future__ import annotations

from typing import Any, Mapping

from fuzzer.execution.backends.base import Backend
from fuzzer.graph.case import TestCase


class OnnxReference(Backend):
    name = "onnx-ref"
    role = "judge"
    family = "onnx.reference"
    description = "onnx.reference.ReferenceEvaluator"
    requires = ("onnx",)

    def setup(self) -> None:
        from onnx.reference import ReferenceEvaluator

        self.evaluator = ReferenceEvaluator

    def prepare(self, case: TestCase) -> bytes:
        return case.model

    def compile(self, model: bytes) -> Any:
        return self.evaluator(model)

    def run(self, evaluator: Any, inputs: Mapping[str, Any]) -> list[Any]:
        return evaluator.run(None, dict(inputs))

    @classmethod
    def repro_source(cls) -> str:
        return """
def run_backend(model, inputs):
    from onnx.reference import ReferenceEvaluator
    return ReferenceEvaluator(model).run(None, dict(inputs))
"""


BACKENDS = [OnnxReference]
