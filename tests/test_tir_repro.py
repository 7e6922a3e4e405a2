"""Relax repro scripts carry the constants that TVMScript leaves to ``metadata``, checked before writing."""

from __future__ import annotations

import importlib.util

import pytest

from fuzzer.tir import relax_pipelines
from fuzzer.tir.repro import metadata_constants, relax_module_source

pytestmark = pytest.mark.skipif(importlib.util.find_spec("tvm") is None, reason="apache-tvm is not installed")


def module_of(graph_seed: int):
    module, _ = relax_pipelines.relax_module({"source": relax_pipelines.SOURCE, "graph_seed": graph_seed, "nodes": 6})
    return module


@pytest.mark.parametrize("graph_seed, dtypes", [(0, ["float32"]), (12, ["bfloat16", "bfloat16"]),
                                                (20, ["float16", "float32", "float32", "bool"])])
def test_the_module_source_rebuilds_the_module_with_its_constants(graph_seed, dtypes) -> None:
    import tvm_ffi

    module = module_of(graph_seed)
    assert [str(constant.ty.dtype) for constant in metadata_constants(module)] == dtypes
    scope: dict = {}
    exec(relax_module_source(module.script(), module), scope)  # noqa: S102
    assert tvm_ffi.structural_equal(scope["MODULE"], module)


def test_a_script_of_another_module_is_refused() -> None:
    with pytest.raises(ValueError, match="different module"):
        relax_module_source(module_of(2).script(), module_of(4))
