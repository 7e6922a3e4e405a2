"""How much can any guidance add? The compiler branches the generator's whole space reaches.

One backend runs in this process under the same measurement as a campaign's workers
(coverage.py branch arcs over the backend's ``coverage_include``). First ``--plain`` fresh
graphs with the default options (opset 17, no control flow, static shapes); then
``--wide`` graphs from the widest space that generation and mutation reach (every
supported opset, control flow and dynamic shapes at a share of 0.2 each). Prints JSON: the
arcs covered after each step, and the ceiling: the union over both phases against the
plain phase alone. A guided campaign only reorders and varies tests inside this space, so
in an equal budget it cannot add more than the ceiling's gain over an unguided one.
Usage: python bench/coverage_headroom.py [--backend tvm] [--plain 300] [--wide 1200]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fuzzer.execution.backends import load_backend  # noqa: E402
from fuzzer.execution.coverage_bits import collector_for  # noqa: E402
from fuzzer.graph.export_onnx import SUPPORTED_OPSETS  # noqa: E402
from fuzzer.generation.generator import GeneratorOptions, generate_case  # noqa: E402
from fuzzer.graph.rejected import Unsatisfiable  # noqa: E402

WIDE_SHARE = 0.2


def run_phase(backend, collector, covered: set[int], count: int, first_seed: int, wide: bool) -> list[int]:
    """Run ``count`` graphs; the arcs covered so far after each step of a tenth."""
    curve, step = [], max(1, count // 10)
    for number in range(count):
        seed = first_seed + number
        options = GeneratorOptions(nodes=10)
        if wide:
            options = dataclasses.replace(options, opset=random.Random(seed).choice(SUPPORTED_OPSETS),
                                          control_flow=WIDE_SHARE, dynamic=WIDE_SHARE)
        try:
            case = generate_case(seed, options, number)
        except Unsatisfiable:
            continue
        backend.execute(case, lambda stage: None)
        covered |= collector.collect()
        if (number + 1) % step == 0:
            curve.append(len(covered))
    return curve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="tvm")
    parser.add_argument("--plain", type=int, default=300, help="graphs with the default options")
    parser.add_argument("--wide", type=int, default=1200, help="graphs from the widest space")
    args = parser.parse_args()
    backend = load_backend(args.backend)()
    backend.setup()
    collector = collector_for(type(backend))
    if collector is None:
        parser.error(f"backend {args.backend!r} declares no compiler code to measure (coverage_include)")
    collector.start()
    covered: set[int] = set()
    with contextlib.redirect_stdout(sys.stderr):  # compilers print their complaints; stdout is the JSON
        plain = run_phase(backend, collector, covered, args.plain, 0, wide=False)
        wide = run_phase(backend, collector, covered, args.wide, 10**6, wide=True)
    print(json.dumps({"benchmark": "compiler arcs reachable by the generator's space", "backend": args.backend,
                      "plain_graphs": args.plain, "plain_arcs_by_tenth": plain,
                      "wide_graphs": args.wide, "union_arcs_by_tenth": wide,
                      "ceiling_gain_over_plain": round(wide[-1] / plain[-1] - 1, 3)}, indent=2))


if __name__ == "__main__":
    main()
