"""Relax pass pipelines as data: TVM 0.27's llvm pipeline (``relax.backend.cpu_generic``), mutated.

A Relax spec is a pipeline spec (see ``fuzzer.tir.pipelines``) with ``"kind": "relax"``: its
passes run in order with the llvm target in scope, then ``tvm.compile`` builds the result
with TVM's default TIR pipeline under the spec's PassContext ``config`` and LLVM level.
Phases: ``graph`` (high-level operators, before ``LegalizeOps``) and ``legalized`` (calls
to PrimFuncs in dataflow blocks, before ``ToNonDataflow``). FuseOps and FuseTIR are
essential (fused functions that FuseTIR never lowers cannot be built), but FuseOps'
level varies; without AnnotateTIROpPattern nothing fuses. ``ORDER`` lists the pass orders
TVM relies on, which mutations keep. Drawing and mutating specs needs no TVM; ``build``
and ``run`` import it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Mapping, Sequence

import numpy as np

from fuzzer.tir.pipelines import (REFERENCE_CONFIG, OrderConstraint, PassSpec, PipelineMutation, essential, make_pass,
                                  optional)

GRAPH, LEGALIZED = "graph", "legalized"
PHASES = {GRAPH: (None, "LegalizeOps"), LEGALIZED: ("LegalizeOps", "ToNonDataflow")}
KIND = "relax"
SOURCE = "relax-pipeline"  # the seed_spec source of a case whose variants are Relax pipelines

CATALOG: dict[str, PassSpec] = {
    "DispatchSampling": essential("relax.backend.DispatchSampling"),
    "DispatchSortScan": essential("relax.backend.DispatchSortScan"),
    "LegalizeOps": essential("relax.transform.LegalizeOps"),
    "AnnotateTIROpPattern": optional("relax.transform.AnnotateTIROpPattern", (LEGALIZED,)),
    "FoldConstant": optional("relax.transform.FoldConstant", (GRAPH, LEGALIZED)),
    "FuseOps": essential("relax.transform.FuseOps", (), (0,), (1,), (2,)),
    "FuseTIR": essential("relax.transform.FuseTIR"),
    "RewriteDataflowReshape": optional("relax.transform.RewriteDataflowReshape", (LEGALIZED,)),
    "ToNonDataflow": essential("relax.transform.ToNonDataflow"),
    "RemovePurityChecking": essential("relax.transform.RemovePurityChecking"),
    "CallTIRRewrite": essential("relax.transform.CallTIRRewrite"),
    "StaticPlanBlockMemory": essential("relax.transform.StaticPlanBlockMemory"),
    "LowerAllocTensor": essential("relax.transform.LowerAllocTensor"),
    "KillAfterLastUse": essential("relax.transform.KillAfterLastUse"),
    "LowerRuntimeBuiltin": essential("relax.transform.LowerRuntimeBuiltin"),
    "ComputePrimValue": essential("relax.transform.ComputePrimValue"),
    "VMShapeLower": essential("relax.transform.VMShapeLower"),
    "AttachGlobalSymbol": essential("relax.transform.AttachGlobalSymbol"),
    # not in the default pipeline: only ever inserted
    "DeadCodeElimination": optional("relax.transform.DeadCodeElimination", (GRAPH, LEGALIZED)),
    "CanonicalizeBindings": optional("relax.transform.CanonicalizeBindings", (GRAPH, LEGALIZED)),
    "EliminateCommonSubexpr": optional("relax.transform.EliminateCommonSubexpr", (GRAPH, LEGALIZED)),
    "DecomposeOpsForInference": optional("relax.transform.DecomposeOpsForInference", (GRAPH,)),
}

DEFAULT_PASSES = (
    "DispatchSampling", "DispatchSortScan", "LegalizeOps", "AnnotateTIROpPattern", "FoldConstant", "FuseOps",
    "FuseTIR", "RewriteDataflowReshape", "ToNonDataflow", "RemovePurityChecking", "CallTIRRewrite",
    "StaticPlanBlockMemory", "LowerAllocTensor", "KillAfterLastUse", "LowerRuntimeBuiltin", "ComputePrimValue",
    "VMShapeLower", "AttachGlobalSymbol",
)


# Pass orders TVM relies on (tvm/relax/transform/transform.py, tvm/relax/backend/cpu_generic/pipeline.py).
ORDER = (
    # "A follow-up pass named FuseTIR will generate a TIR PrimFunc for each grouped function";
    # every TVM pipeline runs it right after FuseOps
    OrderConstraint("FuseOps", "FuseTIR", adjacent=True),
    # they "operate only in dataflow blocks", which ToNonDataflow removes
    *(OrderConstraint(name, "ToNonDataflow") for name in ("FoldConstant", "FuseOps", "RewriteDataflowReshape")),
)


def default_relax_pipeline() -> dict:
    """``relax.get_default_pipeline`` of the llvm target as a spec, built like the reference."""
    return {"kind": KIND, "passes": [{"name": name, "args": list(CATALOG[name].arguments[0])}
                                     for name in DEFAULT_PASSES],
            "config": dict(REFERENCE_CONFIG), "llvm_opt_level": 0}


def relax_mutation(catalog: Mapping[str, PassSpec] = CATALOG) -> PipelineMutation:
    return PipelineMutation(catalog, PHASES, ORDER)


def build(module: Any, spec: Mapping[str, Any] | None, catalog: Mapping[str, PassSpec] = CATALOG,
          instruments: Sequence[Any] = ()) -> Any:
    """A Relax VM of ``module`` built through ``spec``; None: TVM's own llvm pipeline (the reference)."""
    import tvm
    from tvm import relax

    target = tvm.target.Target({"kind": "llvm", "opt-level": spec["llvm_opt_level"] if spec else 0})
    if spec is None:
        pipeline = relax.get_default_pipeline(target)
    else:
        passes = [make_pass(entry, catalog) for entry in spec["passes"]]

        @tvm.transform.module_pass(opt_level=0, name="tcfuzz_relax_pipeline")
        def pipeline(mod: Any, context: Any) -> Any:
            with target:
                return tvm.ir.transform.Sequential(passes)(mod)

    config = dict(spec["config"] if spec else REFERENCE_CONFIG)
    with tvm.transform.PassContext(opt_level=3, config=config, instruments=list(instruments)):
        return relax.VirtualMachine(tvm.compile(module, target=target, relax_pipeline=pipeline), tvm.cpu())


def run(machine: Any, module: Any, arguments: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The outputs of ``main`` as ``out0``, ``out1``…, its parameters taken by name from ``arguments``."""
    from fuzzer.execution.backends.tvm_relax import parameter_names, run_main

    outputs = run_main(machine, [arguments[name] for name in parameter_names(module)])
    return {f"out{index}": value for index, value in enumerate(outputs)}


def relax_module(spec: Mapping[str, Any]) -> tuple[Any, dict[str, np.ndarray]]:
    """The Relax module ``from_onnx`` makes of the spec's generated graph, and random inputs for it."""
    from fuzzer.execution.backends.tvm_relax import import_onnx
    from fuzzer.graph.export_onnx import to_onnx_bytes
    from fuzzer.graph.values import random_inputs

    graph = frontend_graph(spec["graph_seed"], spec["nodes"])
    return import_onnx(to_onnx_bytes(graph)), random_inputs(graph, spec["graph_seed"])


def frontend_graph(seed: int, nodes: int) -> Any:
    """The generated graph of ``seed`` made of operators TVM's ONNX frontend converts (the
    seed graphs of Relax modules, here and in ``fuzzer.tir.seeds``)."""
    from fuzzer.generation.generator import GeneratorOptions, generate_graph

    options = GeneratorOptions(nodes=nodes)
    return generate_graph(seed, replace(options, ops=frontend_operators(options.opset)))


def frontend_operators(opset: int) -> frozenset[str]:
    """The operators at ``opset`` that TVM's ONNX frontend converts, of those tcfuzz draws: a
    seed graph of any other would fail to import, which tests nothing of the Relax pipeline."""
    from tvm.relax.frontend.onnx import onnx_frontend

    from fuzzer.graph.ops import all_specs
    from fuzzer.graph.ops.spec import Family

    converted = onnx_frontend._get_convert_map()
    return frozenset(spec.name for spec in all_specs()
                     if spec.name in converted and spec.dtypes_at(opset) and spec.family is not Family.CONTROL)
