"""Gate blocks and gate-wise penalties of TF1 kernels, for a loss written by hand.

TF1 cells keep their gates fused in one kernel of shape (in + h, gates * u);
`gate_blocks` returns each gate's block as a slice of the variable, and
`tf1_gate_penalty` the gate-wise penalty of `GateRegularizer`, per gate or per
block (`{"recurrent/forget": c}` is c * sum(W_hf ** 2)), as a tensor for the
loss. The penalties built in a graph are recorded, so `LSTMGatesHook` logs
what the loss holds.
"""

import numbers
import weakref
from collections.abc import Sequence
from typing import Any

import tensorflow as tf

from tb_lstm_gates.core import gate_penalty
from tb_lstm_gates.core import layouts as gate_layouts
from tb_lstm_gates.core.gate_penalty import Coefficients
from tb_lstm_gates.core.scopes import Cell, strip_output_index

# `(kernel variable name, part, gates, per-gate penalty tensor, penalized gates)`.
PenaltyFetch = tuple[str, str, tuple[str, ...], Any, set[str]]


def gate_blocks(
    kernel: tf.Tensor | tf.Variable,
    input_depth: int,
    cell: str = "lstm",
    bias: tf.Tensor | tf.Variable | None = None,
    peepholes: Sequence[tf.Tensor | tf.Variable] | None = None,
) -> dict[tuple[str, str], tf.Tensor]:
    """The gate blocks of a TF1 cell's weights, as differentiable slices: `{(part, gate): tensor}`.

    A TF1 cell concatenates its input and recurrent rows in one kernel
    (`layouts.tf1_lstm`, `layouts.tf1_gru`): rows `[:input_depth]` act on
    x_t (part `input`), rows `[input_depth:]` on h_{t-1} (part `recurrent`);
    the columns hold the gates in TF1's order (LSTM: i, j, f, o; GRU
    `gates/kernel`: r, u). Keys use the canonical names, so
    `("recurrent", "forget")` is W_hf and `("input", "cell")` is TF1's W_xj.
    The values slice the variables themselves, in graph mode and eagerly, so
    a loss built from them trains the cell (eagerly, call this inside the
    `GradientTape`).

    Args:
      kernel: `lstm_cell/kernel` (input_depth + h, 4 * units), h = num_proj
        or units; or, for `cell="gru"`, `gru_cell/gates/kernel`
        (input_depth + units, 2 * units) or `gru_cell/candidate/kernel`
        (input_depth + units, units), told apart by their shapes.
      input_depth: the depth of the cell's input.
      cell: `"lstm"` or `"gru"`.
      bias: the kernel's bias (`lstm_cell/bias`, `gru_cell/gates/bias` or
        `gru_cell/candidate/bias`), for the `("bias", gate)` blocks; None to
        leave them out. TF1 adds `forget_bias` at run time; it is not in the
        variable.
      peepholes: for `LSTMCell(use_peepholes=True)`, its `(w_i_diag,
        w_f_diag, w_o_diag)`, for the `("peephole", gate)` blocks; None to
        leave them out. (`projection/kernel` is not split into gates: use it
        as it is.)

    Returns:
      dict from `(part, gate)` to a tensor: for an LSTM kernel the eight
      blocks `("input" | "recurrent", "input" | "forget" | "cell" |
      "output")`, each `(input_depth, units)` or `(h, units)`; plus
      `("bias", gate)` blocks `(units,)` and `("peephole", gate)` when given.

    Raises:
      ValueError: a kernel, bias or peephole whose shape does not fit `cell`
        and `input_depth`, or peepholes for a GRU.

    Example, on the model of DESIGN.md (`doc_word/fw/lstm_cell/kernel` is
    (300, 400)):

    ```python
    import os
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    import tensorflow as tf
    from tb_lstm_gates import tf1

    v1 = tf.compat.v1
    v1.disable_eager_execution()
    x = v1.placeholder(tf.float32, [None, None, 200])
    outputs, _ = v1.nn.bidirectional_dynamic_rnn(
        v1.nn.rnn_cell.LSTMCell(100), v1.nn.rnn_cell.LSTMCell(100), x,
        dtype=tf.float32, scope="doc_word")
    with v1.variable_scope("doc_word/fw/lstm_cell", reuse=True):
        kernel, bias = v1.get_variable("kernel"), v1.get_variable("bias")  # (300, 400), (400,)
    blocks = tf1.gate_blocks(kernel, 200, bias=bias)
    w_hf = blocks["recurrent", "forget"]  # kernel[200:, 200:300], shape (100, 100)
    loss = tf.reduce_mean(tf.concat(outputs, -1) ** 2) + 1e-3 * tf.reduce_sum(w_hf ** 2)
    ```
    """
    owner = "gate_blocks"
    kernel_layout, weight, depth, gates, units = _tf1_kernel(owner, kernel, input_depth, cell)
    blocks: dict[tuple[str, str], tf.Tensor] = {}
    for piece in kernel_layout.weights[weight]:
        for k, gate in enumerate(gates):
            blocks[piece.part, gate] = kernel[piece.rows, k * units : (k + 1) * units]
    if bias is not None:
        width = len(gates) * units
        bias_name = weight.replace("kernel", "bias")
        if _shape(bias) != (width,):
            raise ValueError(
                "%s: the bias of a %s %s of shape %s must have shape (%d,) (%s), got %s"
                % (owner, cell, weight, _shape(kernel), width, bias_name, _shape(bias))
            )
        for k, gate in enumerate(gates):
            blocks["bias", gate] = bias[k * units : (k + 1) * units]
    if peepholes is not None:
        order = ("input", "forget", "output")  # w_i_diag, w_f_diag, w_o_diag
        if cell != "lstm":
            raise ValueError("%s: a %s cell has no peepholes; leave peepholes=None" % (owner, cell))
        if len(peepholes) != 3 or any(_shape(p) != (units,) for p in peepholes):
            raise ValueError(
                "%s: peepholes must be (w_i_diag, w_f_diag, w_o_diag), each of shape (%d,), got shapes %s"
                % (owner, units, [_shape(p) for p in peepholes])
            )
        for gate, diagonal in zip(order, peepholes):
            blocks["peephole", gate] = diagonal[:]
    return blocks


def tf1_gate_penalty(
    kernel: tf.Tensor | tf.Variable,
    input_depth: int,
    cell: str = "lstm",
    l1: Coefficients = 0.0,
    l2: Coefficients = 0.0,
    orthogonal: Coefficients = 0.0,
) -> tf.Tensor:
    """The gate-wise penalty of a TF1 cell's kernel, as a scalar tensor.

    TF1 cells concatenate the input and recurrent rows in one kernel: rows
    `[:input_depth]` act on x_t, rows `[input_depth:]` on h_{t-1} (see
    `gate_blocks`). A coefficient keyed by a gate (`"forget"`) applies `l1`
    and `l2` to both parts of the gate (W_xf and W_hf); keyed by a block
    (`"recurrent/forget"`), to that part alone, winning over the gate's key.
    `orthogonal` applies to recurrent blocks only.

        sum over blocks (part, g) of
            l1[part, g] * sum(|W|) + l2[part, g] * sum(W ** 2)
        + sum over gates g of orthogonal[g] * ||W_hg^T W_hg - I||_F^2

    Add the result to the loss, or to
    `tf.compat.v1.GraphKeys.REGULARIZATION_LOSSES`.

    Args:
      kernel: as for `gate_blocks`. Call it once per kernel.
      input_depth: the depth of the cell's input.
      cell: `"lstm"` or `"gru"`.
      l1, l2, orthogonal: a float >= 0 for every gate, or a mapping whose
        keys are canonical gate names (`cell` for TF1's j, `update` for its
        u) or blocks `"input/<gate>"`, `"recurrent/<gate>"`. Gates the kernel
        does not hold (e.g. `candidate` for a GRU's `gates/kernel`) are
        ignored, so one mapping serves both GRU kernels.

    Raises:
      ValueError: bad coefficients or keys (the message names the valid
        keys), `orthogonal` on input blocks or on non-square recurrent
        blocks, or a kernel whose shape does not fit `cell` and
        `input_depth`.

    Example, W_hf alone:

    ```python
    # kernel: doc_word/fw/lstm_cell/kernel (300, 400), as in `gate_blocks`
    penalty = tf1.tf1_gate_penalty(kernel, 200, l2={"recurrent/forget": 1e-3})
    v1.add_to_collection(v1.GraphKeys.REGULARIZATION_LOSSES, penalty)
    ```
    """
    owner = "tf1_gate_penalty"
    if cell not in ("lstm", "gru"):
        raise ValueError("%s: cell must be 'lstm' or 'gru', got %r" % (owner, cell))
    parts = ("input", "recurrent")
    _, coefficients, _ = gate_penalty.parse_coefficients(
        owner, cell, {"l1": l1, "l2": l2, "orthogonal": orthogonal}, parts
    )
    on_input = sorted("input/%s" % gate for part, gate in coefficients["orthogonal"][1] if part == "input")
    if on_input:
        raise ValueError(
            "%s: orthogonal applies to square recurrent blocks only, got %s; use a gate or "
            "'recurrent/<gate>' key" % (owner, ", ".join(repr(k) for k in on_input))
        )
    variable = kernel if isinstance(kernel, tf.Variable) else None
    kernel = tf.convert_to_tensor(kernel)
    kernel_layout, weight, depth, gates, units = _tf1_kernel(owner, kernel, input_depth, cell)
    xp = gate_penalty.tf_ops(tf, kernel.dtype)
    # The penalty of each block, shape (n_gates,) per part, summed into the
    # result and kept for LSTMGatesHook's log.
    per_part: dict[str, Any] = {}
    penalized: dict[str, set[str]] = {}
    for piece in kernel_layout.weights[weight]:
        terms = gate_penalty.coefficient_vectors(coefficients, gates, piece.part, ("l1", "l2"))
        blocks = tf.reshape(kernel[piece.rows], (-1, len(gates), units))
        per_part[piece.part] = gate_penalty.per_gate_penalty(blocks, terms, xp)
        penalized[piece.part] = {g for k, g in enumerate(gates) if any(v and v[k] for v in terms.values())}
    orthogonal_terms = gate_penalty.coefficient_vectors(coefficients, gates, "recurrent", ("orthogonal",))
    if orthogonal_terms["orthogonal"]:
        rows = _shape(kernel)[0] - depth
        if rows != units:
            raise ValueError(
                "%s: orthogonal needs square recurrent blocks, but %s of shape %s has %d "
                "recurrent rows for %d units per gate (a projection?): set orthogonal=0"
                % (owner, weight, _shape(kernel), rows, units)
            )
        recurrent = tf.reshape(kernel[depth:], (rows, len(gates), units))
        per_part["recurrent"] += gate_penalty.per_gate_penalty(recurrent, orthogonal_terms, xp)
        penalized["recurrent"] |= {g for g, v in zip(gates, orthogonal_terms["orthogonal"]) if v}
    penalty = tf.add_n([tf.reduce_sum(v) for v in per_part.values()])
    if variable is not None and not tf.executing_eagerly():
        _GRAPH_PENALTIES.setdefault(penalty.graph, []).extend(
            (strip_output_index(variable.name), part, gates, tensor, penalized[part])
            for part, tensor in per_part.items()
            if penalized[part]
        )
    return penalty


# Graph -> [(kernel variable name, part, gates, per-gate penalty tensor,
# penalized gates)] of every tf1_gate_penalty built in it, so the hook logs
# what the loss holds; a block no key names has no penalty to show.
_GRAPH_PENALTIES: "weakref.WeakKeyDictionary[Any, list[PenaltyFetch]]" = weakref.WeakKeyDictionary()


def penalty_fetches(graph: Any, cells: Sequence[Cell]) -> list[tuple[Any, ...]]:
    """`[(cell index, part, gates, tensor, penalized gates)]` of the penalties on `cells`' kernels."""
    by_name = {strip_output_index(v.name): i for i, cell in enumerate(cells) for v in cell.variables.values()}
    return [
        (by_name[entry[0]],) + entry[1:] for entry in _GRAPH_PENALTIES.get(graph, ()) if entry[0] in by_name
    ]


def _shape(value: Any) -> tuple[Any, ...]:
    # Each dimension an int, or None where unknown; `_tf1_kernel` rejects unknown ones, so callers use ints.
    return tuple(tf.TensorShape(value.shape).as_list())


def _tf1_kernel(
    owner: str, kernel: Any, input_depth: int, cell: str
) -> tuple[gate_layouts.Layout, str, int, tuple[str, ...], int]:
    """`(layout, weight name, input depth, gates, units)` of a TF1 kernel, or a ValueError."""
    if cell not in ("lstm", "gru"):
        raise ValueError("%s: cell must be 'lstm' or 'gru', got %r" % (owner, cell))
    shape = _shape(kernel)
    if len(shape) != 2 or None in shape:
        raise ValueError(
            "%s: kernel must have a known 2-D shape (input_depth + h, columns), got %s" % (owner, shape)
        )
    rows, cols = shape
    is_int = isinstance(input_depth, numbers.Integral) and not isinstance(input_depth, bool)
    if not is_int or not 0 < input_depth < rows:
        raise ValueError(
            "%s: input_depth must be an int between 1 and %d (the kernel has %d rows: "
            "input_depth input rows, then the recurrent rows), got %r" % (owner, rows - 1, rows, input_depth)
        )
    depth = int(input_depth)
    weight: str | None
    if cell == "lstm":
        weight, layout = "kernel", gate_layouts.tf1_lstm(depth)
    else:
        weight = {2 * (rows - depth): "gates/kernel", rows - depth: "candidate/kernel"}.get(cols)
        if weight is None:
            raise ValueError(
                "%s: a GRU kernel of shape %s with input_depth=%d should have %d columns "
                "(gates/kernel) or %d (candidate/kernel)"
                % (owner, shape, depth, 2 * (rows - depth), rows - depth)
            )
        layout = gate_layouts.tf1_gru(depth)
    gates = layout.weights[weight][0].gates
    if cols % len(gates):
        raise ValueError(
            "%s: %s of shape %s does not split into the %d gates %s"
            % (owner, weight, shape, len(gates), ", ".join(gates))
        )
    return layout, weight, depth, gates, cols // len(gates)
