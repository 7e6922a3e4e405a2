"""The graph stage: the IR, operator specifications, exporters to ONNX and torch, and ONNX import."""

from fuzzer.graph import ops  # noqa: F401 - installs the operators' shape rules into the IR
