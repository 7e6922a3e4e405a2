"""Write a run's summary in each report format."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Iterable

from reports.html import render_html
from reports.junit import render_junit
from reports.markdown import render_markdown
from reports.model import RunSummary
from reports.sarif import render_sarif

# format -> (file name, renderer of (summary, output directory, source root))
FORMATS: dict[str, tuple[str, Callable[[RunSummary, Path, Path], str]]] = {
    "json": ("summary.json", lambda summary, out, root: json.dumps(summary.to_dict(), indent=1) + "\n"),
    "md": ("summary.md", lambda summary, out, root: render_markdown(summary)),
    "junit": ("junit.xml", lambda summary, out, root: render_junit(summary)),
    "sarif": ("tcfuzz.sarif", lambda summary, out, root: render_sarif(summary, root)),
    "html": ("index.html", lambda summary, out, root: render_html(summary, out)),
}


def write_reports(summary: RunSummary, out_dir: Path, formats: Iterable[str] = tuple(FORMATS),
                  source_root: Path | None = None) -> list[Path]:
    """Write ``summary`` into ``out_dir`` in each of ``formats``; the files written.

    SARIF locations are relative to ``source_root`` (default: the working directory, the checkout in CI).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name in formats:
        file_name, render = FORMATS[name]
        path = out_dir / file_name
        path.write_text(render(summary, out_dir, Path(source_root or Path.cwd())), encoding="utf-8")
        written.append(path)
    return written
