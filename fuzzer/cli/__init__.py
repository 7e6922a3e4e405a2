"""The ``tcfuzz`` command line."""

from __future__ import annotations

import argparse
import datetime
import io
import json
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit status 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not a usage dump
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
    return value


def opset_number(text: str) -> int:
    from fuzzer.graph.export_onnx import SUPPORTED_OPSETS

    value = positive_int(text)
    if value not in SUPPORTED_OPSETS:
        raise argparse.ArgumentTypeError(
            f"opset {value} is not supported; choose {SUPPORTED_OPSETS.start}..{SUPPORTED_OPSETS.stop - 1}")
    return value


def worker_count(text: str) -> int:
    import os

    return len(os.sched_getaffinity(0)) if text == "auto" else positive_int(text)


def backend_python(text: str) -> tuple[str, str]:
    import os

    name, equals, path = text.partition("=")
    if not (equals and name and path):
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {text!r}")
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise argparse.ArgumentTypeError(f"{path} is not an executable Python; give the python of the "
                                         "other environment (for example /venvs/old/bin/python)")
    return name, path


def backend_list(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise argparse.ArgumentTypeError("give at least one backend name, e.g. ort-none,ort-all")
    return names


def share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a share between 0 and 1, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a share between 0 and 1, got {text}")
    return value


def lane_weights(text: str) -> dict[str, float]:
    from fuzzer.campaign.shares import parse_lane_weights

    try:
        return parse_lane_weights(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def operator_names() -> list[str]:
    from fuzzer.graph.ops import all_specs

    return sorted(spec.name for spec in all_specs())


def dtype_names() -> list[str]:
    from fuzzer.graph.ir import ALL_DTYPES

    return sorted(dtype.value for dtype in ALL_DTYPES)


class NameList(argparse.Action):
    """``--FLAG a,b,...``: names that ``const()`` lists; ``--FLAG list`` prints them and exits."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        known = self.const()
        if values == "list":
            print("\n".join(known))
            parser.exit()
        names = tuple(dict.fromkeys(name.strip() for name in values.split(",") if name.strip()))
        unknown = [name for name in names if name not in known]
        if unknown or not names:
            raise UsageError(f"{option_string} names {', '.join(unknown) or 'nothing'}, which tcfuzz does not "
                             f"know; `{parser.prog} {option_string} list` shows the valid names")
        setattr(namespace, self.dest, names)


def add_generator_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--control-flow", type=share, metavar="SHARE",
                        help="share of graphs with an If, Loop or Scan node "
                             f"(default {CAMPAIGN_DRAWS['control_flow']})")
    parser.add_argument("--dynamic", type=share, metavar="SHARE",
                        help="share of graphs with a symbolic batch dimension, each run at several sizes "
                             f"(default {CAMPAIGN_DRAWS['dynamic']})")
    parser.add_argument("--ops", action=NameList, const=operator_names, metavar="Add,Conv,...",
                        help="only these operators ('list' prints them; default all)")
    parser.add_argument("--dtypes", action=NameList, const=dtype_names, metavar="float32,...",
                        help="only these dtypes for fresh inputs ('list' prints them; default all)")
    add_shape_options(parser)


def add_shape_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--shape-profiles", type=shape_profiles, metavar="small=6,vector=3,large=1",
                        help="weights of the shape profiles graphs draw: small (today's shapes), vector "
                             "(extents around multiples of 8..64 and primes), large (up to ~1e5 elements) "
                             "(default small=0.6,vector=0.3,large=0.1)")
    parser.add_argument("--pattern-share", type=share, metavar="SHARE",
                        help="share of graphs with optimizer patterns or near-misses of them "
                             f"(default {CAMPAIGN_DRAWS['pattern_share']})")
    parser.add_argument("--max-patterns", type=positive_int, metavar="N",
                        help="a graph with patterns holds 1..N of them, so that rewrites meet "
                             f"(default {CAMPAIGN_DRAWS['max_patterns']})")


def shape_profiles(text: str) -> dict[str, float]:
    from fuzzer.generation.profiles import parse_weights

    try:
        return dict(parse_weights(text))
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


# What campaigns draw unless told otherwise: a few control-flow and dynamic graphs, and optimizer
# patterns in most graphs, up to three each (an optimizing rewrite then fires on about 60% of
# the graphs ONNX Runtime runs: bench/optimizer_reach.py).
CAMPAIGN_DRAWS = {"control_flow": 0.1, "dynamic": 0.1, "pattern_share": 0.8, "max_patterns": 3}


def generator_settings(args: argparse.Namespace) -> dict:
    """The CampaignConfig fields of the generator options on the command line, with the campaign defaults."""
    from fuzzer.generation.profiles import CAMPAIGN_PROFILES

    chosen = {name: getattr(args, name) for name in CAMPAIGN_DRAWS}
    return {**{name: CAMPAIGN_DRAWS[name] if value is None else value for name, value in chosen.items()},
            "shape_profiles": args.shape_profiles or dict(CAMPAIGN_PROFILES),
            "ops": args.ops or (), "dtypes": args.dtypes or ()}


def checked_generator(config):
    """``config``'s GeneratorOptions, once the chosen operators, dtypes and opset are known to fit."""
    options = config.generator_options
    try:
        options.specs()
    except ValueError as error:
        raise UsageError(f"{error}; change --ops, --dtypes or --opset") from None
    return options


def add_tolerance_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tolerance", action="append", metavar="NAME=RTOL,ATOL", default=[],
                        help="tolerance for one output (repeatable)")
    parser.add_argument("--tolerance-file", type=Path, metavar="FILE.json",
                        help='{"dtypes": {"float32": [rtol, atol]}, "outputs": {...}, "statistic": "max"}')
    parser.add_argument("--error-statistic", metavar="elementwise|max|quantile:Q",
                        help="which error must stay within tolerance (default elementwise)")


def tolerance_policy(args: argparse.Namespace):
    """The oracle's tolerance policy from the command line, or None for the defaults."""
    from dataclasses import replace

    from oracles.tolerance import configured_policy, parse_override, policy_from_dict

    if not (args.tolerance or args.tolerance_file or args.error_statistic):
        return None
    try:
        data = json.loads(args.tolerance_file.read_text()) if args.tolerance_file else {}
        if args.error_statistic:
            data["statistic"] = args.error_statistic
        policy = policy_from_dict(data) if data else configured_policy()
        overrides = dict(parse_override(text) for text in args.tolerance)
        statistic = next(iter(policy.by_dtype.values()))
        overrides = {name: replace(t, statistic=statistic.statistic, quantile=statistic.quantile)
                     for name, t in overrides.items()}
        return replace(policy, overrides={**policy.overrides, **overrides})
    except OSError as error:
        raise UsageError(f"cannot read tolerance file {args.tolerance_file} ({error.strerror})") from None
    except ValueError as error:
        raise UsageError(str(error).splitlines()[0]) from None


def build_parser() -> Parser:
    parser = Parser(prog="tcfuzz", description="Fuzz and differentially test deep-learning compilers.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    fuzz = commands.add_parser("fuzz", help="run a fuzzing campaign")
    fuzz.add_argument("--backends", type=backend_list,
                      help="comma-separated backends (default: every available CPU backend)")
    fuzz.add_argument("--time", type=positive_float, help="stop after this many seconds")
    fuzz.add_argument("--max-tests", type=positive_int, help="stop after this many tests in total")
    fuzz.add_argument("--triage-share", type=share, default=0.0, metavar="SHARE",
                      help="share of --time spent triaging the run's bugs after fuzzing, so that the campaign "
                           "ends with a bug list (default 0; graph mode)")
    fuzz.add_argument("--seed", type=int, help="campaign seed (default 0)")
    fuzz.add_argument("--nodes", type=positive_int, help="operators per graph (default 10)")
    fuzz.add_argument("--opset", type=opset_number, help="ONNX opset (default 17)")
    fuzz.add_argument("--out", type=Path, help="run directory (default runs/<timestamp>)")
    fuzz.add_argument("--workers", type=worker_count, default=1,
                      help="parallel lanes, each with its own workers (default 1; 'auto': one per core)")
    fuzz.add_argument("--lane-weights", type=lane_weights, metavar="LANE=WEIGHT,...",
                      help="how the machine's CPU is split between the fast lane ('fast': every test on the "
                           "fast backends) and each slow compiler's lane ('tvm', 'torch.compile', or any of "
                           "the lane's backends, e.g. inductor=2); unnamed lanes keep their default weight: "
                           "fast 2, each slow compiler 1")
    fuzz.add_argument("--backend-python", action="append", type=backend_python, default=[], metavar="NAME=PATH",
                      help="run backend NAME's worker under the Python at PATH (another environment, e.g. "
                           "another compiler version); NAME@LABEL runs a backend a second time, so "
                           "ort-all and ort-all@old compare two releases (repeatable)")
    fuzz.add_argument("--ray", metavar="ADDRESS",
                      help="run the lanes' workers on a Ray cluster ('auto': the running one; 'local': "
                           "start one here); needs pip install 'tcfuzz[ray]'")
    fuzz.add_argument("--timeout", type=positive_float, help="seconds per test before a hang (default 10)")
    fuzz.add_argument("--memory-limit", type=positive_int, help="MiB per worker before an oom (default 4096)")
    fuzz.add_argument("--input-search", type=float, metavar="SECONDS",
                      help="numerical input search per graph (default 0.1; 0: plain random inputs)")
    fuzz.add_argument("--resume", type=Path, metavar="RUN", help="continue the campaign in RUN")
    fuzz.add_argument("--coverage", action=argparse.BooleanOptionalAction,
                      help="coverage feedback: measure compilers' Python branches and graph features, keep "
                           "tests that cover something new in a corpus and mutate them (default off)")
    fuzz.add_argument("--corpus", type=Path, metavar="DIR",
                      help="corpus of the coverage feedback, reused when it exists (default RUN/corpus; "
                           "implies --coverage)")
    fuzz.add_argument("--perf", action="store_true",
                      help="the performance oracle: time each compiler's optimized configuration against its "
                           "baseline on sampled tests, and report slowdowns confirmed in 3 of 3 fresh "
                           "re-measurements (docs/performance.md; default off)")
    fuzz.add_argument("--perf-every", type=positive_int, metavar="N", help="time every Nth test (default 32)")
    fuzz.add_argument("--perf-factor", type=positive_float, metavar="X",
                      help="a slowdown is at least X times its baseline's median run (default 2)")
    fuzz.add_argument("--perf-floor", type=positive_float, metavar="MS",
                      help="... and at least MS milliseconds longer (default 0.5)")
    fuzz.add_argument("--mode", choices=("graph", "tir"), default="graph",
                      help="graph: random tensor graphs on every backend (default); tir: TVM's "
                           "low-level IR, schedules and pass pipelines")
    add_generator_options(fuzz)
    add_tolerance_options(fuzz)

    gen = commands.add_parser("gen", help="write random models with their inputs")
    gen.add_argument("-n", "--count", type=positive_int, default=10)
    gen.add_argument("--out", type=Path, required=True, help="directory for the models")
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--nodes", type=positive_int, default=10)
    gen.add_argument("--opset", type=opset_number, default=17)
    gen.add_argument("--stats", action="store_true",
                     help="print operator, operator-pair, dtype, rank and size statistics of the batch")
    add_generator_options(gen)

    run = commands.add_parser("run", help="run one ONNX model on several backends and compare")
    run.add_argument("model", type=Path, help="an .onnx file")
    run.add_argument("--backends", type=backend_list)
    run.add_argument("--inputs", type=Path, help=".npz of inputs (default: MODEL's .inputs.npz, else random)")
    run.add_argument("--seed", type=int, default=0, help="seed for random inputs")
    run.add_argument("--timeout", type=positive_float, default=30.0)
    add_tolerance_options(run)

    commands.add_parser("backends", help="list backends, whether they can run here, and versions")
    for module in command_modules():
        COMMANDS.update(module.register(commands))
    return parser


# Modules that add subcommands: each has ``register(commands) -> {name: handler}``, where
# ``commands`` is the subparser collection and a handler takes the parsed arguments and
# returns the exit status. A module may use this file's helpers (UsageError, positive_int, ...).
COMMAND_MODULES: tuple[str, ...] = ("fuzzer.cli.triage", "fuzzer.cli.corpus", "fuzzer.cli.reports")


def command_modules():
    import importlib

    return [importlib.import_module(name) for name in COMMAND_MODULES]


# -------------------------------------------------------------------- helpers


def default_backends() -> tuple[str, ...]:
    """Every CPU backend that can run here; references (ref-f64) are part of the oracle."""
    from fuzzer.execution.backends import builtin_backends

    return tuple(name for name, backend in builtin_backends().items()
                 if backend.device == "cpu" and backend.missing() is None)


def checked_backends(names: Sequence[str] | None, elsewhere: Sequence[str] = ()) -> tuple[str, ...]:
    """The backends to run (all available by default), each known and able to run; those in
    ``elsewhere`` run under another Python, whose packages this one cannot check."""
    from fuzzer.execution.backends import UnknownBackend, load_backend

    names = tuple(names) if names else default_backends()
    for name in names:
        try:
            backend = load_backend(name)
        except (UnknownBackend, TypeError) as error:
            raise UsageError(str(error)) from None
        if name not in elsewhere and (reason := backend.missing()) is not None:
            raise UsageError(f"backend {name!r} cannot run here: {reason}")
    if len(set(names)) != len(names):
        raise UsageError("a backend is named twice in --backends")
    return names


def writable_directory(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".tcfuzz-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise UsageError(f"cannot write to {path} ({error.strerror}); choose another directory with --out") from None
    return path


# -------------------------------------------------------------------- commands


def command_fuzz_tir(args: argparse.Namespace) -> int:
    """`tcfuzz fuzz --mode tir` (and resuming such a run)."""
    from rich.console import Console

    from fuzzer.store import StoreError
    from fuzzer.campaign.progress import ProgressDisplay, summary_table
    from fuzzer.tir.campaign import resume_tir_campaign, run_tir_campaign

    ignored = [flag for flag, value in (("--backends", args.backends), ("--nodes", args.nodes),
                                        ("--opset", args.opset), ("--control-flow", args.control_flow),
                                        ("--dynamic", args.dynamic), ("--ops", args.ops),
                                        ("--dtypes", args.dtypes), ("--lane-weights", args.lane_weights),
                                        ("--shape-profiles", args.shape_profiles),
                                        ("--pattern-share", args.pattern_share),
                                      ("--max-patterns", args.max_patterns),
                                        ("--max-patterns", args.max_patterns))
               if value is not None]
    if ignored:
        raise UsageError(f"{', '.join(ignored)} do not apply to --mode tir")
    run_dir = args.resume or args.out or Path("runs") / datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    if not args.resume:
        writable_directory(run_dir.parent if not run_dir.exists() else run_dir)
    print(f"tcfuzz: TIR campaign in {run_dir}", file=sys.stderr)
    try:
        with ProgressDisplay() as display:
            if args.resume:
                snapshot = resume_tir_campaign(run_dir, time_budget=args.time, max_tests=args.max_tests,
                                               on_progress=display)
            else:
                snapshot = run_tir_campaign(run_dir, seed=args.seed or 0, time_budget=args.time,
                                            max_tests=args.max_tests, on_progress=display)
    except StoreError as error:
        raise UsageError(str(error)) from None
    Console().print(summary_table(snapshot, title=f"tcfuzz tir: {snapshot.stopping_reason or 'finished'}"))
    return EXIT_FINDINGS if snapshot.signatures else EXIT_OK


def resumed_mode(run_dir: Path) -> str:
    from fuzzer.store import RunStore, StoreError

    try:
        with RunStore.open(run_dir) as store:
            return store.config.get("mode", "graph")
    except StoreError as error:
        raise UsageError(str(error)) from None


def refuse_changes_on_resume(args: argparse.Namespace) -> None:
    fixed = [flag for flag, value in (("--backends", args.backends), ("--seed", args.seed),
                                      ("--nodes", args.nodes), ("--opset", args.opset),
                                      ("--out", args.out), ("--timeout", args.timeout),
                                      ("--memory-limit", args.memory_limit),
                                      ("--input-search", args.input_search),
                                      ("--control-flow", args.control_flow), ("--dynamic", args.dynamic),
                                      ("--ops", args.ops), ("--dtypes", args.dtypes),
                                      ("--shape-profiles", args.shape_profiles),
                                      ("--pattern-share", args.pattern_share),
                                      ("--max-patterns", args.max_patterns),
                                      ("--tolerance", args.tolerance or None),
                                      ("--tolerance-file", args.tolerance_file),
                                      ("--error-statistic", args.error_statistic),
                                      ("--perf", args.perf or None), ("--perf-every", args.perf_every),
                                      ("--perf-factor", args.perf_factor), ("--perf-floor", args.perf_floor))
             if value is not None]
    if fixed:
        raise UsageError(f"{', '.join(fixed)} cannot change when resuming; only --time, "
                         "--max-tests, --workers, --lane-weights and --ray apply to a resumed campaign")


def command_fuzz(args: argparse.Namespace) -> int:
    if args.resume:
        refuse_changes_on_resume(args)
        if args.coverage is not None or args.corpus is not None:
            raise UsageError("--coverage and --corpus cannot change when resuming; the run keeps its own")
    if args.corpus is not None and args.coverage is False:
        raise UsageError("--corpus needs coverage feedback; drop --no-coverage")
    if args.mode == "tir" and (args.coverage or args.corpus or args.perf):
        raise UsageError("--coverage, --corpus and --perf apply to graph campaigns, not to --mode tir")
    if args.mode == "tir" or (args.resume and resumed_mode(args.resume) == "tir"):
        return command_fuzz_tir(args)
    if args.triage_share >= 1:
        raise UsageError(f"--triage-share {args.triage_share:g} leaves no time to fuzz; give a share below 1")
    from fuzzer.store import StoreError
    from fuzzer.execution.support import SupportTableError
    from oracles.tolerance import policy_to_dict
    from fuzzer.campaign.config import CampaignConfig
    from fuzzer.campaign.driver import Campaign, learned_avoidance, resume_run, start_run, support_tables
    from fuzzer.campaign.distributed import RayUnavailable
    from fuzzer.execution.isolation import WorkerStartError
    from fuzzer.campaign.progress import ProgressDisplay, summary_table

    if args.resume:
        try:
            stored, store = resume_run(args.resume)
        except StoreError as error:
            raise UsageError(str(error)) from None
        if args.backend_python:
            raise UsageError("--backend-python cannot change when resuming; the run keeps its own")
        checked_backends(stored.backends, elsewhere=tuple(stored.pythons or ()))
        config = CampaignConfig.from_dict({**stored.to_dict(), "time_budget": fuzzing_time(args),
                                           "max_tests": args.max_tests or stored.max_tests,
                                           "workers": args.workers, "ray": args.ray,
                                           "lane_weights": args.lane_weights or stored.lane_weights})
        checked_lanes(config)
        run_dir = args.resume
    else:
        pythons = dict(args.backend_python)
        backends = checked_backends(args.backends, elsewhere=tuple(pythons))
        if unknown := sorted(set(pythons) - set(backends)):
            raise UsageError(f"--backend-python names {', '.join(unknown)}, which is not in --backends")
        run_dir = args.out or Path("runs") / datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        writable_directory(run_dir.parent if not run_dir.exists() else run_dir)
        try:
            avoid = learned_avoidance(support_tables(backends))
        except SupportTableError as error:
            raise UsageError(str(error)) from None
        config = CampaignConfig(
            backends=backends, seed=args.seed or 0, avoid=avoid, nodes=args.nodes or 10, opset=args.opset or 17,
            time_budget=fuzzing_time(args), max_tests=args.max_tests, workers=args.workers,
            timeout=args.timeout or 10.0, memory_mb=args.memory_limit or 4096,
            input_budget=0.1 if args.input_search is None else (args.input_search or None),
            tolerances=policy_to_dict(policy) if (policy := tolerance_policy(args)) else None,
            reference="onnx-ref" if "onnx-ref" in backends else None,
            coverage=bool(args.coverage or args.corpus), corpus=str(args.corpus.resolve()) if args.corpus else None,
            pythons=pythons or None, ray=args.ray, lane_weights=args.lane_weights, **perf_settings(args),
            **generator_settings(args))
        checked_generator(config)
        checked_lanes(config)
        try:
            store = start_run(config, run_dir)
        except StoreError as error:
            raise UsageError(str(error)) from None
    print(f"tcfuzz: run directory {run_dir}; backends {', '.join(config.backends)}", file=sys.stderr)
    with store:
        try:
            campaign = Campaign(config, store)
        except SupportTableError as error:
            raise UsageError(str(error)) from None
        try:
            with ProgressDisplay() as display:
                snapshot = campaign.run(display)
        except WorkerStartError as error:
            raise UsageError(f"{error}; check `tcfuzz backends`") from None
        except RayUnavailable as error:
            raise UsageError(str(error)) from None
    from rich.console import Console

    Console().print(summary_table(snapshot, title=f"tcfuzz: {snapshot.stopping_reason or 'finished'}",
                                  outcomes=campaign.outcome_counts, seconds=campaign.backend_seconds))
    if args.triage_share and args.time and snapshot.signatures and snapshot.stopping_reason != "interrupted":
        triage_in_budget(run_dir, args.time * args.triage_share)
    print(bug_count_line(run_dir))
    if snapshot.stopping_reason == "interrupted" or not (config.time_budget or config.max_tests):
        print(f"continue with: tcfuzz fuzz --resume {run_dir}", file=sys.stderr)
    return EXIT_FINDINGS if snapshot.signatures else EXIT_OK


def perf_settings(args: argparse.Namespace) -> dict:
    """The performance oracle's settings of a new campaign; a factor of 1 or less is refused."""
    if args.perf_factor is not None and args.perf_factor <= 1:
        raise UsageError(f"--perf-factor {args.perf_factor} is no slowdown; give a factor over 1 (default 2)")
    given = {"perf_every": args.perf_every, "perf_factor": args.perf_factor, "perf_floor_ms": args.perf_floor}
    return {"perf": args.perf, **{name: value for name, value in given.items() if value is not None}}


def checked_lanes(config) -> None:
    """Refuse --lane-weights that name no lane of the campaign."""
    from fuzzer.campaign.config import plan_lanes

    try:
        plan_lanes(config)
    except ValueError as error:
        raise UsageError(f"--lane-weights: {error}") from None


def fuzzing_time(args: argparse.Namespace) -> float | None:
    """The campaign's own seconds: --time less the share kept for triage."""
    return args.time * (1 - args.triage_share) if args.time else args.time


def triage_in_budget(run_dir: Path, seconds: float) -> None:
    """Triage the run's bugs, most severe first, for about ``seconds``; the rest waits for
    `tcfuzz triage RUN`."""
    from triage.pipeline import triage_run

    print(f"tcfuzz: triaging the run's bugs for {seconds:.0f} s (tcfuzz triage {run_dir} goes on from there)",
          file=sys.stderr)
    summary = triage_run(run_dir, reruns=2, time_budget=min(60.0, seconds / 4), total_time=seconds)
    if summary.out_of_time:
        print(f"tcfuzz: {summary.out_of_time} bug(s) left untriaged", file=sys.stderr)


def bug_count_line(run_dir: Path) -> str:
    """One line after a campaign: its bugs (root causes), findings and reference issues;
    never raises (the campaign has ended well whatever happens here)."""
    try:
        from fuzzer.store import RunStore
        from triage.bugs import run_bugs

        with RunStore.open(run_dir, read_only=True) as store:
            bugs = run_bugs(store)
        compiler_bugs = sum(bug.category == "bug" for bug in bugs)
        references = sum(bug.category == "reference-issue" for bug in bugs)
        untriaged = "" if any(bug.reduced_ops for bug in bugs) else " before triage (it joins more)"
        return (f"{compiler_bugs} bugs (root causes){untriaged} from {sum(bug.findings for bug in bugs)} findings; "
                f"{references} reference issues; see `tcfuzz bugs {run_dir}`")
    except (Exception, KeyboardInterrupt) as error:  # noqa: BLE001 - a count, not the campaign
        reason = str(error).splitlines()[0] if str(error) else ""
        return f"bug count unavailable: {type(error).__name__}{': ' + reason if reason else ''}"


def command_gen(args: argparse.Namespace) -> int:
    from fuzzer.store import arrays_to_npz
    from fuzzer.campaign.config import CampaignConfig
    from fuzzer.generation.generator import generated, make_case

    options = checked_generator(CampaignConfig(backends=(), nodes=args.nodes, opset=args.opset,
                                               **generator_settings(args)))
    out = writable_directory(args.out)
    graphs = []
    for index in range(args.count):
        made = generated(args.seed + index, options)
        case = make_case(made.graph, args.seed + index, options.opset, index, options.input_budget)
        graphs.append(made)
        stem = out / f"case_{index:04d}"
        stem.with_suffix(".onnx").write_bytes(case.model)
        Path(f"{stem}.inputs.npz").write_bytes(arrays_to_npz(case.inputs))
        Path(f"{stem}.graph.json").write_text(case.graph.to_json())
    print(f"wrote {args.count} models with inputs to {out}")
    if args.stats:
        from rich.console import Console

        from fuzzer.generation.stats import graph_statistics, render

        Console().print(render(graph_statistics(graphs)))
    return EXIT_OK


def load_model_case(model_path: Path, inputs_path: Path | None, seed: int):
    """A TestCase for an ONNX file given by the user, with one-line errors for bad input."""
    import onnx

    from fuzzer.store import npz_to_arrays
    from fuzzer.graph.ir import DType, Graph, TensorType
    from fuzzer.graph.rejected import InvalidGraph
    from fuzzer.graph.case import TestCase
    from fuzzer.graph.values import random_array

    if not model_path.is_file():
        raise UsageError(f"model file {model_path} does not exist; pass the path of an .onnx file")
    data = model_path.read_bytes()
    try:
        model = onnx.load_from_string(data)
        onnx.checker.check_model(model)
    except Exception as error:  # noqa: BLE001 - any parse or check failure is bad input
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UsageError(f"{model_path} is not a valid ONNX model ({first_line[:200]}); "
                         "pass a model that onnx.checker accepts") from None
    stem = str(model_path)[: -len(".onnx")] if str(model_path).endswith(".onnx") else str(model_path)
    graph = None
    if Path(f"{stem}.graph.json").is_file():
        try:
            graph = Graph.from_json(Path(f"{stem}.graph.json").read_text())
        except (InvalidGraph, ValueError) as error:
            raise UsageError(f"{stem}.graph.json is not a valid tcfuzz graph ({error}); remove it") from None
    inputs_path = inputs_path or (Path(f"{stem}.inputs.npz") if Path(f"{stem}.inputs.npz").is_file() else None)
    initializers = {i.name for i in model.graph.initializer}
    feeds = [i for i in model.graph.input if i.name not in initializers]
    if inputs_path is not None:
        try:
            inputs = npz_to_arrays(inputs_path.read_bytes())
        except Exception:  # noqa: BLE001
            try:
                with np.load(io.BytesIO(inputs_path.read_bytes()), allow_pickle=False) as archive:
                    inputs = {k: archive[k] for k in archive.files}
            except Exception as error:  # noqa: BLE001
                raise UsageError(f"{inputs_path} is not a readable .npz file ({error})") from None
        missing = [i.name for i in feeds if i.name not in inputs]
        if missing:
            raise UsageError(f"{inputs_path} has no array for model input {missing[0]!r}")
    else:
        gen = np.random.default_rng(seed)
        inputs = {}
        for value in feeds:
            tensor = value.type.tensor_type
            if not all(d.HasField("dim_value") for d in tensor.shape.dim):
                raise UsageError(f"model input {value.name!r} has a dynamic dimension; "
                                 "pass concrete inputs with --inputs FILE.npz")
            try:
                dtype = DType.from_onnx(tensor.elem_type)
            except ValueError as error:
                raise UsageError(f"model input {value.name!r}: {error}") from None
            inputs[value.name] = np.asarray(random_array(
                gen, TensorType(dtype, tuple(d.dim_value for d in tensor.shape.dim))))
    for output in model.graph.output:
        if not all(d.HasField("dim_value") for d in output.type.tensor_type.shape.dim):
            raise UsageError(f"model output {output.name!r} has a dynamic dimension; "
                             "tcfuzz run compares models with static output shapes")
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 17)
    return TestCase(graph, inputs, data, opset, seed)


def command_run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from fuzzer.execution.isolation import Limits, WorkerGroup, WorkerStartError
    from fuzzer.execution.outcome import Status
    from oracles.verdict import differential
    from oracles.tolerance import DEFAULT_POLICY, along_paths

    case = load_model_case(args.model, args.inputs, args.seed)
    backends = checked_backends(args.backends)
    try:
        with WorkerGroup(backends, Limits(timeout=args.timeout)) as group:
            outcomes = group.execute(case)
    except WorkerStartError as error:
        raise UsageError(str(error)) from None
    reference = "onnx-ref" if "onnx-ref" in backends else None
    policy = tolerance_policy(args) or DEFAULT_POLICY
    policy = along_paths(case.graph, policy) if case.graph is not None else policy
    findings = differential(case.output_types(), outcomes, policy, reference)
    table = Table(title=f"{args.model}")
    for column in ("backend", "status", "stage", "seconds", "outputs / error"):
        table.add_column(column)
    for outcome in outcomes:
        if outcome.status is Status.OK:
            detail = ", ".join(f"{k}: {v.dtype}{list(v.shape)}" for k, v in outcome.outputs.items())
        else:
            detail = f"{outcome.error_type}: {outcome.message.splitlines()[0] if outcome.message else ''}"[:160]
        table.add_row(outcome.backend, outcome.status.value, outcome.stage.value if outcome.stage else "-",
                      f"{outcome.seconds:.3f}", detail)
    console = Console()
    console.print(table)
    for finding in findings:
        console.print(f"[bold red]{finding.kind.value}[/]: {finding.summary}", highlight=False)
    if not findings:
        console.print("all backends agree" if sum(o.ok for o in outcomes) > 1 else "nothing to compare")
    return EXIT_FINDINGS if findings else EXIT_OK


def command_backends(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from fuzzer.execution.backends import builtin_backends

    table = Table(title="tcfuzz backends")
    for column in ("name", "device", "status", "versions", "description"):
        table.add_column(column)
    for name, backend in sorted(builtin_backends().items()):
        reason = backend.missing()
        versions = ", ".join(f"{k} {v}" for k, v in backend.versions().items()) if reason is None else ""
        table.add_row(name, backend.device, "available" if reason is None else f"missing: {reason}",
                      versions, backend.description)
    Console().print(table)
    return EXIT_OK


COMMANDS = {"fuzz": command_fuzz, "gen": command_gen, "run": command_run, "backends": command_backends}


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except UsageError as error:
        print(f"tcfuzz: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130

