"""`tcfuzz ci`: fuzz for a time budget, triage, write reports, compare with a baseline.

Exit status: 0 nothing new, 1 new bugs (a new, flaky or triage-failed compiler bug whose root-cause
fingerprint is outside the baseline; reference issues and invalid tests never fail a job),
2 harness error (bad configuration, a backend that cannot start, an exception in tcfuzz).
An exception while triaging one finding is recorded on it and does not fail the job.

Each run is a new campaign, seeded from the date (or ``--seed``), so each night tests new
cases. ``--corpus DIR`` is the coverage corpus kept between runs (``tcfuzz fuzz --corpus``):
the campaign mutates what earlier nights found interesting and adds what it covers anew.
The known bugs (their fingerprints, and signatures) come from ``--baseline``, else from
``DIR/known-signatures.json``, which every run with a corpus extends with its own (written
atomically: a temporary file, then a rename).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Iterable

from fuzzer.store import DATABASE_NAME, RunStore
from fuzzer.cli import UsageError, build_parser, checked_backends, command_fuzz, writable_directory

EXIT_CLEAN, EXIT_NEW_FINDINGS, EXIT_HARNESS_ERROR = 0, 1, 2
REPORT_DIR = "report"
KNOWN_SIGNATURES = "known-signatures.json"  # in the corpus directory: signatures of earlier runs


def load_baseline(path: Path) -> frozenset[str]:
    """Known bug fingerprints and signatures (see triage.bugs.load_known); bad input is a UsageError."""
    from triage.bugs import load_known

    try:
        return load_known(path)
    except ValueError as error:
        raise UsageError(f"{error}; fix --baseline") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from fuzzer.cli import backend_list, positive_float, positive_int

    parser.add_argument("--time", type=positive_float, default=600.0, help="fuzzing seconds (default 600)")
    parser.add_argument("--backends", type=backend_list,
                        help="comma-separated backends of a new campaign (default: every available CPU backend)")
    parser.add_argument("--seed", type=int, help="campaign seed (default: today's date as YYYYMMDD)")
    parser.add_argument("--workers", type=positive_int, default=1, help="parallel lanes (default 1)")
    parser.add_argument("--corpus", type=Path, metavar="DIR",
                        help="coverage corpus kept between CI runs (created when absent); its "
                             f"{KNOWN_SIGNATURES} holds the signatures earlier runs found")
    parser.add_argument("--out", type=Path, metavar="RUN", help="run directory (default runs/ci-<timestamp>)")
    parser.add_argument("--baseline", type=Path, metavar="FILE_OR_DB",
                        help="known signatures: a run directory or its findings.db, a JSON list, or one per line "
                             f"(default: the corpus's {KNOWN_SIGNATURES})")
    parser.add_argument("--triage-time", type=positive_float, default=60.0,
                        help="triage's reduction seconds per bug (default 60)")
    parser.add_argument("--triage-total", type=positive_float,
                        help="triage's total seconds (default: the fuzzing time); bugs left over stay untriaged")
    parser.add_argument("--judges-as-targets", action="store_true",
                        help="count disagreements that blame a judge (onnx-ref, ref-f64) as compiler bugs")
    parser.add_argument("--perf", action="store_true",
                        help="also run the performance oracle (fuzz --perf): confirmed slowdowns are bugs")
    parser.add_argument("--dry-run", action="store_true",
                        help="check the configuration and start each backend's worker, then exit 0 or 2")


def command_ci(args: argparse.Namespace) -> int:
    """Bad input raises UsageError (exit 2); any other exception is a harness error (exit 2)."""
    try:
        return run_ci(args)
    except (UsageError, KeyboardInterrupt):
        raise
    except Exception:  # noqa: BLE001 - a harness bug must not read as "new findings" (exit 1)
        traceback.print_exc()
        print("tcfuzz ci: harness error (traceback above)", file=sys.stderr)
        return EXIT_HARNESS_ERROR


def run_ci(args: argparse.Namespace) -> int:
    known_file = args.corpus / KNOWN_SIGNATURES if args.corpus is not None else None
    if args.baseline:
        baseline = load_baseline(args.baseline)
    else:
        baseline = load_baseline(known_file) if known_file is not None and known_file.is_file() else frozenset()
    run_dir = args.out or Path("runs") / datetime.datetime.now().strftime("ci-%Y%m%d-%H%M%S")
    if (run_dir / DATABASE_NAME).exists():
        raise UsageError(f"{run_dir} already holds a run; pass a new --out directory")
    backends = checked_backends(args.backends)
    writable_directory(run_dir.parent)
    if args.corpus is not None:
        writable_directory(args.corpus)
    if args.dry_run:
        return dry_run(backends)
    seed = args.seed if args.seed is not None else int(datetime.date.today().strftime("%Y%m%d"))
    fuzz_argv = ["fuzz", "--out", str(run_dir), "--backends", ",".join(backends), "--seed", str(seed),
                 "--time", str(args.time), "--workers", str(args.workers),
                 *(["--corpus", str(args.corpus)] if args.corpus is not None else []),
                 *(["--perf"] if args.perf else [])]
    command_fuzz(build_parser().parse_args(fuzz_argv))
    triage(run_dir, args.triage_time, baseline, args.triage_total or args.time, args.judges_as_targets)
    from reports.model import summarize
    from reports.render import write_reports  # imports matplotlib: only when reporting

    with RunStore.open(run_dir) as store:
        summary = summarize(store, baseline, args.judges_as_targets)
    written = write_reports(summary, run_dir / REPORT_DIR)
    print(f"tcfuzz ci: seed {seed}; reports in {written[0].parent}", file=sys.stderr)
    if known_file is not None:
        previous = load_baseline(known_file) if known_file.is_file() else frozenset()
        save_known(known_file, previous | {row.signature for row in summary.signatures},
                   {key for bug in summary.bugs for key in bug.fingerprints})
    new = summary.failing_bugs()
    for bug in new:
        print(f"new bug ({bug.status}): {bug.id} {bug.compiler} {bug.kind}: {bug.summary[:160]} "
              f"({bug.findings} finding(s); {', '.join(bug.configurations)})")
    others = len(summary.bugs) - len(summary.compiler_bugs())
    print(f"tcfuzz ci: {len(new)} new of {len(summary.compiler_bugs())} bugs ({others} reference issues or invalid "
          f"tests, not counted), {summary.findings} findings, {summary.tests:,} tests")
    return EXIT_NEW_FINDINGS if new else EXIT_CLEAN


def dry_run(backends: tuple[str, ...]) -> int:
    """Start each backend's worker once: exit 0 when all start, 2 naming the first that cannot."""
    from fuzzer.execution.isolation import WorkerGroup, WorkerStartError

    try:
        with tempfile.TemporaryDirectory(prefix="tcfuzz-dry-run-") as logs, WorkerGroup(backends, log_dir=Path(logs)):
            pass
    except WorkerStartError as error:
        print(f"tcfuzz ci: {error}; check `tcfuzz backends`", file=sys.stderr)
        return EXIT_HARNESS_ERROR
    print(f"tcfuzz ci: configuration valid; backends start: {', '.join(backends)}")
    return EXIT_CLEAN


def triage(run_dir: Path, time_budget: float, baseline: frozenset[str], total_time: float,
           judges_as_targets: bool) -> None:
    """Re-run, reduce, blame and write repro scripts for the run's bugs, most severe first,
    for at most ``total_time`` seconds."""
    from triage.pipeline import triage_run

    summary = triage_run(run_dir, time_budget=time_budget, baseline=baseline, total_time=total_time,
                         judges_as_targets=judges_as_targets)
    if summary.out_of_time:
        print(f"tcfuzz ci: {summary.out_of_time} bug(s) left untriaged after {total_time:g} s", file=sys.stderr)


def save_known(path: Path, signatures: Iterable[str], fingerprints: Iterable[str] = ()) -> None:
    """Write the known ``signatures`` and bug ``fingerprints`` to ``path``; never leaves it half written."""
    staging = path.with_name(path.name + ".new")
    staging.write_text(json.dumps({"signatures": sorted(signatures),
                                   "bugs": [{"fingerprints": sorted(set(fingerprints))}]}, indent=1) + "\n")
    os.replace(staging, path)
