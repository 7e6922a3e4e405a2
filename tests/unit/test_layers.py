"""Code health: no import cycle among tcfuzz's modules, the oracles import no layer above
them, and every module fits the line budget."""

from __future__ import annotations

import ast
from pathlib import Path
from tests.helpers import ROOT

PACKAGES = ("fuzzer", "oracles", "corpus", "triage", "reports")
ABOVE_ORACLES = ("triage", "reports", "fuzzer.campaign", "fuzzer.cli")


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(path: Path, name: str, known: dict[str, Path]) -> set[str]:
    """The tcfuzz modules ``path`` imports anywhere in it (functions included), but its own packages."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets.update(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                           for alias in node.names)
    resolved = set()
    for target in targets:
        while target and target not in known:
            target = target.rpartition(".")[0]
        if target and not (name == target or name.startswith(target + ".")):  # a package's own parents run first
            resolved.add(target)
    return resolved


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(path, name, known) for name, path in known.items()}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """A cycle in ``edges`` as a list of modules (first repeated last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle():
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_oracles_import_no_layer_above_them():
    wrong = {(name, target) for name, targets in graph().items() if name.split(".")[0] == "oracles"
             for target in targets if any(target == layer or target.startswith(layer + ".") for layer in ABOVE_ORACLES)}
    assert not wrong, sorted(wrong)


LINE_BUDGET = 900  # lines per module: a file past it holds more than one thing to read at once


def test_every_module_fits_the_line_budget():
    long = {str(path): count for path in modules().values()
            if (count := len(path.read_text().splitlines())) > LINE_BUDGET}
    assert not long, f"modules over {LINE_BUDGET} lines (split them by purpose): {long}"


LAYERS = ("fuzzer.graph", "fuzzer.generation", "fuzzer.execution", "oracles", "fuzzer.store", "corpus",
          "fuzzer.campaign", "fuzzer.tir", "triage", "reports", "fuzzer.cli")  # each imports only leftwards
# The one import against the order: the float64 judge (a backend) evaluates graphs with the
# oracles' float64 reference (oracles.precision), which the oracles' probes and guards share.
KNOWN_BACKWARD = frozenset({("fuzzer.execution.backends.float64_reference", "oracles.precision")})


def layer(module: str) -> int | None:
    return max((i for i, prefix in enumerate(LAYERS) if module == prefix or module.startswith(prefix + ".")),
               default=None)


def test_stages_import_one_way():
    backward = {(name, target) for name, targets in graph().items() for target in targets
                if None not in (layer(name), layer(target)) and layer(target) > layer(name)}
    assert backward <= KNOWN_BACKWARD, sorted(backward - KNOWN_BACKWARD)


def test_reports_triage_and_tir_read_campaigns_without_the_driver():
    """Campaign configuration, lanes and snapshots live in ``fuzzer.campaign.config``: reading a
    run must not import the machinery that runs one."""
    readers = ("reports", "triage", "fuzzer.tir", "fuzzer.campaign.progress")
    wrong = {name for name, targets in graph().items() if "fuzzer.campaign.driver" in targets
             and any(name == reader or name.startswith(reader + ".") for reader in readers)}
    assert not wrong, sorted(wrong)
