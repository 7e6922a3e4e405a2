"""A static, self-contained HTML report: plots embedded as PNG, tables, links to repro scripts."""

from __future__ import annotations

import base64
import html
import io
import os
from pathlib import Path

from matplotlib.figure import Figure

from reports.markdown import (BUG_HEADER, EFFECTS_NOTE, PERFORMANCE_HEADER, PERFORMANCE_NOTE, RAN_ON_ALL, bug_cause,
                              bug_ops, bug_regression, bug_verified, bugs_in, bugs_sentence, coverage_text,
                              effects_over_time, performance_rows, ran_on_all_text, short, shown_sections)
from reports.model import RunSummary
from triage.bugs import Bug

Series = dict[str, tuple[list[float], list[float]]]  # label -> (x values, y values)
SUMMARY_LIMIT = 200  # of a bug's summary in its row; the whole summary is the cell's tooltip

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.number { text-align: right; }
.new { color: #b00020; font-weight: bold; } .flaky, .triage-failed { color: #a05a00; } .known, .fixed { color: #555; }
p.headline { font-size: 1.15em; font-weight: bold; }
img { max-width: 100%; }
"""


def plot_png(title: str, xlabel: str, ylabel: str, series: Series, log_x: bool = False) -> bytes:
    """A line plot as PNG bytes."""
    figure = Figure(figsize=(6.4, 3.2), dpi=100, layout="constrained")
    axes = figure.subplots()
    if log_x:
        axes.set_xscale("log")
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
    if summary.effects:
        plots["Distinct optimizer effects over time"] = ("distinct effects", effects_over_time(summary))
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


def _bug_table(bugs: list[Bug], run_dir: Path, out_dir: Path) -> str:
    header = [*BUG_HEADER[:-2], "reproduced", "verified", "repro", "report"]
    return _table(header, [[
        _td(bug.id), _td(bug.status, css=bug.status), _td(bug.compiler), _td(bug.kind),
        f'<td title="{html.escape(bug.summary)}">{html.escape(short(bug.summary, SUMMARY_LIMIT))}</td>',
        _td(bug_cause(bug)), _td(bug_ops(bug)), _td(", ".join(bug.configurations)), _td(bug.findings, True),
        _td(bug_regression(bug)), _td("-" if bug.reproducibility is None else f"{bug.reproducibility:.0%}", True),
        _td(bug_verified(bug)),
        _link(run_dir, bug.repro, out_dir, "repro.py"),
        _link(run_dir, bug.report if bug.repro else None, out_dir, "report.md")] for bug in bugs])


def _bug_sections(summary: RunSummary, run_dir: Path, out_dir: Path) -> str:
    """A section per category: bugs, reference issues, invalid tests (and findings not reproduced)."""
    sections = []
    for category, heading, meaning in shown_sections(summary):
        chosen = bugs_in(summary, category)
        body = _bug_table(chosen, run_dir, out_dir) if chosen else "<p>None.</p>"
        sections.append(f'<h2 id="{category}">{html.escape(heading)}</h2>\n<p>{html.escape(meaning)}</p>\n{body}')
    return "\n".join(sections)


def render_html(summary: RunSummary, out_dir: Path) -> str:
    """The page, to be written into ``out_dir`` (links to triage files are relative to it)."""
    run_dir = Path(summary.run_dir)
    by_status = summary.by_status()
    bugs = summary.compiler_bugs()
    overview = _table(["tests", "tests/s", RAN_ON_ALL, "seconds", "findings", "unique signatures", "bugs",
                       "verified bugs", "bugs failing CI", "reference issues", "invalid tests", "coverage"], [[
        _td(f"{summary.tests:,}", True), _td(f"{summary.rate:,.1f}", True), _td(ran_on_all_text(summary), True),
        _td(f"{summary.seconds:,.0f}", True), _td(summary.findings, True), _td(len(summary.signatures), True),
        _td(len(bugs), True), _td(sum(b.verified for b in bugs), True), _td(len(summary.failing_bugs()), True),
        _td(len(bugs_in(summary, "reference-issue")), True), _td(len(bugs_in(summary, "invalid-test")), True),
        _td(coverage_text(summary))]])
    plots = "".join(
        f'<figure><img alt="{html.escape(title)}" src="data:image/png;base64,'
        f'{base64.b64encode(plot_png(title, "seconds", ylabel, series)).decode()}"></figure>'
        for title, (ylabel, series) in time_series(summary).items()) or "<p>No statistics recorded yet.</p>"
    kinds = sorted({kind for row in summary.backend_rows for kind in row.findings})
    backends = _table(["backend", "tests", "ran", "declined", "errors", "failures", *kinds,
                       "unsupported (op, dtype) pairs", "seconds"],
                      [[_td(row.name), _td(f"{row.tests:,}", True), _td(f"{row.tests - row.unsupported:,}", True),
                        _td(f"{row.unsupported:,}", True), _td(row.errors, True),
                        _td(row.failures, True), *(_td(row.findings.get(kind, 0), True) for kind in kinds),
                        _td(row.unsupported_features, True), _td(f"{row.seconds:,.1f}", True)]
                       for row in summary.backend_rows])
    findings = _table(
        ["status", "kind", "backends", "stage", "tests", "first test", "reproduced", "summary", "repro", "report",
         "signature"],
        [[_td(row.status, css=row.status), _td(row.kind), _td("+".join(row.backends)), _td(row.stage),
          _td(row.count, True), _td(row.first_test, True),
          _td("-" if row.reproducibility is None else f"{row.reproducibility:.0%}", True), _td(row.summary),
          _link(run_dir, row.repro, out_dir, "repro.py"), _link(run_dir, row.report, out_dir, "report.md"),
          _td(row.signature)] for row in summary.signatures]) if summary.signatures else "<p>No findings.</p>"
    triage_note = "" if summary.triaged else (
        "<p>Not triaged: bugs are not reduced yet and statuses come from the baseline "
        f"(<code>tcfuzz triage {html.escape(summary.run_dir)}</code>).</p>")
    signature_note = ("<p>Signatures by status: " + html.escape(", ".join(f"{s} {n}" for s, n in by_status.items()))
                      + ".</p>") if by_status else ""
    effects = _table(["backend", "effect", "tests", "first test"],
                     [[_td(row["backend"]), _td(row["effect"]), _td(f"{row['tests']:,}", True),
                       _td(row["first_test"], True)] for row in summary.effects]) if summary.effects else \
        "<p>No optimizer effects recorded.</p>"
    versions = _table(["package", "version"], [[_td(k), _td(v)] for k, v in sorted(summary.versions.items())])
    performance = ""
    if summary.speedups:
        curves = {compiler: ([float(t) for t in curve["score"]], [v if v is not None else float("nan")
                                                                  for v in curve["score"].values()])
                  for compiler, curve in summary.speedups.items()}
        png = base64.b64encode(plot_png("Speedup score S(t)", "tolerance t", "S(t)", curves, log_x=True)).decode()
        performance = (f"<h2>Performance</h2>\n<p>{html.escape(PERFORMANCE_NOTE)} Timing took "
                       f"{summary.perf_seconds:,.0f} s of lane time.</p>\n"
                       + _table(PERFORMANCE_HEADER, [[_td(cell) for cell in row] for row in performance_rows(summary)])
                       + f'\n<figure><img alt="Speedup score S(t)" src="data:image/png;base64,{png}"></figure>')
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>tcfuzz report: {html.escape(summary.run_dir)}</title>
<style>{STYLE}</style></head>
<body>
<h1>tcfuzz report</h1>
<p>Run <code>{html.escape(summary.run_dir)}</code> ({html.escape(summary.mode)} mode, seed {summary.seed}); backends
{html.escape(", ".join(summary.backends) or "-")}.</p>
<p class="headline">{html.escape(bugs_sentence(summary))}</p>
{overview}
<p>{html.escape(RAN_ON_ALL.capitalize())}: the share of tests that no backend declined.</p>
{triage_note}
{_bug_sections(summary, run_dir, out_dir)}
<h2>Findings by signature</h2>
{signature_note}
{findings}
<h2>Backends</h2>
<p>ran: tests the backend compiled and ran (its tests minus those it declined as unsupported);
seconds: the time its worker spent on them.</p>
{backends}
{performance}
<h2>Optimizer effects</h2>
<p>{html.escape(EFFECTS_NOTE)}</p>
{effects}
<h2>Over time</h2>
{plots}
<h2>Versions</h2>
{versions}
</body></html>
"""
