"""Where a TF1 graph feeds each recurrent cell: its input sequence, lengths, initial state and outputs.

`dynamic_rnn` (and each direction of `bidirectional_dynamic_rnn`) runs its
cell in a while loop whose inputs, outside the loop, hold everything a probe
needs, and can be fetched without running the loop:

- the loop reads its steps from a `TensorListFromTensor` of the time-major
  sequence (for the backward direction, the input already reversed over each
  sequence's valid steps by `ReverseSequence`, or over all steps by `ReverseV2`);
- `sequence_length`, checked, as `.../CheckSeqLen`;
- the initial state, flattened (a `MultiRNNCell`'s layers in order, an
  LSTM's `(c, h)`), right after the loop counter, the step bound, the time
  and the output list;
- the cell's variables, captured. A `MultiRNNCell` puts all its layers in
  one loop: each layer reads the outputs of the layer below.

The loop's stacked outputs are the graph's own output of its top cell, for
the self-check; they are fetched only from a `StatelessWhile` (a loop with
no random op inside: running a `DropoutWrapper`'s loop would advance its
random generators, which training uses).

A cell no loop runs (`static_rnn`, a cell called in a Python loop) is not
found here: `probe_inputs={scope: batch-major input tensor}` names its input.
"""

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

import tensorflow as tf

from tb_lstm_gates.core import scopes
from tb_lstm_gates.tf1 import cell_config

_READS = ("Identity", "ReadVariableOp", "Enter")
_VARIABLES = ("VarHandleOp", "VariableV2", "Variable")
# Random ops whose generator a probe that ran them would move on.
_RANDOM = ("TruncatedNormal", "Multinomial", "ParameterizedTruncatedNormal", "StatefulUniform")
_ITERATORS = (
    "IteratorGetNext",
    "IteratorGetNextSync",
    "QueueDequeueV2",
    "QueueDequeueManyV2",
    "QueueDequeueUpToV2",
)


@dataclasses.dataclass
class Run:
    """One run of a stack of cells over a sequence, as the graph holds it.

    Attributes:
      cells: the `scopes.Cell`s the loop runs, bottom layer first.
      sequence: the time-major `(time, batch, in)` tensor the loop steps over,
        or a batch-major one if `batch_major`.
      lengths: the sequence lengths tensor, or None (every step valid).
      reversed_by: None, or the lengths tensor (or `"all"`) the sequence was
        reversed by: the backward direction of a bidirectional run.
      states: the flat initial state tensors (each LSTM's c, h; each GRU's h), or None for zeros.
      outputs: the time-major stacked outputs of the top cell, or None.
      batch_major: `sequence` is `(batch, time, in)` (given by `probe_inputs`).
      loop: the name of the while op, or None.
      stack: the loop's stacked outputs (time-major), fetched or not; None without a loop.
      configs: `{scope: settings}` of each cell (see `cell_config.read_config`),
        or a string saying why they cannot be read.
    """

    cells: list[scopes.Cell]
    sequence: tf.Tensor
    lengths: tf.Tensor | None = None
    reversed_by: tf.Tensor | str | None = None
    states: list[tf.Tensor] | None = None
    outputs: tf.Tensor | None = None
    batch_major: bool = False
    configs: dict[str, cell_config.Config] = dataclasses.field(default_factory=dict)
    loop: str | None = None
    stack: tf.Tensor | None = None


def _variable_op(tensor: tf.Tensor, hops: int = 6) -> tf.Operation | None:
    """The variable op a tensor reads, through identities and reads, or None."""
    op = tensor.op
    for _ in range(hops):
        if op.type in _VARIABLES:
            return op
        if op.type not in _READS or not op.inputs:
            return None
        op = op.inputs[0].op
    return None


def _through_identity(tensor: tf.Tensor) -> list[tf.Operation]:
    """The consumers of `tensor`, looking through Identity ops."""
    out: list[tf.Operation] = []
    for op in tensor.consumers():
        if op.type == "Identity":
            out.extend(_through_identity(op.outputs[0]))
        else:
            out.append(op)
    return out


def _variable_ops(cell: scopes.Cell, kernel_only: bool = False) -> set[str]:
    ops: set[str] = set()
    for name, v in cell.variables.items():
        if kernel_only and name not in ("kernel", "candidate/kernel"):
            continue
        handle = getattr(v, "handle", None)
        ops.add((handle.op if handle is not None else v.op).name)
    return ops


def find_runs(
    graph: tf.Graph, cells: list[scopes.Cell], probe_inputs: Mapping[str, Any] | None = None
) -> tuple[list["Run"], list[str]]:
    """`(runs, unfound)`: the `Run`s of `cells` in `graph`, and the scopes of cells none runs.

    Args:
      probe_inputs: `{scope: batch-major input tensor}` for cells the
        discovery cannot place; each such cell runs alone from a zero state.
    """
    probe_inputs = dict(probe_inputs or {})
    unknown = set(probe_inputs) - {c.layer for c in cells}
    if unknown:
        raise ValueError(
            "probe_inputs names %s, which is no logged cell; the cells are %s"
            % (", ".join(sorted(map(repr, unknown))), ", ".join(repr(c.layer) for c in cells))
        )
    runs: list[Run] = []
    found: set[str] = set()
    outer = None
    for cell in cells:
        if cell.layer in probe_inputs:
            tensor = graph.as_graph_element(probe_inputs[cell.layer])
            outer = outer or cell_config.graph_nodes(graph)
            reads = [
                (op.name, 0)
                for op in graph.get_operations()
                if op.inputs
                and op.type in ("ReadVariableOp", "Identity")
                and op.inputs[0].op.name in _variable_ops(cell, True)
            ]
            configs = {cell.layer: cell_config.read_config(outer, reads, cell.layout.cell)}
            runs.append(Run([cell], tensor, batch_major=True, configs=configs))
            found.add(cell.layer)
    owned = {name: cell for cell in cells if cell.layer not in found for name in _variable_ops(cell)}
    for op in graph.get_operations():
        if op.type not in ("While", "StatelessWhile"):
            continue
        captured = {v for v in map(_variable_op, op.inputs) if v is not None}
        in_loop: list[scopes.Cell] = []
        for var in captured:
            owner = owned.get(var.name)
            if owner is not None and owner not in in_loop:
                in_loop.append(owner)
        if not in_loop:
            continue
        in_loop.sort(key=cells.index)
        run = _loop_run(graph, op, in_loop)
        if run is not None:
            runs.append(run)
            found.update(c.layer for c in in_loop)
    return runs, [c.layer for c in cells if c.layer not in found]


def _loop_run(graph: tf.Graph, op: tf.Operation, cells: list[scopes.Cell]) -> Run | None:
    lists = [t for t in op.inputs if t.op.type == "TensorListFromTensor"]
    if len(lists) != 1:
        return None  # nested inputs: not told apart here
    sequence = lists[0].op.inputs[0]
    source = sequence.op.inputs[0].op if sequence.op.type == "Transpose" else sequence.op
    reversed_by: tf.Tensor | str | None = None
    if source.type == "ReverseSequence":
        reversed_by = source.inputs[1]
    elif source.type == "ReverseV2":
        reversed_by = "all"
    lengths = next((t for t in op.inputs if t.op.name.endswith("CheckSeqLen")), None)
    count = sum(1 if c.layout.cell == "gru" else 2 for c in cells)
    states = list(op.inputs[4 : 4 + count])
    ranks = [s.shape.rank for s in states]
    if len(states) != count or any(r not in (None, 2) for r in ranks):
        return None
    stacks = [c.outputs[0] for c in _through_identity(op.outputs[3]) if c.type == "TensorListStack"]
    stack = stacks[0] if len(stacks) == 1 else None
    outputs = stack if op.type == "StatelessWhile" else None
    nodes, args = cell_config.function_nodes(graph, op)
    configs: dict[str, cell_config.Config] = {}
    for cell in cells:
        kernels = _variable_ops(cell, True)
        refs = [arg for arg, t in zip(args, op.inputs) if (_variable_op(t) or t.op).name in kernels]
        configs[cell.layer] = cell_config.read_config(nodes, refs, cell.layout.cell)
    return Run(
        cells, sequence, lengths, reversed_by, states, outputs, configs=configs, loop=op.name, stack=stack
    )


def check_side_effects(
    fetches: Iterable[tf.Tensor], feed: Iterable[Any]
) -> tuple[list[str], list[str], list[str]]:
    """Ops a run of `fetches` with `feed` would run that move training's state: `(iterators, random ops, loops)`.

    Reading the next batch of a `tf.data` iterator or a queue would move
    training's data on; a random op's generator would move on too, and so
    would those inside a stateful while loop (`loops`: a `DropoutWrapper`'s).
    """
    fed = {t.name if hasattr(t, "name") else str(t) for t in feed}
    seen: set[str] = set()
    iterators: list[str] = []
    others: list[str] = []
    loops: list[str] = []
    stack = [t.op for t in fetches if t.name not in fed]
    while stack:
        op = stack.pop()
        if op.name in seen:
            continue
        seen.add(op.name)
        if op.type in _ITERATORS:
            iterators.append(op.name)
            continue
        if op.type == "While":
            loops.append(op.name)
        elif op.op_def.is_stateful and ("Random" in op.type or op.type.startswith(_RANDOM)):
            others.append(op.name)
        for t in op.inputs:
            if t.name not in fed:
                stack.append(t.op)
        stack.extend(op.control_inputs)
    return iterators, others, loops


def tensor_name(t: Any) -> str:
    return t.name if isinstance(t, tf.Tensor) else str(t)
