"""Optimizer reach: which rewrites the default generator's graphs make each compiler apply.

Over N fresh graphs per backend (fewer for the slow compilers), in this process: the ONNX
Runtime graph transformers that modified a graph (of those its log shows applied at the
backend's level), the TVM passes that changed a module, the Inductor counters that moved;
the share of graphs in which at least one optimizing rewrite fired (cast insertion and
removal, constant folding and constant sharing do not count, nor TVM's lowering passes); and
the distribution of tensor sizes. Graphs are drawn as a default campaign (``tcfuzz fuzz``)
draws them: its control-flow, dynamic and pattern shares and pattern count (fuzzer.cli.CAMPAIGN_DRAWS) and
shape profiles (CAMPAIGN_PROFILES), with random inputs. Like a campaign's lane, each backend
first learns which (operator, dtype) pairs it declines (a support table, over ``--learn``
graphs of other seeds; ``--learn 0`` skips this), and its graphs avoid them; the results
also count the declined graphs of an unlearned draw. Every field of GeneratorOptions with
a plain default is a flag (``--nodes``, ``--max-elements``, ``--pattern-share``, ...). ONNX
Runtime's results also split the graphs by what was inserted: a pattern, a near-miss of one,
or none. Prints JSON.
Usage: python bench/optimizer_reach.py [--n 2000] [--slow-n 50] [--learn 5000] [--backends ort-all,tvm,inductor]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import re
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fuzzer.campaign.driver import learned_avoidance  # noqa: E402
from fuzzer.execution.backends import load_backend  # noqa: E402
from fuzzer.execution.outcome import Status  # noqa: E402
from fuzzer.execution.support import SupportTable, features  # noqa: E402
from fuzzer.execution.backends.onnxruntime import OnnxRuntime  # noqa: E402
from fuzzer.cli import CAMPAIGN_DRAWS  # noqa: E402
from fuzzer.generation.generator import GeneratorOptions, generated, make_case  # noqa: E402
from fuzzer.generation.profiles import CAMPAIGN_PROFILES  # noqa: E402
from fuzzer.graph.rejected import Unsatisfiable  # noqa: E402

# Rewrites that do not optimize: cast insertion and removal, constant folding and sharing.
NOT_OPTIMIZING = re.compile(r"Cast|Fp16Initializer|ConstantFolding|ConstantSharing|FoldConstant")
# TVM's passes that optimize (the others legalize and lower every module).
TVM_OPTIMIZING = re.compile(r"Fuse|CommonSubexpr|CSE|DeadCode|Simplify|Canonicalize|Eliminate|Rewrite(?!.*Lower)")
INDUCTOR_OPTIMIZING = re.compile(r"pattern_matcher|fus|batch|reorder|inplace|padding", re.IGNORECASE)


def optimizing(effect: str) -> bool:
    """Whether ``effect`` (``family:name``) is an optimizing rewrite."""
    family, name = effect.split(":", 1)
    if NOT_OPTIMIZING.search(name):
        return False
    return {"tvm": TVM_OPTIMIZING, "inductor": INDUCTOR_OPTIMIZING}.get(family, re.compile("")).search(name) \
        is not None


# What a default campaign draws unless told otherwise (``tcfuzz fuzz`` with no generator flags).
CAMPAIGN_OPTIONS = {**CAMPAIGN_DRAWS, "shape_profiles": CAMPAIGN_PROFILES}


LEARNING_SEEDS = 10**6  # the support tables are learned on graphs of seeds from here on


def fresh_cases(count: int, options: GeneratorOptions, first_seed: int = 0) -> tuple[list, list[str]]:
    """``count`` cases, and for each what was inserted: "pattern", "near-miss" or "none"."""
    cases, kinds, seed = [], [], first_seed
    while len(cases) < count:
        try:
            made = generated(seed, options)
            cases.append(make_case(made.graph, seed, options.opset, seed, options.input_budget))
            kinds.append("none" if not made.patterns else "near-miss" if "~" in made.patterns[0] else "pattern")
        except Unsatisfiable:
            pass
        seed += 1
    return cases, kinds


def learned_options(backend, options: GeneratorOptions, graphs: int) -> tuple[GeneratorOptions, int]:
    """``options`` avoiding the pairs ``backend`` declined over ``graphs`` learning graphs (as a
    campaign's support table learns them), and how many of those graphs it declined."""
    table = SupportTable(backend.name, {}, Path("unsaved"))
    declined = 0
    for case in fresh_cases(graphs, options, LEARNING_SEEDS)[0]:
        outcome = backend.execute(case, lambda stage: None)
        declined += outcome.status is Status.UNSUPPORTED
        table.learn(features(case.graph), outcome.status is Status.UNSUPPORTED)
    avoided = frozenset(learned_avoidance({backend.name: table}))
    return dataclasses.replace(options, avoid=options.avoid | avoided), declined


def reach(name: str, count: int, options: GeneratorOptions, learn: int) -> dict:
    """One backend's effects over ``count`` fresh graphs, drawn avoiding what it declined over
    ``learn`` learning graphs."""
    backend = load_backend(name)()
    backend.setup()
    if isinstance(backend, OnnxRuntime):
        backend.effects_share = 1.0
    options, declined_unlearned = learned_options(backend, options, learn) if learn else (options, None)
    cases, kinds = fresh_cases(count, options)
    fired, statuses, optimized, applied = Counter(), Counter(), 0, set()
    compiled, by_kind = 0, {kind: Counter() for kind in ("pattern", "near-miss", "none")}
    started = time.perf_counter()
    for case, kind in zip(cases, kinds):
        outcome = backend.execute(case, lambda stage: None)
        statuses[outcome.status.value] += 1
        fired.update(outcome.effects)
        hit = any(optimizing(effect) for effect in outcome.effects)
        optimized += hit
        built = outcome.status.value == "ok" or outcome.stage.value not in ("prepare", "compile")
        compiled += built
        by_kind[kind].update(graphs=1, compiled=built, optimized=hit)
        applied.update(getattr(backend, "applied", ()))
    result = {
        "backend": name, "graphs": len(cases), "statuses": dict(statuses),
        "learning_graphs": learn, "learning_graphs_declined": declined_unlearned,
        "pairs_avoided": len(options.avoid),
        "seconds": round(time.perf_counter() - started, 1),
        "distinct_effects": len(fired),
        "distinct_optimizing_effects": sum(optimizing(effect) for effect in fired),
        "graphs_with_optimizing_rewrite": optimized,
        "optimizing_share": round(optimized / len(cases), 3),
        # graphs the compiler accepted (a graph whose kernels it lacks is never optimized)
        "graphs_compiled": compiled,
        "optimizing_share_of_compiled": round(optimized / max(compiled, 1), 3),
        "by_insertion": {kind: {**counts, "optimizing_share": round(counts["optimized"] / max(counts["graphs"], 1), 3)}
                         for kind, counts in by_kind.items()},
        "effects": dict(fired.most_common()),
    }
    if isinstance(backend, OnnxRuntime):
        names = {effect.split(":", 1)[1] for effect in fired}
        result["transformers_applied"] = len(applied)
        result["transformers_fired"] = len(names & applied)
        result["transformers_never_fired"] = sorted(applied - names)
    return result


def tensor_sizes(cases: list) -> dict:
    """Elements per tensor (every value of every graph): percentiles and a log2 histogram."""
    sizes = [math.prod(t.shape) for case in cases for t in case.graph.types.values()
             if all(isinstance(d, int) for d in t.shape)]
    percentiles = np.percentile(sizes, [10, 50, 90, 99]).tolist()
    histogram = Counter(0 if s == 0 else s.bit_length() for s in sizes)
    return {"tensors": len(sizes), "p10": percentiles[0], "median": percentiles[1], "p90": percentiles[2],
            "p99": percentiles[3], "max": max(sizes),
            "log2_histogram": {f"<{2 ** b}": histogram[b] for b in sorted(histogram)}}


def weighted(text: str) -> tuple[tuple[str, float], ...]:
    """``small=0.5,large=0.5`` as ((name, weight), ...)."""
    return tuple((name, float(weight)) for name, weight in (item.split("=") for item in text.split(",")))


def generator_flags(parser: argparse.ArgumentParser) -> list[str]:
    """A flag for every GeneratorOptions field with a plain (bool, int, float, str) default or
    a weighted choice (``--shape-profiles small=0.5,large=0.5``); its default is the campaign's."""
    names = []
    for field in dataclasses.fields(GeneratorOptions):
        default = field.default
        pairs = isinstance(default, tuple) and all(isinstance(item, tuple) and len(item) == 2 for item in default)
        if isinstance(default, (bool, int, float, str)) or pairs:
            kind = (lambda text: text.lower() in ("1", "true", "yes")) if isinstance(default, bool) else \
                weighted if pairs else type(default)
            shown = CAMPAIGN_OPTIONS.get(field.name, default)
            parser.add_argument("--" + field.name.replace("_", "-"), type=kind, default=None,
                                help=f"GeneratorOptions.{field.name} (default {shown!r})")
            names.append(field.name)
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="ort-all,tvm,inductor")
    parser.add_argument("--n", type=int, default=2000, help="graphs per fast backend (ONNX Runtime)")
    parser.add_argument("--slow-n", type=int, default=50, help="graphs per slow backend (TVM, Inductor)")
    parser.add_argument("--learn", type=int, default=5000,
                        help="graphs over which each backend's support table is learned first (fast backends; "
                             "slow ones use --slow-n of them)")
    options_fields = generator_flags(parser)
    args = parser.parse_args()
    chosen = {name: getattr(args, name) for name in options_fields if getattr(args, name) is not None}
    options = GeneratorOptions(**{"input_budget": None, **CAMPAIGN_OPTIONS, **chosen})
    names = args.backends.split(",")
    slow = {name for name in names if load_backend(name).timeout_factor > 1}
    counts = {name: args.slow_n if name in slow else args.n for name in names}
    with contextlib.redirect_stdout(sys.stderr):  # what compilers print stays out of the JSON
        results = [reach(name, counts[name], options, min(args.learn, args.slow_n) if name in slow else args.learn)
                   for name in names]
    print(json.dumps({"benchmark": "optimizer reach (rewrites that fired over fresh default graphs)",
                      "generator_options": {**CAMPAIGN_OPTIONS, **chosen},
                      "results": results, "tensor_sizes": tensor_sizes(fresh_cases(max(counts.values()), options)[0])},
                     indent=2))


if __name__ == "__main__":
    main()
