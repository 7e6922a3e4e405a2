"""Cost of coverage measurement: tests/s per backend with coverage off and on, in one run.

Each backend gets two isolated workers, one without and one with ``--coverage``; both run
the same fresh graphs, batch by batch, alternating so that load from other processes
falls on both alike. One warm-up batch per worker is not timed (first compiles, lazy
imports). Prints JSON with tests/s both ways and their ratio (on / off).
Usage: python bench/coverage_overhead.py [--backends tvm,inductor] [--batches 3] [--nodes 10]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fuzzer.execution.backends import load_backend  # noqa: E402
from fuzzer.generation.generator import GeneratorOptions, generate_case  # noqa: E402
from fuzzer.execution.isolation import Limits, Worker  # noqa: E402
from fuzzer.graph.rejected import Unsatisfiable  # noqa: E402


def fresh_cases(count: int, first_seed: int, options: GeneratorOptions) -> list:
    cases, seed = [], first_seed
    while len(cases) < count:
        try:
            cases.append(generate_case(seed, options, seed))
        except Unsatisfiable:
            pass
        seed += 1
    return cases


def measure(backend: str, batches: int, options: GeneratorOptions, limits: Limits) -> dict:
    size = max(load_backend(backend).batch_size, 4)
    workers = {mode: Worker(backend, limits, coverage=mode == "on") for mode in ("off", "on")}
    seconds = dict.fromkeys(workers, 0.0)
    arcs = 0
    try:
        for worker in workers.values():
            worker.start()
        for batch in range(batches + 1):
            cases = fresh_cases(size, 1000 * batch, options)
            for mode, worker in workers.items():
                started = time.perf_counter()
                worker.submit(cases)
                outcomes = worker.collect()
                if batch:  # batch 0 warms up
                    seconds[mode] += time.perf_counter() - started
                arcs += sum(len(o.coverage) for o in outcomes) if mode == "on" else 0
    finally:
        for worker in workers.values():
            worker.close()
    tests = batches * size
    rates = {mode: tests / spent for mode, spent in seconds.items()}
    return {"backend": backend, "tests": tests, "tests_per_second_off": round(rates["off"], 2),
            "tests_per_second_on": round(rates["on"], 2), "ratio": round(rates["on"] / rates["off"], 3),
            "coverage_bits_reported": arcs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="ort-all,onnx-ref,tvm,tvm-torch,inductor")
    parser.add_argument("--batches", type=int, default=3, help="timed batches per backend and mode")
    parser.add_argument("--nodes", type=int, default=10)
    args = parser.parse_args()
    options = GeneratorOptions(nodes=args.nodes, input_budget=None)
    limits = Limits(timeout=30.0)
    results = [measure(name, args.batches, options, limits) for name in args.backends.split(",")]
    print(json.dumps({"benchmark": "coverage overhead (worker tests/s, coverage on / off)", "results": results},
                     indent=2))


if __name__ == "__main__":
    main()
