"""Does coverage feedback pay? Branch coverage over time in equal time budgets.

For each compiler (TVM's ONNX frontend + Relax, Inductor) and seed, three campaigns of
the same length, all measuring coverage the same way:

* ``guided``: the default of ``tcfuzz fuzz --coverage``: half the tests mutate corpus
  entries; tests join the corpus for new compiler coverage, productive and rare entries
  get more energy (``fuzzer.campaign.coverage.Scheduler``);
* ``unguided``: the same campaign and mutation share, but every test joins the corpus and
  entries and mutators are picked uniformly (coverage is measured, never used);
* ``generator``: fresh random graphs only.

The modes run one after another for each (seed, compiler), in an order that rotates with
the seed, so that they share the machine's noise. Prints JSON: per campaign the compiler
Python arcs (coverage.py branch mode) covered at a quarter, half and all of the budget,
the area under the coverage curve (mean arcs over the budget), the distinct optimizer
effects (rewrites that fired: ORT transformers, TVM passes, Inductor counters) at the same
points, tests run; per compiler and mode the mean and spread over seeds, the gains of
``guided`` over the others, and per seed the share of the budget after which ``guided`` has
as many distinct effects as ``unguided`` has at the end (its plateau; 1.0 or more: never).
Usage: python bench/coverage_ablation.py [--seconds 180] [--compilers tvm,inductor,ort-all]
       [--seeds 0,1] [--modes guided,unguided]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fuzzer.campaign.config import CampaignConfig  # noqa: E402
from fuzzer.campaign.driver import Campaign, start_run  # noqa: E402
from fuzzer.campaign.coverage import coverage_series, effect_rows  # noqa: E402

MODES = {
    "guided": {},
    "unguided": {"feedback": False},
    "generator": {"mutation_share": 0.0},
}
METRICS = ("branches", "auc", "effects")


def branches_at(series: list[dict], seconds: float) -> int:
    """Arcs covered at ``seconds`` (the last point recorded by then)."""
    return max((p["branches"] for p in series if p["seconds"] <= seconds), default=0)


def area_under_curve(series: list[dict], budget: float) -> float:
    """Mean arcs covered over ``[0, budget]``, each point's value held until the next."""
    points = [(p["seconds"], p["branches"]) for p in series if p["seconds"] <= budget]
    area = sum(value * (next_time - time) for (time, value), (next_time, _) in
               zip(points, [*points[1:], (budget, 0)]))
    return area / budget


def measure(compiler: str, mode: str, seed: int, seconds: float, scratch: Path) -> dict:
    config = CampaignConfig(backends=(compiler,), seed=seed, time_budget=seconds, coverage=True,
                            single_compiler_every=0, **MODES[mode])
    with start_run(config, scratch / f"{compiler}-{mode}-{seed}") as store:
        snapshot = Campaign(config, store).run()
        series = coverage_series(store)
        firsts = sorted(row["first_seconds"] for row in effect_rows(store) if row["backend"] == compiler)
    return {"compiler": compiler, "mode": mode, "seed": seed, "tests": snapshot.tests,
            "seconds": round(snapshot.seconds, 1), "corpus": snapshot.corpus,
            **{f"branches_at_{share}": branches_at(series, seconds * share) for share in (0.25, 0.5)},
            "branches": branches_at(series, seconds), "auc": round(area_under_curve(series, seconds), 1),
            **{f"effects_at_{share}": sum(t <= seconds * share for t in firsts) for share in (0.25, 0.5)},
            "effects": len(firsts), "effect_seconds": [round(t, 1) for t in firsts]}


def time_to_plateau(guided: dict, unguided: dict, seconds: float) -> float | None:
    """The share of the budget after which ``guided`` has found as many distinct effects as
    ``unguided`` found in all of it (None when unguided found none; above 1: never)."""
    if not unguided["effects"]:
        return None
    if guided["effects"] < unguided["effects"]:
        return math.inf
    return round(guided["effect_seconds"][unguided["effects"] - 1] / seconds, 3)


def summary(results: list[dict], compiler: str, seconds: float) -> dict:
    """Mean and spread (min, max) over seeds of each metric by mode, and guided's gains."""
    runs = {mode: [r for r in results if r["compiler"] == compiler and r["mode"] == mode] for mode in MODES}
    table = {mode: {metric: {"mean": round(statistics.mean(r[metric] for r in chosen), 1),
                             "min": min(r[metric] for r in chosen), "max": max(r[metric] for r in chosen)}
                    for metric in (*METRICS, "tests")} for mode, chosen in runs.items() if chosen}
    gains = {f"guided_vs_{mode}_{metric}": round(table["guided"][metric]["mean"] / table[mode][metric]["mean"] - 1, 3)
             for mode in table if mode != "guided" and "guided" in table for metric in METRICS
             if table[mode][metric]["mean"]}
    plateau = [time_to_plateau(g, u, seconds) for g in runs.get("guided", []) for u in runs.get("unguided", [])
               if g["seed"] == u["seed"]]
    return {"by_mode": table, "gains": gains, "guided_share_of_budget_to_unguided_effects_plateau":
            [None if p is None else p if math.isfinite(p) else "never" for p in plateau]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=180.0, help="budget of each campaign")
    parser.add_argument("--compilers", default="tvm,inductor")
    parser.add_argument("--seeds", default="0,1", help="comma-separated campaign seeds")
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma-separated, of {', '.join(MODES)}")
    parser.add_argument("--log", type=Path, help="also append each campaign's result to this JSON-lines file")
    args = parser.parse_args()
    compilers = args.compilers.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    modes = args.modes.split(",")
    if unknown := set(modes) - set(MODES):
        parser.error(f"--modes: unknown {', '.join(sorted(unknown))}; choose from {', '.join(MODES)}")
    results = []
    with tempfile.TemporaryDirectory(prefix="tcfuzz-ablation-") as scratch:
        for turn, seed in enumerate(seeds):
            for compiler in compilers:
                for mode in modes[turn % len(modes):] + modes[:turn % len(modes)]:
                    results.append(measure(compiler, mode, seed, args.seconds, Path(scratch)))
                    if args.log:
                        with args.log.open("a") as log:
                            log.write(json.dumps(results[-1]) + "\n")
    summaries = {c: summary(results, c, args.seconds) for c in compilers}
    print(json.dumps({"benchmark": "coverage feedback ablation (equal time budgets)", "seconds": args.seconds,
                      "seeds": seeds, "results": results, "summary": summaries}, indent=2))


if __name__ == "__main__":
    main()
