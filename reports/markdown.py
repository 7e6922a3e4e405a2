"""A Markdown summary of a run, small enough for ``$GITHUB_STEP_SUMMARY`` (1 MiB).

Bugs (root causes, triage.bugs) come first: they are what a user judges the fuzzer by.
Reference issues (a judge is wrong) and invalid tests follow, then every signature.
"""

from __future__ import annotations

import os
from pathlib import Path

from reports.model import RunSummary
from triage.bugs import Bug

MAX_ROWS = 50
CELL_LIMIT = 160
SUMMARY_LIMIT = 100  # of a bug's summary in its table row (the id leads to the rest)
CATEGORY_SECTIONS = (  # category, heading, what it means; the last is shown only when it lists some
    ("bug", "Bugs", "Distinct root causes in the compilers under test, most urgent first. Each joins every "
     "finding and configuration that shows it; new and flaky ones fail CI."),
    ("reference-issue", "Reference issues", "A judge (onnx-ref, ref-f64) is wrong, not the compiler under "
     "test: shown for the judge's maintainers, not counted as bugs, never failing CI."),
    ("invalid-test", "Invalid tests", "The reduced graph breaks the ONNX specification: the generator's "
     "fault, not counted as bugs, never failing CI."),
    ("unreproduced", "Not reproduced", "Seen in the campaign, never again in triage's fresh re-runs (a hang "
     "on a loaded machine, most often): not counted as bugs, never failing CI."),
)
BUG_HEADER = ["id", "status", "compiler", "kind", "summary", "culprit / scope", "reduced ops", "configurations",
              "findings", "regression range", "verified", "repro"]
RAN_ON_ALL = "ran on all backends"  # the share of tests that no backend declined (RunSummary.valid_share)


class Raw(str):
    """A table cell that is Markdown already (a link): not cut, not re-spaced."""


def short(value: object, limit: int) -> str:
    """``value`` on one line, cut to ``limit`` characters."""
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def cell(value: object) -> str:
    """``value`` as one Markdown table cell: one line, pipes escaped, cut to CELL_LIMIT."""
    if isinstance(value, Raw):
        return value.replace("|", "\\|")
    return short(value, CELL_LIMIT).replace("|", "\\|")


def table(header: list[str], rows: list[list[object]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(cell(value) for value in row) + " |" for row in rows)]


def coverage_text(summary: RunSummary) -> str:
    if not summary.coverage:
        return "no coverage recorded"
    last = summary.coverage[-1]
    return ", ".join(f"{name} {last[name]:,}" for name in summary.coverage_measures())


EFFECTS_NOTE = ("The rewrites each backend's optimizer applied (ONNX Runtime graph transformers that modified "
                "the graph, read on a sampled share of the tests; TVM passes that changed the module; Inductor "
                "counters that moved) and in how many tests each fired.")


def effects_by_backend(summary: RunSummary) -> dict[str, list[dict]]:
    """Each backend's effects (``RunSummary.effects`` rows), most frequent first."""
    grouped: dict[str, list[dict]] = {}
    for row in summary.effects:
        grouped.setdefault(row["backend"], []).append(row)
    return grouped


def effects_over_time(summary: RunSummary) -> dict[str, tuple[list[float], list[float]]]:
    """Backend -> (seconds into the run, distinct effects fired by then)."""
    return {backend: (sorted(row["first_seconds"] for row in rows), list(range(1, len(rows) + 1)))
            for backend, rows in effects_by_backend(summary).items()}


PERFORMANCE_NOTE = ("Speedup of each compiler's optimized configuration over its baseline, on the timed tests "
                    "(--perf). S(t): the geometric mean of the speedups, a test whose optimized result is further "
                    "than t from the float64 judge's, or that failed, counting as a 10x slowdown "
                    "(docs/performance.md).")
SCORE_COLUMNS = ("1e-06", "1e-04", "1e-02", "1e+00")  # the S(t) the tables show; summary.json has them all


def performance_rows(summary: RunSummary) -> list[list[object]]:
    """One row per timed compiler: pair, tests, failures, median speedup, S(t) at SCORE_COLUMNS."""
    def number(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    return [[compiler, f"{curve['optimized']} / {curve['baseline']}", curve["tests"], curve["failed"],
             number(curve["median_speedup"]), *(number(curve["score"].get(t)) for t in SCORE_COLUMNS)]
            for compiler, curve in summary.speedups.items()]


PERFORMANCE_HEADER = ["compiler", "optimized / baseline", "timed tests", "failed", "median speedup",
                      *(f"S({t})" for t in SCORE_COLUMNS)]


def bugs_in(summary: RunSummary, category: str) -> list[Bug]:
    return [bug for bug in summary.bugs if bug.category == category]


def bug_cause(bug: Bug) -> str:
    """What triage blamed, else which configurations show it; and why triage failed."""
    text = f"{bug.culprit} ({bug.scope})" if bug.culprit else bug.scope
    return f"{text}; triage failed: {bug.triage_error}" if bug.triage_error else text


def bug_ops(bug: Bug) -> str:
    return "→".join(bug.reduced_ops) or "(not reduced)"


def bug_regression(bug: Bug) -> str:
    """The releases that introduced or fixed it (`tcfuzz bisect`); "-" before a bisection."""
    return bug.regression["text"] if bug.regression else "-"


def bug_verified(bug: Bug) -> str:
    """Whether its repro script reproduced it in a clean interpreter; "-" without a script."""
    return "yes" if bug.verified else ("no" if bug.repro else "-")


def ran_on_all_text(summary: RunSummary) -> str:
    return f"{summary.valid_share:.1%}"


def shown_sections(summary: RunSummary) -> tuple[tuple[str, str, str], ...]:
    """The category sections a report shows: all but "Not reproduced" always, that one when it lists some."""
    *always, optional = CATEGORY_SECTIONS
    return (*always, optional) if bugs_in(summary, optional[0]) else tuple(always)


def bugs_sentence(summary: RunSummary) -> str:
    """One line: bugs beside raw findings and signatures."""
    bugs = summary.compiler_bugs()
    return (f"{len(bugs)} bugs (root causes; {sum(b.verified for b in bugs)} with a verified repro, "
            f"{len(summary.failing_bugs())} failing CI) from {summary.findings:,} findings in "
            f"{len(summary.signatures):,} unique signatures; {len(bugs_in(summary, 'reference-issue'))} reference "
            f"issues; {len(bugs_in(summary, 'invalid-test'))} invalid tests.")


def _path(run_dir: Path, relative: str | None, out_dir: Path | None, text: str) -> object:
    """A link to a triage file from ``out_dir``; without one, the path relative to the run."""
    if relative is None:
        return "-"
    if out_dir is None:
        return Raw(f"`{relative}`")
    return Raw(f"[{text}]({Path(os.path.relpath(run_dir / relative, out_dir)).as_posix()})")


def bug_rows(summary: RunSummary, bugs: list[Bug], out_dir: Path | None) -> list[str]:
    run_dir = Path(summary.run_dir)
    shown = bugs[:MAX_ROWS]
    lines = table(BUG_HEADER, [
        [bug.id, bug.status, bug.compiler, bug.kind, short(bug.summary, SUMMARY_LIMIT), bug_cause(bug), bug_ops(bug),
         ", ".join(bug.configurations), bug.findings, bug_regression(bug), bug_verified(bug),
         Raw(" ".join(filter(None, [_path(run_dir, bug.repro, out_dir, "repro.py"),
                                    _path(run_dir, bug.report, out_dir, "report.md") if bug.repro else ""])))]
        for bug in shown])
    if len(bugs) > len(shown):
        lines += ["", f"{len(bugs) - len(shown)} more in summary.json and index.html."]
    return lines


def render_markdown(summary: RunSummary, out_dir: Path | None = None) -> str:
    """The summary; links to repro scripts are relative to ``out_dir`` where it is given,
    else repro paths are shown relative to the run directory."""
    bugs = summary.compiler_bugs()
    lines = [
        f"# tcfuzz: {summary.run_dir}", "",
        f"**{bugs_sentence(summary)}**", "",
        *table(["tests", "tests/s", RAN_ON_ALL, "seconds", "findings", "unique signatures", "bugs",
                "verified bugs", "bugs failing CI", "reference issues", "invalid tests"],
               [[f"{summary.tests:,}", f"{summary.rate:,.1f}", ran_on_all_text(summary),
                 f"{summary.seconds:,.0f}", summary.findings, len(summary.signatures), len(bugs),
                 sum(b.verified for b in bugs), len(summary.failing_bugs()),
                 len(bugs_in(summary, "reference-issue")), len(bugs_in(summary, "invalid-test"))]]),
        "",
        f"Backends: {', '.join(summary.backends) or '-'}. Coverage: {coverage_text(summary)}. "
        f"{RAN_ON_ALL.capitalize()}: the share of tests that no backend declined. "
        + ("Triaged." if summary.triaged else "Not triaged: bugs are not reduced yet and statuses come from "
           f"the baseline (`tcfuzz triage {summary.run_dir}`)."),
    ]
    for category, heading, meaning in shown_sections(summary):
        chosen = bugs_in(summary, category)
        lines += ["", f"## {heading}", "", meaning, ""]
        lines += bug_rows(summary, chosen, out_dir) if chosen else ["None."]
    lines += ["", "## Findings by signature", ""]
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
              "ran: tests the backend compiled and ran (its tests minus those it declined as unsupported); "
              "seconds: the time its worker spent on them.", "",
              *table(["backend", "tests", "ran", "declined", "errors", "failures", "findings by kind",
                      "unsupported (op, dtype) pairs", "seconds"],
                     [[row.name, row.tests, row.tests - row.unsupported, row.unsupported, row.errors, row.failures,
                       ", ".join(f"{kind} {count}" for kind, count in row.findings.items()) or "-",
                       row.unsupported_features, f"{row.seconds:,.1f}"] for row in summary.backend_rows])]
    if summary.speedups:
        share = summary.perf_seconds / summary.seconds if summary.seconds else 0.0
        lines += ["", "## Performance", "", PERFORMANCE_NOTE,
                  f"Timing took {summary.perf_seconds:,.0f} s of lane time ({share:.0%} of the run's wall time).", "",
                  *table(PERFORMANCE_HEADER, performance_rows(summary))]
    if summary.effects:
        lines += ["", "## Optimizer effects", "", EFFECTS_NOTE, "",
                  *table(["backend", "distinct effects", "effects (tests)"],
                         [[backend, len(rows), ", ".join(f"{row['effect']} ({row['tests']})" for row in rows)]
                          for backend, rows in effects_by_backend(summary).items()])]
    return "\n".join(lines) + "\n"
