"""Input search quality and cost on generated graphs at the default options.

Prints JSON: the share of graphs whose inputs are clean, the median, p95 and longest search
in ms (this thread's CPU time and the wall clock; on a busy machine compare the CPU figures),
and a histogram of why the unclean ones are not: the operator at fault, what is wrong
(domain, non-finite, unreachable, torch), and the operators that produce its inputs, with
the first seeds of each cause.
Usage: python bench/input_search.py [--graphs 1000] [--seed 0] [--nodes 10]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fuzzer.generation.generator import GeneratorOptions, generate_graph  # noqa: E402
from fuzzer.generation.input_search import InputSearchResult, search_inputs  # noqa: E402
from fuzzer.graph.ir import Graph  # noqa: E402

EXAMPLES = 5  # seeds listed per cause


def cause(graph: Graph, result: InputSearchResult) -> str:
    """``operator [kind] <- producers of its inputs`` for an unclean result."""
    kinds = {"outside its domain": "domain", "does not run in torch": "torch", "NaN, Inf": "non-finite"}
    kind = next((k for text, k in kinds.items() if text in result.reason), "input")
    if "no graph input reaches" in result.reason:
        kind += ", unreachable"
    if result.culprit is None:
        return f"graph input [{kind}]"
    node = graph.nodes[result.culprit]
    producers = {name: n.op for n in graph.nodes for name in n.outputs}
    weights = {w.name for w in graph.weights}
    sources = sorted({producers.get(name, "weight" if name in weights else "input") for name in node.inputs})
    return f"{node.op} [{kind}] <- {', '.join(sources)}"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--graphs", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0, help="first seed")
    parser.add_argument("--nodes", type=int, default=10)
    args = parser.parse_args()
    options = GeneratorOptions(nodes=args.nodes)
    search_inputs(generate_graph(args.seed, options), args.seed, options.input_budget)  # loads torch's kernels
    cpu, wall, causes, examples = [], [], Counter(), defaultdict(list)
    for seed in range(args.seed, args.seed + args.graphs):
        graph = generate_graph(seed, options)
        start = time.thread_time()
        result = search_inputs(graph, seed, options.input_budget)
        cpu.append(time.thread_time() - start)
        wall.append(result.seconds)
        if not result.clean:
            key = cause(graph, result)
            causes[key] += 1
            examples[key] += [seed][:EXAMPLES - len(examples[key])]

    def summary(times: list[float]) -> dict[str, float]:
        return {"median_ms": round(statistics.median(times) * 1e3, 2),
                "p95_ms": round(percentile(times, 0.95) * 1e3, 2),
                "max_ms": round(max(times) * 1e3, 1)}

    print(json.dumps({"graphs": args.graphs, "nodes": args.nodes, "first_seed": args.seed,
                      "budget_seconds": options.input_budget,
                      "clean_share": round(1 - sum(causes.values()) / args.graphs, 4),
                      "search_cpu": summary(cpu), "search_wall": summary(wall),
                      "unclean_causes": [{"cause": key, "graphs": count, "seeds": examples[key]}
                                         for key, count in causes.most_common()]}, indent=2))


if __name__ == "__main__":
    main()
