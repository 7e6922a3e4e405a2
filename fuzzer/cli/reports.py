"""`tcfuzz` subcommands of the reports package (registered through fuzzer.cli.COMMAND_MODULES)."""

from __future__ import annotations

import argparse
from pathlib import Path

from fuzzer.cli import UsageError, positive_float

FORMAT_CHOICES = ("all", "json", "md", "junit", "sarif", "html")
CI_EPILOG = """exit status: 0 nothing new, 1 new bugs (a new or flaky compiler bug, or one triage failed
on, whose root cause is outside the baseline; reference issues never fail), 2 harness error (bad configuration, a \
backend that cannot start, an exception
in tcfuzz). Reports are written to RUN/report/. See docs/ci.md."""


def register(commands) -> dict:
    """Add this package's subcommands to ``commands``; their handlers by name."""
    from fuzzer.cli.ci import add_arguments, command_ci

    report = commands.add_parser("report", help="write JSON, Markdown, JUnit, SARIF and HTML reports of a run")
    report.add_argument("run", type=Path, metavar="RUN", help="a run directory")
    report.add_argument("-o", "--out", type=Path, metavar="DIR", help="output directory (default RUN/report)")
    report.add_argument("--format", choices=FORMAT_CHOICES, default="all", help="one format, or all (default)")
    report.add_argument("--baseline", type=Path, metavar="FILE_OR_DB",
                        help="known signatures, for the status of untriaged findings (see `tcfuzz ci`)")

    status = commands.add_parser("status", help="show a running or finished campaign from its store")
    status.add_argument("run", type=Path, metavar="RUN", help="a run directory")
    status.add_argument("--watch", type=positive_float, nargs="?", const=2.0, metavar="SECONDS",
                        help="refresh every SECONDS (default 2) until interrupted")

    ci = commands.add_parser("ci", help="fuzz, triage, report and compare with a baseline (for CI)",
                             epilog=CI_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(ci)
    return {"report": command_report, "status": command_status, "ci": command_ci}


def command_report(args: argparse.Namespace) -> int:
    from fuzzer.store import RunStore, StoreError
    from fuzzer.cli.ci import load_baseline
    from reports.model import summarize
    from reports.render import FORMATS, write_reports

    baseline = load_baseline(args.baseline) if args.baseline else frozenset()
    try:
        with RunStore.open(args.run, read_only=True) as store:
            summary = summarize(store, baseline)
    except StoreError as error:
        raise UsageError(str(error)) from None
    out = args.out or args.run / "report"
    try:
        written = write_reports(summary, out, FORMATS if args.format == "all" else (args.format,))
    except OSError as error:
        raise UsageError(f"cannot write reports to {out} ({error.strerror}); "
                         "choose another directory with -o") from None
    for path in written:
        print(path)
    return 0


def command_status(args: argparse.Namespace) -> int:
    from fuzzer.store import StoreError
    from reports.status import show_status

    try:
        show_status(args.run, args.watch)
    except StoreError as error:
        raise UsageError(str(error)) from None
    return 0
