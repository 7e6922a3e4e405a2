"""A lane's case builder makes, in its helper process, exactly the cases the seeds give here."""

from pathlib import Path

import numpy as np

from fuzzer.execution.case_builder import CaseBuilder, CaseJob
from fuzzer.generation.generator import GeneratorOptions, generate_case, generate_graph


def test_builder_cases_equal_local_generation(tmp_path: Path) -> None:
    options = GeneratorOptions(nodes=6, dynamic=0.5)
    mutant = generate_graph(99, GeneratorOptions(nodes=3))
    jobs = [CaseJob(index, 1000 + index) for index in range(6)]
    builder = CaseBuilder(tmp_path / "builder.log")
    try:
        builder.start()
        builder.wait_ready()
        first = builder.submit(jobs, options)
        second = builder.submit([CaseJob(6, 7, mutant)], options)  # two requests in flight, answered in order
        built, mutated = first.result(), second.result()
    finally:
        builder.close()
    assert builder.process is None  # closing the pipe ended the helper
    assert len(built) == len(jobs)
    for job, cases in zip(jobs, built):
        local = generate_case(job.seed, options, job.index)
        assert cases[0].graph.content_hash == local.graph.content_hash and cases[0].model == local.model
        assert all(np.array_equal(cases[0].inputs[name], value, equal_nan=True) for name, value in local.inputs.items())
        assert all(case.index == job.index and case.model == local.model for case in cases)
        assert (len(cases) > 1) == bool(local.graph.symbols)  # a dynamic graph runs at several sizes
    assert any(len(cases) > 1 for cases in built)
    assert mutated[0][0].graph.content_hash == mutant.content_hash
