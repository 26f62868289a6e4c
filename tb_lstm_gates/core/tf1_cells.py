"""The recurrences of TF1's own cells (`LSTMCell`, `BasicLSTMCell`, `GRUCell`) in numpy.

Pure numpy, from a cell's blocks as its `Layout` splits them (the views
every statistic uses). They follow `tf.compat.v1.nn.rnn_cell` exactly:

- LSTM, gates i, j, f, o: `c = sigmoid(f + forget_bias [+ w_f_diag * c_prev]) * c_prev
  + sigmoid(i [+ w_i_diag * c_prev]) * act(j)`, clipped to `cell_clip`;
  `m = sigmoid(o [+ w_o_diag * c]) * act(c)`, times the projection and
  clipped to `proj_clip` if any. `forget_bias` is added at run time (it is
  not in the stored bias), so the forget gate logged is the one the cell ran.
- GRU: `r, u = sigmoid(x W_g + h U_g + b_g)`, `cand = act(x W_c + (r * h) U_c + b_c)`,
  `h = u * h_prev + (1 - u) * cand`.

As `dynamic_rnn` runs them with `sequence_length`: past a sequence's end the
state carries over and the output is zero.
"""

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tb_lstm_gates.core import activations, layouts, names


def _blocks(layout: layouts.Layout, arrays: Mapping[str, Any]) -> dict[tuple[str, str], np.ndarray]:
    """`{(part, gate): block}`; a weight split into no gates (the projection) as `(part, "all")`."""
    out: dict[tuple[str, str], np.ndarray] = {}
    for part, gates, view in layout.blocks(arrays):
        for k, gate in enumerate(gates):
            out[part, gate] = view[..., k, :]
    return out


def _check(
    x: Any, valid: Any, states: Sequence[Any] | None, shapes: Sequence[tuple[int, ...]]
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    x = np.asarray(x, np.float32)
    if x.ndim != 3:
        raise ValueError("expected inputs of shape (batch, time, features), got %s" % (x.shape,))
    valid = np.ones(x.shape[:2], bool) if valid is None else np.asarray(valid, bool)
    if states is None:
        states = [np.zeros(s, np.float32) for s in shapes]
    states = [np.asarray(s, np.float32) for s in states]
    if [s.shape for s in states] != [tuple(s) for s in shapes]:
        raise ValueError("initial state of shapes %s, expected %s" % ([s.shape for s in states], shapes))
    return x, valid, states


def lstm(
    layout: layouts.Layout,
    arrays: Mapping[str, Any],
    x: Any,
    valid: Any = None,
    initial_state: Sequence[Any] | None = None,
    forget_bias: float = 1.0,
    activation: Any = "tanh",
    cell_clip: float | None = None,
    proj_clip: float | None = None,
) -> activations.Trace:
    """Runs a TF1 `LSTMCell` / `BasicLSTMCell` over `x` (batch, time, in).

    Args:
      layout: `layouts.tf1_lstm(...)` of the cell.
      arrays: its weights by short name (`kernel`, `bias`, `w_*_diag`, `projection/kernel`).
      valid: `(batch, time)` bool, False past each sequence's length; None for all valid.
      initial_state: None for zeros, or `(c, h)` in TF1's `LSTMStateTuple` order.
      forget_bias, activation, cell_clip, proj_clip: the cell's own.

    Returns:
      an `activations.Trace` (gates input, forget, cell, output) in the order the cell ran the steps.
    """
    b = _blocks(layout, arrays)
    gates = names.LSTM_GATES
    act, rec = activations.function(activation), activations.function("sigmoid")
    kernel = np.stack([b["input", g] for g in gates], 1).astype(np.float32)  # (in, 4, u)
    recurrent = np.stack([b["recurrent", g] for g in gates], 1).astype(np.float32)  # (h, 4, u)
    bias = np.stack([b["bias", g] for g in gates], 0).astype(np.float32)
    bias[1] += np.float32(forget_bias)
    peep = {g: b.get(("peephole", g)) for g in ("input", "forget", "output")}
    projection = b.get(("projection", layouts.WHOLE))
    units, size = recurrent.shape[-1], recurrent.shape[0]
    x, valid, (c, h) = _check(x, valid, initial_state, [(len(x), units), (len(x), size)])
    batch, time = x.shape[:2]
    xz = np.tensordot(x, kernel, axes=([2], [0])) + bias
    acts = np.empty(xz.shape, np.float32)
    outputs = np.zeros((batch, time, size), np.float32)
    states = np.empty((batch, time, units), np.float32)
    for t in range(time):
        z = xz[:, t] + np.tensordot(h, recurrent, axes=([1], [0]))
        if peep["input"] is not None:
            z[:, 0] += peep["input"] * c
            z[:, 1] += peep["forget"] * c
        i, f, j = rec(z[:, 0]), rec(z[:, 1]), act(z[:, 2])
        c_new = f * c + i * j
        if cell_clip is not None:
            c_new = np.clip(c_new, -cell_clip, cell_clip)
        zo = z[:, 3] + (peep["output"] * c_new if peep["output"] is not None else 0)
        o = rec(zo)
        m = o * act(c_new)
        if projection is not None:
            m = m @ projection
            if proj_clip is not None:
                m = np.clip(m, -proj_clip, proj_clip)
        acts[:, t] = np.stack([i, f, j, o], 1)
        keep = valid[:, t, None]
        c, h = np.where(keep, c_new, c), np.where(keep, m, h)
        outputs[:, t] = np.where(keep, m, 0)
        states[:, t] = c
    functions = (rec.name, rec.name, act.name, rec.name)
    return activations.Trace("lstm", gates, functions, acts, valid, outputs, states=states)


def gru(
    layout: layouts.Layout,
    arrays: Mapping[str, Any],
    x: Any,
    valid: Any = None,
    initial_state: Sequence[Any] | None = None,
    activation: Any = "tanh",
) -> activations.Trace:
    """Runs a TF1 `GRUCell` over `x`; as `lstm`, with `initial_state` None or `(h,)`.

    Returns:
      an `activations.Trace` with gates update, reset, candidate.
    """
    b = _blocks(layout, arrays)
    gates = names.GRU_GATES
    act, rec = activations.function(activation), activations.function("sigmoid")
    kernel = np.stack([b["input", g] for g in gates], 1).astype(np.float32)  # (in, 3, u)
    recurrent = np.stack([b["recurrent", g] for g in gates], 1).astype(np.float32)  # (u, 3, u)
    bias = np.stack([b["bias", g] for g in gates], 0).astype(np.float32)
    units = recurrent.shape[-1]
    x, valid, (h,) = _check(x, valid, initial_state, [(len(x), units)])
    batch, time = x.shape[:2]
    xz = np.tensordot(x, kernel, axes=([2], [0])) + bias
    acts = np.empty(xz.shape, np.float32)
    outputs = np.zeros((batch, time, units), np.float32)
    states = np.empty((batch, time, units), np.float32)
    for t in range(time):
        ur = rec(xz[:, t, :2] + np.tensordot(h, recurrent[:, :2], axes=([1], [0])))
        u, r = ur[:, 0], ur[:, 1]
        cand = act(xz[:, t, 2] + (r * h) @ recurrent[:, 2])
        h_new = u * h + (1 - u) * cand
        acts[:, t] = np.stack([u, r, cand], 1)
        keep = valid[:, t, None]
        h = np.where(keep, h_new, h)
        outputs[:, t] = np.where(keep, h_new, 0)
        states[:, t] = h
    functions = (rec.name, rec.name, act.name)
    return activations.Trace("gru", gates, functions, acts, valid, outputs, states=states)


def reverse_valid(array: np.ndarray, lengths: Any) -> np.ndarray:
    """`array` (batch, time, ...) with each sequence's first `lengths[b]` steps reversed, as `tf.reverse_sequence`."""
    out = np.array(array, copy=True)
    for row, n in enumerate(np.asarray(lengths).reshape(-1)):
        n = int(min(max(n, 0), out.shape[1]))
        out[row, :n] = out[row, :n][::-1]
    return out


def reversed_trace(trace: activations.Trace, lengths: Any) -> activations.Trace:
    """A trace of a backward direction (run over reversed valid steps) in the input's time order."""
    return activations.Trace(
        trace.cell,
        trace.gates,
        trace.functions,
        reverse_valid(trace.activations, lengths),
        trace.valid,
        reverse_valid(trace.outputs, lengths),
        states=None if trace.states is None else reverse_valid(trace.states, lengths),
        reference_outputs=None
        if trace.reference_outputs is None
        else reverse_valid(trace.reference_outputs, lengths),
    )
