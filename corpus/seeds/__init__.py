"""Real-world seed graphs: common network blocks, written from their definitions in the IR.

Each block is small (every tensor within the generator's element budget) and has random
float32 weights from a fixed seed, so the seeds are the same everywhere. They export at
opset 17: the transformer's Gelu is the erf form that exporters emit before opset 20.
``python -m corpus.seeds.build`` writes them as ``.onnx`` files next to this module, for
``tcfuzz corpus add DIR corpus/seeds``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable

import numpy as np

from fuzzer.graph.ir import DType, Graph, Input, Node, TensorType, Weight
from fuzzer.graph.assemble import assemble

SEED_DIRECTORY = Path(__file__).parent
WEIGHT_SCALE = 0.3


class Block:
    """Collects inputs, weights and nodes; output types come from the specs at the end."""

    def __init__(self, seed: int) -> None:
        self.gen = np.random.default_rng(seed)
        self.inputs: list[Input] = []
        self.weights: list[Weight] = []
        self.nodes: list[Node] = []

    def input(self, name: str, *shape: int) -> str:
        self.inputs.append(Input(name, TensorType(DType.float32, shape)))
        return name

    def weight(self, name: str, array: Any) -> str:
        self.weights.append(Weight.from_array(name, np.asarray(array, dtype=np.float32)))
        return name

    def random(self, name: str, *shape: int) -> str:
        return self.weight(name, self.gen.normal(0.0, WEIGHT_SCALE, size=shape))

    def op(self, op: str, *inputs: str, **attrs: Any) -> str:
        name = f"{op.lower()}{len(self.nodes)}"
        self.nodes.append(Node(op, inputs, (name,), (), tuple(attrs.items())))
        return name

    def graph(self, *outputs: str) -> Graph:
        return assemble(self.inputs, self.weights, self.nodes, outputs)

    # -- layers -------------------------------------------------------------------------

    def conv(self, x: str, name: str, in_channels: int, out_channels: int, kernel: int, group: int = 1) -> str:
        pad = kernel // 2
        weight = self.random(f"{name}.weight", out_channels, in_channels // group, kernel, kernel)
        bias = self.random(f"{name}.bias", out_channels)
        return self.op("Conv", x, weight, bias, group=group, kernel_shape=(kernel, kernel),
                       pads=(pad,) * 4, strides=(1, 1), dilations=(1, 1))

    def batch_norm(self, x: str, name: str, channels: int) -> str:
        return self.op("BatchNormalization", x, self.weight(f"{name}.scale", self.gen.uniform(0.5, 1.5, channels)),
                       self.random(f"{name}.bias", channels), self.random(f"{name}.mean", channels),
                       self.weight(f"{name}.var", self.gen.uniform(0.5, 2.0, channels)), epsilon=1e-5)

    def linear(self, x: str, name: str, features_in: int, features_out: int) -> str:
        product = self.op("MatMul", x, self.random(f"{name}.weight", features_in, features_out))
        return self.op("Add", product, self.random(f"{name}.bias", features_out))

    def layer_norm(self, x: str, name: str, features: int) -> str:
        return self.op("LayerNormalization", x, self.weight(f"{name}.scale", self.gen.uniform(0.5, 1.5, features)),
                       self.random(f"{name}.bias", features), axis=-1, epsilon=1e-5)


def residual_block() -> Graph:
    """ResNet basic block: Conv-BN-Relu-Conv-BN, plus the identity shortcut, then Relu."""
    block = Block(1)
    x = block.input("x", 1, 4, 6, 6)
    h = block.op("Relu", block.batch_norm(block.conv(x, "conv1", 4, 4, 3), "bn1", 4))
    h = block.batch_norm(block.conv(h, "conv2", 4, 4, 3), "bn2", 4)
    return block.graph(block.op("Relu", block.op("Add", h, x)))


def depthwise_separable_block() -> Graph:
    """MobileNet block: depthwise 3x3 Conv-BN-ReLU6, then pointwise 1x1 Conv-BN-ReLU6."""
    block = Block(2)
    x = block.input("x", 1, 8, 6, 6)
    h = block.batch_norm(block.conv(x, "depthwise", 8, 8, 3, group=8), "bn1", 8)
    h = block.op("Clip", h, min=0.0, max=6.0)
    h = block.batch_norm(block.conv(h, "pointwise", 8, 12, 1), "bn2", 12)
    return block.graph(block.op("Clip", h, min=0.0, max=6.0))


def transformer_encoder_block(tokens: int = 8, features: int = 16, heads: int = 2) -> Graph:
    """Post-norm encoder layer: multi-head scaled dot-product self-attention and a Gelu MLP,
    each with a residual Add and LayerNormalization."""
    block = Block(3)
    head = features // heads
    x = block.input("x", 1, tokens, features)

    def split_heads(projection: str, perm: tuple[int, ...]) -> str:
        return block.op("Transpose", block.op("Reshape", projection, shape=(1, tokens, heads, head)), perm=perm)

    query = split_heads(block.linear(x, "query", features, features), (0, 2, 1, 3))
    key_t = split_heads(block.linear(x, "key", features, features), (0, 2, 3, 1))
    value = split_heads(block.linear(x, "value", features, features), (0, 2, 1, 3))
    scores = block.op("Div", block.op("MatMul", query, key_t), block.weight("scale", math.sqrt(head)))
    attended = block.op("MatMul", block.op("Softmax", scores, axis=-1), value)
    merged = block.op("Reshape", block.op("Transpose", attended, perm=(0, 2, 1, 3)), shape=(1, tokens, features))
    h = block.layer_norm(block.op("Add", block.linear(merged, "out", features, features), x), "norm1", features)
    hidden = block.linear(h, "mlp1", features, 2 * features)
    erf = block.op("Erf", block.op("Div", hidden, block.weight("sqrt2", math.sqrt(2.0))))
    gelu = block.op("Mul", block.op("Mul", hidden, block.op("Add", erf, block.weight("one", 1.0))),
                    block.weight("half", 0.5))
    out = block.op("Add", block.linear(gelu, "mlp2", 2 * features, features), h)
    return block.graph(block.layer_norm(out, "norm2", features))


def mlp_head() -> Graph:
    """Classifier head: Gemm (transposed weight, as torch.nn.Linear exports) - Relu -
    MatMul + Add - Softmax."""
    block = Block(4)
    x = block.input("x", 2, 32)
    h = block.op("Gemm", x, block.random("fc1.weight", 16, 32), block.random("fc1.bias", 16),
                 alpha=1.0, beta=1.0, transA=0, transB=1)
    logits = block.linear(block.op("Relu", h), "fc2", 16, 10)
    return block.graph(block.op("Softmax", logits, axis=-1))


def squeeze_excite_block() -> Graph:
    """Squeeze-and-excitation: global average pool, 1x1 Conv bottleneck with Relu, Sigmoid
    gate, channel-wise rescaling of the input."""
    block = Block(5)
    x = block.input("x", 1, 8, 4, 4)
    squeezed = block.op("Relu", block.conv(block.op("GlobalAveragePool", x), "reduce", 8, 2, 1))
    gate = block.op("Sigmoid", block.conv(squeezed, "expand", 2, 8, 1))
    return block.graph(block.op("Mul", x, gate))


SEEDS: dict[str, Callable[[], Graph]] = {
    "residual_block": residual_block,
    "depthwise_separable_block": depthwise_separable_block,
    "transformer_encoder_block": transformer_encoder_block,
    "mlp_head": mlp_head,
    "squeeze_excite_block": squeeze_excite_block,
}


def seed_graphs() -> dict[str, Graph]:
    """Every seed block by name."""
    return {name: build() for name, build in SEEDS.items()}
