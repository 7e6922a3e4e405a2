"""The HTML report lists bugs first and renders in headless Chromium: the page loads and
every plot image decodes.

Chromium is Debian's package at /usr/bin/chromium; the fixture installs it when it is absent
and this runs as root (as CI does), and skips, saying why, only when it cannot.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from fuzzer.campaign.coverage import CoveragePoint, record_coverage
from reports.model import summarize
from reports.render import write_reports
from tests.helpers import run_with_findings

CHROMIUM = Path("/usr/bin/chromium")
# Marks <body> with how many images decoded (complete, naturalWidth > 0) out of how many.
IMAGE_PROBE = """<script>
window.addEventListener("load", () => {
  const images = [...document.images];
  const decoded = images.filter(image => image.complete && image.naturalWidth > 0).length;
  document.body.setAttribute("data-images-decoded", `${decoded}/${images.length}`);
});
</script>"""


def install_chromium() -> str | None:
    """Install Debian's chromium; None on success, else why it could not be installed."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return "not root on a Debian system"
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "chromium"]):
        result = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=1200)
        if result.returncode != 0:
            return f"`{' '.join(command)}` failed: {result.stderr.strip().splitlines()[-1:]}"
    return None


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.exists() and (reason := install_chromium()) is not None:
        pytest.skip(f"headless Chromium ({CHROMIUM}) is missing and cannot be installed: {reason}; "
                    "install it with `apt-get install -y chromium`")
    return CHROMIUM


@pytest.fixture(scope="module")
def html_report(tmp_path_factory) -> Path:
    """The HTML report of a short real campaign with a coverage series."""
    run_dir = tmp_path_factory.mktemp("render") / "run"
    with run_with_findings(run_dir, seed=2) as store:
        for tests in (0, 6, 12):  # the points a coverage-guided campaign records
            record_coverage(store, CoveragePoint(seconds=tests / 4, tests=tests, branches=100 + tests * 5,
                                                 features=40 + tests, corpus=tests // 2))
        summary = summarize(store)
    (page,) = write_reports(summary, run_dir / "report", ["html"])
    return page


def test_html_report_lists_bugs_before_signatures_and_each_backends_ran_and_declined(html_report):
    page = html_report.read_text()
    order = ['<h2 id="bug">Bugs</h2>', '<h2 id="reference-issue">Reference issues</h2>',
             '<h2 id="invalid-test">Invalid tests</h2>', "<h2>Findings by signature</h2>", "<h2>Backends</h2>"]
    assert [page.index(heading) for heading in order] == sorted(page.index(heading) for heading in order)
    bugs = page.split(order[0])[1].split(order[1])[0]
    assert len(re.findall(r"<tr><td>B[0-9a-f]{7}</td>", bugs)) >= 1 and "fault-wrong" in bugs
    assert "<th>bugs</th><th>verified bugs</th>" in page and "<th>ran on all backends</th>" in page
    assert "<th>valid</th>" not in page
    backends = page.split("<h2>Backends</h2>")[1]
    assert "<th>tests</th><th>ran</th><th>declined</th>" in backends


@pytest.mark.slow
def test_html_report_loads_with_every_plot_in_chromium(chromium, html_report, tmp_path):
    probed = tmp_path / "probed.html"
    probed.write_text(html_report.read_text().replace("</body>", IMAGE_PROBE + "</body>"))
    result = subprocess.run(
        [str(chromium), "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}",
         "--virtual-time-budget=10000", "--dump-dom", probed.as_uri()],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    dom = result.stdout
    assert "<h1>tcfuzz report</h1>" in dom
    assert len(re.findall(r"<img ", dom)) == 3  # coverage, tests/s and findings over time
    assert 'data-images-decoded="3/3"' in dom
    assert "fault-wrong" in dom  # the bug and finding tables
    assert '<h2 id="bug">Bugs</h2>' in dom and "<h2>Findings by signature</h2>" in dom
