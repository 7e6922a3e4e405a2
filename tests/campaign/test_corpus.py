"""The corpus: entries survive reopening and SIGKILL, minimization keeps the union of
coverage, ONNX import rejects bad files one line each and reads the rest faithfully."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import given, settings, strategies as st
from onnx import helper
from onnx.reference import ReferenceEvaluator

from corpus.corpus import Corpus
from fuzzer.graph.onnx_import import ImportRejected, graph_from_onnx
from corpus.seeds import seed_graphs
from corpus.seeds.build import write_seeds
from fuzzer.cli import main
from fuzzer.graph.export_onnx import to_onnx
from fuzzer.graph.ops import Family, all_specs
from fuzzer.generation.generator import GeneratorOptions, generate_graph
from fuzzer.graph.values import random_inputs
from tests.helpers import ROOT

GRAPHS = [generate_graph(seed, GeneratorOptions(nodes=3)) for seed in range(12)]


def test_add_is_content_addressed_and_survives_reopen(tmp_path):
    graph = GRAPHS[0]
    inputs = random_inputs(graph, 1)
    with Corpus.open(tmp_path / "c") as corpus:
        assert corpus.add(graph, frozenset({3, 1}), origin="gen", inputs=inputs)
        assert not corpus.add(graph, frozenset({9}), origin="again")
        assert corpus.add(GRAPHS[1], frozenset(), origin="seed")
        corpus.record_pick(graph.content_hash)
    with Corpus.open(tmp_path / "c") as corpus:
        entries = {e.hash: e for e in corpus.entries()}
        assert set(entries) == {graph.content_hash, GRAPHS[1].content_hash}
        entry = entries[graph.content_hash]
        assert (entry.graph, entry.fingerprint, entry.origin, entry.hits) == (graph, frozenset({1, 3}), "gen", 1)
        stored = corpus.inputs(graph.content_hash)
        assert all(np.array_equal(stored[k], v) for k, v in inputs.items())
        assert corpus.inputs(GRAPHS[1].content_hash) is None


@settings(max_examples=15, deadline=None)
@given(st.lists(st.frozensets(st.integers(0, 15), max_size=6), min_size=1, max_size=len(GRAPHS)))
def test_minimize_keeps_the_union_of_coverage(fingerprints):
    with tempfile.TemporaryDirectory() as directory, Corpus.open(Path(directory)) as corpus:
        for graph, fingerprint in zip(GRAPHS, fingerprints):
            corpus.add(graph, fingerprint, origin="test")
        union = frozenset().union(*fingerprints)
        result = corpus.minimize()
        kept = corpus.entries()
        assert frozenset().union(*(e.fingerprint for e in kept)) == union
        assert (result.coverage_before, result.coverage_after) == (len(union), len(union))
        assert result.entries_after == len(kept) == len(fingerprints) - len(result.removed)
        assert all(e.fingerprint or e.origin == "test" for e in kept)
        assert sum(1 for f in fingerprints if not f) <= len(kept)  # unmeasured entries stay
        assert len([e for e in kept if e.fingerprint]) <= len(union)  # each kept one adds coverage


def test_minimize_drops_subsumed_entries_and_their_blobs(tmp_path):
    with Corpus.open(tmp_path) as corpus:
        corpus.add(GRAPHS[0], frozenset({1, 2, 3}), origin="big", inputs=random_inputs(GRAPHS[0], 0))
        corpus.add(GRAPHS[1], frozenset({2}), origin="small", inputs=random_inputs(GRAPHS[1], 0))
        result = corpus.minimize()
        assert result.removed == (GRAPHS[1].content_hash,)
        assert [e.origin for e in corpus.entries()] == ["big"]
    blobs = {p.name for p in (tmp_path / "blobs").rglob("*") if p.is_file()}
    assert GRAPHS[0].content_hash in blobs and GRAPHS[1].content_hash not in blobs
    assert len(blobs) == 2  # the kept graph and its inputs


ADDER = """
import sys
from corpus.corpus import Corpus
from fuzzer.generation.generator import GeneratorOptions, generate_graph
corpus = Corpus.open(sys.argv[1])
for seed in range(1000):
    graph = generate_graph(seed, GeneratorOptions(nodes=3))
    if corpus.add(graph, frozenset({seed}), origin="kill-test"):
        print(graph.content_hash, flush=True)
"""


def test_no_entry_is_lost_when_the_writer_is_killed(tmp_path):
    process = subprocess.Popen([sys.executable, "-c", ADDER, str(tmp_path)], stdout=subprocess.PIPE, text=True,
                               cwd=ROOT)
    added = [process.stdout.readline().strip() for _ in range(20)]
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    with Corpus.open(tmp_path) as corpus:
        present = {e.hash for e in corpus.entries()}  # every stored entry also loads
    assert set(added) <= present


def test_import_rejects_malformed_and_unsupported_files_one_line_each(tmp_path):
    write_seeds(tmp_path)
    (tmp_path / "broken.onnx").write_bytes(b"not a model")
    shapes = {"x": [1, 1, 3], "w": [1, 8, 3], "r": [1, 8, 2], "y": [1, 1, 1, 2]}
    x, w, r, y = (helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, shape) for n, shape in shapes.items())
    body = helper.make_graph([helper.make_node("LSTM", ["x", "w", "r"], ["y"], hidden_size=2)], "g", [x, w, r], [y])
    onnx.save(helper.make_model(body, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "lstm.onnx")
    random = helper.make_graph([helper.make_node("RandomUniformLike", ["x"], ["y"])], "g", [x], [
        helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 1, 3])])
    onnx.save(helper.make_model(random, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "random.onnx")
    with Corpus.open(tmp_path / "corpus") as corpus:
        result = corpus.import_onnx_dir(tmp_path)
        # LSTM's optional outputs Y_h and Y_c, left out of the model, are named by the importer
        assert sorted(result.imported) == sorted([*(f"{name}.onnx" for name in seed_graphs()), "lstm.onnx"])
        assert len(result.rejected) == 2
        broken, random = sorted(result.rejected)
        assert broken.startswith("broken.onnx: not a valid ONNX model") and "\n" not in broken
        assert random == "random.onnx: node 0 (RandomUniformLike): operator RandomUniformLike has no tcfuzz spec"
        assert corpus.import_onnx_dir(tmp_path).duplicates == result.imported


def test_import_rejects_models_over_the_element_budget(tmp_path):
    big = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                            [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [64, 128])],
                            [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [64, 128])])
    onnx.save(helper.make_model(big, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "big.onnx")
    with Corpus.open(tmp_path / "corpus") as corpus:
        assert corpus.import_onnx_dir(tmp_path).rejected == (
            "big.onnx: Relu output size is outside the element budget",)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), opset=st.sampled_from([13, 17, 18]))
def test_import_reads_exported_graphs_faithfully(seed, opset):
    # Import folds Constant into a weight, which cannot be a graph output; control flow is drawn
    # only on purpose (GeneratorOptions.control_flow)
    importable = frozenset(spec.name for spec in all_specs() if not spec.onnx_form.not_imported
                           and spec.dtypes_at(opset) and spec.family is not Family.CONTROL and spec.name != "Constant")
    graph = generate_graph(seed, GeneratorOptions(nodes=4, opset=opset, ops=importable))
    model = to_onnx(graph, opset)
    imported = graph_from_onnx(model)
    inputs = random_inputs(graph, seed)
    expected = ReferenceEvaluator(model).run(None, inputs)
    actual = ReferenceEvaluator(to_onnx(imported, opset)).run(None, inputs)
    assert all(np.array_equal(a, b, equal_nan=True) for a, b in zip(expected, actual))


def test_import_refuses_a_shape_computed_at_run_time():
    nodes = [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Reshape", ["x", "s"], ["y"])]
    body = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2, 3])],
                             [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [2, 3])])
    with pytest.raises(ImportRejected, match="its shape input 's' is computed at run time"):
        graph_from_onnx(helper.make_model(body, opset_imports=[helper.make_opsetid("", 17)]))


def test_cli_add_list_minimize(tmp_path, capsys):
    write_seeds(tmp_path / "models")
    (tmp_path / "models" / "broken.onnx").write_bytes(b"junk")
    assert main(["corpus", "add", str(tmp_path / "c"), str(tmp_path / "models")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("rejected broken.onnx: not a valid ONNX model")
    assert out[-1] == f"imported 5, already present 0, rejected 1 of {tmp_path / 'models'}"
    assert main(["corpus", "list", str(tmp_path / "c")]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert len(listing) == 6 and "import:mlp_head.onnx" in "".join(listing) and listing[-1] == "5 entries, coverage 0"
    assert main(["corpus", "minimize", str(tmp_path / "c")]) == 0
    assert capsys.readouterr().out.splitlines() == ["before: 5 entries, coverage 0", "after:  5 entries, coverage 0"]


def test_cli_usage_errors(tmp_path, capsys):
    assert main(["corpus", "list", str(tmp_path / "none")]) == 2
    assert "is not a corpus directory" in capsys.readouterr().err
    assert main(["corpus", "add", str(tmp_path / "c"), str(tmp_path / "missing")]) == 2
    assert "is not a directory; pass a directory of .onnx files" in capsys.readouterr().err
