"""`tcfuzz status`: a campaign seen from its store, while it runs or after it ended.

The store is opened read-only and each look is one short read transaction, so watching
never blocks the campaign that writes it (SQLite WAL).
"""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.table import Table

from fuzzer.store import RunStore
from reports.markdown import RAN_ON_ALL, bugs_in, coverage_text
from reports.model import RunSummary, summarize


def status_table(summary: RunSummary, now: float | None = None) -> Table:
    now = now or time.time()
    if summary.running(now):
        state = "running"
    elif summary.updated is None:
        state = "not started"
    else:
        state = f"stopped {now - summary.updated:,.0f} s ago"
    table = Table(title=f"tcfuzz status: {summary.run_dir}", show_header=False, min_width=44)
    table.add_column(style="bold")
    table.add_column(justify="right")
    for name, value in (("state", state), ("backends", ", ".join(summary.backends)),
                        ("elapsed", f"{summary.seconds:,.1f} s"), ("tests", f"{summary.tests:,}"),
                        ("tests/s", f"{summary.rate:,.1f}"), (RAN_ON_ALL, f"{summary.valid_share:.1%}"),
                        ("coverage", coverage_text(summary)), ("findings", f"{summary.findings:,}")):
        table.add_row(name, value)
    for kind, count in sorted(summary.findings_by_kind.items()):
        table.add_row(f"  {kind}", f"{count:,}")
    table.add_row("unique findings", f"{len(summary.signatures):,}"
                  + ("" if summary.triaged else " (not triaged)"))
    for status, count in summary.by_status().items():
        table.add_row(f"  {status}", f"{count:,}")
    if summary.backend_rows:
        table.add_row("backends", "tests / time")
        for row in summary.backend_rows:
            table.add_row(f"  {row.name}", f"{row.tests:,} / {row.seconds:,.0f} s")
    bugs = summary.compiler_bugs()
    table.add_row("bugs (root causes)", f"{len(bugs):,}" + ("" if summary.triaged else " (not reduced)"))
    table.add_row("  verified", f"{sum(bug.verified for bug in bugs):,}")
    table.add_row("  failing CI", f"{len(summary.failing_bugs()):,}")
    table.add_row("reference issues", f"{len(bugs_in(summary, 'reference-issue')):,}")
    if invalid := bugs_in(summary, "invalid-test"):
        table.add_row("invalid tests", f"{len(invalid):,}")
    if unreproduced := bugs_in(summary, "unreproduced"):
        table.add_row("not reproduced", f"{len(unreproduced):,}")
    return table


def read_summary(run_dir: Path) -> RunSummary:
    with RunStore.open(run_dir, read_only=True) as store:
        return summarize(store)


def show_status(run_dir: Path, watch: float | None = None, console: Console | None = None) -> None:
    """Print the status once, or every ``watch`` seconds until interrupted."""
    console = console or Console()
    if watch is None:
        console.print(status_table(read_summary(run_dir)))
        return
    if console.is_terminal:
        with Live(status_table(read_summary(run_dir)), console=console, auto_refresh=False) as live:
            while True:
                time.sleep(watch)
                live.update(status_table(read_summary(run_dir)), refresh=True)
    while True:
        console.print(status_table(read_summary(run_dir)))
        console.file.flush()
        time.sleep(watch)
