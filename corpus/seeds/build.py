"""Write the seed blocks as ONNX files: ``python -m corpus.seeds.build [DIRECTORY]``."""

from __future__ import annotations

import sys
from pathlib import Path

from corpus.seeds import SEED_DIRECTORY, seed_graphs
from fuzzer.graph.export_onnx import DEFAULT_OPSET, to_onnx_bytes


def write_seeds(directory: Path = SEED_DIRECTORY, opset: int = DEFAULT_OPSET) -> list[Path]:
    """One ``NAME.onnx`` per seed in ``directory``; the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, graph in seed_graphs().items():
        paths.append(directory / f"{name}.onnx")
        paths[-1].write_bytes(to_onnx_bytes(graph, opset))
    return paths


if __name__ == "__main__":
    for path in write_seeds(Path(sys.argv[1]) if len(sys.argv) > 1 else SEED_DIRECTORY):
        print(path)
