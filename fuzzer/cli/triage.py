"""`tcfuzz` subcommands of the triage package (registered through fuzzer.cli.COMMAND_MODULES).

    tcfuzz triage RUN [--reruns N] [--time S] [--total-time S] [--baseline FILE] [--judges-as-targets]
    tcfuzz bugs RUN [--baseline FILE] [--judges-as-targets] [--json]
    tcfuzz reduce RUN ID [--time S]
    tcfuzz repro RUN ID [-o repro.py] [--no-verify]
    tcfuzz replay RUN [--latest]
    tcfuzz bisect RUN BUG [--package P] [--versions LO..HI] [--allow-large]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fuzzer.cli import EXIT_FINDINGS, EXIT_OK, UsageError, positive_float, positive_int
from triage.db import Status


def register(commands) -> dict:
    """Add this package's subcommands to ``commands``; their handlers by name."""
    from triage.bisect import package_choices

    triage = commands.add_parser("triage", help="deduplicate, re-run, reduce, blame and reproduce a run's findings")
    triage.add_argument("run", type=Path, metavar="RUN", help="a run directory made by `tcfuzz fuzz`")
    triage.add_argument("--reruns", type=positive_int, default=5, help="re-runs per signature (default 5)")
    # 60 s: at 300, the 33 bugs of a 10-minute default campaign took about 20 minutes to triage
    triage.add_argument("--time", type=positive_float, default=60.0,
                        help="seconds of reduction per signature (default 60)")
    triage.add_argument("--total-time", type=positive_float, metavar="S",
                        help="stop starting new bugs after S seconds (the rest waits for the next triage)")
    triage.add_argument("--baseline", type=Path, metavar="FILE",
                        help="known signatures: a JSON list, a text file (one per line) or another run")
    triage.add_argument("--judges-as-targets", action="store_true",
                        help="triage disagreements that blame a judge (onnx-ref, ref-f64) as compiler bugs")

    bugs = commands.add_parser("bugs", help="one line per bug (root cause): compiler, kind, culprit, repro")
    bugs.add_argument("run", type=Path, metavar="RUN", help="a run directory made by `tcfuzz fuzz`")
    bugs.add_argument("--baseline", type=Path, metavar="FILE",
                      help="known bugs: another run, a report's summary.json, or a list of fingerprints")
    bugs.add_argument("--judges-as-targets", action="store_true",
                      help="count disagreements that blame a judge (onnx-ref, ref-f64) as compiler bugs")
    bugs.add_argument("--json", action="store_true", help="print the bugs as JSON")

    reduce = commands.add_parser("reduce", help="reduce one finding's test case to a minimal graph")
    reduce.add_argument("run", type=Path, metavar="RUN")
    reduce.add_argument("finding", type=positive_int, metavar="ID", help="finding id (see `tcfuzz report`)")
    reduce.add_argument("--time", type=positive_float, default=300.0, help="seconds of reduction (default 300)")

    repro = commands.add_parser("repro", help="write a standalone script that reproduces one finding")
    repro.add_argument("run", type=Path, metavar="RUN")
    repro.add_argument("finding", type=positive_int, metavar="ID")
    repro.add_argument("-o", "--output", type=Path, default=Path("repro.py"), help="script path (default repro.py)")
    repro.add_argument("--no-verify", action="store_true", help="write the script without running it")

    replay = commands.add_parser("replay", help="re-run each signature on the installed compilers: fixed or failing")
    replay.add_argument("run", type=Path, metavar="RUN")
    replay.add_argument("--latest", action="store_true",
                        help="instead, run each verified bug's repro on the newest release of its compiler (a "
                             "cached environment) and mark those it no longer shows fixed in that release")

    bisect = commands.add_parser("bisect", help="find the release of a bug's compiler that introduced (or fixed) it")
    bisect.add_argument("run", type=Path, metavar="RUN")
    bisect.add_argument("bug", metavar="BUG", help="a bug id (see `tcfuzz bugs RUN`)")
    bisect.add_argument("--package", choices=package_choices(),
                        help="the package whose releases to try (default: the bug's compiler's)")
    bisect.add_argument("--versions", metavar="LO..HI", help="only releases from LO to HI (either side optional)")
    bisect.add_argument("--allow-large", action="store_true", help="allow multi-GB packages (torch builds)")
    return {"triage": command_triage, "bugs": command_bugs, "reduce": command_reduce, "repro": command_repro,
            "replay": command_replay, "bisect": command_bisect}


def open_run(run_dir: Path):
    from fuzzer.store import RunStore, StoreError

    try:
        return RunStore.open(run_dir)
    except StoreError as error:
        raise UsageError(str(error)) from None


def checked_finding(store, finding_id: int):
    from triage.rerun import find_stored

    try:
        return find_stored(store, finding_id)
    except LookupError as error:
        raise UsageError(str(error)) from None


def command_triage(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import Progress

    from triage.db import load_baseline
    from triage.pipeline import triage_run
    from triage.reduce import ReductionUnsupported

    open_run(args.run).close()
    try:
        baseline = load_baseline(args.baseline) if args.baseline else frozenset()
    except ValueError as error:
        raise UsageError(f"{error}") from None
    console = Console(stderr=True)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("triage", total=None)

        def on_progress(number: int, total: int, step: str, signature: str) -> None:
            line = f"[{number}/{total}] {step}: {signature[:60]}"
            progress.update(task, total=total, completed=number - 1, description=line)
            if not console.is_terminal:  # a log file: one line per step instead of a live bar
                print(f"tcfuzz triage {line}", file=sys.stderr, flush=True)

        try:
            summary = triage_run(args.run, reruns=args.reruns, time_budget=args.time, baseline=baseline,
                                 on_progress=on_progress, total_time=args.total_time,
                                 judges_as_targets=args.judges_as_targets)
        except ReductionUnsupported as error:
            raise UsageError(str(error)) from None
    from fuzzer.store import RunStore
    from triage.bugs import run_bugs

    with RunStore.open(args.run, read_only=True) as store:
        bugs = run_bugs(store, baseline, args.judges_as_targets)
    print(f"tcfuzz triage: {len(summary.records)} signatures, {summary.steps_run} steps in {summary.seconds:.0f} s")
    print_bug_lists(bugs)
    if summary.out_of_time:
        print(f"{summary.out_of_time} bug(s) left untriaged when --total-time ran out; run triage again to go on")
    failed = summary.count(Status.TRIAGE_FAILED)
    if failed:
        print(f"triage failed on {failed} signature(s): their error is in `tcfuzz bugs {args.run}`")
    print(f"scripts and reports: {args.run / 'triage'}; the bugs: tcfuzz bugs {args.run}")
    return EXIT_OK


def command_bugs(args: argparse.Namespace) -> int:
    import json

    from fuzzer.store import RunStore, StoreError
    from triage.bugs import FAILING_STATUSES, load_known, run_bugs

    try:
        known = load_known(args.baseline) if args.baseline else frozenset()
        with RunStore.open(args.run, read_only=True) as store:
            bugs = run_bugs(store, known, args.judges_as_targets)
    except (ValueError, StoreError) as error:
        raise UsageError(str(error)) from None
    if args.json:
        print(json.dumps([bug.to_dict() for bug in bugs], indent=1))
        return EXIT_FINDINGS if any(b.category == "bug" and b.status in FAILING_STATUSES for b in bugs) else EXIT_OK
    print_bug_lists(bugs)
    findings = sum(bug.findings for bug in bugs)
    compiler_bugs = [b for b in bugs if b.category == "bug"]
    print(f"{len(compiler_bugs)} bugs, {sum(b.verified for b in compiler_bugs)} with a verified repro, "
          f"from {findings} findings; untriaged bugs have no reduced graph yet (tcfuzz triage {args.run})")
    return EXIT_FINDINGS if any(b.category == "bug" and b.status in FAILING_STATUSES for b in bugs) else EXIT_OK


def print_bug_lists(bugs) -> None:
    """The bugs, then the reference issues, invalid tests and findings not reproduced, one line each."""
    for category, title in (("bug", "bugs"), ("reference-issue", "reference issues (a judge is wrong; not "
                                                                  "counted as bugs)"),
                            ("invalid-test", "invalid tests (the generator broke the ONNX specification)"),
                            ("unreproduced", "not reproduced (never again in triage's fresh re-runs, as a hang "
                                             "on a loaded machine; not counted as bugs)")):
        chosen = [bug for bug in bugs if bug.category == category]
        if chosen or category == "bug":
            print(f"{len(chosen)} {title}:")
            print("\n".join(f"  {line}" for line in bug_lines(chosen)) or "  (none)")


def bug_lines(bugs) -> list[str]:
    """One line per bug: id, compiler, kind, status, culprit, reduced operators,
    configurations, findings, verified, repro."""
    rows = [(bug.id, bug.compiler, bug.kind, bug.status,
             bug.culprit or (f"triage failed ({bug.triage_error})" if bug.triage_error else bug.scope),
             "→".join(bug.reduced_ops) or ("(TIR: shrunk in the campaign)"
                                           if bug.configurations[0].startswith("tvm-tir") else "(not reduced)"),
             ",".join(bug.configurations), f"{bug.findings} findings",
             "verified" if bug.verified else "unverified", bug.repro or "no repro",
             *([f"regression: {bug.regression['text']}"] if bug.regression else [])) for bug in bugs]
    widths = [max((len(row[i]) for row in rows), default=0) for i in range(4)]
    return ["  ".join([*(cell.ljust(width) for cell, width in zip(row, widths)), *row[4:]]) for row in rows]


def signature_table(records, title: str, verdicts: dict[str, str] | None = None):
    from rich.table import Table

    table = Table(title=title)
    for column in ("signature", "status", *(["replay"] if verdicts else []), "count", "rate", "nodes",
                   "culprit", "repro"):
        table.add_column(column, overflow="fold")
    for record in records:
        notes = record.notes or {}
        reduction, repro = notes.get("reduction", {}), notes.get("repro", {})
        nodes = f"{reduction['nodes_before']}→{reduction['nodes_after']}" if "nodes_after" in reduction else "-"
        rate = "-" if record.reproducibility is None else f"{record.reproducibility:.0%}"
        culprit = f"{record.culprit['knob']}={record.culprit['value']}" if record.culprit else "-"
        script = ("verified" if repro.get("verified") else "written") if "path" in repro else "-"
        table.add_row(record.signature, record.status.value, *([verdicts[record.signature]] if verdicts else []),
                      str(record.count), rate, nodes, culprit, script)
    return table


def command_reduce(args: argparse.Namespace) -> int:
    from triage.reduce import ReductionUnsupported, reduce_finding

    with open_run(args.run) as store:
        checked_finding(store, args.finding)
        try:
            reduction = reduce_finding(store, args.finding, time_budget=args.time)
        except ReductionUnsupported as error:
            raise UsageError(str(error)) from None
    state = "done" if reduction.done else f"stopped after {args.time:g} s (run again to continue)"
    print(f"finding {args.finding}: {reduction.nodes_before} → {reduction.nodes_after} nodes, "
          f"{reduction.tests} tests, {reduction.seconds:.1f} s, {state}")
    print(reduction.case.graph)
    return EXIT_OK


def command_repro(args: argparse.Namespace) -> int:
    from triage.pipeline import repro_source, triaged_case
    from triage.repro import ReproUnsupported, verify_repro

    with open_run(args.run) as store:
        stored = checked_finding(store, args.finding)
        if store.config.get("mode") == "tir":
            from fuzzer.tir.repro import write_repro

            write_repro(args.run, args.finding, args.output)
            print(f"wrote {args.output} (TIR finding: TVM's own reduction already ran; graph reduction "
                  "is not available for TIR runs). Run it to see the difference.")
            return EXIT_OK
        case, reduction = triaged_case(store, args.finding)
        try:
            script = repro_source(store, stored, case)
        except ReproUnsupported as error:
            raise UsageError(f"{error}; choose another finding") from None
    try:
        args.output.write_text(script)
    except OSError as error:
        raise UsageError(f"cannot write {args.output} ({error.strerror}); choose another path with -o") from None
    source = (f"reduced case ({reduction.nodes_after} nodes)" if reduction
              else "original case (run `tcfuzz reduce` first for a smaller one)")
    print(f"wrote {args.output} from the {source}")
    if args.no_verify:
        return EXIT_OK
    reproduces = verify_repro(args.output)
    print("the script reproduces the bug (exit status 1)" if reproduces
          else "the script does not reproduce the bug here")
    return EXIT_FINDINGS if reproduces else EXIT_OK


def command_replay(args: argparse.Namespace) -> int:
    if args.latest:
        return command_replay_latest(args)
    from rich.console import Console

    from triage.pipeline import replay_run
    from triage.reduce import ReductionUnsupported

    open_run(args.run).close()
    try:
        replayed = replay_run(args.run)
    except ReductionUnsupported as error:
        raise UsageError(str(error)) from None
    verdicts = {r.record.signature: r.verdict for r in replayed}
    failing = sum(r.verdict == "failing" for r in replayed)
    Console().print(signature_table([r.record for r in replayed], f"tcfuzz replay: {failing} of "
                                    f"{len(replayed)} signatures still failing", verdicts))
    return EXIT_FINDINGS if failing else EXIT_OK


def verified_bug(store, bug_id: str):
    """The bug ``bug_id`` of the run in ``store``, with a verified repro script."""
    from triage.bugs import run_bugs

    bug = next((b for b in run_bugs(store) if b.id.lower() == bug_id.lower()), None)
    if bug is None:
        raise UsageError(f"{store.run_dir} has no bug {bug_id}; `tcfuzz bugs {store.run_dir}` lists its bug ids")
    if not (bug.repro and bug.verified and (store.run_dir / bug.repro).is_file()):
        raise UsageError(f"bug {bug.id} has no verified repro script to run on other releases; "
                         f"triage it first (tcfuzz triage {store.run_dir})")
    return bug


def command_bisect(args: argparse.Namespace) -> int:
    from triage.bisect import (BisectError, available_releases, bisect_bug, env_root, in_range, package_of,
                               parse_range, release_prober)

    try:
        low, high = parse_range(args.versions) if args.versions else (None, None)
    except ValueError as error:
        raise UsageError(str(error)) from None
    with open_run(args.run) as store:
        bug = verified_bug(store, args.bug)
        try:
            package = package_of(bug, args.package)
            probe = release_prober(store, bug, package, allow_large=args.allow_large,
                                   on_trial=lambda trial: print(f"  {package} {trial.line()}", flush=True))
            releases = available_releases(package)
        except BisectError as error:
            raise UsageError(str(error)) from None
        versions = in_range(releases, low, high)
        if not versions:
            raise UsageError(f"no release of {package} lies in {args.versions}; the installable ones are "
                             f"{releases[0]} to {releases[-1]}")
        print(f"bisecting bug {bug.id} over {len(versions)} {package} releases ({versions[0]} to {versions[-1]}); "
              f"environments in {env_root()}", flush=True)
        regression = bisect_bug(store, bug, package, versions, probe)
    print(f"bug {bug.id}: {regression.text()}")
    return EXIT_OK


def command_replay_latest(args: argparse.Namespace) -> int:
    """`tcfuzz replay --latest`: each verified bug's repro on its compiler's newest release."""
    from triage.bisect import BisectError, PRESENT, available_releases, package_of, release_prober, replay_newest
    from triage.bugs import run_bugs

    still = 0
    with open_run(args.run) as store:
        bugs = [bug for bug in run_bugs(store) if bug.verified and bug.repro and (store.run_dir / bug.repro).is_file()]
        if not bugs:
            print(f"no bug of {args.run} has a verified repro yet; triage it first (tcfuzz triage {args.run})")
        newest: dict[str, str] = {}
        for bug in bugs:
            try:
                package = package_of(bug)
                probe = release_prober(store, bug, package)
                newest[package] = newest.get(package) or available_releases(package)[-1]
            except BisectError as error:
                print(f"{bug.id}: skipped: {error}")
                continue
            regression = replay_newest(store, bug, package, newest[package], probe)
            latest = next(t for t in regression.trials if t.version == newest[package])
            still += latest.result == PRESENT
            print(f"{bug.id}: {package} {latest.line()}; {regression.text()}", flush=True)
    return EXIT_FINDINGS if still else EXIT_OK
