"""The graph stage: the IR, operator specifications, exporters to ONNX and torch, and ONNX import."""
