"""Reduction quality: how small findings' graphs get, with how many tests and seconds.

Runs a short campaign against the planted-bug backend (tests/planted_backends.py: a wrong
broadcasting Mul, a crashing Softmax, a raising Transpose) next to ONNX Runtime and the
references, or takes an existing run directory; then reduces up to ``--per-signature``
findings of each signature. Prints one JSON line per finding and a JSON summary with the
median and 90th percentile of the reduced size (targets: median <= 3 nodes, p90 <= 6).
Usage: python bench/reduction.py [RUN_DIR] [--time 60] [--nodes 10] [--seed 0]
[--per-signature 2] [--budget 120]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fuzzer.store import RunStore  # noqa: E402
from fuzzer.campaign.config import CampaignConfig  # noqa: E402
from fuzzer.campaign.driver import Campaign, start_run  # noqa: E402
from triage.reduce import ReductionUnsupported, reduce_finding  # noqa: E402
from triage.rerun import Evaluator  # noqa: E402

PLANTED_CAMPAIGN = ("tests.planted_backends:PlantedBugs", "ort-none", "onnx-ref", "ref-f64")


def planted_campaign(run_dir: Path, seconds: float, nodes: int, seed: int) -> RunStore:
    config = CampaignConfig(backends=PLANTED_CAMPAIGN, seed=seed, nodes=nodes, time_budget=seconds)
    store = start_run(config, run_dir)
    Campaign(config, store).run()
    return store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", nargs="?", type=Path, help="an existing run directory (default: a new planted campaign)")
    parser.add_argument("--time", type=float, default=60.0, help="seconds of campaign when no run is given")
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-signature", type=int, default=2, help="findings reduced per signature")
    parser.add_argument("--budget", type=float, default=120.0, help="seconds of reduction per finding")
    args = parser.parse_args()
    os.environ.setdefault("TCFUZZ_CACHE_DIR", tempfile.mkdtemp(prefix="tcfuzz-bench-cache-"))
    started = time.monotonic()
    store = RunStore.open(args.run) if args.run else planted_campaign(
        Path(tempfile.mkdtemp(prefix="tcfuzz-bench-reduction-")) / "run", args.time, args.nodes, args.seed)
    campaign_seconds = time.monotonic() - started
    chosen, per_signature = [], {}
    for finding in store.findings():
        if per_signature.get(finding.signature, 0) < args.per_signature:
            per_signature[finding.signature] = per_signature.get(finding.signature, 0) + 1
            chosen.append(finding)
    sizes, tests, seconds = [], [], []
    with Evaluator.from_config(store.config) as evaluator:
        for finding in chosen:
            try:
                reduction = reduce_finding(store, finding.id, evaluator=evaluator, time_budget=args.budget)
            except ReductionUnsupported as error:
                print(json.dumps({"finding": finding.id, "signature": finding.signature, "skipped": str(error)}))
                continue
            sizes.append(reduction.nodes_after)
            tests.append(reduction.tests)
            seconds.append(reduction.seconds)
            print(json.dumps({"finding": finding.id, "signature": reduction.signature,
                              "nodes_before": reduction.nodes_before, "nodes_after": reduction.nodes_after,
                              "tests": reduction.tests, "seconds": round(reduction.seconds, 2),
                              "done": reduction.done}), flush=True)
    print(json.dumps({
        "run": str(store.run_dir), "campaign_seconds": round(campaign_seconds, 1),
        "findings": len(store.findings()), "signatures": len(per_signature), "reduced": len(sizes),
        "median_nodes_after": float(np.median(sizes)) if sizes else None,
        "p90_nodes_after": float(np.percentile(sizes, 90)) if sizes else None,
        "median_tests": float(np.median(tests)) if tests else None,
        "median_seconds": round(float(np.median(seconds)), 2) if seconds else None,
    }))


if __name__ == "__main__":
    main()
