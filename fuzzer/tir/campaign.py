"""The TIR fuzzing loop: joint IR, schedule and pass-pipeline mutation, judged and stored.

Case ``i`` of a campaign with seed ``s`` draws from ``seed_for_test(s, i)``: a base
(a fresh seed spec, or a kept corpus entry), new IR mutation steps, and ``variants``
variants, each a mutated pipeline and a schedule seed. One isolated worker
(``fuzzer.tir.backend:TirBuild``) builds and runs the case; each variant is a *test*.
Oracles, in order:

- the worker died, hung or ran out of memory, or a build or run raised: a failure
  finding, blamed on one variant (or the reference) by re-running them one at a time;
- a variant's outputs differ from the reference (the same mutant, unscheduled, built
  by TVM's default pipeline): a mismatch, since schedules and pipelines preserve
  semantics; where numpy computed the output too (``third_opinion``), a variant that
  numpy agrees with is no finding: the reference is wrong;
- the reference of an unmutated TE seed differs from numpy: a mismatch of the default
  pipeline.

Each finding's details carry its ``root_cause`` (``tir_root_cause``): the bug it shows.

A share of cases (``relax_pipeline_share``) tests the Relax pipeline instead: the Relax
module of a generated graph, built by TVM's default llvm pipeline (the reference) and by
mutated Relax pipelines (the variants, ``fuzzer.tir.relax_pipelines``), judged and shrunk
alike.

A new finding is shrunk (pipeline back to default, schedule steps, IR mutations and
pipeline passes removed while it still reproduces) and recorded with its mutated
TVMScript, schedule trace, pipeline and inputs: ``replay`` reruns it in a worker, and
``fuzzer.tir.repro.write_repro`` writes a script that needs only TVM and numpy. A
variant whose passes changed the IR in a combination not seen before adds its
(function, pipeline) pair to the corpus, the pipeline shrunk to the passes that
changed the IR.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import platform
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import numpy as np

from fuzzer.shrink import ddmin
from fuzzer.store import Progress, RunStore
from fuzzer.execution.backends import load_backend
from fuzzer.campaign.config import Snapshot, seed_for_test
from fuzzer.graph.ir import DType
from fuzzer.execution.isolation import Limits, Worker
from fuzzer.execution.outcome import Outcome, Stage, Status
from fuzzer.tir.case import ANY_MUTATOR, TirCase, Variant, decode_json, trace_from_log
from fuzzer.tir import relax_pipelines
from fuzzer.tir.pipelines import PipelineMutation, default_pipeline
from fuzzer.tir.seeds import random_seed_spec
from oracles.bug_keys import join_subsumed_culprits
from oracles.compare import compare_arrays
from oracles.finding import Finding, FindingKind
from oracles.tolerance import DEFAULT_POLICY
from oracles.signature import MAX_LENGTH, headline, normalize_message, signature

BACKEND = "fuzzer.tir.backend:TirBuild"
CORPUS_LIMIT = 512
OUT_OF_BOUNDS_ERROR = "OutOfBoundsWrite"  # raised by fuzzer.tir.runtime (the driver imports no TVM)
OUT_OF_BOUNDS_KEY = "out-of-bounds write"
TIR_BUG_PREFIX = "target/tvm/"  # a TIR bug's cluster key: a target, the tvm compiler, then its root cause
_FAILURES = {Status.CRASH: FindingKind.CRASH, Status.HANG: FindingKind.HANG, Status.OOM: FindingKind.OOM,
             Status.ERROR: FindingKind.ERROR}
# Failures that are TVM refusing a program it documents as unsupported: never findings.
KNOWN_LIMITATIONS = (re.compile(r"Nested parallel loop is not supported"),)
_STAGES = {"schedule": Stage.PREPARE, "prepare": Stage.PREPARE, "compile": Stage.COMPILE, "run": Stage.RUN}



@contextlib.contextmanager
def timed(owner: object, attribute: str) -> Iterator[None]:
    """Add the seconds spent inside to ``owner.attribute``."""
    started = time.monotonic()
    try:
        yield
    finally:
        setattr(owner, attribute, getattr(owner, attribute) + time.monotonic() - started)

@dataclass(frozen=True)
class TirOptions:
    backend: str = BACKEND
    variants: int = 3  # variants (tests) per mutant
    max_mutations: int = 3  # new IR mutation steps per case
    max_schedule_steps: int = 6
    max_pipeline_edits: int = 4
    relax_share: float = 0.15  # seeds legalized from generated graphs
    relax_pipeline_share: float = 0.1  # cases whose variants are mutated Relax pipelines
    relax_pipeline_nodes: int = 6  # nodes of their generated graphs
    corpus_share: float = 0.3  # cases that grow a kept (function, pipeline) pair
    timeout: float = 30.0  # seconds per case
    memory_mb: int = 4096
    minimize_runs: int = 12  # re-executions spent shrinking one finding
    minimize_per_signature: int = 2  # findings shrunk (crashes blamed) per kind of bug; later ones kept as found
    minimize_share: float = 0.15  # most of the campaign's time that shrinking and blaming crashes may take


@dataclass
class TirSnapshot(Snapshot):
    """Progress and summary: ``tests`` counts variants; ``valid`` those of valid mutants."""

    cases: int = 0
    rejected: int = 0  # mutants the validity filter refused
    unsupported: int = 0  # variants TVM refused as documented limitations
    corpus: int = 0
    features: int = 0
    minimize_runs: int = 0
    triage_seconds: float = 0.0  # spent confirming, blaming and shrinking findings
    mix: dict = dataclasses.field(default_factory=dict)  # case kind -> {"cases", "tests", "seconds"}


# ---------------------------------------------------------------------------- judging


def _arrays(outputs: Mapping[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {name[len(prefix) + 1:]: value for name, value in outputs.items() if name.startswith(prefix + "/")}


def _tolerance(array: np.ndarray) -> Any:
    try:
        return DEFAULT_POLICY.for_output("", DType.from_numpy(array.dtype))
    except ValueError:
        return None


def first_difference(expected: Mapping[str, np.ndarray], actual: Mapping[str, np.ndarray]) -> dict | None:
    """Details of the first buffer where ``actual`` differs from ``expected``, or None."""
    for name, reference in expected.items():
        comparison = compare_arrays(None, reference, actual[name], _tolerance(reference))
        if not comparison.equal:
            return {"output": name, "dtype": str(reference.dtype), "error_class": comparison.error_class,
                    "kind": comparison.kind.value, "description": comparison.description,
                    "comparison": comparison.stats()}
    return None


def third_opinion(outputs: Mapping[str, np.ndarray], index: int, output: str) -> str:
    """Which side of variant ``index``'s mismatch with the reference on ``output`` numpy supports."""
    expected = _arrays(outputs, "numpy").get(output)
    if expected is None:
        return "unavailable"
    reference_wrong, variant_wrong = (first_difference({output: expected}, _arrays(outputs, side)) is not None
                                      for side in ("reference", f"variant{index}"))
    if reference_wrong:
        return "both-wrong" if variant_wrong else "reference-wrong"
    return "variant-wrong" if variant_wrong else "both-right"  # both-right: within tolerance of numpy


def is_known_limitation(failure: Mapping[str, Any]) -> bool:
    return any(pattern.search(failure.get("message", "")) for pattern in KNOWN_LIMITATIONS)


def component(report: Mapping[str, Any] | None) -> str:
    """What a variant changes: its schedule, its pipeline, both, or neither (``default``)."""
    if report is None:
        return "default"
    scheduled = bool(report["trace"]) if report["trace"] is not None else report["schedule_steps"] > 0
    parts = [name for name, changed in (("schedule", scheduled), ("pipeline", report["pipeline"] != base_of(report)))
             if changed]
    return "+".join(parts) or "default"


def culprit(report: Mapping[str, Any] | None, with_passes: bool = True) -> str:
    """What a variant does, for deduplication: its schedule primitives and (shrunk) pass edits."""
    if report is None:
        return "reference"
    primitives = sorted({step["primitive"] for step in report["trace"] or ()})
    if not with_passes:
        return ",".join(primitives)
    default_names = [p["name"] for p in base_of(report)["passes"]]
    names = [p["name"] for p in report["pipeline"]["passes"]]
    edits = sorted({f"-{n}" for n in default_names if names.count(n) < default_names.count(n)} |
                   {f"+{n}" for n in names if names.count(n) > default_names.count(n)})
    return f"{','.join(primitives)}|{','.join(edits + settings_edits(report['pipeline'], base_of(report)))}"


def base_of(report: Mapping[str, Any]) -> dict:
    """The default pipeline of the kind a variant's pipeline is (TIR or Relax)."""
    is_relax = report["pipeline"].get("kind") == relax_pipelines.KIND
    return relax_pipelines.default_relax_pipeline() if is_relax else default_pipeline()


# Names a TVMScript defines: parameters, bindings, loop variables, blocks and functions.
_DEFINITIONS = (re.compile(r"(\w+)\s*:\s*[TR]\."), re.compile(r"^\s*(\w+(?:\s*,\s*\w+)*)\s*=(?!=)", re.MULTILINE),
                re.compile(r"\bfor\s+(\w+(?:\s*,\s*\w+)*)\s+in\b"), re.compile(r"T\.s?block\(\"(\w+)\""),
                re.compile(r"\bdef\s+(\w+)"))
# What TVM appends to a name: copies (B_1), split loops (i_0), cache, rfactor, blockize and init blocks.
_SUFFIXES = r"(?:_(?:\d+|local|shared|global|rf|init|update|o|i|reindex|pad|intermediate))*"
# Names TVM makes: fused loops, cache loops (ax0), block variables (v0), Relax bindings (lv3, gv).
_MADE_NAMES = r"\w+_fused|(?:ax|v|lv|gv|cse_v)\d*"
_VECTOR_LANES = re.compile(r"\b((?:b?float|u?int)\d+)x\d+\b")  # float16x6: a vector type, whatever its lanes
KEY_MESSAGE = 120  # characters of a failure's headline that key its bug (long ones go on to print IR)


def strip_ir_names(message: str, script: str) -> str:
    """``message`` with the IR names that ``script`` defines, and those TVM derives or makes, as ``<name>``."""
    names = {name.strip() for pattern in _DEFINITIONS for found in pattern.findall(script)
             for name in found.split(",")}
    alternatives = "|".join(sorted(map(re.escape, names), key=len, reverse=True) + [_MADE_NAMES])
    return re.sub(rf"\b(?:{alternatives}){_SUFFIXES}\b", "<name>", message)


def tir_root_cause(kind: str, details: Mapping[str, Any], record: Mapping[str, Any]) -> str:
    """The bug a TIR finding shows.

    A mismatch: ``mismatch/culprit``, what the wrong side does (``culprit`` of the recorded
    variant, with its pass edits once shrunk; no edits read as none shown), ``reference``
    when the default pipeline is wrong, or ``unblamed``. A failure: ``kind/message``, the
    normalized error headline without IR names (a crash names its TVM site in the message),
    except a write outside a buffer, a miscompile keyed like a mismatch (``error/out-of-bounds write/culprit``).
    A failure's primitives are not part of its key: the same check fails under many
    schedules, and shrinking cannot always drop the steps a failing one depends on; nor is
    the raising frame, which only some failures carry.
    """
    miscompiles = kind == FindingKind.MISMATCH.value or details.get("error_type") == OUT_OF_BOUNDS_ERROR
    if miscompiles:
        if details.get("third_opinion") == "reference-wrong" or record.get("compared_with") == "numpy":
            wrong = "reference"
        elif len(record.get("variants", ())) > 1:
            wrong = "unblamed"
        else:
            wrong = culprit(record.get("variant"), with_passes=bool(record.get("shrunk"))).rstrip("|") or "default"
        return f"{kind}/{wrong}" if kind == FindingKind.MISMATCH.value else f"{kind}/{OUT_OF_BOUNDS_KEY}/{wrong}"
    message = strip_ir_names(str(details.get("message", "")), record.get("script", ""))
    headline_key = _VECTOR_LANES.sub(r"\1x<n>", normalize_message(message))[:KEY_MESSAGE]
    return f"{kind}/{headline_key}"


def tir_finding(kind: FindingKind, blamed: str, stage: Stage, summary: str, details: Mapping[str, Any],
                what: str) -> Finding:
    """A finding blamed on ``tvm-tir:<blamed>``, its signature extended by ``what`` the variant does."""
    finding = Finding(kind, (f"tvm-tir:{blamed}",), stage, summary, dict(details))
    key = f"{signature(finding)}/{what}"
    if len(key) > MAX_LENGTH:
        key = f"{key[:MAX_LENGTH - 9]}~{hashlib.sha1(key.encode()).hexdigest()[:8]}"
    return dataclasses.replace(finding, signature=key)


@dataclass
class VariantResult:
    """What one execution shows about one of its variants, for shrinking and recording."""

    outcome: Outcome
    meta: dict | None
    failure: dict | None  # error details when the variant (or the case) failed
    difference: dict | None  # first output difference from the reference
    index: int = 0  # the variant's position in the case

    def key(self) -> tuple:
        """Equal keys: the same bug reproduced."""
        if self.failure is not None:
            return ("failure", self.failure.get("status"), self.failure.get("stage"),
                    normalize_message(self.failure.get("message", "")))
        if self.difference is not None:
            return ("mismatch",)
        return ("pass",)


def crash_site(stderr: str) -> str:
    """The innermost TVM function in a crash's native backtrace, or ""."""
    frames = re.findall(r", in ((?:tvm|llvm)::[\w:~<>]+)", stderr)
    return frames[0] if frames else ""


def variant_result(outcome: Outcome, index: int) -> VariantResult:
    """How variant ``index`` of a case fared, from the worker's outcome."""
    if outcome.status is not Status.OK:
        message = outcome.message
        if site := crash_site(outcome.stderr_tail):
            message += f" in {site}"
        failure = {"status": outcome.status.value, "stage": outcome.stage.value if outcome.stage else "run",
                   "error_type": outcome.error_type, "message": message,
                   "traceback": outcome.traceback[-3000:], "stderr_tail": outcome.stderr_tail[-3000:],
                   "exit_signal": outcome.exit_signal, "seconds": outcome.seconds}
        return VariantResult(outcome, None, failure, None, index)
    meta = decode_json(outcome.outputs["meta"])
    report = meta["variants"][index] if index < len(meta["variants"]) else None
    if report is not None and report["error"] is not None:
        error = report["error"]
        failure = {"status": Status.ERROR.value, "stage": error["stage"], "error_type": error["type"],
                   "message": error["message"], "traceback": error["traceback"]}
        return VariantResult(outcome, meta, failure, None, index)
    if report is None:
        return VariantResult(outcome, meta, None, None, index)
    difference = first_difference(_arrays(outcome.outputs, "reference"), _arrays(outcome.outputs, f"variant{index}"))
    return VariantResult(outcome, meta, None, difference, index)


# ---------------------------------------------------------------------------- the campaign


class TirCampaign:
    def __init__(self, store: RunStore, seed: int, options: TirOptions) -> None:
        self.store, self.seed, self.options = store, seed, options
        backend = load_backend(options.backend)
        self.versions = {"python": platform.python_version(), **backend.versions()}
        store.set_meta("versions", self.versions)
        self.mutation = PipelineMutation(backend.catalog)
        self.base_pipeline = backend.base_pipeline()
        self.relax_mutation = relax_pipelines.relax_mutation(backend.relax_catalog)
        self.relax_base_pipeline = backend.relax_base_pipeline()
        resumed = store.progress()
        self.snapshot = TirSnapshot(tests=resumed.tests, valid=resumed.valid, **store.get_meta("tir_stats", {}))
        for stored in store.findings():
            self.snapshot.findings[stored.kind] += 1
            self.snapshot.signatures.add(stored.signature)
            self.add_likely_bug(stored.root_cause)
        self.corpus: list[dict] = store.get_meta("tir_corpus", [])
        self.features: set[str] = set(store.get_meta("tir_features", []))
        self.minimized: dict[str, int] = {}
        self.shrink_seconds = 0.0
        self.planned_seconds = 0.0  # the time budget of this run, when it has one
        self.next_index = resumed.next_index
        self.seconds_before = resumed.seconds
        self.worker = Worker(options.backend, Limits(timeout=options.timeout, memory_mb=options.memory_mb),
                             log_dir=store.run_dir / "workers" / "tir")

    # ------------------------------------------------------------ cases

    def make_case(self, index: int) -> TirCase:
        case_seed = seed_for_test(self.seed, index)
        rng = random.Random(case_seed)
        options = self.options
        if rng.random() < options.relax_pipeline_share:
            spec = {"source": relax_pipelines.SOURCE, "graph_seed": rng.getrandbits(32),
                    "nodes": options.relax_pipeline_nodes}
            variants = tuple(Variant(self.relax_mutation.mutate(self.relax_base_pipeline, rng,
                                                                rng.randint(1, options.max_pipeline_edits)))
                             for _ in range(options.variants))
            return TirCase(spec, (), variants, seed=case_seed, index=index)
        if self.corpus and rng.random() < options.corpus_share:
            base = rng.choice(self.corpus)
        else:
            base = {"seed_spec": random_seed_spec(rng, relax_share=options.relax_share), "mutations": [],
                    "pipeline": self.base_pipeline}
        steps = 0 if rng.random() < 0.25 else rng.randint(1, options.max_mutations)
        mutations = [tuple(step) for step in base["mutations"]] + \
            [(ANY_MUTATOR, rng.getrandbits(32)) for _ in range(steps)]
        variants = tuple(
            Variant(self.mutation.mutate(base["pipeline"], rng, rng.randint(0, options.max_pipeline_edits)),
                    schedule_seed=rng.getrandbits(31), schedule_steps=rng.randint(0, options.max_schedule_steps))
            for _ in range(options.variants))
        return TirCase(base["seed_spec"], tuple(mutations), variants, seed=case_seed, index=index)

    def execute(self, case: TirCase) -> Outcome:
        return self.worker.execute(case)

    # ------------------------------------------------------------ one case

    def test(self, index: int) -> None:
        case = self.make_case(index)
        started = time.monotonic()
        self.judge(case)
        share = self.snapshot.mix.setdefault(case_kind(case), {"cases": 0, "tests": 0, "seconds": 0.0})
        share["cases"] += 1
        share["tests"] += len(case.variants)
        share["seconds"] += time.monotonic() - started

    def judge(self, case: TirCase) -> None:
        """Execute ``case``, count its tests, and record (and triage) what its variants show."""
        outcome = self.execute(case)
        self.snapshot.cases += 1
        self.snapshot.tests += len(case.variants)
        if outcome.status is Status.UNSUPPORTED:
            self.snapshot.rejected += 1
            return
        self.snapshot.valid += len(case.variants)
        if outcome.status is not Status.OK:
            with timed(self.snapshot, "triage_seconds"):
                self.case_failure(case, outcome)
            return
        meta = decode_json(outcome.outputs["meta"])
        explicit = dataclasses.replace(case, mutations=tuple(tuple(s) for s in meta["mutations"]),
                                       inputs=_arrays(outcome.outputs, "argument"))
        numpy_expected = _arrays(outcome.outputs, "numpy")
        if numpy_expected and (difference := first_difference(numpy_expected, _arrays(outcome.outputs, "reference"))):
            self.record(dataclasses.replace(explicit, variants=()), VariantResult(outcome, meta, None, difference),
                        compared_with="numpy")
        for position, report in enumerate(meta["variants"]):
            found = variant_result(outcome, position)
            if found.failure is not None and is_known_limitation(found.failure):
                self.snapshot.unsupported += 1
            elif found.difference is not None and \
                    third_opinion(outcome.outputs, position, found.difference["output"]) == "reference-wrong":
                pass  # numpy sides with the variant: the reference's finding (above) is the bug
            elif found.failure is not None or found.difference is not None:
                single = dataclasses.replace(explicit, variants=(Variant(report["pipeline"], tuple(report["trace"])),))
                with timed(self.snapshot, "triage_seconds"):
                    self.variant_finding(single, found)
            self.observe(explicit, report)

    def variant_finding(self, case: TirCase, found: VariantResult) -> None:
        """Record a variant's finding; the first few of each kind are confirmed alone and shrunk."""
        report = variant_report(case, found)
        if not self.examines(f"{found.key()}/{component(report)}/{culprit(report, with_passes=False)}"):
            self.record(case, found)
            return
        with timed(self, "shrink_seconds"):  # counted against minimize_share
            confirmed = variant_result(self.execute(case), 0)
            if confirmed.key() != found.key():
                self.record(case, found, details={"reproduced": False})
            else:
                self.record(*self.shrink(case, confirmed), shrunk=True)

    def case_failure(self, case: TirCase, outcome: Outcome) -> None:
        """Blame a whole-case failure on the reference or on one variant, then record it.

        Failures that ``examines`` turns down are recorded as the whole case (every rerun
        of a crash restarts the worker). To blame one, the reference is run alone, then
        each variant alone until one fails the same way; a variant runs with a step log,
        so that its schedule is recorded as an explicit trace even when a schedule step
        killed the worker. After a crash the worker restarts before these reruns, so no
        earlier case has corrupted their heap. When no part fails alone, the case is rerun
        whole: recorded unblamed when it fails again, unreproduced when not.
        """
        found = variant_result(outcome, 0)
        if not self.examines(repr(found.key())):
            self.record(case, found)
            return
        with timed(self, "shrink_seconds"):  # counted against minimize_share
            reference = self.execute(dataclasses.replace(case, variants=()))
            reference_shows = variant_result(reference, 0).key() == found.key()
            blamed = dataclasses.replace(case, variants=()) if reference_shows else None
            log = self.worker.log_dir / "schedule-steps.log"
            for variant in case.variants if blamed is None else ():
                alone = dataclasses.replace(case, variants=(variant,), step_log=str(log))
                if variant_result(self.execute(alone), 0).key() == found.key():
                    trace = variant.trace if variant.trace is not None else trace_from_log(log.read_text())
                    blamed = dataclasses.replace(case, variants=(Variant(variant.pipeline, tuple(trace)),))
                    break
            if blamed is None:
                reproduced = variant_result(self.execute(case), 0).key() == found.key()
                self.record(case, found, details={} if reproduced else {"reproduced": False})
                return
            if reference.status is not Status.OK:  # rerun building nothing, for the script, mutations and inputs
                reference = self.execute(dataclasses.replace(blamed, variants=(), diagnose=True))
            script = None
            if reference.status is Status.OK:
                meta = decode_json(reference.outputs["meta"])
                script = meta["script"]
                blamed = dataclasses.replace(blamed, mutations=tuple(tuple(s) for s in meta["mutations"]),
                                             inputs=_arrays(reference.outputs, "argument"))
        self.record(blamed, found, script=script)

    # ------------------------------------------------------------ corpus

    def observe(self, case: TirCase, report: Mapping[str, Any]) -> None:
        """Keep the (function, pipeline) pair if its passes changed the IR in a new way."""
        if report["pipeline"].get("kind") == relax_pipelines.KIND:
            return  # the corpus grows TIR cases only
        names = [entry.split(":", 1)[1] for entry in report["changed"]]
        features = {f"pass:{name}" for name in names} | {f"pair:{a}>{b}" for a, b in zip(names, names[1:])}
        if features <= self.features:
            return
        self.features |= features
        entry = {"seed_spec": dict(case.seed_spec), "mutations": [list(step) for step in case.mutations],
                 "pipeline": self.mutation.without_idle_passes(report["pipeline"], report["changed"])}
        if len(self.corpus) >= CORPUS_LIMIT:
            self.corpus.pop(random.Random(len(self.features)).randrange(len(self.corpus)))
        self.corpus.append(entry)

    # ------------------------------------------------------------ shrinking

    def examines(self, kind: str) -> bool:
        """Whether to spend reruns on a finding of ``kind``: the first few of each kind, while
        shrinking and blaming have taken at most ``minimize_share`` of the campaign so far. The
        first of a kind may draw on the share of the campaign's whole time budget: else, early
        in a campaign, one shrink holds back the first findings of every other kind, which
        then have no script."""
        seen = self.minimized.get(kind, 0)
        if seen >= self.options.minimize_per_signature:
            return False
        elapsed = max(self.snapshot.seconds - self.seconds_before, 1.0)
        allowance = max(elapsed, self.planned_seconds) if seen == 0 else elapsed
        if self.shrink_seconds > self.options.minimize_share * allowance:
            return False
        self.minimized[kind] = seen + 1
        return True

    def shrink(self, case: TirCase, found: VariantResult) -> tuple[TirCase, VariantResult]:
        """The smallest single-variant case found that still shows the same bug, and its result.

        Tries the default pipeline, then no schedule, then delta debugging over the
        schedule steps, the IR mutations and the optional passes, then puts back each
        default pass that the bug does not need removed (so the pipeline's culprit is the
        few edits from the default that matter, not every pass delta debugging dropped),
        within ``minimize_runs`` executions; candidates that break a pass-order constraint
        are not run.
        """
        target = found.key()
        budget = [self.options.minimize_runs]
        best: list = [case, found]
        default = base_of({"pipeline": case.variants[0].pipeline})
        mutation = self.relax_mutation if default.get("kind") == relax_pipelines.KIND else self.mutation

        def reproduces(candidate: TirCase) -> bool:
            if budget[0] <= 0 or not mutation.keeps_order(case.variants[0].pipeline["passes"],
                                                          candidate.variants[0].pipeline["passes"]):
                return False
            budget[0] -= 1
            self.snapshot.minimize_runs += 1
            result = variant_result(self.execute(candidate), 0)
            if result.key() == target:
                best[:] = [candidate, result]
            return result.key() == target

        if case.variants[0].pipeline != default:
            reproduces(_with(case, pipeline=default))
        if best[0].variants[0].trace:
            reproduces(_with(best[0], trace=()))
        fields = ["trace", "mutations"]
        if best[0].variants[0].pipeline != default:  # else the pipeline does not matter
            fields.append("passes")
        for field_name in fields:
            _ddmin(field_name, reproduces, best, mutation.catalog)
        if "passes" in fields:
            _restore_defaults(reproduces, best, default["passes"])
            _restore_settings(reproduces, best, default)
        return best[0], best[1]

    # ------------------------------------------------------------ recording

    def record(self, case: TirCase, found: VariantResult, *, script: str | None = None,
               compared_with: str = "reference", shrunk: bool = False, details: Mapping[str, Any] = {}) -> None:
        """Store a finding: ``case`` has the one variant to blame, or none for the reference."""
        report = variant_report(case, found)
        outputs = found.outcome.outputs
        # A case with several variants is one whose failure no single variant reproduced.
        blamed = "case" if len(case.variants) > 1 else component(report)
        what = "unblamed" if len(case.variants) > 1 else culprit(report, with_passes=shrunk)
        if details.get("reproduced") is False:
            what += "/unreproduced"
        if found.failure is not None:
            kind = _FAILURES[Status(found.failure["status"])]
            stage = _STAGES.get(found.failure["stage"], Stage.RUN)
            details = {**{key: found.failure[key] for key in ("error_type", "message", "traceback", "stderr_tail",
                                                              "exit_signal") if found.failure.get(key)}, **details}
            summary = (f"tvm-tir:{blamed} {kind.value} during {found.failure['stage']}: "
                       f"{found.failure['error_type']}: {headline(found.failure['message'])[:200]}")
        else:
            kind, stage = FindingKind.MISMATCH, Stage.COMPARE
            opinion = ("reference-wrong" if compared_with == "numpy"
                       else third_opinion(outputs, found.index, found.difference["output"]))
            details = {**found.difference, "third_opinion": opinion, **details}
            summary = (f"tvm-tir:{blamed} differs from the {compared_with} on {details['output']} "
                       f"({details['dtype']}): {details['description']}")
        script = (found.meta or {}).get("script", script) or ""
        record = {"mode": "tir", **case.recipe(), "script": script, "variant": report,
                  "compared_with": compared_with, "shrunk": shrunk}
        details = {**details, "root_cause": tir_root_cause(kind.value, details, record)}
        finding = tir_finding(kind, blamed, stage, summary, details, what)
        graph_json = json.dumps(record, sort_keys=True, default=str)
        programs = [Outcome(f"tvm-tir:{name}", Status.OK, Stage.RUN, _arrays(outputs, prefix))
                    for name, prefix in (("reference", "reference"), ("numpy", "numpy"),
                                         ("variant", f"variant{found.index}")) if _arrays(outputs, prefix)]
        if found.failure is not None:
            programs.append(found.outcome)
        recorded = self.store.record_finding(
            test_index=case.index, seed=case.seed, finding=finding, graph_json=graph_json,
            case_hash=hashlib.sha256(graph_json.encode()).hexdigest(), model=script.encode(),
            inputs=dict(case.inputs) or _arrays(outputs, "argument"), outcomes=programs, versions=self.versions)
        if recorded is not None:
            self.snapshot.findings[kind.value] += 1
            self.snapshot.signatures.add(finding.signature)
            self.add_likely_bug(details["root_cause"])

    def add_likely_bug(self, root_cause: str) -> None:
        """Count a finding's root cause among the likely bugs, joined as the bug list joins them."""
        keys = self.snapshot.bugs | {TIR_BUG_PREFIX + root_cause}
        self.snapshot.bugs = set(join_subsumed_culprits({key: [] for key in keys}))

    # ------------------------------------------------------------ loop

    def run(self, time_budget: float | None, max_tests: int | None,
            on_progress: Callable[[TirSnapshot], None]) -> TirSnapshot:
        started = time.monotonic()
        last_report = last_stats = 0.0
        self.planned_seconds = time_budget or 0.0
        self.worker.start()
        try:
            while True:
                now = time.monotonic()
                if time_budget is not None and now - started >= time_budget:
                    self.snapshot.stopping_reason = "time budget reached"
                    break
                if max_tests is not None and self.snapshot.tests >= max_tests:
                    self.snapshot.stopping_reason = "test budget reached"
                    break
                self.test(self.next_index)
                self.next_index += 1
                self.snapshot.seconds = self.seconds_before + time.monotonic() - started
                if time.monotonic() - last_report >= 0.25:
                    last_report = time.monotonic()
                    self.checkpoint()
                    on_progress(self.snapshot)
                if time.monotonic() - last_stats >= 2.0:
                    last_stats = time.monotonic()
                    self.record_stats()
        except KeyboardInterrupt:
            self.snapshot.stopping_reason = "interrupted"
        finally:
            self.snapshot.restarts = self.worker.restarts
            self.worker.close()
        self.snapshot.seconds = self.seconds_before + time.monotonic() - started
        self.checkpoint()
        self.record_stats()
        on_progress(self.snapshot)
        return self.snapshot

    def checkpoint(self) -> None:
        snapshot = self.snapshot
        snapshot.corpus, snapshot.features = len(self.corpus), len(self.features)
        self.store.save_progress(Progress(self.next_index, snapshot.tests, snapshot.valid, snapshot.seconds))
        self.store.set_meta("tir_corpus", self.corpus)
        self.store.set_meta("tir_features", sorted(self.features))
        self.store.set_meta("tir_stats", {"cases": snapshot.cases, "rejected": snapshot.rejected,
                                          "unsupported": snapshot.unsupported,
                                          "minimize_runs": snapshot.minimize_runs, "mix": snapshot.mix})

    def record_stats(self) -> None:
        snapshot = self.snapshot
        self.store.record_stats(seconds=snapshot.seconds, tests=snapshot.tests, valid=snapshot.valid,
                                findings=sum(snapshot.findings.values()))


# ---------------------------------------------------------------------------- helpers


def case_kind(case: TirCase) -> str:
    """``relax-pipeline`` for a case whose variants are Relax pipelines, else ``tir``."""
    return relax_pipelines.SOURCE if case.seed_spec["source"] == relax_pipelines.SOURCE else "tir"


def variant_report(case: TirCase, found: VariantResult) -> dict | None:
    """The one variant of ``case`` as recorded: schedule, pipeline and the passes that changed the IR."""
    if len(case.variants) != 1:
        return None
    variant = case.variants[0]
    reports = (found.meta or {}).get("variants", [])
    changed = reports[found.index]["changed"] if found.index < len(reports) else []
    return {"trace": None if variant.trace is None else [dict(step) for step in variant.trace],
            "schedule_seed": variant.schedule_seed, "schedule_steps": variant.schedule_steps,
            "pipeline": variant.pipeline, "changed": changed}


def _with(case: TirCase, **changes: Any) -> TirCase:
    """``case`` with its single variant's ``pipeline`` or ``trace`` replaced."""
    return dataclasses.replace(case, variants=(dataclasses.replace(case.variants[0], **changes),))


def _items(case: TirCase, field_name: str) -> list:
    variant = case.variants[0]
    if field_name == "trace":
        return list(variant.trace or ())
    if field_name == "mutations":
        return list(case.mutations)
    return list(variant.pipeline["passes"])


def _with_items(case: TirCase, field_name: str, items: list) -> TirCase:
    if field_name == "trace":
        return _with(case, trace=tuple(items))
    if field_name == "mutations":
        return dataclasses.replace(case, mutations=tuple(items))
    return _with(case, pipeline={**case.variants[0].pipeline, "passes": items})


def _ddmin(field_name: str, reproduces: Callable[[TirCase], bool], best: list, catalog: Mapping[str, Any]) -> None:
    """Delta debugging (:func:`fuzzer.shrink.ddmin`) over one list of the case in ``best[0]``: drop
    chunks while the bug reproduces. Of the passes only optional ones are dropped;
    ``reproduces`` keeps ``best`` current."""
    def removable() -> list[int]:
        items = _items(best[0], field_name)
        return [i for i, item in enumerate(items) if field_name != "passes" or catalog[item["name"]].phases]

    def remove_one_of(chunks: list[list[int]]) -> bool:
        items = _items(best[0], field_name)
        return any(reproduces(_with_items(best[0], field_name, [x for i, x in enumerate(items) if i not in chunk]))
                   for chunk in map(set, chunks))

    ddmin(removable, remove_one_of)


def settings_edits(pipeline: Mapping[str, Any], default: Mapping[str, Any]) -> list[str]:
    """The PassContext settings and LLVM level of ``pipeline`` that differ from ``default``'s, as ``key=value``."""
    config, defaults = pipeline.get("config", {}), default.get("config", {})
    edits = [f"{key}={config[key]}" for key in sorted(config) if config[key] != defaults.get(key)]
    edits += [f"{key}=default" for key in sorted(defaults) if key not in config]
    if pipeline.get("llvm_opt_level", 0) != default.get("llvm_opt_level", 0):
        edits.append(f"llvm_opt_level={pipeline['llvm_opt_level']}")
    return edits


def _restore_settings(reproduces: Callable[[TirCase], bool], best: list, default: Mapping[str, Any]) -> None:
    """Put back, one at a time, each PassContext setting and the LLVM level of the ``default``
    pipeline that the bug in ``best[0]`` does not need changed."""
    pipeline = best[0].variants[0].pipeline
    keys = sorted(set(pipeline.get("config", {})) | set(default.get("config", {})))
    for key in keys:
        pipeline = best[0].variants[0].pipeline
        config = dict(pipeline["config"])
        if config.get(key) == default["config"].get(key):
            continue
        if key in default["config"]:
            config[key] = default["config"][key]
        else:
            del config[key]
        reproduces(_with(best[0], pipeline={**pipeline, "config": config}))
    pipeline = best[0].variants[0].pipeline
    if pipeline.get("llvm_opt_level", 0) != default.get("llvm_opt_level", 0):
        reproduces(_with(best[0], pipeline={**pipeline, "llvm_opt_level": default.get("llvm_opt_level", 0)}))


def _restore_defaults(reproduces: Callable[[TirCase], bool], best: list, default: list) -> None:
    """Put back the passes of the ``default`` pipeline missing from the pipeline in
    ``best[0]`` while the bug reproduces: all at once, then by delta debugging over them."""
    def missing() -> list[int]:
        names = [p["name"] for p in _items(best[0], "passes")]
        wanted = [p["name"] for p in default]
        return [i for i, name in enumerate(wanted) if names.count(name) < wanted[:i + 1].count(name)]

    def restored(indices: list[int]) -> TirCase:
        passes = _items(best[0], "passes")
        for index in indices:  # ascending: each goes after the default passes before it
            earlier = {p["name"] for p in default[:index]}
            position = max((i + 1 for i, p in enumerate(passes) if p["name"] in earlier), default=0)
            passes.insert(position, default[index])
        return _with_items(best[0], "passes", passes)

    chunk = len(missing())
    while (absent := missing()) and chunk:
        chunk = min(chunk, len(absent))
        if not any(reproduces(restored(absent[start:start + chunk])) for start in range(0, len(absent), chunk)):
            chunk //= 2


def _case_from_recipe(recipe: Mapping[str, Any], template: TirCase) -> TirCase:
    variants = tuple(Variant(v["pipeline"], None if v["trace"] is None else tuple(v["trace"]),
                             v["schedule_seed"], v["schedule_steps"]) for v in recipe["variants"])
    return dataclasses.replace(template, seed_spec=recipe["seed_spec"],
                               mutations=tuple(tuple(step) for step in recipe["mutations"]), variants=variants)


# ---------------------------------------------------------------------------- entry points


def run_tir_campaign(run_dir: Path, *, seed: int = 0, time_budget: float | None = None,
                     max_tests: int | None = None, on_progress: Callable[[TirSnapshot], None] = lambda s: None,
                     options: TirOptions = TirOptions()) -> TirSnapshot:
    """Run a new TIR campaign in ``run_dir`` until a budget is spent; the summary.

    ``max_tests`` counts variants (built and compared programs). ``on_progress`` gets a
    ``fuzzer.campaign.config.Snapshot`` (with TIR counters added) a few times a second.
    """
    with RunStore.create(run_dir, {"mode": "tir", "seed": seed, "options": dataclasses.asdict(options)}) as store:
        return TirCampaign(store, seed, options).run(time_budget, max_tests, on_progress)


def resume_tir_campaign(run_dir: Path, *, time_budget: float | None = None, max_tests: int | None = None,
                        on_progress: Callable[[TirSnapshot], None] = lambda s: None) -> TirSnapshot:
    """Continue a TIR campaign from where its store says it stopped."""
    with RunStore.open(run_dir) as store:
        options = TirOptions(**store.config["options"])
        return TirCampaign(store, store.config["seed"], options).run(time_budget, max_tests, on_progress)


def replay(run_dir: Path, finding_id: int, backend: str | None = None) -> VariantResult:
    """Rebuild and rerun a stored TIR finding in an isolated worker; how it fares now."""
    with RunStore.open(run_dir) as store:
        stored = next(f for f in store.findings() if f.id == finding_id)
        record = json.loads(store.load_graph_json(stored))
        inputs = store.load_inputs(finding_id)
        backend = backend or store.config["options"]["backend"]
    template = TirCase(record["seed_spec"], (), (), seed=record["seed"], inputs=inputs)
    case = _case_from_recipe(record, template)
    worker = Worker(backend, Limits(timeout=60.0))
    try:
        outcome = worker.execute(case)
    finally:
        worker.close()
    if record["compared_with"] == "numpy":
        return VariantResult(outcome, None, None,
                       first_difference(_arrays(outcome.outputs, "numpy"), _arrays(outcome.outputs, "reference")))
    return variant_result(outcome, 0)
