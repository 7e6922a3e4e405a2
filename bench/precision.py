"""Precision of what tcfuzz reports: raw findings, signatures, bugs, verified bugs and reference
issues of a fixed-seed default campaign with triage, and of a TIR campaign. Printed as JSON,
with one line per bug to judge by hand (docs/precision.md holds that judgement).

Usage: python bench/precision.py [--seconds 600] [--triage-seconds 600] [--seed 1]
                                 [--mode graph|tir|both] [--out DIR]
The runs stay in DIR (default: a new temporary directory) for `tcfuzz bugs`/`report`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fuzzer.store import RunStore  # noqa: E402
from triage.bugs import run_bugs  # noqa: E402


def tcfuzz(*args: str) -> float:
    """Run a tcfuzz command from this checkout; its wall seconds."""
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "fuzzer.cli", *args], cwd=ROOT, check=False,
                   stdout=subprocess.DEVNULL)
    return time.monotonic() - started


def measure(run: Path, fuzz_seconds: float, triage_seconds: float | None) -> dict:
    """The figures of a finished (and triaged) run."""
    with RunStore.open(run, read_only=True) as store:
        findings = store.findings()
        bugs = run_bugs(store)
    compiler_bugs = [bug for bug in bugs if bug.category == "bug"]
    return {
        "run": str(run), "fuzz_seconds": round(fuzz_seconds),
        "triage_seconds": triage_seconds and round(triage_seconds),
        "findings": len(findings), "signatures": len({f.signature for f in findings}),
        "bugs": len(compiler_bugs), "verified_bugs": sum(bug.verified for bug in compiler_bugs),
        "reduced_bugs": sum(bool(bug.reduced_ops) for bug in compiler_bugs),
        "reference_issues": sum(bug.category == "reference-issue" for bug in bugs),
        "invalid_tests": sum(bug.category == "invalid-test" for bug in bugs),
        "triage_failed": sum(bug.status == "triage-failed" for bug in bugs),
        "bug_list": [f"{bug.id} {bug.category} {bug.compiler} {bug.kind} {'→'.join(bug.reduced_ops) or '-'} "
                     f"[{','.join(bug.configurations)}] verified={bug.verified}: {bug.summary[:140]}" for bug in bugs],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600.0, help="fuzzing seconds per campaign")
    parser.add_argument("--triage-seconds", type=float, default=600.0, help="total triage seconds (graph mode)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--mode", choices=("graph", "tir", "both"), default="both")
    parser.add_argument("--out", type=Path, help="directory for the runs (default: a temporary one, kept)")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="tcfuzz-precision-"))
    results = {}
    if args.mode in ("graph", "both"):
        run = out / "graph"
        fuzzed = tcfuzz("fuzz", "--time", str(args.seconds), "--seed", str(args.seed), "--out", str(run))
        triaged = tcfuzz("triage", str(run), "--reruns", "2", "--time", "30", "--total-time", str(args.triage_seconds))
        results["graph"] = measure(run, fuzzed, triaged)
    if args.mode in ("tir", "both"):
        run = out / "tir"
        fuzzed = tcfuzz("fuzz", "--mode", "tir", "--time", str(args.seconds), "--seed", str(args.seed),
                        "--out", str(run))
        triaged = tcfuzz("triage", str(run), "--total-time", str(args.triage_seconds))  # verified scripts
        results["tir"] = measure(run, fuzzed, triaged)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
