"""Scale-out: campaign tests/s with one lane against several, in one run.

Prints JSON: for each lane count, the tests/s of real campaigns (generation, input search,
isolated workers, oracles, store), measured in alternating rounds so that a shared
machine's noise falls on every setting alike, and the speed-up over one lane. With
``--ray ADDRESS`` (or ``local``) the lanes' workers run on a Ray cluster instead.

One lane already keeps several cores busy (its backends' workers run side by side), so
``--core-per-lane`` gives N lanes exactly N cores: the scale-out of adding a worker with its
own core, as on a cluster. The machine's own ceiling is measured alongside: the speed-up
of N busy-looping processes over one (shared or hyperthreaded virtual cores give less than
N), so that the campaign's scaling reads against what the hardware allows.
Usage: python bench/scaling.py [--seconds 20] [--rounds 2] [--lanes 1,2] [--backends ...]
                               [--core-per-lane] [--ray local]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fuzzer.campaign.config import CampaignConfig  # noqa: E402
from fuzzer.campaign.driver import Campaign, start_run  # noqa: E402

CORES = sorted(os.sched_getaffinity(0))


def spin(seconds: float) -> int:
    """Busy-loop iterations done in ``seconds`` (pure CPU, no memory traffic)."""
    deadline, count = time.perf_counter() + seconds, 0
    while time.perf_counter() < deadline:
        for _ in range(10_000):
            count += 1
    return count


def machine_ceiling(processes: int, seconds: float = 5.0) -> float:
    """How much more CPU work ``processes`` processes get done, one per core, than one."""
    context = multiprocessing.get_context("fork")
    alone = spin(seconds)
    with context.Pool(processes) as pool:
        together = sum(pool.map(spin, [seconds] * processes))
    return together / alone


def measure(lanes: int, args: argparse.Namespace, run_dir: Path) -> float:
    if args.core_per_lane:  # the workers inherit the campaign's affinity
        os.sched_setaffinity(0, CORES[:lanes])
    config = CampaignConfig(backends=tuple(args.backends.split(",")), seed=lanes, nodes=args.nodes,
                            time_budget=args.seconds, workers=lanes, ray=args.ray)
    with start_run(config, run_dir) as store:
        return Campaign(config, store).run().rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="campaign length per measurement")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per lane count")
    parser.add_argument("--lanes", default="1,2", help="comma-separated lane counts (--workers)")
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--backends", default="ort-none,ort-all,onnx-ref,ref-f64")
    parser.add_argument("--ray", help="Ray cluster address, or 'local'")
    parser.add_argument("--core-per-lane", action="store_true", help="give N lanes exactly N cores")
    args = parser.parse_args()
    counts = [int(n) for n in args.lanes.split(",")]
    if args.core_per_lane and max(counts) > len(CORES):
        parser.error(f"--core-per-lane needs {max(counts)} cores; this machine lends {len(CORES)}")
    rates: dict[int, list[float]] = {n: [] for n in counts}
    with tempfile.TemporaryDirectory(prefix="tcfuzz-bench-") as scratch:
        for round_number in range(args.rounds):
            for lanes in counts:
                rates[lanes].append(measure(lanes, args, Path(scratch) / f"r{round_number}-l{lanes}"))
    base = statistics.mean(rates[counts[0]])
    os.sched_setaffinity(0, CORES)
    ceilings = {n: machine_ceiling(n) / machine_ceiling(counts[0]) if n != counts[0] else 1.0 for n in counts}
    print(json.dumps({"benchmark": "campaign tests/s by lane count", "backends": args.backends,
                      "nodes": args.nodes, "ray": args.ray, "core_per_lane": args.core_per_lane, "results": [
                          {"lanes": n, "tests_per_second": [round(r, 1) for r in rates[n]],
                           "speedup": round(statistics.mean(rates[n]) / base, 2),
                           "machine_ceiling": round(ceilings[n], 2)} for n in counts]}, indent=2))


if __name__ == "__main__":
    main()
