"""Regression ranges: the releases of a compiler that brought a bug in, and those that fixed it.

``tcfuzz bisect RUN BUG`` runs a bug's verified standalone repro (triage.repro) under releases
of one package, each installed from the configured package index into its own cached
virtual environment (``<tcfuzz cache>/envs/py3.X/<package>-<version>``, reused across runs)
that holds only what the script imports: numpy, the release under test, and the newest
companions (onnx, ml_dtypes) that install beside it. A repro that prints REPRODUCED and exits
1 shows the bug present; one that exits 0 shows it absent; anything else (an import error, a
release that cannot load the model) leaves that release untested, and the search goes on
across its neighbours.

The search tries the newest release, then the oldest testable one, then halves the releases
between two that disagree until they are neighbours. The evidence (each release tried, with
its exit status and a one-line reason) is kept as the note ``regression`` of the bug's
representative signature (triage.db), where ``tcfuzz bugs``, the reports and the bug's
report.md read it; its verdict follows from the evidence alone (:meth:`Regression.text`).
"""

from __future__ import annotations

import fcntl
import json
import re
import shlex
import shutil
import signal
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

from packaging.version import InvalidVersion, Version

PRESENT, ABSENT, UNTESTABLE = "present", "absent", "cannot test"
# import name -> distribution, for what a repro script may import beside the standard library
DISTRIBUTIONS = {"numpy": "numpy", "onnx": "onnx", "onnxruntime": "onnxruntime", "tvm": "apache-tvm",
                 "ml_dtypes": "ml_dtypes", "torch": "torch"}
COMPILER_PACKAGES = {"onnxruntime": "onnxruntime", "tvm": "apache-tvm", "onnx.reference": "onnx",
                     "pytorch": "torch", "torch.compile": "torch"}  # Bug.compiler -> its package
LARGE = frozenset({"torch"})  # multi-GB releases: only the installed build, unless allowed
NUMPY_2_FROM = {"onnxruntime": Version("1.19")}  # older releases break under numpy 2 (1.18.0 says nothing)
# dependencies whose binary interface a release is built against; newer ones break it (apache-tvm
# 0.25.0 accepts apache-tvm-ffi>=0.1.12 but fails to load with 0.1.13 and later)
ABI_COUPLED = {"apache-tvm": ("apache-tvm-ffi",)}
REQUIRES = "import importlib.metadata, sys; print(*importlib.metadata.requires(sys.argv[1]) or [], sep=chr(10))"
INSTALL_TIMEOUT = 1800.0
REASON_LIMIT = 200
ENV_MARKER = "tcfuzz-env.json"  # written once an environment is complete
# a release that cannot load itself or the model, or lacks an operator: it says nothing about the bug
CANNOT_RUN = re.compile(r"^[\w.@:-]*: (?:ImportError|ModuleNotFoundError|OSError|AttributeError|NameError)\b|"
                        r"undefined symbol|unsupported model ir version|opset|not_implemented|not implemented|"
                        r"could not find an implementation|no schema registered|is not a registered", re.I)
IMPORT_LINE = re.compile(r"(?:^|\\n)[ \t]*(?:from|import)[ \t]+([A-Za-z_]\w*)", re.M)  # also in embedded sources


class BisectError(Exception):
    """Nothing to bisect (no installable release, a refused package); the message says why."""


class InstallError(Exception):
    """One release could not be installed; the message is the installer's last word."""


@dataclass(frozen=True)
class Trial:
    """One release tried: ``result`` is PRESENT, ABSENT or UNTESTABLE."""

    version: str
    result: str
    exit_status: int | None  # None: not installed, or no exit in time
    reason: str  # one line, at most REASON_LIMIT characters

    def __post_init__(self) -> None:
        object.__setattr__(self, "reason", " ".join(self.reason.split())[:REASON_LIMIT])

    def line(self) -> str:
        status = "" if self.exit_status is None else f" (exit {self.exit_status})"
        return f"{self.version}: {self.result}{status}: {self.reason}"


@dataclass(frozen=True)
class Regression:
    """The releases of ``package`` tried on one bug, in release order, and what follows."""

    package: str
    trials: tuple[Trial, ...]

    def tested(self) -> list[Trial]:
        return [t for t in self.trials if t.result != UNTESTABLE]

    def changes(self) -> list[tuple[Trial, Trial, list[str]]]:
        """Neighbouring tested releases that disagree, with the untestable ones between them."""
        tested = [index for index, trial in enumerate(self.trials) if trial.result != UNTESTABLE]
        return [(self.trials[a], self.trials[b], [t.version for t in self.trials[a + 1:b]])
                for a, b in zip(tested, tested[1:]) if self.trials[a].result != self.trials[b].result]

    def boundary(self, result: str) -> Trial | None:
        """The first release where the bug turns ``result`` (PRESENT: introduced, ABSENT: fixed)."""
        return next((after for _, after, _ in self.changes() if after.result == result), None)

    def text(self) -> str:
        """The verdict in one line, e.g. ``onnxruntime: introduced in 1.18.0 (last good 1.17.3)``."""
        tested = self.tested()
        if not tested:
            return f"{self.package}: no release could be tested ({len(self.trials)} tried)"
        changes = self.changes()
        phrases = []
        for before, after, between in changes:
            verb, last = ("introduced", "last good") if after.result == PRESENT else ("fixed", "last bad")
            untested = f"; {', '.join(between)} could not be tested" if between else ""
            phrases.append(f"{verb} in {after.version} ({last} {before.version}{untested})")
        if not changes:
            span = tested[0].version if len(tested) == 1 else f"{tested[0].version} to {tested[-1].version}"
            span += f", {len(tested)} tested" if len(tested) > 2 else ""
            where = "present in every tested release" if tested[0].result == PRESENT else \
                "not reproduced in any tested release"
            phrases.append(f"{where} ({span})")
        named = {version for _, _, between in changes for version in between}
        others = [t.version for t in self.trials if t.result == UNTESTABLE and t.version not in named]
        if others:
            more = f" and {len(others) - 3} more" if len(others) > 3 else ""
            phrases[-1] += f"; could not test {', '.join(others[:3])}{more}"
        return f"{self.package}: {', '.join(phrases)}"

    def to_dict(self) -> dict:
        introduced, fixed = self.boundary(PRESENT), self.boundary(ABSENT)
        return {"package": self.package, "text": self.text(),
                "introduced": introduced.version if introduced else None,
                "fixed": fixed.version if fixed else None,
                "tried": [asdict(trial) for trial in self.trials]}

    @classmethod
    def from_dict(cls, data: Mapping) -> Regression:
        return cls(data["package"], tuple(Trial(**trial) for trial in data.get("tried", ())))

    def merged(self, trials: Iterable[Trial]) -> Regression:
        """This evidence with ``trials`` added (a release tried again keeps its newest trial)."""
        by_version = {t.version: t for t in (*self.trials, *trials)}
        return Regression(self.package, tuple(sorted(by_version.values(), key=lambda t: Version(t.version))))


# ------------------------------------------------------------------ the search


def bisect_releases(versions: Sequence[str], probe: Callable[[str], Trial], anchor: str | None = None) -> list[Trial]:
    """The trials that place a bug among ``versions`` (oldest first): the newest testable
    release, the oldest testable one, and halvings between any two that disagree. Where
    both ends show the bug absent, ``anchor`` (a release known to show it, such as the one
    the run found it on) splits the search in two. ``probe(version)`` tries one release."""
    tried: dict[int, Trial] = {}

    def result(index: int) -> str:
        if index not in tried:
            tried[index] = probe(versions[index])
        return tried[index].result

    def boundary(low: int, high: int) -> None:  # result(low) != result(high), both testable
        while candidates := [i for i in range(low + 1, high) if i not in tried or tried[i].result != UNTESTABLE]:
            middle = candidates[len(candidates) // 2]
            if result(middle) == result(low):
                low = middle
            elif result(middle) == result(high):
                high = middle

    def oldest_testable(testable: int) -> int:  # old releases that cannot run the model come first
        if result(0) != UNTESTABLE:
            return 0
        untestable = 0
        while testable - untestable > 1:
            middle = (testable + untestable) // 2
            untestable, testable = (middle, testable) if result(middle) == UNTESTABLE else (untestable, middle)
        return testable

    newest = next((i for i in reversed(range(len(versions))) if result(i) != UNTESTABLE), None)
    if newest is not None:
        oldest = oldest_testable(newest)
        found = versions.index(anchor) if anchor in versions else -1
        if result(oldest) != result(newest):
            boundary(oldest, newest)
        elif result(oldest) == ABSENT and oldest < found < newest and result(found) == PRESENT:
            boundary(oldest, found)
            boundary(found, newest)
    return [tried[index] for index in sorted(tried)]


def judge(version: str, exit_status: int | None, stdout: str, stderr: str, *, backend: str | None = None,
          crash_reproduces: bool = False) -> Trial:
    """What one run of a repro script says about ``version`` (see the module doc); its
    reason is the line of ``backend`` (the script's BACKEND) where there is one. A failure
    of the expected exception type with another message (wording changes between releases)
    cannot be judged. A script killed by a signal shows a crash present where
    ``crash_reproduces`` (it ran the compiler in its own process, as TIR scripts do)."""
    from triage.repro import REPRODUCED_LINE, VERIFY_TIMEOUT

    if exit_status is None:
        return Trial(version, UNTESTABLE, None, f"no result after {VERIFY_TIMEOUT:g} s")
    verdict = REPRODUCED_LINE.decode()
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    said = [line for line in lines if not line.startswith("versions:") and line not in (verdict, "not reproduced")]
    errors = [line.strip() for line in stderr.splitlines() if line.strip() and not line.startswith("WARNING")]
    failure = (f"killed by {signal.Signals(-exit_status).name}" if exit_status < 0 else
               errors[-1] if errors else f"exit status {exit_status}")
    reason = next((line for line in said if backend and line.startswith(f"{backend}: ")), said[0] if said else failure)
    if exit_status == 1 and verdict in lines or crash_reproduces and exit_status < 0:
        return Trial(version, PRESENT, exit_status, reason)
    if exit_status != 0:
        return Trial(version, UNTESTABLE, exit_status, failure)
    expected = next((line.split()[2] for line in said if line.startswith("expected: ") and len(line.split()) > 2), "")
    if expected and reason.startswith(f"{backend}: {expected}: "):
        return Trial(version, UNTESTABLE, 0, f"the same {expected}, another message: {reason}")
    if reason.startswith(f"{backend}: no result after"):  # out of the script's time: no evidence either way
        return Trial(version, UNTESTABLE, 0, reason)
    cannot = next((line for line in said if CANNOT_RUN.search(line)), None)
    judged = cannot is None and not any("not the same bug" in line or "cannot judge" in line for line in lines)
    return Trial(version, ABSENT if judged else UNTESTABLE, 0, cannot or reason)


def try_release(version: str, install: Callable[[str], Path], run: Callable[[Path], tuple[int | None, str, str]],
                **judging) -> Trial:
    """Install ``version`` (``install`` returns the environment's python) and run the repro
    there (``run(python)`` returns its exit status, None on timeout, stdout and stderr);
    ``judging`` goes to :func:`judge`."""
    try:
        python = install(version)
    except InstallError as error:
        return Trial(version, UNTESTABLE, None, f"install failed: {error}")
    return judge(version, *run(python), **judging)


def script_runner(script: Path) -> Callable[[Path], tuple[int | None, str, str]]:
    """Run ``script`` in a clean interpreter of the environment whose python is given."""
    from triage.repro import VERIFY_TIMEOUT, run_clean

    def run(python: Path) -> tuple[int | None, str, str]:
        done = run_clean(script, VERIFY_TIMEOUT, str(python))
        if done is None:
            return None, "", ""
        return done.returncode, done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace")
    return run


# ------------------------------------------------------------------ environments


def env_root() -> Path:
    """Where the cached environments live: beside tcfuzz's support tables."""
    from fuzzer.execution.support import default_cache_dir

    return default_cache_dir().parent / "envs" / f"py{sys.version_info.major}.{sys.version_info.minor}"


def script_requirements(script: str) -> list[str]:
    """The distributions a repro script imports (its embedded backend sources included)."""
    return sorted({DISTRIBUTIONS[name] for name in IMPORT_LINE.findall(script) if name in DISTRIBUTIONS})


def installed_version(distribution: str) -> str | None:
    import importlib.metadata

    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def requirement_specs(package: str, version: str, companions: Iterable[str]) -> list[str]:
    """What to install for ``package==version``: each companion at its newest compatible
    release, but numpy below 2 for releases built against numpy 1, and a large package at
    the installed build."""
    specs = [f"{package}=={version}"]
    for name in sorted(set(companions) - {package}):
        if name == "numpy" and package in NUMPY_2_FROM and Version(version) < NUMPY_2_FROM[package]:
            specs.append("numpy<2")
        elif name in LARGE and installed_version(name):
            specs.append(f"{name}=={installed_version(name)}")
        else:
            specs.append(name)
    return specs


def pip_index_options(python: str = sys.executable) -> list[str]:
    """pip's configured indexes, links and constraints as installer options (uv reads no pip
    configuration)."""
    listed = subprocess.run([python, "-m", "pip", "config", "list"], capture_output=True, text=True).stdout
    pairs = []
    for line in listed.splitlines():
        key, _, value = line.partition("=")
        name = key.rpartition(".")[2]
        if name in ("index-url", "extra-index-url", "find-links", "constraint"):
            pairs += [(f"--{name}", entry) for entry in " ".join(shlex.split(value)).split()]
    return [item for pair in dict.fromkeys(pairs) for item in pair]


def lowest_accepted(requirements: Iterable[str], names: Iterable[str]) -> list[str]:
    """Pins of ``names`` at the lowest release that ``requirements`` (Requires-Dist lines)
    accept: a release is built against the floor of what it declares."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pins = []
    for line in filter(None, map(str.strip, requirements)):
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        floors = [Version(s.version) for s in requirement.specifier if s.operator == ">="]
        if name in names and requirement.marker is None and floors:
            pins.append(f"{name}=={max(floors)}")
    return pins


@dataclass
class Installer:
    """Installs ``package`` releases beside ``companions`` into cached environments, with uv
    where it is on PATH, else pip; calling it with a version returns the environment's python."""

    package: str
    companions: tuple[str, ...]
    root: Path
    python: str = sys.executable

    def __call__(self, version: str) -> Path:
        directory = self.root / f"{self.package}-{version}"
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / f".{directory.name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one installer per environment at a time
            marker = directory / ENV_MARKER
            have = set(json.loads(marker.read_text())["companions"]) if marker.is_file() else None
            wanted = set(self.companions) - {self.package}
            if have is None:
                self._make(directory, version, wanted)
            elif not wanted <= have:  # a script that imports more than the last one
                self._run(self._install(directory, requirement_specs(self.package, version, wanted - have)), None)
            marker.write_text(json.dumps({"package": self.package, "version": version,
                                          "companions": sorted(wanted | (have or set()))}))
        return directory / "bin" / "python"

    def _make(self, directory: Path, version: str, companions: set[str]) -> None:
        """A new environment: the release, its companions, and the dependencies it is built
        against (ABI_COUPLED) at the lowest release it accepts."""
        shutil.rmtree(directory, ignore_errors=True)  # a half-made one
        self._run(self._create(directory), directory)
        self._run(self._install(directory, requirement_specs(self.package, version, companions)), directory)
        if self.package in ABI_COUPLED:
            declared = self._run([str(directory / "bin" / "python"), "-c", REQUIRES, self.package], directory)
            if pins := lowest_accepted(declared.splitlines(), ABI_COUPLED[self.package]):
                self._run(self._install(directory, [f"{self.package}=={version}", *pins]), directory)

    def _create(self, directory: Path) -> list[str]:
        uv = shutil.which("uv")
        if uv:
            return [uv, "venv", "--quiet", "--python", self.python, str(directory)]
        return [self.python, "-m", "venv", "--without-pip", str(directory)]

    def _install(self, directory: Path, specs: list[str]) -> list[str]:
        target = str(directory / "bin" / "python")
        uv = shutil.which("uv")
        if uv:
            return [uv, "pip", "install", "--quiet", "--python", target, "--index-strategy", "unsafe-best-match",
                    "--only-binary", self.package, *pip_index_options(self.python), *specs]
        return [self.python, "-m", "pip", "--python", target, "install", "--quiet", "--no-input",
                "--disable-pip-version-check", "--only-binary", self.package, *specs]

    def _run(self, command: list[str], remove_on_failure: Path | None) -> str:
        """Run one step; its standard output. A failure removes ``remove_on_failure``."""
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=INSTALL_TIMEOUT)
        except (OSError, subprocess.TimeoutExpired) as error:
            failure = f"{type(error).__name__}: {error}"
        else:
            if done.returncode == 0:
                return done.stdout
            lines = [line.strip() for line in done.stderr.splitlines()
                     if line.strip() and not line.lstrip().startswith("WARNING")]
            failure = lines[-1] if lines else f"{Path(command[0]).name} exited with status {done.returncode}"
        if remove_on_failure is not None:
            shutil.rmtree(remove_on_failure, ignore_errors=True)
        raise InstallError(failure)


def available_releases(package: str, python: str = sys.executable) -> list[str]:
    """The releases of ``package`` with a wheel for this Python on the configured index,
    oldest first, pre-releases left out (pip lists them when asked for no release at all)."""
    try:
        done = subprocess.run([python, "-m", "pip", "install", "--dry-run", "--no-deps", "--ignore-installed",
                               "--only-binary", ":all:", "--disable-pip-version-check", f"{package}=="],
                              capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        raise BisectError(f"the package index did not list {package}'s releases within 300 s; try again") from None
    listed = re.search(r"\(from versions: ([^)]*)\)", done.stderr)
    versions = [v.strip() for v in listed.group(1).split(",") if v.strip() != "none"] if listed else []
    versions = [v for v in versions if not Version(v).is_prerelease]
    if not versions:
        raise BisectError(f"no release of {package} installs on Python {sys.version_info.major}."
                          f"{sys.version_info.minor} from the configured package index")
    return sorted(versions, key=Version)


def parse_range(text: str) -> tuple[Version | None, Version | None]:
    """``LO..HI`` (either side may be empty) as versions; ValueError naming the problem."""
    low, dots, high = text.partition("..")
    try:
        if not dots:
            raise InvalidVersion(text)
        return (Version(low) if low else None), (Version(high) if high else None)
    except InvalidVersion:
        raise ValueError(f"--versions expects LO..HI, such as 1.16..1.20, 1.18.. or ..1.20; got {text!r}") from None


def in_range(versions: Sequence[str], low: Version | None, high: Version | None) -> list[str]:
    """The versions from ``low`` to ``high``; ``high`` 1.20 takes 1.20.x too."""
    def below(version: Version) -> bool:
        return high is None or version <= high or version.release[:len(high.release)] == high.release
    return [v for v in versions if (low is None or Version(v) >= low) and below(Version(v))]


def checked_package(package: str, allow_large: bool) -> None:
    """Refuse a multi-GB package unless allowed."""
    if package in LARGE and not allow_large:
        installed = installed_version(package)
        raise BisectError(f"{package} releases other than the installed build ({installed or 'none'}) are "
                          "multi-GB downloads; pass --allow-large to bisect them anyway")


# ------------------------------------------------------------------ a run's bugs


def regression_of(bug) -> Regression | None:
    return Regression.from_dict(bug.regression) if bug.regression else None


def record_regression(store, bug, regression: Regression) -> None:
    """Keep ``regression`` with ``bug`` (its representative's note) and in its report.md."""
    from triage.db import add_note, signature_records

    record = next(r for r in signature_records(store) if r.signature == bug.representative)
    add_note(store, record, "regression", regression.to_dict())
    if bug.report and (store.run_dir / bug.report).is_file():
        path = store.run_dir / bug.report
        path.write_text(with_section(path.read_text(), report_section(regression)))


REPORT_HEADING = "## Regression range"


def report_section(regression: Regression) -> str:
    rows = [f"| {t.version} | {t.result} | {'-' if t.exit_status is None else t.exit_status} | "
            f"{t.reason.replace('|', '/')} |" for t in regression.trials]
    return "\n".join([REPORT_HEADING, "", f"{regression.text()} (by `tcfuzz bisect` or `tcfuzz replay --latest`; "
                      "each release ran the script below in its own environment).", "",
                      "| release | result | exit status | reason |", "|---|---|---|---|", *rows, "", ""])


def with_section(report: str, section: str) -> str:
    """``report`` with its regression section replaced by ``section`` (placed before the
    reproduction where it has none)."""
    start = report.find(REPORT_HEADING)
    if start >= 0:
        end = report.find("\n## ", start + len(REPORT_HEADING))
        return report[:start] + section + (report[end + 1:] if end >= 0 else "")
    anchor = report.find("## Reproduction")
    return report[:anchor] + section + report[anchor:] if anchor >= 0 else report.rstrip("\n") + "\n\n" + section


def package_choices() -> list[str]:
    return sorted(set(COMPILER_PACKAGES.values()))


def package_of(bug, package: str | None = None) -> str:
    """The package to bisect for ``bug``: ``package``, else its compiler's."""
    if package:
        return package
    if bug.compiler not in COMPILER_PACKAGES:
        raise BisectError(f"bug {bug.id} is in {bug.compiler}, whose releases tcfuzz cannot install; "
                          f"name a package with --package ({', '.join(package_choices())})")
    return COMPILER_PACKAGES[bug.compiler]


def release_prober(store, bug, package: str, *, allow_large: bool = False, on_trial=None,
                   install: Callable[[str], Path] | None = None,
                   run: Callable[[Path], tuple[int | None, str, str]] | None = None) -> Callable[[str], Trial]:
    """``probe(version)``: ``bug``'s repro under one release of ``package`` (installed by
    ``install``, run by ``run``; by default cached environments and a clean interpreter),
    reported to ``on_trial``."""
    checked_package(package, allow_large)
    script = store.run_dir / bug.repro
    text = script.read_text()
    companions = script_requirements(text)
    if package not in companions:
        raise BisectError(f"the repro script of bug {bug.id} does not import {package}, so its releases cannot "
                          f"change the result; choose another --package")
    install = install or Installer(package, tuple(companions), env_root())
    run = run or script_runner(script)
    named = re.search(r'^BACKEND = "([^"]+)"$', text, re.M)  # graph repros name theirs

    def probe(version: str) -> Trial:
        trial = try_release(version, install, run, backend=named and named.group(1),
                            crash_reproduces=bug.kind == "crash")
        if on_trial is not None:
            on_trial(trial)
        return trial
    return probe


def bisect_bug(store, bug, package: str, versions: Sequence[str], probe: Callable[[str], Trial]) -> Regression:
    """Place ``bug`` among ``versions`` of ``package`` and record the evidence with it; the
    release the run found it on anchors the search."""
    anchor = store.get_meta("versions", {}).get(package)
    regression = Regression(package, tuple(bisect_releases(versions, probe, anchor)))
    record_regression(store, bug, regression)
    return regression


def replay_newest(store, bug, package: str, newest: str, probe: Callable[[str], Trial]) -> Regression:
    """``bug``'s repro on the newest release of ``package``, added to its evidence; the
    release the run found it on counts as present (triage verified the repro there), so a
    newest release that passes reads "fixed in" it."""
    earlier = regression_of(bug)
    evidence = earlier if earlier is not None and earlier.package == package else Regression(package, ())
    found_on = store.get_meta("versions", {}).get(package)
    verified = []
    if found_on and found_on not in {t.version for t in evidence.trials} and older(found_on, newest):
        verified = [Trial(found_on, PRESENT, 1, "the run's release, where triage verified the repro")]
    regression = evidence.merged([*verified, probe(newest)])
    record_regression(store, bug, regression)
    return regression


def older(version: str, than: str) -> bool:
    """Whether ``version`` is a release before ``than`` (False for a version packaging cannot read)."""
    try:
        return Version(version) < Version(than)
    except InvalidVersion:
        return False
