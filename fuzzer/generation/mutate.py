"""Validity-preserving mutation of graphs, for coverage-guided fuzzing from a corpus.

Each mutator takes a graph and returns a candidate; every candidate then passes one gate
(:func:`admit`): the IR's own validation (types re-inferred from the operator specs along
the whole graph), the generator's element and FLOP budgets, and each node's accepted
dtypes and ranks at the chosen opset. A candidate that fails is discarded and another is
tried. New nodes and their operands come from :class:`fuzzer.generation.generator.GraphBuilder`, so a
mutant's new parts are exactly what the generator would build. The same graph, rng state,
donors and options always give the same mutant.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
import re
from typing import Callable, Mapping, Sequence

import onnx

from fuzzer.graph.export_onnx import to_onnx
from fuzzer.generation.generator import (GeneratorOptions, GraphBuilder, add_control_flow, estimated_flops,
                                         with_symbolic_batch)
from fuzzer.graph.assemble import assemble
from fuzzer.graph.ir import ALL_DTYPES, FLOATS, INTS, DType, Graph, Input, Node
from fuzzer.graph.ops import all_specs, get_spec
from fuzzer.graph.ops.spec import Family
from fuzzer.graph.rejected import Rejected, Unsatisfiable

ATTEMPTS_PER_MUTATOR = 6
MAX_SPLICE_NODES = 4
DTYPES_IN_ORDER = sorted(ALL_DTYPES, key=lambda d: d.value)  # sets of dtypes iterate in a per-process order
# Casts defined for every value of the source dtype: not float -> int, and no narrowing of ints.
SAFE_CAST_TARGETS = {
    **{d: [t for t in DTYPES_IN_ORDER if t.is_float and t is not d] for d in FLOATS},
    **{d: [t for t in DTYPES_IN_ORDER if t.is_float or t is DType.int64 and d is not DType.int64] for d in INTS},
    DType.bool: [t for t in DTYPES_IN_ORDER if t is not DType.bool],
}

Mutator = Callable[[Graph, random.Random, GeneratorOptions, Sequence[Graph]], Graph]


# ---------------------------------------------------------------- graph surgery helpers


def first_free_number(graph: Graph) -> int:
    """A counter start above every trailing number in the graph's names, so that names the
    generator makes (``x7``, ``w8``, ``v9``) never collide with existing ones."""
    numbers = [int(m.group(1)) for name in graph.types if (m := re.search(r"(\d+)$", name))]
    return max(numbers, default=-1) + 1


def readable_before(graph: Graph, index: int) -> list[str]:
    """Values a node at position ``index`` may read, in definition order."""
    names = [i.name for i in graph.inputs] + [w.name for w in graph.weights]
    return names + [name for node in graph.nodes[:index] for name in node.outputs]


def builder_at(graph: Graph, index: int, rng: random.Random, options: GeneratorOptions,
               values: Sequence[str] | None = None) -> GraphBuilder:
    """A GraphBuilder that sees the graph's inputs and weights and, as candidates for new
    nodes, ``values`` (default: everything readable before position ``index``)."""
    visible = readable_before(graph, index) if values is None else values
    driven = {i.name for i in graph.inputs}
    for node in graph.nodes:
        if driven.intersection(node.inputs):
            driven.update(node.outputs)
    return GraphBuilder(rng, options, inputs=list(graph.inputs), weights=list(graph.weights),
                        values={name: graph.types[name] for name in visible}, driven=driven,
                        names=itertools.count(first_free_number(graph)))


def rename_inputs(node: Node, renaming: dict[str, str]) -> Node:
    return dataclasses.replace(node, inputs=tuple(renaming.get(n, n) for n in node.inputs))


def admit(graph: Graph, parent: Graph, options: GeneratorOptions) -> None:
    """Raise Unsatisfiable unless every node suits ``options`` (opset, dtypes and ranks its
    spec accepts, avoided pairs), nodes whose spec has ``fixed_input_types`` keep their input
    types from ``parent``, the graph keeps to the element and FLOP budgets, and ONNX shape inference
    accepts its export."""
    types, flops = graph.types, 0
    parent_inputs = {(n.op, n.outputs): tuple(parent.types[i] for i in n.inputs) for n in parent.nodes}
    for node in graph.nodes:
        spec = get_spec(node.op)
        input_types = tuple(types[n] for n in node.inputs)
        accepted = [t for t in input_types if spec.accepts(t, options.opset)
                    and (spec.name, t.dtype.value) not in options.avoid]
        if spec.since > options.opset or (input_types and not accepted):
            raise Unsatisfiable(f"{node.op} does not accept {', '.join(map(str, input_types))} "
                                f"at opset {options.opset}")
        if spec.fixed_input_types and parent_inputs.get((node.op, node.outputs), input_types) != input_types:
            raise Unsatisfiable(f"{node.op} was proposed for its former input types")
        if any(not 1 <= t.numel <= options.max_elements for t in node.output_types):
            raise Unsatisfiable(f"{node.op} output size is outside the element budget")
        flops += estimated_flops(spec, input_types, node.output_types)
    if flops > options.max_flops:
        raise Unsatisfiable(f"graph needs about {flops} FLOPs, over the budget of {options.max_flops}")
    try:  # ONNX's own rules too: a mutant may reach states that no spec's propose makes
        onnx.shape_inference.infer_shapes(to_onnx(graph, options.opset), check_type=True, strict_mode=True)
    except onnx.shape_inference.InferenceError as error:
        raise Unsatisfiable(f"ONNX shape inference rejects the mutant: {str(error).splitlines()[0]}") from None


def weight_names(graph: Graph) -> set[str]:
    """Values no edge may be moved away from: a weight may hold values its reader needs
    (indices in range, non-zero divisors, positive variances)."""
    return {w.name for w in graph.weights}


def place(graph: Graph, node: Node) -> int:
    """The first position at which every input of ``node`` is defined."""
    producer = {name: k for k, n in enumerate(graph.nodes) for name in n.outputs}
    return 1 + max((producer[name] for name in node.inputs if name in producer), default=-1)


# ---------------------------------------------------------------- mutators


def insert_node(graph: Graph, rng: random.Random, options: GeneratorOptions, donors: Sequence[Graph]) -> Graph:
    """A generator node: backward (computing a graph input) or forward at a random position;
    a forward node whose output has its anchor's type may be threaded into a later edge."""
    spec = rng.choice(options.specs())
    if graph.inputs and rng.random() < options.backward_share:
        builder = builder_at(graph, len(graph.nodes), rng, options)
        builder.nodes = list(graph.nodes)
        builder.add_node(spec, backward=True)
        return assemble(builder.inputs, builder.weights, builder.nodes, graph.outputs)
    builder = builder_at(graph, rng.randint(0, len(graph.nodes)), rng, options)
    builder.add_node(spec)
    new = builder.nodes[-1]  # after the nodes that derive its operands, if any
    position = max(place(graph, node) for node in builder.nodes)
    nodes = [*graph.nodes[:position], *builder.nodes, *graph.nodes[position:]]
    position += len(builder.nodes) - 1
    threads = [(k, slot) for k in range(position + 1, len(nodes)) for slot, name in enumerate(nodes[k].inputs)
               if name in new.inputs and name not in weight_names(graph) and graph.types[name] == new.output_types[0]]
    outputs = [*graph.outputs, *new.outputs]
    if threads and rng.random() < 0.5:
        k, slot = rng.choice(threads)
        inputs = list(nodes[k].inputs)
        inputs[slot] = new.outputs[0]
        nodes[k] = dataclasses.replace(nodes[k], inputs=tuple(inputs))
        outputs = [*graph.outputs, *new.outputs[1:]]
    return assemble(builder.inputs, builder.weights, nodes, outputs)


def delete_node(graph: Graph, rng: random.Random, options: GeneratorOptions, donors: Sequence[Graph]) -> Graph:
    """Remove a node; its readers take one of its inputs of the same type, another earlier
    value of that type, or a new graph input."""
    if len(graph.nodes) < 2:
        raise Unsatisfiable("the only node cannot be deleted")
    index = rng.randrange(len(graph.nodes))
    node, types = graph.nodes[index], graph.types
    earlier = readable_before(graph, index)
    inputs, renaming = list(graph.inputs), {}
    start = first_free_number(graph)
    for offset, (name, tensor_type) in enumerate(zip(node.outputs, node.output_types)):
        bypass = [n for n in node.inputs if n and types[n] == tensor_type]
        same = bypass or [n for n in earlier if types[n] == tensor_type]
        if same:
            renaming[name] = rng.choice(same)
        else:
            inputs.append(Input(f"x{start + offset}", tensor_type))
            renaming[name] = inputs[-1].name
    nodes = [rename_inputs(n, renaming) for k, n in enumerate(graph.nodes) if k != index]
    outputs = [o for o in graph.outputs if o not in renaming]
    if not outputs:
        raise Unsatisfiable(f"deleting {node.op} leaves no graph output")
    return assemble(inputs, graph.weights, nodes, outputs)


def repropose(graph: Graph, rng: random.Random, options: GeneratorOptions, index: int, op: str,
              *, new_attributes: bool = False) -> Graph:
    """Node ``index`` rebuilt as ``op`` by the generator, anchored on one of its inputs and
    reusing its inputs for operands of their types; readers see the new outputs under the
    old names (surplus new outputs become graph outputs, lost old ones must be unread).
    With ``new_attributes``, a proposal that keeps the old attributes is refused."""
    old = graph.nodes[index]
    anchors = list(dict.fromkeys(n for n in old.inputs if n))
    if not anchors:
        raise Unsatisfiable(f"{old.op} has no input to anchor a new operator on")
    builder = builder_at(graph, index, rng, dataclasses.replace(options, reuse_share=1.0), values=anchors)
    builder.add_node(get_spec(op))
    new = builder.nodes[-1]  # after the nodes that derive its operands, if any
    if new_attributes and new.attrs == old.attrs:
        raise Unsatisfiable(f"the proposal kept the attributes of {old.op}")
    kept = min(len(old.outputs), len(new.outputs))
    lost = old.outputs[kept:]
    if any(graph.consumers[name] for name in lost):
        raise Unsatisfiable(f"{op} has fewer outputs than the {old.op} it replaces")
    new = dataclasses.replace(new, outputs=old.outputs[:kept] + new.outputs[kept:])
    nodes = [*graph.nodes[:index], *builder.nodes[:-1], new, *graph.nodes[index + 1:]]
    outputs = [o for o in graph.outputs if o not in lost] + list(new.outputs[kept:])
    if not outputs:
        raise Unsatisfiable(f"{op} drops every graph output")
    return assemble(builder.inputs, builder.weights, nodes, outputs)


def replace_operator(graph: Graph, rng: random.Random, options: GeneratorOptions, donors: Sequence[Graph]) -> Graph:
    """Another operator in a node's place, on the node's inputs where their types fit."""
    index = rng.randrange(len(graph.nodes))
    others = [s.name for s in options.specs() if s.name != graph.nodes[index].op]
    return repropose(graph, rng, options, index, rng.choice(others))


def change_attributes(graph: Graph, rng: random.Random, options: GeneratorOptions, donors: Sequence[Graph]) -> Graph:
    """New attributes for a node from its spec's ``propose`` (operands it needs anew, such
    as a Conv weight of another kernel size, are new weights or inputs)."""
    index = rng.randrange(len(graph.nodes))
    return repropose(graph, rng, options, index, graph.nodes[index].op, new_attributes=True)


def retype_input(graph: Graph, rng: random.Random, options: GeneratorOptions, donors: Sequence[Graph]) -> Graph:
    """A graph input gets another dtype, one dim resized, or a unit axis added or removed;
    the change propagates through every reader's shape inference."""
    if not graph.inputs:
        raise Unsatisfiable("the graph has no inputs to re-type")
    position = rng.randrange(len(graph.inputs))
    old = graph.inputs[position].type
    choice = rng.random()
    if choice < 0.4:
        new = old.with_dtype(rng.choice([d for d in DTYPES_IN_ORDER if d in options.dtypes and d is not old.dtype]
                                        or [old.dtype]))
    elif choice < 0.8 and old.rank:
        shape = list(old.shape)
        shape[rng.randrange(old.rank)] = rng.randint(1, options.max_dim)
        new = old.with_shape(shape)
    elif old.rank < options.max_rank and (not old.rank or rng.random() < 0.5):
        shape = list(old.shape)
        shape.insert(rng.randint(0, old.rank), 1)
        new = old.with_shape(shape)
    else:
        units = [axis for axis, d in enumerate(old.shape) if d == 1]
        if not units:
            raise Unsatisfiable(f"input type {old} has no unit axis to remove")
        new = old.with_shape(d for axis, d in enumerate(old.shape) if axis != rng.choice(units))
    inputs = list(graph.inputs)
    inputs[position] = Input(inputs[position].name, new)
    return assemble(inputs, graph.weights, graph.nodes, graph.outputs)


def insert_cast(graph: Graph, rng: random.Random, options: GeneratorOptions, donors: Sequence[Graph]) -> Graph:
    """A Cast on an edge to another dtype (only casts defined for every source value); half
    the time a second Cast restores the type, otherwise the new dtype propagates."""
    edges = [(k, slot) for k, node in enumerate(graph.nodes) for slot, name in enumerate(node.inputs) if name]
    if not edges:
        raise Unsatisfiable("the graph has no edge to put a Cast on")
    k, slot = rng.choice(edges)
    node = graph.nodes[k]
    source = node.inputs[slot]
    source_type = graph.types[source]
    start = first_free_number(graph)
    target = rng.choice(SAFE_CAST_TARGETS[source_type.dtype])
    casts = [Node("Cast", (source,), (f"v{start}",), (source_type.with_dtype(target),), (("to", target.value),))]
    if rng.random() < 0.5:
        casts.append(Node("Cast", (f"v{start}",), (f"v{start + 1}",), (source_type,),
                          (("to", source_type.dtype.value),)))
    inputs = list(node.inputs)
    inputs[slot] = casts[-1].outputs[0]
    nodes = [*graph.nodes[:k], *casts, dataclasses.replace(node, inputs=tuple(inputs)), *graph.nodes[k + 1:]]
    return assemble(graph.inputs, graph.weights, nodes, graph.outputs)


def rewire_edge(graph: Graph, rng: random.Random, options: GeneratorOptions, donors: Sequence[Graph]) -> Graph:
    """A node reads another earlier value of the same type; a value left unread becomes a
    graph output, so no computation is lost. Edges from weights stay."""
    types, weights = graph.types, weight_names(graph)
    choices = []
    for k, node in enumerate(graph.nodes):
        earlier = readable_before(graph, k)
        for slot, name in enumerate(node.inputs):
            if not name or name in weights:
                continue
            alternatives = [n for n in earlier if n != name and types[n] == types[name]]
            if alternatives:
                choices.append((k, slot, alternatives))
    if not choices:
        raise Unsatisfiable("no edge has another value of its type to read")
    k, slot, alternatives = rng.choice(choices)
    node = graph.nodes[k]
    inputs = list(node.inputs)
    old, inputs[slot] = inputs[slot], rng.choice(alternatives)
    nodes = [*graph.nodes[:k], dataclasses.replace(node, inputs=tuple(inputs)), *graph.nodes[k + 1:]]
    produced = {name for n in graph.nodes for name in n.outputs}
    orphaned = old in produced and len(graph.consumers[old]) == 1 and old not in graph.outputs
    return assemble(graph.inputs, graph.weights, nodes, [*graph.outputs, *([old] if orphaned else [])])


def connected_region(graph: Graph, rng: random.Random, size: int) -> list[int]:
    """Indices of up to ``size`` nodes connected by edges, grown from a random node."""
    producer = {name: k for k, n in enumerate(graph.nodes) for name in n.outputs}
    region = [rng.randrange(len(graph.nodes))]
    while len(region) < size:
        neighbours = {producer[name] for k in region for name in graph.nodes[k].inputs if name in producer}
        neighbours |= {c for k in region for name in graph.nodes[k].outputs for c in graph.consumers[name]}
        frontier = sorted(neighbours - set(region))
        if not frontier:
            break
        region.append(rng.choice(frontier))
    return sorted(region)


def splice(graph: Graph, rng: random.Random, options: GeneratorOptions, donors: Sequence[Graph]) -> Graph:
    """A connected subgraph copied from a donor (or from the graph itself) to the end of the
    graph: its outside inputs read host values of the same type or new inputs, its weights
    come along, and the values it leaves unread become graph outputs."""
    donor = rng.choice([*donors, graph])
    region = [donor.nodes[k] for k in connected_region(donor, rng, rng.randint(1, MAX_SPLICE_NODES))]
    counter = itertools.count(first_free_number(graph))
    donor_weights = {w.name: w for w in donor.weights}
    inputs, weights, renaming = list(graph.inputs), list(graph.weights), {}
    produced = [name for node in region for name in node.outputs]
    for name in dict.fromkeys(n for node in region for n in node.inputs if n and n not in produced):
        tensor_type = donor.types[name]
        hosts = [n for n, t in graph.types.items() if t == tensor_type]
        if name in donor_weights:
            weights.append(dataclasses.replace(donor_weights[name], name=f"w{next(counter)}"))
            renaming[name] = weights[-1].name
        elif hosts and rng.random() < options.reuse_share:
            renaming[name] = rng.choice(hosts)
        else:
            inputs.append(Input(f"x{next(counter)}", tensor_type))
            renaming[name] = inputs[-1].name
    renaming.update((name, f"v{next(counter)}") for name in produced)
    copies = [dataclasses.replace(node, inputs=tuple(renaming.get(n, n) for n in node.inputs),
                                  outputs=tuple(renaming[n] for n in node.outputs)) for node in region]
    read = {n for node in copies for n in node.inputs}
    unread = [n for node in copies for n in node.outputs if n not in read]
    return assemble(inputs, weights, [*graph.nodes, *copies], [*graph.outputs, *unread])


def add_control_node(graph: Graph, rng: random.Random, options: GeneratorOptions, donors: Sequence[Graph]) -> Graph:
    """An If, Loop or Scan node at the end, reading the graph's values, its bodies generated
    like small graphs; its outputs become graph outputs."""
    if options.ops is not None and not options.ops & {s.name for s in all_specs() if s.family is Family.CONTROL}:
        raise Unsatisfiable("the chosen operators have no control flow")
    builder = builder_at(graph, len(graph.nodes), rng, options)
    builder.nodes = list(graph.nodes)
    add_control_flow(builder)
    added = builder.nodes[len(graph.nodes):]
    if not added:
        raise Unsatisfiable("no control-flow node fits the graph's values")
    read = {name for node in added for name in node.inputs}
    return assemble(builder.inputs, builder.weights, builder.nodes,
                    [*graph.outputs, *(name for node in added for name in node.outputs if name not in read)])


def insert_pattern(graph: Graph, rng: random.Random, options: GeneratorOptions, donors: Sequence[Graph]) -> Graph:
    """A pattern of fuzzer.generation.patterns (or a near-miss of one) at the end, its first
    input bound to one of the graph's values when one fits; unread outputs become graph outputs."""
    builder = builder_at(graph, len(graph.nodes), rng, options)
    builder.nodes = list(graph.nodes)
    builder.add_pattern()
    added = builder.nodes[len(graph.nodes):]
    read = {name for node in added for name in node.inputs}
    return assemble(builder.inputs, builder.weights, builder.nodes,
                    [*graph.outputs, *builder.extra_outputs,
                     *(name for node in added for name in node.outputs if name not in read)])


def make_dynamic(graph: Graph, rng: random.Random, options: GeneratorOptions, donors: Sequence[Graph]) -> Graph:
    """The inputs sharing the most common leading dimension get a symbolic one, when the
    graph runs at other sizes of it (the campaign runs the model at several)."""
    if graph.symbols:
        raise Unsatisfiable("the graph is dynamic already")
    marked = with_symbolic_batch(graph, rng, options)
    if not marked.symbols:
        raise Unsatisfiable("no leading dimension of the inputs can vary")
    return marked


MUTATORS: dict[str, Mutator] = {
    "insert_node": insert_node,
    "delete_node": delete_node,
    "replace_operator": replace_operator,
    "change_attributes": change_attributes,
    "retype_input": retype_input,
    "insert_cast": insert_cast,
    "rewire_edge": rewire_edge,
    "splice": splice,
    "add_control_node": add_control_node,
    "make_dynamic": make_dynamic,
    "insert_pattern": insert_pattern,
}
GROWING = frozenset({"insert_node", "insert_cast", "splice", "add_control_node", "insert_pattern"})  # they add nodes


def mutator_order(graph: Graph, rng: random.Random, options: GeneratorOptions,
                  weights: Mapping[str, float] | None = None) -> list[str]:
    """The mutators to try on ``graph``, in an order drawn from ``rng``: uniform, or by
    ``weights`` (weighted sampling without replacement). A graph at the node budget only
    gets mutators that do not grow it; one above it gets a deletion first."""
    names = [name for name in MUTATORS if len(graph.nodes) < options.nodes or name not in GROWING]
    if weights is None:
        rng.shuffle(names)
    else:
        names.sort(key=lambda name: -rng.random() ** (1.0 / weights[name]))
    if len(graph.nodes) > options.nodes:
        names.remove("delete_node")
        names.insert(0, "delete_node")
    return names


def mutate(graph: Graph, rng: random.Random, *, donors: Sequence[Graph] = (),
           options: GeneratorOptions | None = None, weights: Mapping[str, float] | None = None) -> tuple[Graph, str]:
    """A valid mutant of ``graph`` that differs from it, and the name of the mutator that
    made it. Mutators are tried in :func:`mutator_order`, each a few times; raises
    :class:`Unsatisfiable` when none applies."""
    options = options or GeneratorOptions()
    for name in mutator_order(graph, rng, options, weights):
        for _ in range(ATTEMPTS_PER_MUTATOR):
            try:
                mutant = MUTATORS[name](graph, rng, options, donors)
                admit(mutant, graph, options)
            except Rejected:
                continue
            if mutant.content_hash != graph.content_hash:
                return mutant, name
    raise Unsatisfiable(f"no mutator applies to graph {graph.content_hash[:12]} with {options}")
