"""Standalone reproduction scripts and Markdown bug reports for graph-mode findings.

A script embeds the (reduced) model and inputs in base64, imports nothing of tcfuzz, prints
the package versions, and runs the failing backend through its own ``repro_source()``
fragment in a child process (so that a segfault or a hang is observed, not suffered). It
then checks the finding:

* crash, hang, oom, error: the child dies by the same signal, times out, runs out of
  memory, or raises the same exception type with the same message class;
* mismatch kinds: the backend's outputs against a reference computed in the script — the
  ONNX reference evaluator with every float promoted to float64 (at declared precision if
  promotion fails), or another backend's fragment (an optimization-level finding compares
  with the unoptimized build) — under the tolerances the run used;
* nondeterminism: two runs of the backend differ bit for bit.

Exit status 1: the bug reproduces; 0: it does not.
"""

from __future__ import annotations

import base64
import inspect
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Mapping, Sequence

from fuzzer.store import arrays_to_npz, npz_to_arrays
from fuzzer.execution.backends import load_backend
from fuzzer.execution.backends.base import Backend
from fuzzer.graph.case import TestCase
from oracles.compare import DECLARED_TYPES, disagreements, is_float, mismatch_mask
from oracles.tolerance import DEFAULT_POLICY, Tolerance, TolerancePolicy, along_paths
from oracles.signature import VOLATILE, failure_cause, headline, normalize_message

FAILURE_KINDS = ("crash", "hang", "oom", "error")
COMPARED_KINDS = ("mismatch", "shape_mismatch", "dtype_mismatch", "opt_mismatch", "nondeterminism")
# The script computes these with onnx.reference; a type finding is checked against the declared
# types and the same reference values.
IN_SCRIPT_REFERENCES = ("ref-f64", "onnx-ref", DECLARED_TYPES)
VERSION_PACKAGES = ("numpy", "onnx", "onnxruntime", "apache-tvm", "torch")
VERIFY_TIMEOUT = 600.0
REPRODUCED_LINE = b"REPRODUCED"  # a script's last words when its bug reproduces
BLOCK_TCFUZZ = ("import runpy, sys\n"
                "for package in ('fuzzer', 'oracles', 'corpus', 'triage', 'reports'):\n"
                "    sys.modules[package] = None  # the script must not need tcfuzz\n"
                "sys.argv = sys.argv[1:]\n"
                "runpy.run_path(sys.argv[0], run_name='__main__')\n")


class ReproUnsupported(Exception):
    """A finding that a standalone script cannot reproduce (a metamorphic rewrite, a backend
    without a reproduction fragment); the message says why."""


def _kind(finding: Any) -> str:
    return getattr(finding.kind, "value", finding.kind)


def artifact_for(backend: str, case: TestCase) -> bytes:
    """What ``backend``'s fragment takes: the model, or a program its worker would build."""
    backend_class = load_backend(backend)
    if backend_class.repro_artifact is Backend.repro_artifact:
        return case.model
    instance = backend_class()
    instance.setup()
    return instance.repro_artifact(case)


def fragment(backend: str) -> str:
    try:
        return load_backend(backend).repro_source()
    except NotImplementedError as error:
        raise ReproUnsupported(str(error)) from None


def _b64(data: bytes) -> str:
    encoded = base64.b64encode(data).decode()
    return "\n".join(encoded[i:i + 100] for i in range(0, len(encoded), 100))


def print_versions(packages) -> None:
    """The Python and package versions, printed first by every reproduction script (its source is embedded)."""
    import importlib.metadata
    import platform

    found = ["python " + platform.python_version()]
    for package in packages:
        try:
            found.append(package + " " + importlib.metadata.version(package))
        except importlib.metadata.PackageNotFoundError:
            pass
    print("versions: " + ", ".join(found))


def write_repro(case: TestCase, backend: str, reference: str | None, finding: Any,
                policy: TolerancePolicy = DEFAULT_POLICY, timeout: float = 60.0,
                memory_mb: int = 4096) -> str:
    """The source of a standalone script reproducing ``finding`` of ``backend`` on ``case``.

    ``reference`` judges value findings: None, ``ref-f64`` or ``onnx-ref`` for the ONNX
    reference evaluator in the script, or a backend whose fragment the script runs.
    ``policy`` is the run's tolerance policy (widened along the graph's paths here).
    """
    kind = _kind(finding)
    if kind not in FAILURE_KINDS + COMPARED_KINDS:
        raise ReproUnsupported(f"{kind} findings compare a graph with a rewritten one; "
                               "a standalone script reproduces only single-graph findings")
    declared = case.output_types()
    paths = along_paths(case.graph, policy) if case.graph is not None else policy
    tolerances = {}
    for name, tensor_type in declared.items():
        tolerance = paths.for_output(name, tensor_type.dtype)
        tolerances[name] = None if tolerance is None else [tolerance.rtol, tolerance.atol, tolerance.statistic,
                                                           tolerance.quantile]
    uses_fragment = kind in ("mismatch", "shape_mismatch", "dtype_mismatch", "opt_mismatch") \
        and reference not in (None, *IN_SCRIPT_REFERENCES)
    details = dict(finding.details)
    expected_failure = {"error_type": failure_cause(details), "message_class": normalize_message(
        str(details.get("message", ""))), "signal": details.get("signal") or (
        failure_cause(details) if details.get("exit_signal") else "")}
    substitutions = {
        "summary": finding.summary.replace('"""', "'''").replace("\\", "/"),
        "signature": finding.signature, "backend": load_backend(backend).name, "kind": kind,
        "reference": reference if uses_fragment else "onnx.reference (float64)",
        "model": _b64(case.model), "artifact": _b64(artifact_for(backend, case)),
        "inputs": _b64(arrays_to_npz(dict(case.inputs))),
        "declared": {name: [t.dtype.value, list(t.fixed_dims)] for name, t in declared.items()},
        "tolerances": tolerances, "expected_failure": expected_failure, "timeout": timeout,
        "memory_mb": memory_mb, "packages": VERSION_PACKAGES,
        "backend_source": fragment(backend),
        "reference_source": fragment(reference) if uses_fragment else None,
        "reference_artifact": _b64(artifact_for(reference, case)) if uses_fragment else "",
        "volatile": [(pattern.pattern, placeholder) for pattern, placeholder in VOLATILE],
        "helpers": "\n\n".join(inspect.getsource(f) for f in (npz_to_arrays, headline, normalize_message, is_float,
                                                               disagreements, mismatch_mask)),
        "within": inspect.getsource(Tolerance.within), "print_versions": inspect.getsource(print_versions),
    }
    return _TEMPLATE.format(**{key: value if isinstance(value, str) and key in _VERBATIM else repr(value)
                               for key, value in substitutions.items()})


_VERBATIM = {"summary", "signature", "backend", "kind", "reference", "model", "artifact", "inputs",
             "reference_artifact", "helpers", "within", "print_versions"}

_TEMPLATE = '''"""Reproduction of a tcfuzz finding on {backend}: {summary}

Signature: {signature}
Checked against: {reference}
Run: python repro.py   (exit status 1: the bug reproduces; 0: it does not)
"""
import base64
import collections
import io
import json
import os
import pickle
import re
import resource
import subprocess
import sys
import tempfile

import numpy as np

try:
    import ml_dtypes  # noqa: F401  names bfloat16 for numpy
except ImportError:
    pass

KIND = "{kind}"
BACKEND = "{backend}"
MODEL = base64.b64decode("""
{model}
""")
ARTIFACT = base64.b64decode("""
{artifact}
""")  # what run_backend takes: the model, or the program the backend compiles
INPUTS = base64.b64decode("""
{inputs}
""")
REFERENCE_ARTIFACT = base64.b64decode("""
{reference_artifact}
""")
DECLARED = {declared}  # output name -> [dtype, shape]
TOLERANCES = {tolerances}  # output name -> [rtol, atol, statistic, quantile], None: exact
EXPECTED_FAILURE = {expected_failure}
TIMEOUT = {timeout}
MEMORY_MB = {memory_mb}
PACKAGES = {packages}
BACKEND_SOURCE = {backend_source}
REFERENCE_SOURCE = {reference_source}
_DTYPES_MEMBER = "dtypes.json"
VOLATILE = tuple((re.compile(pattern), placeholder) for pattern, placeholder in {volatile})


class Tolerance(collections.namedtuple("Tolerance", "rtol atol statistic quantile")):
{within}

{helpers}


{print_versions}

def run_fragment(source, artifact):
    namespace = {{}}
    exec(source, namespace)
    inputs = npz_to_arrays(INPUTS)
    return [np.asarray(output) for output in namespace["run_backend"](artifact, inputs)]


def child(which, result_path):
    """Run the backend (or the reference backend) and pickle what happened."""
    source, artifact = (BACKEND_SOURCE, ARTIFACT) if which == "backend" else (REFERENCE_SOURCE, REFERENCE_ARTIFACT)
    try:
        result = {{"outputs": run_fragment(source, artifact)}}
    except MemoryError as error:
        result = {{"error_type": "MemoryError", "message": str(error)}}
    except Exception as error:
        result = {{"error_type": type(error).__name__, "message": str(error)}}
    result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with open(result_path, "wb") as file:
        pickle.dump(result, file)


def in_subprocess(which):
    """What the backend does, observed from outside: a crash or a hang cannot stop this script."""
    with tempfile.TemporaryDirectory() as directory:
        result_path = os.path.join(directory, "result.pickle")
        try:
            process = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", which, result_path],
                                     timeout=TIMEOUT, stderr=subprocess.PIPE)
        except subprocess.TimeoutExpired:
            return {{"timeout": True}}
        if process.returncode < 0:
            import signal
            return {{"signal": signal.Signals(-process.returncode).name,
                    "stderr": process.stderr.decode(errors="replace")[-2000:]}}
        if not os.path.exists(result_path):
            return {{"exit_status": process.returncode, "stderr": process.stderr.decode(errors="replace")[-2000:]}}
        with open(result_path, "rb") as file:
            return pickle.load(file)


FLOATS = {{1: 11, 10: 11, 16: 11}}  # float, float16, bfloat16 -> double


def promoted(model_bytes):
    """The model with every float tensor, cast and constant in float64."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load_from_string(model_bytes)

    def promote_tensor(tensor):
        if tensor.data_type in FLOATS:
            tensor.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(tensor).astype(np.float64), tensor.name))

    graph = model.graph
    for value in list(graph.input) + list(graph.output) + list(graph.value_info):
        if value.type.tensor_type.elem_type in FLOATS:
            value.type.tensor_type.elem_type = 11
    for tensor in graph.initializer:
        promote_tensor(tensor)
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.name in ("to", "dtype") and attribute.i in FLOATS:
                attribute.i = 11
            if attribute.type == onnx.AttributeProto.TENSOR:
                promote_tensor(attribute.t)
    return model


def reference_outputs():
    """The ONNX reference evaluator's outputs: in float64 where the model allows it."""
    from onnx.reference import ReferenceEvaluator

    inputs = npz_to_arrays(INPUTS)
    try:
        wide = {{name: value.astype(np.float64) if value.dtype.kind == "f" or value.dtype.name == "bfloat16"
                else value for name, value in inputs.items()}}
        outputs = ReferenceEvaluator(promoted(MODEL)).run(None, wide)
        print("reference: onnx.reference in float64")
    except Exception as error:
        print(f"reference: onnx.reference at declared precision (float64 failed: {{type(error).__name__}})")
        outputs = ReferenceEvaluator(MODEL).run(None, inputs)
    return [np.asarray(output) for output in outputs]


def rounded(value, dtype):
    with np.errstate(over="ignore", invalid="ignore"):
        return np.asarray(value).astype(np.dtype(dtype))


def conforms(shape, declared):
    """Whether an output of ``shape`` has its declared shape (None: an extent that only the run gives)."""
    return len(shape) == len(declared) and all(d is None or d == s for s, d in zip(shape, declared))


def differences(expected, actual, compare_types=True):
    """Each output that disagrees, with why."""
    found = []
    for (name, (dtype, shape)), want, got in zip(DECLARED.items(), expected, actual):
        got = np.asarray(got)
        if compare_types and got.dtype.name != dtype:
            found.append(f"{{name}}: dtype {{got.dtype.name}}, declared {{dtype}}")
            continue
        if not conforms(got.shape, shape) or np.shape(want) != got.shape:
            found.append(f"{{name}}: shape {{list(got.shape)}}, expected {{list(np.shape(want))}} (declared {{shape}})")
            continue
        tolerance = Tolerance(*TOLERANCES[name]) if TOLERANCES[name] else None
        want = rounded(want, dtype)
        bad = mismatch_mask(want, got, tolerance)
        if np.any(bad):
            where = np.argwhere(bad)[0] if np.ndim(bad) else ()
            index = tuple(int(i) for i in where)
            found.append(f"{{name}}: {{int(np.sum(bad))}} of {{np.size(bad)}} elements differ; at {{list(index)}} "
                         f"expected {{np.asarray(want)[index]!r}}, got {{np.asarray(got)[index]!r}}")
    return found


def same_failure(result):
    """Whether the backend failed as the finding says."""
    if KIND == "hang":
        return result.get("timeout", False)
    if KIND == "oom":
        return result.get("error_type") == "MemoryError" or result.get("signal") == "SIGKILL" \\
            or result.get("peak_mb", 0) > MEMORY_MB
    if KIND == "crash":
        if EXPECTED_FAILURE["signal"]:
            return result.get("signal") == EXPECTED_FAILURE["signal"]
        return "exit_status" in result
    return result.get("error_type") == EXPECTED_FAILURE["error_type"] and \\
        normalize_message(result.get("message", "")) == EXPECTED_FAILURE["message_class"]


def describe(result):
    if result.get("timeout"):
        return f"no result after {{TIMEOUT}} s"
    if "signal" in result:
        return f"killed by {{result['signal']}}"
    if "exit_status" in result:
        return f"exited with status {{result['exit_status']}}"
    if "error_type" in result:
        return f"{{result['error_type']}}: {{headline(result['message'])[:300]}}"
    return "ran and returned " + ", ".join(f"{{o.dtype}}{{list(o.shape)}}" for o in result["outputs"])


def main():
    print_versions(PACKAGES)
    result = in_subprocess("backend")
    print(f"{{BACKEND}}: {{describe(result)}}")
    if KIND in ("crash", "hang", "oom", "error"):
        reproduced = same_failure(result)
        print(f"expected: {{KIND}} {{EXPECTED_FAILURE['error_type']}} {{EXPECTED_FAILURE['message_class']}}")
    elif "outputs" not in result:
        print("the backend failed instead of computing outputs: not the same bug")
        reproduced = False
    else:
        if KIND == "nondeterminism":
            again = in_subprocess("backend")
            expected = again.get("outputs")
            print(f"{{BACKEND}} again: {{describe(again)}}")
            TOLERANCES.update(dict.fromkeys(TOLERANCES))  # bit for bit
        elif REFERENCE_SOURCE is not None:
            reference = in_subprocess("reference")
            expected = reference.get("outputs")
            print(f"reference backend: {{describe(reference)}}")
        else:
            expected = reference_outputs()
        if expected is None:
            print("the reference failed: cannot judge")
            reproduced = False
        else:
            found = differences(expected, result["outputs"], compare_types=KIND != "nondeterminism")
            for line in found:
                print(line)
            reproduced = bool(found)
    print("REPRODUCED" if reproduced else "not reproduced")
    return 1 if reproduced else 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3])
    else:
        sys.exit(main())
'''


def run_clean(path: Path, timeout: float = VERIFY_TIMEOUT,
              python: str = sys.executable) -> subprocess.CompletedProcess | None:
    """Run the script at ``path`` under ``python`` in a clean interpreter (``python -I``, an
    empty working directory, tcfuzz unimportable); what it did (bytes), or None on timeout."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    with tempfile.TemporaryDirectory(prefix="tcfuzz-verify-") as directory:
        try:
            return subprocess.run([python, "-I", "-c", BLOCK_TCFUZZ, str(Path(path).resolve())],
                                  cwd=directory, env=environment, capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return None


def verify_repro(path: Path, timeout: float = VERIFY_TIMEOUT, crash_reproduces: bool = False,
                 python: str = sys.executable) -> bool:
    """Whether the script at ``path`` reproduces its bug when run in a clean interpreter
    (:func:`run_clean`, under ``python``: the environment of the backend it blames): it prints
    REPRODUCED and exits 1 (a script that breaks, say with an ImportError, exits 1 too, but
    says nothing), or with ``crash_reproduces`` dies by a signal, as a crash's script that
    runs the compiler in-process does."""
    result = run_clean(path, timeout, python)
    if result is None:
        return False
    reproduced = result.returncode == 1 and REPRODUCED_LINE in result.stdout.splitlines()
    return reproduced or (crash_reproduces and result.returncode < 0)


def graph_text(case: TestCase) -> str:
    """The model in ONNX's textual syntax (weights elided), else tcfuzz's own graph text."""
    import onnx
    import onnx.printer

    model = onnx.load_from_string(case.model)
    for tensor in model.graph.initializer:
        if tensor.ByteSize() > 256:
            tensor.ClearField("raw_data")
            tensor.ClearField("float_data")
    try:
        return onnx.printer.to_text(model.graph)
    except Exception:  # noqa: BLE001 - the printer rejects some models; ours never fails
        return str(case.graph) if case.graph is not None else "(no text form)"


def expected_vs_actual(finding: Any) -> list[str]:
    details = dict(finding.details)
    details.update((details.get("outputs") or {}).get(details.get("output"), {}))  # the worst output's numbers
    kind = _kind(finding)
    if kind in FAILURE_KINDS:
        cause = failure_cause(details)
        return ["- expected: the backend runs and returns the declared outputs",
                f"- actual: {kind} at stage {finding.stage}: {cause} {headline(str(details.get('message', '')))}"[:500]]
    if kind == "slowdown":
        return [f"- expected: {finding.backends[0]} runs no slower than {details.get('baseline')}, the same compiler "
                "with its optimizations off",
                f"- actual: {finding.summary}"]
    lines = [f"- expected: agreement with {details.get('compared_with', 'the reference')} within tolerance"]
    if kind in ("shape_mismatch", "dtype_mismatch"):
        lines.append(f"- actual: {finding.summary}")
    elif "output" in details:
        lines.append(f"- actual: output `{details['output']}` ({details.get('dtype', '?')}): "
                     f"{details.get('error_class', 'differs')}, max abs error {details.get('max_abs_error', '?')}, "
                     f"max rel error {details.get('max_rel_error', '?')}, max ULP {details.get('max_ulp', '?')}, "
                     f"{details.get('mismatched', '?')} elements differ")
    else:
        lines.append(f"- actual: {finding.summary}")
    return lines


TITLE_LIMIT = 120
KIND_SENTENCES = {  # what the compiler does, for an issue's description
    "crash": "crashes: its process dies{signal}",
    "hang": "hangs: it does not finish within the time limit",
    "oom": "runs out of memory",
    "error": "raises {error_type}{stage}",
    "mismatch": "computes output values that disagree with {compared_with} beyond tolerance",
    "shape_mismatch": "returns an output whose shape differs from the shape the model declares",
    "dtype_mismatch": "returns an output whose element type differs from the type the model declares",
    "opt_mismatch": "computes different output values with its optimizations on than with them off",
    "nondeterminism": "returns different output values on two identical runs",
    "slowdown": "runs the model more slowly with its optimizations on than with them off",
}
STAGE_VERBS = {"prepare": "imports", "compile": "compiles", "run": "runs"}
JUDGE_NAMES = {"ref-f64": "the ONNX reference evaluator (onnx.reference) computing in float64",
               "onnx-ref": "the ONNX reference evaluator (onnx.reference)",
               DECLARED_TYPES: "the types the model declares"}
SCOPE_SENTENCES = {
    "optimizer": "Only its optimizing configurations show it, which points at an optimization.",
    "every configuration": "It shows with and without optimizations, which points at the importer, "
                           "a kernel or the runtime rather than an optimization.",
    "one configuration": "One configuration shows it.",
}


def _one_line(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _configuration_line(name: str) -> str:
    try:
        description = load_backend(name).description
    except Exception:  # noqa: BLE001 - an unknown or uninstallable backend still gets its name
        description = ""
    return f"- `{name}`" + (f": {description}" if description else "")


def bug_report_markdown(case: TestCase, backend: str, finding: Any, script: str,
                        versions: Mapping[str, str] | None = None, culprit: Any = None,
                        reproducibility: Any = None, nodes_before: int | None = None, *,
                        configurations: Sequence[str] = ()) -> str:
    """A report that reads as an issue for the compiler's tracker: title, description, the
    configurations that show it (``configurations``; default: ``backend`` alone), environment,
    minimal graph, expected vs actual, culprit, and the repro script with how to run it."""
    import platform

    from oracles.bug_keys import backend_facts
    from triage.bugs import scope_of

    compiler = backend_facts(backend).compiler
    kind = _kind(finding)
    details = dict(finding.details)
    summary = " ".join(str(finding.summary).split())
    if compiler != backend and summary.startswith(backend + " "):  # the tcfuzz configuration's name means nothing there
        summary = summary[len(backend) + 1:]
    nodes = case.graph.nodes if case.graph is not None else None
    stage = getattr(finding.stage, "value", finding.stage)
    what = KIND_SENTENCES.get(kind, kind.replace("_", " ")).format(
        signal=f" ({details['signal']})" if details.get("signal") else "",
        error_type=failure_cause(details) or "an error",
        stage=f" while it {STAGE_VERBS[stage]} the model" if stage in STAGE_VERBS else "",
        compared_with=JUDGE_NAMES.get(str(details.get("compared_with")),
                                      f"`{details['compared_with']}`" if details.get("compared_with") else
                                      "the reference"))
    model = (f"the {len(nodes)}-operator ONNX model below ({', '.join(node.op for node in nodes)})"
             if nodes else "the ONNX model below") + f", opset {case.opset}"
    description = [f"{compiler} {what} on {model}"
                   + (f", which tcfuzz reduced from a generated model of {nodes_before} operators" if nodes_before
                      else "") + "."]
    if configurations:
        description.append(SCOPE_SENTENCES.get(scope_of(configurations), ""))
    if reproducibility is not None:
        description.append(f"It reproduced in {reproducibility.reproduced} of {reproducibility.runs} re-runs "
                           "in fresh processes.")
    if culprit is not None:
        description.append(f"Culprit: {culprit.description}.")
    lines = [f"# {compiler}: {_one_line(summary, TITLE_LIMIT)}", "",
             " ".join(filter(None, description)), "",
             "## Configurations that show it", "",
             *(_configuration_line(name) for name in configurations or (backend,)),
             *([] if configurations else ["", "(The configuration that triage reduced; others may show it too.)"]),
             "", "## Environment", ""]
    lines += [f"- {name} {version}" for name, version in sorted((versions or {}).items())] or ["- (not recorded)"]
    lines += [f"- platform: {platform.platform()} ({platform.machine()})", "", "## Minimal graph", ""]
    if nodes is not None:
        lines += [f"{len(nodes)} operator(s)" + (f", reduced from {nodes_before}" if nodes_before else "") + ".", ""]
    lines += ["```", graph_text(case), "```", "", "## Expected vs actual", "", *expected_vs_actual(finding), ""]
    lines += ["## Culprit", "",
              f"{culprit.description} (`{culprit.knob}={culprit.value}`)." if culprit is not None else
              "Not isolated to one optimization.", "",
              "## Reproduction", "",
              "Save the script below as `repro.py` and run `python repro.py`. It needs numpy, onnx and "
              f"{compiler}'s Python package, nothing of tcfuzz; the model and inputs are embedded. It prints the "
              "package versions, " + ("times both configurations on one CPU, alternating warm runs, "
                                      if _kind(finding) == "slowdown" else
                                      "runs the model in a child process (so that a crash or a hang is observed), ")
              + "prints `REPRODUCED` and exits 1 while the bug is present, and exits 0 once it is fixed.", "",
              "```python", script.rstrip(), "```", "",
              f"Found by tcfuzz (signature `{finding.signature}`).", ""]
    return "\n".join(lines)
