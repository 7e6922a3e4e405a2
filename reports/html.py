"""A static, self-contained HTML report: plots embedded as PNG, tables, links to repro scripts."""

from __future__ import annotations

import base64
import html
import io
import os
from pathlib import Path

from matplotlib.figure import Figure

from reports.markdown import coverage_text
from reports.model import RunSummary

Series = dict[str, tuple[list[float], list[float]]]  # label -> (x values, y values)

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.number { text-align: right; }
.new { color: #b00020; font-weight: bold; } .flaky { color: #a05a00; } .known, .fixed { color: #555; }
img { max-width: 100%; }
"""


def plot_png(title: str, xlabel: str, ylabel: str, series: Series) -> bytes:
    """A line plot as PNG bytes."""
    figure = Figure(figsize=(6.4, 3.2), dpi=100, layout="constrained")
    axes = figure.subplots()
    for label, (xs, ys) in series.items():
        axes.plot(xs, ys, label=label, marker="." if len(xs) < 30 else None)
    axes.set(title=title, xlabel=xlabel, ylabel=ylabel)
    axes.grid(alpha=0.3)
    if len(series) > 1:
        axes.legend()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def time_series(summary: RunSummary) -> dict[str, tuple[str, Series]]:
    """Plot title -> (y label, series) for each plot the run has data for."""
    stats = summary.stats
    seconds = [point["seconds"] for point in stats]
    rates = [(b["tests"] - a["tests"]) / (b["seconds"] - a["seconds"])
             for a, b in zip(stats, stats[1:]) if b["seconds"] > a["seconds"]]
    rate_seconds = [b["seconds"] for a, b in zip(stats, stats[1:]) if b["seconds"] > a["seconds"]]
    plots: dict[str, tuple[str, Series]] = {}
    if summary.coverage:
        plots["Coverage over time"] = ("covered", {
            name: ([p["seconds"] for p in summary.coverage], [p[name] for p in summary.coverage])
            for name in summary.coverage_measures()})
    if rates:
        plots["Tests per second"] = ("tests/s", {"tests/s": (rate_seconds, rates)})
    if stats:
        plots["Findings over time"] = ("findings", {"findings": (seconds, [p["findings"] for p in stats])})
    return plots


def _table(header: list[str], rows: list[list[str]]) -> str:
    """An HTML table; cells are HTML already (escape text with ``html.escape``)."""
    head = "".join(f"<th>{html.escape(name)}</th>" for name in header)
    body = "".join("<tr>" + "".join(row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _td(value: object, number: bool = False, css: str = "") -> str:
    classes = " ".join(filter(None, ["number" if number else "", css]))
    return f'<td class="{classes}">{html.escape(str(value))}</td>' if classes else f"<td>{html.escape(str(value))}</td>"


def _link(run_dir: Path, relative: str | None, out_dir: Path, text: str) -> str:
    if relative is None:
        return "<td>-</td>"
    href = os.path.relpath(run_dir / relative, out_dir)
    return f'<td><a href="{html.escape(Path(href).as_posix())}">{html.escape(text)}</a></td>'


def render_html(summary: RunSummary, out_dir: Path) -> str:
    """The page, to be written into ``out_dir`` (links to triage files are relative to it)."""
    run_dir = Path(summary.run_dir)
    by_status = summary.by_status()
    overview = _table(["tests", "tests/s", "valid", "seconds", "findings", "unique", "by status", "coverage"], [[
        _td(f"{summary.tests:,}", True), _td(f"{summary.rate:,.1f}", True), _td(f"{summary.valid_share:.1%}", True),
        _td(f"{summary.seconds:,.0f}", True), _td(summary.findings, True), _td(len(summary.signatures), True),
        _td(", ".join(f"{s} {n}" for s, n in by_status.items()) or "-"), _td(coverage_text(summary))]])
    plots = "".join(
        f'<figure><img alt="{html.escape(title)}" src="data:image/png;base64,'
        f'{base64.b64encode(plot_png(title, "seconds", ylabel, series)).decode()}"></figure>'
        for title, (ylabel, series) in time_series(summary).items()) or "<p>No statistics recorded yet.</p>"
    kinds = sorted({kind for row in summary.backend_rows for kind in row.findings})
    backends = _table(["backend", "tests", "errors", "unsupported", "failures", *kinds, "unsupported (op, dtype) pairs"],
                      [[_td(row.name), _td(f"{row.tests:,}", True), _td(row.errors, True), _td(row.unsupported, True),
                        _td(row.failures, True), *(_td(row.findings.get(kind, 0), True) for kind in kinds),
                        _td(row.unsupported_features, True)] for row in summary.backend_rows])
    findings = _table(
        ["status", "kind", "backends", "stage", "tests", "first test", "reproduced", "summary", "repro", "report",
         "signature"],
        [[_td(row.status, css=row.status), _td(row.kind), _td("+".join(row.backends)), _td(row.stage),
          _td(row.count, True), _td(row.first_test, True),
          _td("-" if row.reproducibility is None else f"{row.reproducibility:.0%}", True), _td(row.summary),
          _link(run_dir, row.repro, out_dir, "repro.py"), _link(run_dir, row.report, out_dir, "report.md"),
          _td(row.signature)] for row in summary.signatures]) if summary.signatures else "<p>No findings.</p>"
    triage_note = "" if summary.triaged else "<p>Not triaged: statuses come from the baseline.</p>"
    versions = _table(["package", "version"], [[_td(k), _td(v)] for k, v in sorted(summary.versions.items())])
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>tcfuzz report: {html.escape(summary.run_dir)}</title>
<style>{STYLE}</style></head>
<body>
<h1>tcfuzz report</h1>
<p>Run <code>{html.escape(summary.run_dir)}</code> ({html.escape(summary.mode)} mode, seed {summary.seed}); backends
{html.escape(", ".join(summary.backends) or "-")}.</p>
{overview}
<h2>Over time</h2>
{plots}
<h2>Backends</h2>
{backends}
<h2>Unique findings</h2>
{triage_note}
{findings}
<h2>Versions</h2>
{versions}
</body></html>
"""
