"""The TVM Relax backends in real isolated workers: agreement, classification, reproduction."""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

pytest.importorskip("tvm")

from fuzzer.execution.backends import builtin_backends, load_backend, tvm_relax  # noqa: E402
from fuzzer.generation.generator import GeneratorOptions, generate_case  # noqa: E402
from fuzzer.graph.ir import DType  # noqa: E402
from fuzzer.execution.isolation import Limits, Worker, WorkerGroup  # noqa: E402
from fuzzer.graph.case import TestCase  # noqa: E402
from fuzzer.execution.outcome import Stage, Status  # noqa: E402
from oracles.verdict import differential  # noqa: E402

ONNX_BACKENDS = ["tvm", "tvm-nofuse", "tvm-noopt"]
BACKENDS = ["onnx-ref", *ONNX_BACKENDS, "tvm-torch"]
# Operators that both TVM frontends convert, in float32, where TVM 0.27 has no known bug.
SUPPORTED = frozenset({"Add", "Sub", "Mul", "Div", "Relu", "Sigmoid", "Tanh", "Exp", "Abs", "Neg",
                       "MatMul", "Softmax", "Transpose", "Reshape", "Concat", "ReduceSum",
                       "Max", "Min", "Clip", "LeakyRelu"})
FLOAT32 = frozenset({DType.float32})
LIMITS = Limits(timeout=60.0, memory_mb=4096)


@pytest.fixture(scope="module")
def group(tmp_path_factory):
    """The workers, started and closed side by side: each TVM worker imports for seconds."""
    workers = WorkerGroup(BACKENDS, LIMITS, tmp_path_factory.mktemp("logs"))
    with ThreadPoolExecutor(len(BACKENDS)) as pool:
        try:
            list(pool.map(Worker.start, workers.workers))
            yield workers
        finally:
            list(pool.map(Worker.close, workers.workers))


def cases(ops: frozenset[str], count: int, nodes: int) -> list[TestCase]:
    options = GeneratorOptions(nodes=nodes, ops=ops, dtypes=FLOAT32)
    return [generate_case(seed, options, seed) for seed in range(count)]


def test_backends_agree_with_the_reference_on_supported_operators(group):
    batch = cases(SUPPORTED, 20, nodes=4)
    for case, outcomes in zip(batch, group.execute_batch(batch)):
        assert [o.status for o in outcomes] == [Status.OK] * len(BACKENDS), \
            [(o.backend, o.message[:300]) for o in outcomes if not o.ok]
        assert differential(case.output_types(), outcomes, reference="onnx-ref") == []


def test_missing_converters_are_unsupported(group):
    # TVM 0.27's ONNX frontend has no Celu; its torch frontend has no amax (ReduceMax).
    celu, reduce_max = cases(frozenset({"Celu"}), 1, nodes=1)[0], cases(frozenset({"ReduceMax"}), 1, nodes=1)[0]
    for case, expected in ((celu, dict.fromkeys(ONNX_BACKENDS, "Celu")), (reduce_max, {"tvm-torch": "amax"})):
        by_backend = {o.backend: o for o in group.execute(case)}
        for backend, word in expected.items():
            outcome = by_backend[backend]
            assert (outcome.status, outcome.stage) == (Status.UNSUPPORTED, Stage.PREPARE), outcome.message
            assert word in outcome.message


def test_torch_path_needs_a_graph(group):
    case = cases(SUPPORTED, 1, nodes=3)[0]
    external = TestCase(None, case.inputs, case.model, case.opset, case.seed)
    by_backend = {o.backend: o for o in group.execute(external)}
    assert by_backend["tvm-torch"].status is Status.UNSUPPORTED
    assert by_backend["tvm"].status is Status.OK


def raise_from(filename: str, statement: str, **names) -> BaseException:
    """The exception ``statement`` raises when its code claims to live in ``filename``."""
    try:
        exec(compile(statement, filename, "exec"), names)
    except Exception as error:  # noqa: BLE001 - the error is the result
        return error
    raise AssertionError(f"{statement!r} did not raise")


def test_only_frontend_refusals_and_documented_limitations_are_unsupported():
    import tvm
    from tvm import relax

    backend = load_backend("tvm")()
    frontend = "/site-packages/tvm/relax/frontend/onnx/onnx_frontend.py"
    legalization = "/site-packages/tvm/relax/transform/legalize_ops/manipulate.py"
    refusals = [
        (tvm.error.OpNotImplemented, "The following operators are not supported for frontend ONNX: Celu"),
        (NotImplementedError, "opset version 9 of Foo"),
        (ValueError, "Dynamic pads are not supported yet."),
    ]
    for error, message in refusals:
        assert backend.is_unsupported(raise_from(frontend, "raise error(message)", error=error, message=message))
    assert backend.is_unsupported(tvm.error.InternalError(
        "Check failed: (data_type == PrimType::Float(32)) is false: layer_norm: only support float32 "
        "and float16 for now"))
    # Frontend crashes, and "not supported" said by other components, are findings.
    assert not backend.is_unsupported(raise_from(frontend, "raise error('Call has no attribute value')",
                                                 error=AttributeError))
    assert not backend.is_unsupported(raise_from(legalization, "raise error('Check failed: not supported')",
                                                 error=tvm.error.InternalError))
    # A C++ type check reached from frontend code: the frontend built invalid IR.
    integer_sqrt = "relax.BlockBuilder().normalize(relax.op.sqrt(relax.const(np.ones(2, 'int64'))))"
    assert not backend.is_unsupported(raise_from(frontend, integer_sqrt, relax=relax, np=np))


def test_torch_failing_inside_the_torch_frontend_is_a_decline_and_tvm_failing_a_finding(monkeypatch):
    """torch's verifier or functionalization failing while TVM decomposes a program (a
    ``torch.cond`` with a constant in a branch) says nothing about TVM; TVM's own errors do."""
    import os

    import torch

    backend = load_backend("tvm-torch")()
    backend.setup()
    case = generate_case(0, GeneratorOptions(ops=frozenset({"Relu"}), dtypes=FLOAT32, input_budget=None))
    generated: dict = {}  # FX's generated forward: skipped when finding whose code raised
    exec(compile("def forward():\n    raise RuntimeError('FunctionalTensor on its own')", "<eval_with_key>.1",
                 "exec"), generated)
    torch_file = os.path.join(os.path.dirname(torch.__file__), "_subclasses", "functional_tensor.py")
    frontend = os.path.join(os.path.dirname(tvm_relax.__file__), "tvm", "relax", "frontend", "torch", "x.py")

    def importer_failing_in(filename: str):
        return lambda program: exec(compile("forward()", filename, "exec"), generated)

    monkeypatch.setattr(tvm_relax, "import_exported_program", importer_failing_in(torch_file))
    with pytest.raises(tvm_relax.Unsupported, match="torch failed inside TVM's import"):
        backend.prepare(case)
    monkeypatch.setattr(tvm_relax, "import_exported_program", importer_failing_in(frontend))
    with pytest.raises(RuntimeError, match="FunctionalTensor"):
        backend.prepare(case)

RUNNER = textwrap.dedent("""
    import pickle, sys
    for package in ("fuzzer", "oracles", "corpus", "triage"):
        sys.modules[package] = None  # importing tcfuzz fails
    artifact, inputs, source = pickle.load(sys.stdin.buffer)
    namespace = {}
    exec(source, namespace)
    pickle.dump(namespace["run_backend"](artifact, inputs), sys.stdout.buffer)
""")


def reproduce(payload: bytes) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", RUNNER], input=payload, capture_output=True, timeout=120)


def test_repro_sources_reproduce_the_workers(group):
    case = cases(SUPPORTED, 3, nodes=6)[2]
    outcomes = {o.backend: o for o in group.execute(case)}
    payloads = {}
    for name in ("tvm", "tvm-torch"):  # the two frontends; the knobs differ only in values
        backend = load_backend(name)()
        if name == "tvm-torch":
            backend.setup()  # its artifact is a saved torch.export program
        payloads[name] = pickle.dumps((backend.repro_artifact(case), dict(case.inputs), backend.repro_source()))
    with ThreadPoolExecutor(len(payloads)) as pool:  # side by side: each script imports TVM
        results = dict(zip(payloads, pool.map(reproduce, payloads.values())))
    for name, result in results.items():
        assert result.returncode == 0, result.stderr.decode()[-3000:]
        assert outcomes[name].ok, outcomes[name].message
        expected, reproduced = list(outcomes[name].outputs.values()), pickle.loads(result.stdout)
        assert len(reproduced) == len(expected)
        for actual, array in zip(reproduced, expected):
            np.testing.assert_array_equal(actual, array)


def test_cuda_backend_is_listed_and_says_why_it_cannot_run(monkeypatch):
    backend = builtin_backends()["tvm-cuda"]
    assert backend.device == "cuda"
    monkeypatch.setattr(tvm_relax, "gpu_present", lambda: False)
    assert backend.missing() == "no NVIDIA GPU on this machine"


def test_cuda_pipeline_schedules_every_kernel_for_the_gpu():
    """Without a GPU the CUDA path still compiles to CUDA C; an unscheduled kernel would fail
    TVM's memory verification ("did you forget to bind?"), so every kernel got dlight's threads."""
    case = cases(SUPPORTED, 4, nodes=6)[3]
    backend = load_backend("tvm-cuda")
    executable = tvm_relax.compile_relax(tvm_relax.import_onnx(case.model), **backend.knobs())
    modules, kinds = [executable.mod], []
    while modules:
        module = modules.pop()
        kinds.append(module.kind)
        modules.extend(module.imports)
        if module.kind == "cuda":
            source = module.inspect_source()
    assert "cuda" in kinds and "llvm" in kinds, kinds
    assert "__global__" in source and "threadIdx.x" in source
