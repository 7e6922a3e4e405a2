"""The case pool builds, in its helper processes, exactly the cases the seeds give here."""

import numpy as np

from fuzzer.case_pool import CaseJob, CasePool
from fuzzer.generator import GeneratorOptions, generate_case, generate_graph


def test_pool_cases_equal_local_generation():
    options = GeneratorOptions(nodes=6, dynamic=0.5)
    mutant = generate_graph(99, GeneratorOptions(nodes=3))
    jobs = [CaseJob(index, 1000 + index) for index in range(6)] + [CaseJob(6, 7, mutant)]
    pool = CasePool(2, options)
    try:
        pool.warm()
        built = pool.submit(jobs).result(timeout=120)
    finally:
        pool.close()
    assert len(built) == len(jobs)
    for job, cases in zip(jobs[:-1], built):
        local = generate_case(job.seed, options, job.index)
        assert cases[0].graph.content_hash == local.graph.content_hash and cases[0].model == local.model
        assert all(np.array_equal(cases[0].inputs[name], value, equal_nan=True) for name, value in local.inputs.items())
        assert all(case.index == job.index and case.model == local.model for case in cases)
        assert (len(cases) > 1) == bool(local.graph.symbols)  # a dynamic graph runs at several sizes
    assert built[-1][0].graph.content_hash == mutant.content_hash
