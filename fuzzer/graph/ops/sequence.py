"""Sequence operators: SequenceAt, SequenceInsert, SequenceErase, ConcatFromSequence,
SplitToSequence and SequenceLength (all since opset 11, so valid across tcfuzz's opsets).

The IR is tensor-only, so each spec is a tensor-to-tensor operator whose ONNX lowering builds
the sequence value inside: its tensor inputs become a sequence (SequenceConstruct, or the
chunks of SplitToSequence), the operator the spec names acts on it, and a sequence result
comes back as a tensor (SequenceAt of one element, or ConcatFromSequence). Positions and
split sizes are constant inputs of the ONNX nodes, held as IR attributes. ONNX import cannot
read these chains back into one node (``not_imported``).

ONNX types sequences of every tensor type but bfloat16 (the schemas date from opset 11).
The reference evaluator wraps SequenceInsert's position n (the end) round to 0, so proposals
keep insert positions in [-n, n - 1] and leave the position out to append.

Facts: every spec but SequenceLength only moves or selects input values (``keeps_values``,
``exact``). Steering stays the default (every input): SequenceAt reads one input and
SequenceErase drops one, chosen by attributes, which a static fact cannot say, so the spec
over-approximates (bounds of the output are the union of all inputs' bounds). The anchor is
always the value SequenceAt selects and never the one SequenceErase drops. SequenceLength
reads its input for its shape only (``type_only``).
"""

from __future__ import annotations

import random
from typing import Any, Mapping, Sequence

import numpy as np

from fuzzer.graph.ir import ALL_DTYPES, DType, Node, TensorType
from fuzzer.graph.ops.shape import signed_axis, split_sizes
from fuzzer.graph.ops.spec import (ANCHOR, Family, OnnxBuilder, OnnxForm, Operand, OpSpec, Proposal,
                                   normalize_axis, torch)
from fuzzer.graph.rejected import ShapeError, Unsatisfiable

SEQUENCE_DTYPES = ALL_DTYPES - {DType.bfloat16}  # ONNX sequences (opset 11) hold no bfloat16
MAX_ELEMENTS = 4  # tensors that one sequence holds at most
CHAINED = OnnxForm(not_imported="tcfuzz lowers it to a chain of sequence operators; ONNX import reads "
                                "no sequence values")


def sequence_of(op: str, types: Sequence[TensorType], least: int = 1) -> DType:
    """The common dtype of a sequence's elements; raises ShapeError unless there are at least
    ``least`` and at most MAX_ELEMENTS of one sequence dtype."""
    if not least <= len(types) <= MAX_ELEMENTS or len({t.dtype for t in types}) != 1 \
            or types[0].dtype not in SEQUENCE_DTYPES:
        raise ShapeError(f"{op} takes {least} to {MAX_ELEMENTS} tensors of one dtype other than bfloat16 "
                         f"for its sequence, got {', '.join(map(str, types)) or 'none'}")
    return types[0].dtype


def in_range(op: str, name: str, position: int, low: int, high: int) -> int:
    """``position`` normalized against [low, high] (negative ones count from the end)."""
    if not isinstance(position, int) or not low <= position <= high:
        raise ShapeError(f"{op} {name} {position!r} is outside [{low}, {high}]")
    return position


def scalar(value: int) -> np.ndarray:
    return np.asarray(value, dtype=np.int64)


def construct(builder: OnnxBuilder, inputs: Sequence[str]) -> str:
    """A sequence of ``inputs`` (SequenceConstruct); its name."""
    sequence = builder.temporary()
    builder.node("SequenceConstruct", inputs, [sequence])
    return sequence


def stacked(op: str, types: Sequence[TensorType], axis: int) -> TensorType:
    """The type of ``types`` (one shape) stacked along a new ``axis`` (ConcatFromSequence with new_axis=1)."""
    first = types[0]
    if any(t.shape != first.shape for t in types):
        raise ShapeError(f"{op} stacks tensors of one shape, got {', '.join(map(str, types))}")
    at = normalize_axis(in_range(op, "axis", axis, -first.rank - 1, first.rank), first.rank + 1)
    return first.with_shape((*first.shape[:at], len(types), *first.shape[at:]))


def stack_axis(rng: random.Random, rank: int) -> int:
    return signed_axis(rng, rng.randint(0, rank), rank + 1)


def torch_stack(xs, axis: int):
    return torch.stack(list(xs), dim=axis)


def other_shape(rng: random.Random, anchor: TensorType) -> tuple[int, ...]:
    """An element shape beside the anchor's: its own in half the draws, else the anchor's
    rank (sometimes another) with fresh extents."""
    if rng.random() < 0.5:
        return anchor.shape
    rank = anchor.rank if rng.random() < 0.8 else rng.randint(0, 4)
    return tuple(rng.randint(1, 4) for _ in range(rank))


# ---------------------------------------------------------------- SequenceAt


def propose_sequence_at(rng: random.Random, anchor: TensorType) -> Proposal:
    """1 to 4 tensors of the anchor's dtype (shapes may differ); the anchor sits at the
    position read, written as itself or counted from the end."""
    count = rng.randint(1, MAX_ELEMENTS)
    at = rng.randrange(count)
    inputs: list[Operand | None] = [Operand(anchor.with_shape(other_shape(rng, anchor))) for _ in range(count - 1)]
    inputs.insert(at, ANCHOR)
    return Proposal({"position": at - count if rng.random() < 0.4 else at}, tuple(inputs))


def infer_sequence_at(types: tuple[TensorType, ...], attrs: Mapping[str, Any]) -> tuple[TensorType, ...]:
    sequence_of("SequenceAt", types)
    return (types[in_range("SequenceAt", "position", attrs["position"], -len(types), len(types) - 1)],)


def lower_sequence_at(builder: OnnxBuilder, node: Node) -> None:
    sequence = construct(builder, node.inputs)
    builder.node("SequenceAt", [sequence, builder.constant(scalar(node.attr["position"]))], node.outputs)


# ---------------------------------------------------------------- SequenceInsert, SequenceErase


def propose_sequence_insert(rng: random.Random, anchor: TensorType) -> Proposal:
    """A sequence of 1 to 3 tensors of the anchor's type, one more inserted (the last input)
    at a position in [-n, n - 1] or at the end (no position), then all stacked."""
    count = rng.randint(1, MAX_ELEMENTS - 1)
    inputs: list[Operand | None] = [Operand(anchor) for _ in range(count)]
    inputs.insert(rng.randint(0, count), ANCHOR)
    attrs: dict[str, Any] = {"axis": stack_axis(rng, anchor.rank)}
    if rng.random() < 0.75:
        attrs["position"] = rng.randint(-count, count - 1)
    return Proposal(attrs, tuple(inputs))


def inserted(types: Sequence[Any], attrs: Mapping[str, Any]) -> list[Any]:
    """The sequence ``types[:-1]`` with ``types[-1]`` inserted at ``position`` (ONNX's rule;
    no position appends)."""
    sequence, item = list(types[:-1]), types[-1]
    position = attrs.get("position", len(sequence))
    sequence.insert(position + len(sequence) if position < 0 else position, item)
    return sequence


def infer_sequence_insert(types: tuple[TensorType, ...], attrs: Mapping[str, Any]) -> tuple[TensorType, ...]:
    sequence_of("SequenceInsert", types, least=2)
    if "position" in attrs:
        count = len(types) - 1
        in_range("SequenceInsert", "position", attrs["position"], -count, count - 1)
    return (stacked("SequenceInsert", types, attrs["axis"]),)


def torch_sequence_insert(xs, attrs):
    return torch_stack(inserted(xs, attrs), attrs["axis"])


def lower_sequence_insert(builder: OnnxBuilder, node: Node) -> None:
    sequence, longer = construct(builder, node.inputs[:-1]), builder.temporary()
    position = [builder.constant(scalar(node.attr["position"]))] if "position" in node.attr else []
    builder.node("SequenceInsert", [sequence, node.inputs[-1], *position], [longer])
    builder.node("ConcatFromSequence", [longer], node.outputs, axis=node.attr["axis"], new_axis=1)


def propose_sequence_erase(rng: random.Random, anchor: TensorType) -> Proposal:
    """2 to 4 tensors of the anchor's type, one erased (another than the anchor; the last
    where no position is given), the rest stacked."""
    count = rng.randint(2, MAX_ELEMENTS)
    erased = rng.randrange(count)
    attrs: dict[str, Any] = {"axis": stack_axis(rng, anchor.rank)}
    if erased != count - 1 or rng.random() < 0.6:
        attrs["position"] = erased - count if rng.random() < 0.4 else erased
    inputs: list[Operand | None] = [Operand(anchor) for _ in range(count - 1)]
    inputs.insert(rng.choice([k for k in range(count) if k != erased]), ANCHOR)
    return Proposal(attrs, tuple(inputs))


def erased(types: Sequence[Any], attrs: Mapping[str, Any]) -> list[Any]:
    sequence = list(types)
    del sequence[attrs.get("position", -1)]
    return sequence


def infer_sequence_erase(types: tuple[TensorType, ...], attrs: Mapping[str, Any]) -> tuple[TensorType, ...]:
    sequence_of("SequenceErase", types, least=2)
    in_range("SequenceErase", "position", attrs.get("position", -1), -len(types), len(types) - 1)
    return (stacked("SequenceErase", erased(types, attrs), attrs["axis"]),)


def torch_sequence_erase(xs, attrs):
    return torch_stack(erased(xs, attrs), attrs["axis"])


def lower_sequence_erase(builder: OnnxBuilder, node: Node) -> None:
    sequence, shorter = construct(builder, node.inputs), builder.temporary()
    position = [builder.constant(scalar(node.attr["position"]))] if "position" in node.attr else []
    builder.node("SequenceErase", [sequence, *position], [shorter])
    builder.node("ConcatFromSequence", [shorter], node.outputs, axis=node.attr["axis"], new_axis=1)


# ---------------------------------------------------------------- ConcatFromSequence


def propose_concat_from_sequence(rng: random.Random, anchor: TensorType) -> Proposal:
    """1 to 4 tensors of the anchor's type joined along an existing axis (their extents there
    may differ) or stacked along a new one (new_axis=1: one shape). A scalar anchor stacks."""
    count = rng.randint(1, MAX_ELEMENTS)
    new_axis = 1 if anchor.rank == 0 or rng.random() < 0.4 else 0
    if new_axis:
        attrs: dict[str, Any] = {"axis": stack_axis(rng, anchor.rank), "new_axis": 1}
        others = [Operand(anchor) for _ in range(count - 1)]
    else:
        axis = rng.randrange(anchor.rank)
        attrs = {"axis": signed_axis(rng, axis, anchor.rank)}
        if rng.random() < 0.5:
            attrs["new_axis"] = 0
        others = []
        for _ in range(count - 1):
            shape = list(anchor.shape)
            shape[axis] = rng.randint(1, 4)
            others.append(Operand(anchor.with_shape(shape)))
    inputs: list[Operand | None] = [ANCHOR, *others]
    rng.shuffle(inputs)
    return Proposal(attrs, tuple(inputs))


def infer_concat_from_sequence(types: tuple[TensorType, ...], attrs: Mapping[str, Any]) -> tuple[TensorType, ...]:
    dtype = sequence_of("ConcatFromSequence", types)
    if attrs.get("new_axis", 0) not in (0, 1):
        raise ShapeError(f"ConcatFromSequence new_axis is 0 or 1, got {attrs['new_axis']!r}")
    if attrs.get("new_axis", 0):
        return (stacked("ConcatFromSequence", types, attrs["axis"]),)
    first = types[0]
    axis = normalize_axis(in_range("ConcatFromSequence", "axis", attrs["axis"], -first.rank, first.rank - 1),
                          first.rank)
    if first.rank == 0 or any(t.rank != first.rank or any(a != b for i, (a, b) in enumerate(zip(t.shape, first.shape))
                                                          if i != axis) for t in types):
        raise ShapeError(f"ConcatFromSequence inputs {', '.join(map(str, types))} differ off axis {axis}")
    shape = list(first.shape)
    shape[axis] = sum(t.shape[axis] for t in types)
    return (TensorType(dtype, tuple(shape)),)


def torch_concat_from_sequence(xs, attrs):
    if attrs.get("new_axis", 0):
        return torch_stack(xs, attrs["axis"])
    return torch.cat(list(xs), dim=attrs["axis"])


def lower_concat_from_sequence(builder: OnnxBuilder, node: Node) -> None:
    builder.node("ConcatFromSequence", [construct(builder, node.inputs)], node.outputs, **node.attr)


# ---------------------------------------------------------------- SplitToSequence, SequenceLength


def propose_split_attrs(rng: random.Random, anchor: TensorType) -> dict[str, Any]:
    """SplitToSequence's ``axis``, its ``split`` (a scalar chunk size, sizes, or none: chunks
    of one) and ``keepdims`` (read without a split only)."""
    if not anchor.numel:
        raise Unsatisfiable(f"SplitToSequence splits a non-empty tensor, not {anchor}")
    axis = rng.randrange(anchor.rank)
    dim = anchor.shape[axis]
    attrs: dict[str, Any] = {} if axis == 0 and rng.random() < 0.3 else {"axis": signed_axis(rng, axis, anchor.rank)}
    choice = rng.random()
    if choice < 0.4:
        attrs["split"] = rng.randint(1, dim)
    elif choice < 0.7:
        cuts = sorted(rng.sample(range(1, dim), rng.randint(0, min(dim - 1, 3))))
        attrs["split"] = tuple(b - a for a, b in zip([0, *cuts], [*cuts, dim]))
    elif rng.random() < 0.7:
        attrs["keepdims"] = rng.randint(0, 1)
    return attrs


def chunk_types(op: str, x: TensorType, attrs: Mapping[str, Any]) -> list[TensorType]:
    """The types of SplitToSequence's chunks of ``x``."""
    if x.dtype not in SEQUENCE_DTYPES or x.rank == 0:
        raise ShapeError(f"{op} splits a tensor of rank 1 or more and a sequence dtype, got {x}")
    axis = normalize_axis(attrs.get("axis", 0), x.rank)
    split = attrs.get("split")
    if attrs.get("keepdims", 1) not in (0, 1):
        raise ShapeError(f"{op} keepdims is 0 or 1, got {attrs['keepdims']!r}")
    if split is None:
        sizes = [1] * x.shape[axis]
    elif isinstance(split, int):
        if not 1 <= split:
            raise ShapeError(f"{op} split {split} is not a positive chunk size")
        whole, rest = divmod(x.shape[axis], split)
        sizes = [split] * whole + ([rest] if rest else [])
    else:
        sizes = split_sizes(x.shape, {"axis": axis, "split": tuple(split)})
    if not sizes or min(sizes) < 1:
        raise ShapeError(f"{op} split {split!r} leaves an empty chunk of {x} along axis {axis}")
    if split is None and not attrs.get("keepdims", 1):
        return [x.with_shape(x.shape[:axis] + x.shape[axis + 1:]) for _ in sizes]
    return [x.with_shape((*x.shape[:axis], size, *x.shape[axis + 1:])) for size in sizes]


def torch_chunks(x, attrs):
    axis = attrs.get("axis", 0)
    split = attrs.get("split")
    if split is None:
        return list(torch.unbind(x, dim=axis)) if not attrs.get("keepdims", 1) else list(torch.split(x, 1, dim=axis))
    return list(torch.split(x, split if isinstance(split, int) else list(split), dim=axis))


def split_to_sequence(builder: OnnxBuilder, x: str, attrs: Mapping[str, Any]) -> str:
    """SplitToSequence of ``x`` as ``attrs`` say; the sequence's name."""
    sequence = builder.temporary()
    split = attrs.get("split")
    inputs = [x] if split is None else [x, builder.constant(np.asarray(split, dtype=np.int64))]
    builder.node("SplitToSequence", inputs, [sequence], **{k: v for k, v in attrs.items() if k in ("axis", "keepdims")})
    return sequence


def propose_split_to_sequence(rng: random.Random, anchor: TensorType) -> Proposal:
    """Split attributes, then either one chunk read back (``position``) or, where the chunks
    share a shape, all of them stacked along a new ``stack_axis``."""
    attrs = propose_split_attrs(rng, anchor)
    chunks = chunk_types("SplitToSequence", anchor, attrs)
    if len({t.shape for t in chunks}) == 1 and rng.random() < 0.5:
        attrs["stack_axis"] = stack_axis(rng, chunks[0].rank)
    else:
        at = rng.randrange(len(chunks))
        attrs["position"] = at - len(chunks) if rng.random() < 0.4 else at
    return Proposal(attrs)


def infer_split_to_sequence(types: tuple[TensorType, ...], attrs: Mapping[str, Any]) -> tuple[TensorType, ...]:
    if len(types) != 1:
        raise ShapeError(f"SplitToSequence takes one tensor, got {types}")
    chunks = chunk_types("SplitToSequence", types[0], attrs)
    if ("position" in attrs) == ("stack_axis" in attrs):
        raise ShapeError("SplitToSequence reads back one chunk (position) or stacks them all (stack_axis), "
                         f"got {dict(attrs)}")
    if "position" in attrs:
        return (chunks[in_range("SplitToSequence", "position", attrs["position"], -len(chunks), len(chunks) - 1)],)
    return (stacked("SplitToSequence", chunks, attrs["stack_axis"]),)


def torch_split_to_sequence(xs, attrs):
    chunks = torch_chunks(xs[0], attrs)
    if "position" in attrs:
        return chunks[attrs["position"]]
    return torch_stack(chunks, attrs["stack_axis"])


def lower_split_to_sequence(builder: OnnxBuilder, node: Node) -> None:
    sequence = split_to_sequence(builder, node.inputs[0], node.attr)
    if "position" in node.attr:
        builder.node("SequenceAt", [sequence, builder.constant(scalar(node.attr["position"]))], node.outputs)
    else:
        builder.node("ConcatFromSequence", [sequence], node.outputs, axis=node.attr["stack_axis"], new_axis=1)


def propose_sequence_length(rng: random.Random, anchor: TensorType) -> Proposal:
    return Proposal(propose_split_attrs(rng, anchor))


def infer_sequence_length(types: tuple[TensorType, ...], attrs: Mapping[str, Any]) -> tuple[TensorType, ...]:
    if len(types) != 1:
        raise ShapeError(f"SequenceLength takes the one tensor it splits, got {types}")
    chunk_types("SequenceLength", types[0], attrs)
    return (TensorType(DType.int64, ()),)


def torch_sequence_length(xs, attrs):
    return torch.tensor(len(torch_chunks(xs[0], attrs)), dtype=torch.int64, device=xs[0].device)


def lower_sequence_length(builder: OnnxBuilder, node: Node) -> None:
    builder.node("SequenceLength", [split_to_sequence(builder, node.inputs[0], node.attr)], node.outputs)


SPECS = [
    OpSpec("SequenceAt", Family.SEQUENCE, SEQUENCE_DTYPES, infer_sequence_at, lambda xs, a: xs[a["position"]],
           propose_sequence_at, onnx=lower_sequence_at, keeps_values=True, exact=True, onnx_form=CHAINED),
    OpSpec("SequenceInsert", Family.SEQUENCE, SEQUENCE_DTYPES, infer_sequence_insert, torch_sequence_insert,
           propose_sequence_insert, onnx=lower_sequence_insert, keeps_values=True, exact=True, onnx_form=CHAINED),
    OpSpec("SequenceErase", Family.SEQUENCE, SEQUENCE_DTYPES, infer_sequence_erase, torch_sequence_erase,
           propose_sequence_erase, onnx=lower_sequence_erase, keeps_values=True, exact=True, onnx_form=CHAINED),
    OpSpec("ConcatFromSequence", Family.SEQUENCE, SEQUENCE_DTYPES, infer_concat_from_sequence,
           torch_concat_from_sequence, propose_concat_from_sequence, onnx=lower_concat_from_sequence,
           keeps_values=True, exact=True, onnx_form=CHAINED),
    OpSpec("SplitToSequence", Family.SEQUENCE, SEQUENCE_DTYPES, infer_split_to_sequence, torch_split_to_sequence,
           propose_split_to_sequence, ranks=(1, 4), onnx=lower_split_to_sequence, keeps_values=True, exact=True,
           onnx_form=CHAINED),
    # The number of chunks: the input is read for its shape only.
    OpSpec("SequenceLength", Family.SEQUENCE, SEQUENCE_DTYPES, infer_sequence_length, torch_sequence_length,
           propose_sequence_length, ranks=(1, 4), onnx=lower_sequence_length, type_only=(0,), onnx_form=CHAINED),
]
