"""The LSTM and GRU recurrences: gate activations on a batch, recomputed from split blocks.

Pure numpy. The recurrences take a cell's weights through its `Layout`
(`Layout.blocks`, the same views every statistic uses), so what they show is
what the split says each gate is. Work is vectorised over the batch, the
gates and the units; Python loops over time steps only. The input part of
every gate is one matrix product over all time steps at once.

`lstm` and `gru` follow Keras's cells and `RNN` layer: a zero initial state
unless one is given; at a masked step the state and the output carry over unchanged;
`go_backwards` reads the sequence (and its mask) from the end and returns
the outputs in that reversed order, as Keras does. Dropout is left out (the
layers' inference mode).
"""

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tb_lstm_gates.core import layouts, names
from tb_lstm_gates.core.functions import function
from tb_lstm_gates.core.layouts import Layout
from tb_lstm_gates.core.trace import Trace


def lstm(
    layout: Layout,
    arrays: Mapping[str, np.ndarray],
    x: np.ndarray,
    mask: np.ndarray | None = None,
    go_backwards: bool = False,
    activation: Any = "tanh",
    recurrent_activation: Any = "sigmoid",
    initial_state: Sequence[np.ndarray] | None = None,
) -> Trace:
    """Runs an LSTM over `x` from the blocks of its weights.

    Args:
      layout: the cell's `layouts.Layout` (parts `input`, `recurrent` and
        optionally `bias`, or `input_bias` and `recurrent_bias`, and
        `projection`: PyTorch's `proj_size`, h = (o * tanh(c)) @ projection).
      arrays: mapping from weight name to array, as the layout names them.
      x: `(batch, time, in)` inputs.
      mask: `(batch, time)` bool, or None for no masking.
      go_backwards: process the sequence from its end, as Keras's `go_backwards`.
      activation, recurrent_activation: names of Keras activations (see
        FUNCTIONS), `Function`s or callables on numpy arrays.
      initial_state: None for zeros, or `(h, c)`, h `(batch, state)` (the
        projection's size if any) and c `(batch, units)`, in Keras's order of
        an LSTM's states.

    Returns:
      a `Trace` with gates `input`, `forget`, `cell`, `output`.
    """
    gates = names.LSTM_GATES
    parts = gate_parts(layout, arrays, gates)
    act, rec = function(activation), function(recurrent_activation)
    x, valid, steps = prepare_inputs(x, mask, go_backwards)
    xz = np.tensordot(x, parts["input"], axes=([2], [0]))  # (batch, time, 4, units)
    for name in ("bias", "input_bias", "recurrent_bias"):
        if name in parts:
            xz += parts[name]
    recurrent = parts["recurrent"]
    projection = parts.get("projection")
    batch, units = x.shape[0], recurrent.shape[-1]
    # (state, 4 * units): one matrix product per step; the state is the projection's size if any.
    recurrent = recurrent.reshape(recurrent.shape[0], -1)
    h, c = initial_states(initial_state, [(batch, recurrent.shape[0]), (batch, units)], xz.dtype)
    acts = np.empty(xz.shape, xz.dtype)
    low, high = np.zeros(xz.shape, bool), np.zeros(xz.shape, bool)
    outputs = np.empty((batch, x.shape[1], h.shape[1]), xz.dtype)
    cells = np.empty((batch, x.shape[1], units), xz.dtype)
    for k, t in enumerate(steps):
        z = xz[:, t] + (h @ recurrent).reshape(batch, 4, units)
        a = acts[:, t]
        a[:, (0, 1, 3)] = rec(z[:, (0, 1, 3)])
        a[:, 2] = act(z[:, 2])
        low[:, t, (0, 1, 3)], high[:, t, (0, 1, 3)] = rec.saturated(z[:, (0, 1, 3)], a[:, (0, 1, 3)])
        low[:, t, 2], high[:, t, 2] = act.saturated(z[:, 2], a[:, 2])
        c_new = a[:, 1] * c + a[:, 0] * a[:, 2]
        h_new = a[:, 3] * act(c_new)
        if projection is not None:
            h_new = h_new @ projection
        keep = valid[:, t, None]
        c = np.where(keep, c_new, c)
        h = np.where(keep, h_new, h)
        outputs[:, k] = h
        cells[:, t] = c
    functions = (rec.name, rec.name, act.name, rec.name)
    return Trace(
        "lstm",
        gates,
        functions,
        acts,
        valid,
        outputs,
        states=cells,
        saturated_low=low,
        saturated_high=high,
        outputs_backwards=go_backwards,
    )


def gru(
    layout: Layout,
    arrays: Mapping[str, np.ndarray],
    x: np.ndarray,
    mask: np.ndarray | None = None,
    go_backwards: bool = False,
    activation: Any = "tanh",
    recurrent_activation: Any = "sigmoid",
    reset_after: bool = True,
    initial_state: Sequence[np.ndarray] | None = None,
) -> Trace:
    """Runs a Keras GRU over `x` from the blocks of its weights.

    Args:
      layout: the cell's `layouts.Layout`.
      arrays, x, mask, go_backwards, activation, recurrent_activation: as for `lstm`.
      reset_after: the cell's `reset_after`: the reset gate scales the
        recurrent projection of the candidate (True) or the state before it (False).
      initial_state: None for zeros, or `(h,)` with h `(batch, units)`.

    Returns:
      a `Trace` with gates `update`, `reset`, `candidate`.
    """
    gates = names.GRU_GATES
    parts = gate_parts(layout, arrays, gates)
    act, rec = function(activation), function(recurrent_activation)
    x, valid, steps = prepare_inputs(x, mask, go_backwards)
    xz = np.tensordot(x, parts["input"], axes=([2], [0]))  # (batch, time, 3, units)
    for name in ("bias", "input_bias"):
        if name in parts:
            xz += parts[name]
    recurrent = parts["recurrent"]
    recurrent_bias = parts.get("recurrent_bias", 0)
    batch, units = x.shape[0], recurrent.shape[-1]
    recurrent_all = recurrent.reshape(units, -1)  # (units, 3 * units)
    (h,) = initial_states(initial_state, [(batch, units)], xz.dtype)
    acts = np.empty(xz.shape, xz.dtype)
    low, high = np.zeros(xz.shape, bool), np.zeros(xz.shape, bool)
    outputs = np.empty((batch, x.shape[1], units), xz.dtype)
    states = np.empty((batch, x.shape[1], units), xz.dtype)
    for k, t in enumerate(steps):
        a = acts[:, t]
        if reset_after:
            hz = (h @ recurrent_all).reshape(batch, 3, units) + recurrent_bias
            zr = xz[:, t, :2] + hz[:, :2]
            a[:, :2] = rec(zr)
            zc = xz[:, t, 2] + a[:, 1] * hz[:, 2]
        else:
            zr = xz[:, t, :2] + np.tensordot(h, recurrent[:, :2], axes=([1], [0]))
            a[:, :2] = rec(zr)
            zc = xz[:, t, 2] + (a[:, 1] * h) @ recurrent[:, 2]
        a[:, 2] = act(zc)
        low[:, t, :2], high[:, t, :2] = rec.saturated(zr, a[:, :2])
        low[:, t, 2], high[:, t, 2] = act.saturated(zc, a[:, 2])
        h_new = a[:, 0] * h + (1 - a[:, 0]) * a[:, 2]
        h = np.where(valid[:, t, None], h_new, h)
        outputs[:, k] = h
        states[:, t] = h
    functions = (rec.name, rec.name, act.name)
    return Trace(
        "gru",
        gates,
        functions,
        acts,
        valid,
        outputs,
        states=states,
        saturated_low=low,
        saturated_high=high,
        outputs_backwards=go_backwards,
    )


def gate_parts(layout, arrays, gates):
    """`{part: view}`, each view's gate axis (-2) in the order of `gates`."""
    parts = {}
    for part, piece_gates, view in layout.blocks(arrays):
        if piece_gates == (layouts.WHOLE,):
            # A weight not split into gates, e.g. the projection: (rows, columns).
            parts[part] = view[..., 0, :]
            continue
        if tuple(piece_gates) != tuple(gates):
            view = view[..., [piece_gates.index(g) for g in gates], :]
        parts[part] = view
    return parts


def initial_states(given, shapes, dtype):
    """State arrays of `shapes`: zeros, or the given ones, checked."""
    if given is None:
        return [np.zeros(shape, dtype) for shape in shapes]
    states = [np.asarray(s, dtype) for s in given]
    if [s.shape for s in states] != [tuple(shape) for shape in shapes]:
        raise ValueError(
            "initial_state must be %d arrays of shapes %s, got shapes %s"
            % (len(shapes), [tuple(shape) for shape in shapes], [s.shape for s in states])
        )
    return states


def prepare_inputs(x, mask, go_backwards, shape=None):
    """`(x, valid, steps)`: a float array, the valid steps, and the time indices in processing order.

    `shape`: the shape to give `x` back after the checks, for ConvLSTM inputs.
    """
    x = np.asarray(x)
    if x.ndim != 3:
        raise ValueError("expected inputs of shape (batch, time, features), got %s" % (x.shape,))
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float32)
    if mask is None:
        valid = np.ones(x.shape[:2], bool)
    else:
        valid = np.asarray(mask, bool)
        if valid.shape != x.shape[:2]:
            raise ValueError("mask of shape %s does not fit inputs of shape %s" % (valid.shape, x.shape))
    steps = range(x.shape[1] - 1, -1, -1) if go_backwards else range(x.shape[1])
    return (x if shape is None else x.reshape(shape)), valid, steps
