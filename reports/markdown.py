"""A Markdown summary of a run, small enough for ``$GITHUB_STEP_SUMMARY`` (1 MiB)."""

from __future__ import annotations

from reports.model import RunSummary

MAX_ROWS = 50
CELL_LIMIT = 160


def cell(value: object) -> str:
    """``value`` as one Markdown table cell: one line, pipes escaped, cut to CELL_LIMIT."""
    text = " ".join(str(value).split())
    text = text if len(text) <= CELL_LIMIT else text[:CELL_LIMIT - 1] + "…"
    return text.replace("|", "\\|")


def table(header: list[str], rows: list[list[object]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(cell(value) for value in row) + " |" for row in rows)]


def coverage_text(summary: RunSummary) -> str:
    if not summary.coverage:
        return "no coverage recorded"
    last = summary.coverage[-1]
    return ", ".join(f"{name} {last[name]:,}" for name in summary.coverage_measures())


def render_markdown(summary: RunSummary) -> str:
    by_status = summary.by_status()
    lines = [
        f"# tcfuzz: {summary.run_dir}", "",
        *table(["tests", "tests/s", "valid", "seconds", "findings", "unique", "new", "flaky", "known"],
               [[f"{summary.tests:,}", f"{summary.rate:,.1f}", f"{summary.valid_share:.1%}",
                 f"{summary.seconds:,.0f}", summary.findings, len(summary.signatures),
                 by_status.get("new", 0), by_status.get("flaky", 0), by_status.get("known", 0)]]),
        "",
        f"Backends: {', '.join(summary.backends) or '-'}. Coverage: {coverage_text(summary)}. "
        + ("Triaged." if summary.triaged else "Not triaged: statuses come from the baseline."),
        "", "## Unique findings", "",
    ]
    if summary.signatures:
        shown = summary.signatures[:MAX_ROWS]
        lines += table(["status", "kind", "backends", "stage", "tests", "first test", "summary", "repro"],
                       [[row.status, row.kind, "+".join(row.backends), row.stage, row.count, row.first_test,
                         row.summary, row.repro or "-"] for row in shown])
        if len(summary.signatures) > len(shown):
            lines += ["", f"{len(summary.signatures) - len(shown)} more in summary.json and index.html."]
    else:
        lines.append("No findings.")
    lines += ["", "## Backends", "",
              *table(["backend", "tests", "errors", "unsupported", "failures", "findings by kind",
                      "unsupported (op, dtype) pairs"],
                     [[row.name, row.tests, row.errors, row.unsupported, row.failures,
                       ", ".join(f"{kind} {count}" for kind, count in row.findings.items()) or "-",
                       row.unsupported_features] for row in summary.backend_rows])]
    return "\n".join(lines) + "\n"
