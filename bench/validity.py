"""Share of generated graphs that pass onnx.checker (full_check) and run on the ONNX
reference evaluator. Prints JSON with the failures' first lines.
Usage: python bench/validity.py [--graphs 2000] [--nodes 10] [--opset 17]
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import onnx  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

from fuzzer.generation.generator import GeneratorOptions, generate_case  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--graphs", type=int, default=2000)
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--opset", type=int, default=17)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    options = GeneratorOptions(nodes=args.nodes, opset=args.opset)
    failures: Counter = Counter()
    for seed in range(args.graphs):
        case = generate_case(seed, options)
        try:
            model = onnx.load_from_string(case.model)
            onnx.checker.check_model(model, full_check=True)
            ReferenceEvaluator(model).run(None, dict(case.inputs))
        except Exception as error:  # noqa: BLE001 - counted and reported
            failures[f"{type(error).__name__}: {str(error).strip().splitlines()[0][:160]}"] += 1
    failed = sum(failures.values())
    print(json.dumps({"graphs": args.graphs, "nodes": args.nodes, "opset": args.opset,
                      "valid_share": round(1 - failed / args.graphs, 4), "failures": dict(failures.most_common(10))},
                     indent=2))


if __name__ == "__main__":
    main()
