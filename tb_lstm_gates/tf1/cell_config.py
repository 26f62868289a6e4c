"""A TF1 cell's run-time settings read from the ops it built: forget_bias, activation, clips.

A TF1 cell keeps `forget_bias`, its activation and its clips in Python, not
in variables, and the cell object is often gone once the graph is built
(`dynamic_rnn(LSTMCell(150), ...)` keeps no reference). The ops it built
hold them: the cell multiplies `[x, h]` by its kernel, splits the result
into i, j, f, o and adds `forget_bias` to f as a constant, applies its
activation to j (a GRU: to its candidate) and clips with `clip_by_value`.
These are read from the body of a `dynamic_rnn` loop (a function of the
graph) or from the graph itself (a cell called outside any loop).
"""

from typing import Any

import numpy as np
import tensorflow as tf

# Op type of an activation -> the name of its numpy twin (`core.activations.FUNCTIONS`).
ACTIVATIONS = {"Tanh": "tanh", "Relu": "relu", "Sigmoid": "sigmoid", "Identity": "linear"}

# `(op name, output index)`: one tensor of a graph or a function body.
Ref = tuple[str, int]
# An op: `(type, [input refs], value if a Const else None)`.
Node = tuple[str, list[Ref], Any]
# A cell's settings (`forget_bias`, `activation`, `cell_clip`, `proj_clip`; a GRU: `activation`),
# or a string saying why they cannot be read.
Config = dict[str, Any] | str


class _Nodes:
    """The ops of a graph or a function body as `{name: (type, [(input node, output index)], const)}`."""

    def __init__(self, nodes: dict[str, Node]) -> None:
        self.nodes = nodes
        self.consumers: dict[Ref, list[Ref]] = {}
        for name, (_, inputs, _) in nodes.items():
            for k, ref in enumerate(inputs):
                self.consumers.setdefault(ref, []).append((name, k))

    @classmethod
    def of_function(cls, fdef: Any) -> "_Nodes":
        def ref(text: str) -> Ref:
            parts = text.split(":")
            return (parts[0], int(parts[-1]) if len(parts) == 3 else 0)

        nodes: dict[str, Node] = {}
        for n in fdef.node_def:
            const = tf.make_ndarray(n.attr["value"].tensor) if n.op == "Const" else None
            nodes[n.name] = (n.op, [ref(i) for i in n.input if not i.startswith("^")], const)
        return cls(nodes)

    @classmethod
    def of_graph(cls, graph: tf.Graph) -> "_Nodes":
        nodes: dict[str, Node] = {}
        for op in graph.get_operations():
            const = tf.make_ndarray(op.get_attr("value")) if op.type == "Const" else None
            nodes[op.name] = (op.type, [(t.op.name, t.value_index) for t in op.inputs], const)
        return cls(nodes)

    def through_identity(self, ref: Ref) -> list[Ref]:
        out: list[Ref] = []
        for name, k in self.consumers.get(ref, []):
            if self.nodes[name][0] == "Identity":
                out += self.through_identity((name, 0))
            else:
                out.append((name, k))
        return out

    def const(self, ref: Ref) -> Any:
        node = self.nodes.get(ref[0])
        while node is not None and node[0] == "Identity":
            ref = node[1][0]
            node = self.nodes.get(ref[0])
        return None if node is None or node[0] != "Const" else node[2]


def function_nodes(graph: tf.Graph, while_op: tf.Operation) -> tuple[_Nodes, list[Ref]]:
    """`(nodes, arg refs)`: the loop body's ops, and the ref of its argument for each of the loop's inputs."""
    fdef = graph._get_function(while_op.get_attr("body").name).definition
    return _Nodes.of_function(fdef), [(a.name, 0) for a in fdef.signature.input_arg]


def graph_nodes(graph: tf.Graph) -> _Nodes:
    return _Nodes.of_graph(graph)


def read_config(nodes: _Nodes, kernel_refs: list[Ref], kind: str) -> Config:
    """The settings of one cell, or a string saying why they cannot be read.

    Args:
      nodes: `function_nodes(...)[0]` or `graph_nodes(graph)`.
      kernel_refs: refs of the tensors that hold the cell's kernel there (an
        LSTM's `kernel`, a GRU's `candidate/kernel`).
      kind: `lstm` or `gru`.
    """
    matmuls = [name for ref in kernel_refs for name, k in nodes.through_identity(ref) if k == 1]
    # The cell's own products multiply [x, h] (a concat); gradients multiply by the kernel too.
    matmuls = [
        m
        for m in matmuls
        if nodes.nodes[m][0] == "MatMul" and nodes.nodes.get(nodes.nodes[m][1][0][0], ("",))[0] == "ConcatV2"
    ]
    if not matmuls:
        return "its kernel is not multiplied in a way tb-lstm-gates knows"
    configs = [_config_at(nodes, m, kind) for m in matmuls]
    if any(isinstance(c, str) for c in configs):
        return next(c for c in configs if isinstance(c, str))
    if any(c != configs[0] for c in configs):
        return "it runs with different settings in different places"
    return configs[0]


def _after(nodes: _Nodes, ref: Ref, types: tuple[str, ...]) -> list[str]:
    return [name for name, _ in nodes.through_identity(ref) if nodes.nodes[name][0] in types]


def _activation(nodes: _Nodes, ref: Ref) -> str | None:
    applied = [name for name, _ in nodes.through_identity(ref)]
    names = {ACTIVATIONS.get(nodes.nodes[a][0]) for a in applied} - {None}
    return names.pop() if len(names) == 1 else None


def _config_at(nodes: _Nodes, matmul: str, kind: str) -> Config:
    biased = _after(nodes, (matmul, 0), ("BiasAdd", "Add", "AddV2"))
    if len(biased) != 1:
        return "its kernel's product is not followed by one bias"
    if kind == "gru":
        activation = _activation(nodes, (biased[0], 0))
        if activation is None:
            return "its candidate's activation is not one of %s" % ", ".join(sorted(ACTIVATIONS))
        return {"activation": activation}
    splits = _after(nodes, (biased[0], 0), ("Split",))
    if len(splits) != 1:
        return "its gates are not split in four"
    split = splits[0]
    forget_bias = None
    for name in _after(nodes, (split, 2), ("Add", "AddV2")):
        const = [nodes.const(r) for r in nodes.nodes[name][1] if r != (split, 2)]
        if const and const[0] is not None and np.size(const[0]) == 1:
            forget_bias = float(np.asarray(const[0]).reshape(-1)[0])
    if forget_bias is None:
        return "no forget_bias is added to its forget gate"
    activation = _activation(nodes, (split, 1))
    if activation is None:
        return "its activation is not one of %s" % ", ".join(sorted(ACTIVATIONS))
    # tf.clip_by_value(t, -clip, clip) is Maximum(Minimum(t, clip), -clip): the cell's clip reads
    # c, the projection's clip reads the projection's product.
    prefix = matmul.rsplit("/", 1)[0] + "/"
    cell_clip = proj_clip = None
    for name in sorted(nodes.nodes):
        op, inputs, _ = nodes.nodes[name]
        if op != "Minimum" or not name.startswith(prefix) or "clip_by_value" not in name:
            continue
        value = nodes.const(inputs[1])
        value = None if value is None else float(np.asarray(value).reshape(-1)[0])
        if nodes.nodes.get(inputs[0][0], ("",))[0] == "MatMul":
            proj_clip = value
        else:
            cell_clip = value
    return {
        "forget_bias": forget_bias,
        "activation": activation,
        "cell_clip": cell_clip,
        "proj_clip": proj_clip,
    }
