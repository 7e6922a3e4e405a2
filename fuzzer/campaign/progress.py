"""Live campaign progress: a rich table on a terminal, a line every few seconds elsewhere."""

from __future__ import annotations

import sys
import time
from typing import Mapping

from rich.console import Console
from rich.live import Live
from rich.table import Table

from fuzzer.campaign.config import Snapshot

PLAIN_INTERVAL = 10.0
RAN_ON_ALL = "ran on all backends"  # Snapshot.valid_share: the share of tests that no backend declined


def summary_table(snapshot: Snapshot, title: str = "tcfuzz",
                  outcomes: Mapping[str, Mapping[str, int]] | None = None,
                  seconds: Mapping[str, float] | None = None) -> Table:
    """The campaign's numbers; ``outcomes`` (backend -> status -> runs, as Campaign.outcome_counts
    and the store's "outcomes" meta hold them) adds each backend's ran and declined tests, and
    ``seconds`` (Campaign.backend_seconds) the time each spent on them."""
    table = Table(title=title, show_header=False, min_width=44)
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_row("elapsed", f"{snapshot.seconds:,.1f} s")
    table.add_row("tests", f"{snapshot.tests:,}")
    table.add_row("tests/s", f"{snapshot.rate:,.1f}")
    table.add_row(RAN_ON_ALL, f"{snapshot.valid_share:.1%}")
    by_backend = ", ".join(f"{backend} {count}" for backend, count in snapshot.restarts_by_backend.most_common())
    table.add_row("worker restarts", f"{snapshot.restarts}" + (f" ({by_backend})" if by_backend else ""))
    if outcomes is None:
        outcomes = getattr(snapshot, "outcomes", None)  # should a Snapshot carry them one day
    if outcomes:
        table.add_row("backends", "ran / declined" + (" / time" if seconds is not None else ""))
        for backend, counts in sorted(outcomes.items()):
            declined = counts.get("unsupported", 0)
            time_spent = f" / {seconds.get(backend, 0.0):,.0f} s" if seconds is not None else ""
            table.add_row(f"  {backend}", f"{sum(counts.values()) - declined:,} / {declined:,}{time_spent}")
    if len(snapshot.lanes) > 1:
        table.add_row("lanes", "CPU share (weight)")
        for lane, share in lane_shares(snapshot).items():
            table.add_row(f"  {lane}", share)
    if snapshot.features:  # coverage feedback is on
        table.add_row("branches covered", f"{snapshot.branches:,}")
        table.add_row("features covered", f"{snapshot.features:,}")
        table.add_row("corpus", f"{snapshot.corpus:,}")
    table.add_row("likely bugs (before triage)", f"{len(snapshot.bugs)}")
    table.add_row("unique findings", f"{len(snapshot.signatures)}")
    for kind, count in sorted(snapshot.findings.items()):
        table.add_row(f"  {kind}", f"{count:,}")
    if snapshot.suppressed:
        table.add_row("false alarms explained", f"{sum(snapshot.suppressed.values()):,}")
        for guard, count in sorted(snapshot.suppressed.items()):
            table.add_row(f"  {guard}", f"{count:,}")
    return table


def lane_shares(snapshot: Snapshot) -> dict[str, str]:
    """Each lane's share of the campaign's CPU so far, with its weight's share: "26% (25%)"."""
    total = sum(cpu for cpu, _ in snapshot.lanes.values())
    return {lane: f"{cpu / total if total else 0.0:.0%} ({share:.0%})" for lane, (cpu, share) in snapshot.lanes.items()}


def plain_line(snapshot: Snapshot) -> str:
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(snapshot.findings.items())) or "none"
    coverage = (f"coverage {snapshot.branches:,} branches, {snapshot.features:,} features, "
                f"corpus {snapshot.corpus:,}; " if snapshot.features else "")
    lanes = (f"CPU by lane (weight) {', '.join(f'{lane} {share}' for lane, share in lane_shares(snapshot).items())}; "
             if len(snapshot.lanes) > 1 else "")
    return (f"[{snapshot.seconds:7.1f}s] tests {snapshot.tests:,} ({snapshot.rate:,.1f}/s), "
            f"{RAN_ON_ALL} {snapshot.valid_share:.1%}, {coverage}{lanes}findings: {kinds} "
            f"({len(snapshot.signatures)} unique, {len(snapshot.bugs)} likely bugs)")


class ProgressDisplay:
    """Call with each Snapshot; use as a context manager around the campaign."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.live = Live(console=self.console, refresh_per_second=4) if self.console.is_terminal else None
        self._last_line = 0.0

    def __enter__(self) -> ProgressDisplay:
        if self.live:
            self.live.__enter__()
        return self

    def __exit__(self, *exc_info) -> None:
        if self.live:
            self.live.__exit__(*exc_info)

    def __call__(self, snapshot: Snapshot) -> None:
        if self.live:
            self.live.update(summary_table(snapshot))
        elif time.monotonic() - self._last_line >= PLAIN_INTERVAL:
            self._last_line = time.monotonic()
            print(plain_line(snapshot), file=sys.stderr, flush=True)
