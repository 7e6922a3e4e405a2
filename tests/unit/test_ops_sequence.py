"""The sequence operators (SequenceAt, SequenceInsert, SequenceErase, ConcatFromSequence,
SplitToSequence, SequenceLength): each is generated, promoted for the float64 judge, lowered
to a chain of ONNX sequence nodes that ONNX import declines, and pinned by hand-computed cases
that single_node also checks against the ONNX reference evaluator (test_ops.py checks them on
generated graphs)."""

from __future__ import annotations

import numpy as np
import pytest

from fuzzer.generation.generator import GeneratorOptions, generate_graph
from fuzzer.graph.export_onnx import DEFAULT_OPSET, to_onnx
from fuzzer.graph.ir import DType, TensorType
from fuzzer.graph.ops import Family, all_specs, get_spec
from fuzzer.graph.rejected import ShapeError
from tests.helpers import assert_judged_in_float64, single_node

SEQUENCE_OPERATORS = ("SequenceAt", "SequenceInsert", "SequenceErase", "ConcatFromSequence", "SplitToSequence",
                      "SequenceLength")
A = np.arange(6, dtype=np.float32).reshape(2, 3)
B = A + 10
C = A + 20


def options(op: str, nodes: int = 3) -> GeneratorOptions:
    return GeneratorOptions(nodes=nodes, ops=frozenset({op}), opset=max(DEFAULT_OPSET, get_spec(op).since))


def test_sequence_operators_are_registered_in_their_family():
    assert {s.name for s in all_specs() if s.family is Family.SEQUENCE} == set(SEQUENCE_OPERATORS)
    for op in SEQUENCE_OPERATORS:
        spec = get_spec(op)
        assert spec.onnx_form.not_imported and DType.bfloat16 not in spec.dtypes
        assert spec.keeps_values == spec.exact == (op != "SequenceLength")
    assert get_spec("SequenceLength").type_only == (0,)


@pytest.mark.parametrize("op", SEQUENCE_OPERATORS)
def test_each_sequence_operator_is_generated(op):
    found = sum(any(node.op == op for node in generate_graph(seed, options(op)).nodes) for seed in range(10))
    assert found >= 8, f"{op} in {found} of 10 graphs"


@pytest.mark.parametrize("op", SEQUENCE_OPERATORS)
def test_each_sequence_operator_is_promoted_for_the_float64_judge(op):
    for seed in range(3):
        assert_judged_in_float64(generate_graph(seed, options(op)), seed)


@pytest.mark.parametrize("op", SEQUENCE_OPERATORS)
def test_each_sequence_operator_lowers_to_sequence_nodes_across_opsets(op):
    graph = generate_graph(0, options(op, nodes=1))
    for opset in (13, 21):
        kinds = {node.op_type for node in to_onnx(graph, opset).graph.node}
        assert op in kinds and kinds & {"SequenceConstruct", "SplitToSequence"}, kinds


# --- SequenceAt --------------------------------------------------------------------------


def test_sequence_at_reads_the_element_at_a_position_counted_either_way():
    scalar = np.asarray(7, np.float32)
    assert single_node("SequenceAt", [A, B, scalar], {"position": 1})[0].tolist() == B.tolist()
    assert single_node("SequenceAt", [A, B, scalar], {"position": -1})[0].tolist() == 7.0
    assert single_node("SequenceAt", [A, B, scalar], {"position": -3})[0].tolist() == A.tolist()


def test_sequence_at_refuses_a_position_outside_the_sequence_and_mixed_dtypes():
    f32, i64 = TensorType(DType.float32, (2,)), TensorType(DType.int64, (2,))
    with pytest.raises(ShapeError, match="outside"):
        get_spec("SequenceAt").infer((f32, f32), {"position": 2})
    with pytest.raises(ShapeError, match="one dtype"):
        get_spec("SequenceAt").infer((f32, i64), {"position": 0})
    with pytest.raises(ShapeError, match="other than bfloat16"):
        get_spec("SequenceAt").infer((f32.with_dtype(DType.bfloat16),), {"position": 0})


# --- SequenceInsert, SequenceErase -------------------------------------------------------


def test_sequence_insert_places_the_last_input_at_its_position():
    # [A, B] with C inserted at 0, at -1 (before the last) and, without a position, at the end.
    first = single_node("SequenceInsert", [A, B, C], {"position": 0, "axis": 0})[0]
    assert first.shape == (3, 2, 3) and [t[0, 0] for t in first] == [20, 0, 10]
    before_last = single_node("SequenceInsert", [A, B, C], {"position": -1, "axis": 0})[0]
    assert [t[0, 0] for t in before_last] == [0, 20, 10]
    appended = single_node("SequenceInsert", [A, B, C], {"axis": -1})[0]
    assert appended.shape == (2, 3, 3) and appended[0, 0].tolist() == [0, 10, 20]


def test_sequence_insert_keeps_to_positions_the_reference_evaluator_reads_as_onnx():
    # Position n (the end) is ONNX's append, which the reference evaluator wraps round to 0.
    f32 = TensorType(DType.float32, (2, 3))
    with pytest.raises(ShapeError, match="outside"):
        get_spec("SequenceInsert").infer((f32, f32, f32), {"position": 2, "axis": 0})


def test_sequence_erase_drops_the_element_at_its_position():
    middle = single_node("SequenceErase", [A, B, C], {"position": 1, "axis": 1})[0]
    assert middle.shape == (2, 2, 3) and middle[0, :, 0].tolist() == [0, 20]
    last = single_node("SequenceErase", [A, B, C], {"axis": 0})[0]  # no position: the last one
    assert [t[0, 0] for t in last] == [0, 10]
    assert [t[0, 0] for t in single_node("SequenceErase", [A, B, C], {"position": -3, "axis": 0})[0]] == [10, 20]


def test_sequence_insert_and_erase_stack_one_shape_only():
    f32 = TensorType(DType.float32, (2, 3))
    with pytest.raises(ShapeError, match="one shape"):
        get_spec("SequenceErase").infer((f32, f32, f32.with_shape((3, 2))), {"position": 0, "axis": 0})


# --- ConcatFromSequence ------------------------------------------------------------------


def test_concat_from_sequence_joins_along_an_axis_or_stacks_along_a_new_one():
    wide = np.arange(4, dtype=np.int64).reshape(2, 2)
    joined = single_node("ConcatFromSequence", [A.astype(np.int64), wide], {"axis": -1})[0]
    assert joined.tolist() == [[0, 1, 2, 0, 1], [3, 4, 5, 2, 3]]
    stacked = single_node("ConcatFromSequence", [A, B], {"axis": 2, "new_axis": 1})[0]
    assert stacked.shape == (2, 3, 2) and stacked[1, 2].tolist() == [5, 15]
    scalars = single_node("ConcatFromSequence", [np.asarray(True), np.asarray(False)], {"axis": 0, "new_axis": 1})
    assert scalars[0].tolist() == [True, False]


def test_concat_from_sequence_refuses_extents_that_differ_off_the_axis_or_when_stacking():
    x, y = TensorType(DType.float32, (2, 3)), TensorType(DType.float32, (2, 4))
    assert get_spec("ConcatFromSequence").infer((x, y), {"axis": 1})[0].shape == (2, 7)
    with pytest.raises(ShapeError, match="differ off axis"):
        get_spec("ConcatFromSequence").infer((x, y), {"axis": 0})
    with pytest.raises(ShapeError, match="one shape"):
        get_spec("ConcatFromSequence").infer((x, y), {"axis": 1, "new_axis": 1})


# --- SplitToSequence, SequenceLength -----------------------------------------------------


X = np.arange(20, dtype=np.float32).reshape(5, 4)


def test_split_to_sequence_reads_back_one_chunk():
    # A scalar split of 2 gives chunks of 2, 2 and 1 rows.
    assert single_node("SplitToSequence", [X], {"split": 2, "position": -1})[0].tolist() == [[16, 17, 18, 19]]
    assert single_node("SplitToSequence", [X], {"axis": 1, "split": (1, 3), "position": 1})[0].tolist() == \
        X[:, 1:].tolist()
    # Without a split, chunks of one; keepdims=0 drops the split axis.
    assert single_node("SplitToSequence", [X], {"axis": -1, "keepdims": 0, "position": 2})[0].tolist() == \
        X[:, 2].tolist()
    assert single_node("SplitToSequence", [X], {"position": 3})[0].shape == (1, 4)


def test_split_to_sequence_stacks_chunks_of_one_shape():
    out = single_node("SplitToSequence", [X], {"axis": 1, "split": 2, "stack_axis": 0})[0]
    np.testing.assert_array_equal(out, np.stack([X[:, :2], X[:, 2:]]))
    rows = single_node("SplitToSequence", [X], {"keepdims": 0, "stack_axis": 1})[0]
    np.testing.assert_array_equal(rows, X.T)
    with pytest.raises(ShapeError, match="one shape"):
        get_spec("SplitToSequence").infer((TensorType(DType.float32, (5, 4)),), {"split": 2, "stack_axis": 0})


def test_sequence_length_counts_the_chunks():
    assert single_node("SequenceLength", [X], {"split": 2})[0].tolist() == 3
    assert single_node("SequenceLength", [X], {"axis": 1, "split": (1, 1, 2)})[0].tolist() == 3
    assert single_node("SequenceLength", [X], {"axis": 1, "keepdims": 0})[0].tolist() == 4
    out = single_node("SequenceLength", [X.astype(np.int8)], {})[0]
    assert out.dtype == np.int64 and out.tolist() == 5


def test_split_sizes_must_cover_the_axis():
    with pytest.raises(ShapeError, match="do not add up"):
        get_spec("SequenceLength").infer((TensorType(DType.float32, (5, 4)),), {"split": (2, 2)})
