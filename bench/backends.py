"""Tests per second of each backend on its own, pinned to one core, on 10-node graphs.

Each backend runs in its isolated worker exactly as in a campaign (batches of its own
batch size, so Inductor packs). Prints JSON. Usage:
python bench/backends.py [--seconds 30] [--nodes 10] [--backends a,b]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fuzzer.execution.backends import builtin_backends, load_backend  # noqa: E402
from fuzzer.generation.generator import GeneratorOptions, generate_case  # noqa: E402
from fuzzer.execution.isolation import Limits, WorkerGroup  # noqa: E402
from fuzzer.execution.outcome import Status  # noqa: E402


def measure(name: str, seconds: float, nodes: int, log_dir: Path) -> dict:
    options = GeneratorOptions(nodes=nodes)
    batch = load_backend(name).batch_size
    with WorkerGroup([name], Limits(timeout=120), log_dir) as group:
        group.execute(generate_case(10**6, options))  # warm-up outside the clock
        started, tests, statuses, index = time.monotonic(), 0, {}, 0
        while time.monotonic() - started < seconds:
            cases = [generate_case(index + k, options, index + k) for k in range(batch)]
            index += batch
            for outcomes in group.execute_batch(cases):
                statuses[outcomes[0].status.value] = statuses.get(outcomes[0].status.value, 0) + 1
            tests += len(cases)
        elapsed = time.monotonic() - started
    return {"backend": name, "tests": tests, "seconds": round(elapsed, 1),
            "tests_per_second": round(tests / elapsed, 2),
            "ok_share": round(statuses.get(Status.OK.value, 0) / tests, 3),
            "statuses": statuses}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--backends", help="comma-separated (default: every available CPU backend)")
    args = parser.parse_args()
    names = args.backends.split(",") if args.backends else [
        n for n, b in builtin_backends().items() if b.device == "cpu" and b.missing() is None]
    os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:1])
    with tempfile.TemporaryDirectory() as scratch:
        results = [measure(name, args.seconds, args.nodes, Path(scratch)) for name in names]
    print(json.dumps({"benchmark": "tests/s per backend, one core", "nodes": args.nodes, "results": results},
                     indent=2))


if __name__ == "__main__":
    main()
