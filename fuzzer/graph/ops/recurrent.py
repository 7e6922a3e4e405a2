"""Recurrent layers: RNN, GRU and LSTM (opset 14: ``layout``), every direction.

The nodes take X, W, R and optionally B. sequence_lens (the input before initial_h) is left
out, and with it initial_h, initial_c and LSTM's peepholes: tcfuzz has no inner optional
input, and a full-length sequence_lens would go wrong under a symbolic sequence length.
Activations keep their defaults and ``clip`` and LSTM's ``input_forget`` are left out: the
reference evaluator only implements the defaults (its RNN knows Tanh alone) and ignores
both attributes. Proposals keep ``layout`` at 0: onnxruntime's CPU kernels refuse batch-first
layouts ("Batchwise recurrent operations (layout == 1) are not supported"); shape inference
and the lowerings take layout 1 too (imported models, hand-built tests). The torch lowerings
unroll ONNX's equations step by step (torch's fused cells order their gates and biases
differently and take no layout).
"""

from __future__ import annotations

import random
from typing import Any, Mapping

from fuzzer.graph.ir import DType, TensorType
from fuzzer.graph.ops.spec import ANCHOR, Family, OnnxForm, Operand, OpSpec, Proposal, torch
from fuzzer.graph.rejected import ShapeError

# Not float16: ONNX's reference evaluator rounds every step's gates to float16, while the torch
# lowering's unrolled steps round elsewhere; over a sequence the two drift apart by more than
# float16 tolerances, so graphs would test the harness, not a compiler (ORT's CPU kernels are
# float32-only anyway).
RECURRENT_DTYPES = frozenset({DType.float32, DType.float64})
DIRECTIONS = ("forward", "reverse", "bidirectional")
MAX_HIDDEN = 6
GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}


def directions(attrs: Mapping[str, Any]) -> int:
    return 2 if attrs.get("direction", "forward") == "bidirectional" else 1


def propose_recurrent(gates: int):
    def propose(rng: random.Random, anchor: TensorType) -> Proposal:
        hidden = rng.randint(1, MAX_HIDDEN)
        attrs: dict[str, Any] = {"hidden_size": hidden}
        if rng.random() < 0.7:
            attrs["direction"] = rng.choice(DIRECTIONS)
        if gates == 3 and rng.random() < 0.6:
            attrs["linear_before_reset"] = rng.randint(0, 1)
        dirs, size = directions(attrs), anchor.shape[2]
        inputs: tuple[Operand | None, ...] = (ANCHOR, Operand(anchor.with_shape((dirs, gates * hidden, size))),
                                              Operand(anchor.with_shape((dirs, gates * hidden, hidden))))
        if rng.random() < 0.7:
            inputs += (Operand(anchor.with_shape((dirs, 2 * gates * hidden))),)
        return Proposal(attrs, inputs)
    return propose


def infer_recurrent(op: str):
    gates = GATES[op]

    def infer(types: tuple[TensorType, ...], attrs: Mapping[str, Any]) -> tuple[TensorType, ...]:
        x, *params = types
        hidden, dirs, layout = attrs["hidden_size"], directions(attrs), attrs.get("layout", 0)
        if x.dtype not in RECURRENT_DTYPES or x.rank != 3 or layout not in (0, 1) \
                or attrs.get("direction", "forward") not in DIRECTIONS or len(params) not in (2, 3):
            raise ShapeError(f"{op} takes a [seq, batch, input] float input X, W, R and B, got {x}")
        wanted = [(dirs, gates * hidden, x.shape[2]), (dirs, gates * hidden, hidden), (dirs, 2 * gates * hidden)]
        if any(p.dtype is not x.dtype or p.shape != shape for p, shape in zip(params, wanted)):
            raise ShapeError(f"{op} weights {', '.join(map(str, params))} do not fit {x} with hidden_size {hidden}")
        seq, batch = x.shape[:2] if layout == 0 else x.shape[1::-1]
        y = (seq, dirs, batch, hidden) if layout == 0 else (batch, seq, dirs, hidden)
        state = (dirs, batch, hidden) if layout == 0 else (batch, dirs, hidden)
        return (x.with_shape(y), *(x.with_shape(state),) * (2 if op == "LSTM" else 1))
    return infer


def rnn_cell(x, h, c, w, r, wb, rb, attrs):
    return torch.tanh(x @ w.T + h @ r.T + wb + rb), None


def gru_cell(x, h, c, w, r, wb, rb, attrs):
    w_z, w_r, w_h = w.chunk(3)
    r_z, r_r, r_h = r.chunk(3)
    wb_z, wb_r, wb_h = wb.chunk(3)
    rb_z, rb_r, rb_h = rb.chunk(3)
    z = torch.sigmoid(x @ w_z.T + h @ r_z.T + wb_z + rb_z)
    reset = torch.sigmoid(x @ w_r.T + h @ r_r.T + wb_r + rb_r)
    if attrs.get("linear_before_reset", 0):
        candidate = torch.tanh(x @ w_h.T + reset * (h @ r_h.T + rb_h) + wb_h)
    else:
        candidate = torch.tanh(x @ w_h.T + (reset * h) @ r_h.T + rb_h + wb_h)
    return (1 - z) * candidate + z * h, None


def lstm_cell(x, h, c, w, r, wb, rb, attrs):
    i, o, f, g = (x @ w.T + h @ r.T + wb + rb).chunk(4, dim=-1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


CELLS = {"RNN": rnn_cell, "GRU": gru_cell, "LSTM": lstm_cell}


def recurrent(op: str):
    cell, gates = CELLS[op], GATES[op]

    def lowering(xs, attrs):
        x, w, r, *b = xs
        hidden, dirs, layout = attrs["hidden_size"], directions(attrs), attrs.get("layout", 0)
        if layout:
            x = x.transpose(0, 1)  # [seq, batch, input]
        bias = b[0] if b else torch.zeros((dirs, 2 * gates * hidden), dtype=x.dtype, device=x.device)
        ys, hs, cs = [], [], []
        for d in range(dirs):
            backward = d == 1 or attrs.get("direction", "forward") == "reverse"
            h = c = torch.zeros((x.shape[1], hidden), dtype=x.dtype, device=x.device)
            wb, rb = bias[d].chunk(2)
            steps = []
            for t in (reversed(range(x.shape[0])) if backward else range(x.shape[0])):
                h, c = cell(x[t], h, c, w[d], r[d], wb, rb, attrs)
                steps.append(h)
            ys.append(torch.stack(steps[::-1] if backward else steps))  # [seq, batch, hidden]
            hs.append(h)
            cs.append(c)
        y = torch.stack(ys, dim=1)  # [seq, dirs, batch, hidden]
        states = [torch.stack(hs)] + ([torch.stack(cs)] if op == "LSTM" else [])
        if layout:
            return (y.permute(2, 0, 1, 3), *(s.transpose(0, 1) for s in states))
        return (y, *states)
    return lowering


def spec(op: str) -> OpSpec:
    return OpSpec(op, Family.RECURRENT, RECURRENT_DTYPES, infer_recurrent(op), recurrent(op),
                  propose_recurrent(GATES[op]), ranks=(3, 3), since=14,
                  onnx_form=OnnxForm(defaults={"direction": "forward", "layout": 0}))


SPECS = [spec("RNN"), spec("GRU"), spec("LSTM")]
