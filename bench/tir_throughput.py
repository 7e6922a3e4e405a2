"""TIR fuzzing throughput on one core: a real campaign, printed as JSON.

A test is one variant: a mutated PrimFunc with a random schedule and a mutated pass
pipeline, built, run and compared with the reference build of the same mutant. The
campaign includes everything: the isolated worker, the validity filter, the reference
builds, the oracles, shrinking of findings and the findings store. The default mix has
a share of cases that test Relax pipelines instead (``TirOptions.relax_pipeline_share``);
``mix`` gives each kind's cases, tests, seconds (triage included) and tests/s. On a shared
machine, ``cpu_seconds`` (campaign and worker, user and system) shows how much of the
core the campaign had: ``tests_per_cpu_second`` is the rate on an idle core.
Usage: python bench/tir_throughput.py [--seconds 30] [--cores 1] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fuzzer.tir.campaign import run_tir_campaign  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="campaign length")
    parser.add_argument("--cores", type=int, default=1, help="CPU cores to pin the campaign to")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    cores = sorted(os.sched_getaffinity(0))[: args.cores]
    os.sched_setaffinity(0, cores)  # the worker inherits the affinity
    with tempfile.TemporaryDirectory(prefix="tcfuzz-tir-bench-") as scratch:
        summary = run_tir_campaign(Path(scratch) / "run", seed=args.seed, time_budget=args.seconds)
    seconds = summary.seconds
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    cpu_seconds = sum(u.ru_utime + u.ru_stime for u in usage)  # the worker has exited: its time is counted
    mix = {kind: {**share, "seconds": round(share["seconds"], 2),
                  "tests_per_second": round(share["tests"] / share["seconds"], 1) if share["seconds"] else 0.0}
           for kind, share in sorted(summary.mix.items())}
    print(json.dumps({
        "benchmark": "TIR campaign throughput (IR + schedule + pipeline mutation)", "cores": len(cores),
        "seconds": round(seconds, 2), "tests": summary.tests, "tests_per_second": round(summary.rate, 1),
        "cpu_seconds": round(cpu_seconds, 2), "tests_per_cpu_second": round(summary.tests / cpu_seconds, 1), "mix": mix,
        "triage_seconds": round(summary.triage_seconds, 2),  # confirming, blaming and shrinking findings
        "tests_per_second_outside_triage": round(summary.tests / max(seconds - summary.triage_seconds, 1e-9), 1),
        "cases": summary.cases, "cases_per_second": round(summary.cases / seconds, 2) if seconds else 0.0,
        "valid_share": round(summary.valid_share, 3), "rejected_mutants": summary.rejected,
        "unsupported_variants": summary.unsupported, "shrink_runs": summary.minimize_runs,
        "findings": dict(summary.findings), "unique_findings": len(summary.signatures),
        "corpus": summary.corpus, "pass_effect_features": summary.features, "worker_restarts": summary.restarts,
    }, indent=2))


if __name__ == "__main__":
    main()
