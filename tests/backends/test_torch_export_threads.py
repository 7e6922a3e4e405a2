"""torch.export from several threads of one process, as triage's parallel jobs write scripts:
each export must succeed as it does alone (torch keeps its tracing modes in process-wide stacks)."""

from __future__ import annotations

import threading

import pytest

from fuzzer.generation.generator import GeneratorOptions, generate_graph, make_case
from fuzzer.graph.ir import DType
from fuzzer.graph.rejected import Unsatisfiable

torch = pytest.importorskip("torch")

THREADS = 2
GRAPHS = 16


def float32_cases() -> list:
    options = GeneratorOptions(input_budget=None, dtypes=frozenset({DType.float32}))
    cases, seed = [], 0
    while len(cases) < GRAPHS:
        try:
            cases.append(make_case(generate_graph(seed, options), seed, options.opset, seed, None))
        except Unsatisfiable:
            pass
        seed += 1
    return cases


def test_exports_from_parallel_threads_succeed_as_they_do_alone():
    from fuzzer.execution.backends.torch_eager import exported_program_bytes
    from fuzzer.graph import export_torch, values

    def export(case) -> None:
        arguments = [values.to_torch(case.inputs[i.name]) for i in case.graph.inputs]
        exported_program_bytes(torch, export_torch.to_module(case.graph), arguments)

    cases = float32_cases()
    alone = []
    for case in cases:
        try:
            export(case)
        except Exception as error:  # noqa: BLE001 - compared below
            alone.append((case.seed, type(error).__name__))
    failures: list[tuple[str, str]] = []

    def work(part: list) -> None:
        for case in part:
            try:
                export(case)
            except Exception as error:  # noqa: BLE001 - compared below
                failures.append((case.seed, f"{type(error).__name__}: {error}"[:200]))

    threads = [threading.Thread(target=work, args=(cases[i::THREADS],)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(h for h, _ in failures) == sorted(h for h, _ in alone), failures
