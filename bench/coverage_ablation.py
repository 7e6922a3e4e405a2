"""Does coverage feedback pay? Branch coverage reached in equal time, feedback on vs off.

For each compiler (TVM's ONNX frontend + Relax, Inductor) and seed, three campaigns of
the same length, all measuring coverage the same way:

* ``guided``: tests covering new bits join the corpus; half the tests mutate corpus
  entries, rare coverage getting more energy (the default of ``tcfuzz fuzz --coverage``);
* ``unguided``: the same mutation rate, but every test joins the corpus and entries are
  picked uniformly (coverage is measured, never used);
* ``generator``: fresh random graphs only.

Prints JSON: compiler Python arcs (coverage.py branch mode) and structural features
covered at the end, tests run, and the gain of ``guided`` over the other two.
Usage: python bench/coverage_ablation.py [--seconds 90] [--compilers tvm,inductor] [--seeds 0]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fuzzer.campaign import Campaign, CampaignConfig, start_run  # noqa: E402

MODES = {
    "guided": {},
    "unguided": {"feedback": False},
    "generator": {"mutation_share": 0.0},
}


def measure(compiler: str, mode: str, seed: int, seconds: float, scratch: Path) -> dict:
    config = CampaignConfig(backends=(compiler,), seed=seed, time_budget=seconds, coverage=True,
                            single_compiler_every=0, **MODES[mode])
    with start_run(config, scratch / f"{compiler}-{mode}-{seed}") as store:
        campaign = Campaign(config, store)
        snapshot = campaign.run()
    return {"compiler": compiler, "mode": mode, "seed": seed, "tests": snapshot.tests,
            "seconds": round(snapshot.seconds, 1), "branches": snapshot.branches,
            "features": snapshot.features, "corpus": snapshot.corpus}


def gains(results: list[dict], compiler: str) -> dict:
    mean = {mode: statistics.mean(r["branches"] for r in results if r["compiler"] == compiler and r["mode"] == mode)
            for mode in MODES}
    return {f"guided_vs_{mode}": round(mean["guided"] / mean[mode] - 1, 3) for mode in MODES if mode != "guided"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=90.0, help="budget of each campaign")
    parser.add_argument("--compilers", default="tvm,inductor")
    parser.add_argument("--seeds", default="0", help="comma-separated campaign seeds")
    args = parser.parse_args()
    compilers = args.compilers.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    with tempfile.TemporaryDirectory(prefix="tcfuzz-ablation-") as scratch:
        results = [measure(compiler, mode, seed, args.seconds, Path(scratch))
                   for compiler in compilers for seed in seeds for mode in MODES]
    print(json.dumps({"benchmark": "coverage feedback ablation (equal time budgets)", "seconds": args.seconds,
                      "results": results, "gain_in_branches": {c: gains(results, c) for c in compilers}},
                     indent=2))


if __name__ == "__main__":
    main()
