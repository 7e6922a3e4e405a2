"""Test-case generation rate on one core: graph generation, ONNX export and input search.

Prints JSON: graphs/s for 5-, 10- and 20-node graphs, by the wall clock and by this thread's
CPU time (the two agree on an idle core; on a busy machine the CPU figures are the ones to
compare), the slowest single graph in ms (wall and CPU), the median and longest input search
in ms (wall) and the share of graphs with clean inputs. The one-off import of torch and the first search are reported
apart and left out of the rates.
Usage: python bench/generation.py [--graphs 500] [--seed 0] [--budget 0.1]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fuzzer.graph.export_onnx import to_onnx_bytes  # noqa: E402
from fuzzer.generation.generator import GeneratorOptions, generate_graph  # noqa: E402


def measure(nodes: int, graphs: int, seed: int, budget: float) -> dict:
    from fuzzer.generation.input_search import search_inputs

    options = GeneratorOptions(nodes=nodes)
    durations, cpu_durations, searches, clean = [], [], [], 0
    wall, cpu = time.perf_counter(), time.thread_time()
    for index in range(seed, seed + graphs):
        start, start_cpu = time.perf_counter(), time.thread_time()
        graph = generate_graph(index, options)
        to_onnx_bytes(graph, options.opset)
        result = search_inputs(graph, index, budget)
        durations.append(time.perf_counter() - start)
        cpu_durations.append(time.thread_time() - start_cpu)
        searches.append(result.seconds)
        clean += result.clean
    wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
    return {"nodes": nodes, "graphs": graphs, "graphs_per_second": round(graphs / wall, 1),
            "graphs_per_cpu_second": round(graphs / cpu, 1), "slowest_graph_ms": round(max(durations) * 1e3, 1),
            "slowest_graph_cpu_ms": round(max(cpu_durations) * 1e3, 1),
            "median_search_ms": round(statistics.median(searches) * 1e3, 2),
            "max_search_ms": round(max(searches) * 1e3, 1), "clean_share": round(clean / graphs, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--graphs", type=int, default=500, help="graphs per size")
    parser.add_argument("--seed", type=int, default=0, help="first seed")
    parser.add_argument("--budget", type=float, default=0.1, help="input-search time budget per graph, seconds")
    args = parser.parse_args()
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    start = time.perf_counter()
    from fuzzer.generation.input_search import search_inputs

    search_inputs(generate_graph(args.seed), args.seed, args.budget)  # loads torch's kernels
    warm_up = time.perf_counter() - start
    results = [measure(nodes, args.graphs, args.seed, args.budget) for nodes in (5, 10, 20)]
    print(json.dumps({"benchmark": "generation + ONNX export + input search", "cores": 1,
                      "budget_seconds": args.budget, "torch_import_and_first_search_seconds": round(warm_up, 2),
                      "results": results}, indent=2))


if __name__ == "__main__":
    main()
