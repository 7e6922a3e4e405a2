"""Campaign throughput on ONNX Runtime (both optimization levels), pinned to one core.

Prints JSON: tests/s for 5- and 10-node graphs, from real campaigns (generation, ONNX
export, two isolated ORT workers, oracles, findings store) in two modes: "plain" (random
inputs; differential and optimization-level oracles) and "default" (what `tcfuzz fuzz`
does: numerical input search, plus metamorphic and determinism oracles on every 8th test).
Usage: python bench/throughput.py [--seconds 15] [--cores 1]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fuzzer.campaign.config import CampaignConfig  # noqa: E402
from fuzzer.campaign.driver import Campaign, start_run  # noqa: E402


MODES = {
    # random inputs, the differential/blame and optimization-level oracles only
    "plain": {"input_budget": None, "single_compiler_every": 0},
    # the defaults of `tcfuzz fuzz`: input search, metamorphic and determinism oracles on every 8th test
    "default": {},
}


def measure(nodes: int, seconds: float, run_dir: Path, mode: str) -> dict:
    config = CampaignConfig(backends=("ort-none", "ort-all"), seed=nodes, nodes=nodes, time_budget=seconds,
                            **MODES[mode])
    with start_run(config, run_dir) as store:
        snapshot = Campaign(config, store).run()
    return {"nodes": nodes, "mode": mode, "tests": snapshot.tests, "seconds": round(snapshot.seconds, 2),
            "tests_per_second": round(snapshot.rate, 1), "valid_share": round(snapshot.valid_share, 3),
            "findings": sum(snapshot.findings.values())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="campaign length per graph size")
    parser.add_argument("--cores", type=int, default=1, help="CPU cores to pin the campaign to")
    args = parser.parse_args()
    cores = sorted(os.sched_getaffinity(0))[: args.cores]
    os.sched_setaffinity(0, cores)  # workers inherit the affinity
    with tempfile.TemporaryDirectory(prefix="tcfuzz-bench-") as scratch:
        results = [measure(nodes, args.seconds, Path(scratch) / f"n{nodes}-{mode}", mode)
                   for mode in MODES for nodes in (5, 10)]
    print(json.dumps({"benchmark": "campaign throughput, ort-none + ort-all", "cores": len(cores),
                      "results": results}, indent=2))


if __name__ == "__main__":
    main()
