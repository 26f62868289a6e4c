"""Gate activations of LSTM and GRU cells on a batch, recomputed from split blocks.

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

import dataclasses

import numpy as np

from tb_lstm_gates.core import layouts, names


def sigmoid(x):
    # exp of -|x| never overflows; both branches agree with 1 / (1 + exp(-x)).
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0, e) / (1.0 + e)


def hard_sigmoid(x):
    """Keras 3's `hard_sigmoid`: relu6(x + 3) / 6."""
    return np.clip((x + 3.0) / 6.0, 0.0, 1.0)


def relu(x):
    return np.maximum(x, 0).astype(np.asarray(x).dtype, copy=False)


def linear(x):
    return x


# Numpy twins of Keras activations, by their Keras names; tests/test_activations.py
# proves each equal to Keras's own. Other activations (Keras's gelu, elu,
# silu, ... and any callable) are given to the recurrences as callables by
# the framework's wing, which computes them with the backend's own function.
FUNCTIONS = {
    "sigmoid": sigmoid,
    "hard_sigmoid": hard_sigmoid,
    "tanh": np.tanh,
    "relu": relu,
    "linear": linear,
}

# What "saturated" means, per activation. Bounded activations saturate near
# their bounds: below / above these values (Karpathy et al., 2015). Any other
# activation (relu, elu, gelu, silu, selu, softplus, exponential, linear, a
# custom callable, ...) has no such range: there "saturated" means the
# activation is flat where the gate sits, its slope below SATURATION_SLOPE
# (a gradient through it shrinks tenfold or more), on the negative side of
# its input ("dead", `saturated_low`) or the positive side (`saturated_high`).
# For relu that is the fraction at exactly zero; for relu6 also the fraction
# at exactly 6; elu, selu, softplus, exponential, gelu, silu and mish are
# dead far enough on their negative side; linear and leaky_relu never
# saturate (0).
SATURATION_BOUNDS = names.SATURATION_BOUNDS
SATURATION_SLOPE = names.SATURATION_SLOPE
# The width of the difference that measures the slope: wide enough for
# float32, narrow next to the inputs' scale.
_SLOPE_STEP = 1e-2


@dataclasses.dataclass(frozen=True)
class Function:
    """An activation function as the recurrences use it.

    Attributes:
      name: its Keras name, or the callable's `__name__`.
      fn: numpy array in, numpy array (same shape) out.
    """

    name: str
    fn: object

    def __call__(self, z):
        return np.asarray(self.fn(z), dtype=np.asarray(z).dtype)

    def saturated(self, z, a):
        """`(low, high)` bool arrays: where the activation `a = fn(z)` is saturated (see SATURATION_BOUNDS)."""
        bounds = SATURATION_BOUNDS.get(self.name)
        if bounds is not None:
            return a < bounds[0], a > bounds[1]
        # The slope over one step away from zero: exact on piecewise linear
        # activations, so relu is dead exactly where it outputs 0.
        negative = z < 0
        step = np.where(negative, -_SLOPE_STEP, _SLOPE_STEP).astype(np.asarray(z).dtype)
        slope = np.abs(self(z + step).astype(np.float64) - a) / _SLOPE_STEP
        flat = slope < SATURATION_SLOPE
        return flat & negative, flat & ~negative


def function(activation):
    """The `Function` of an activation: a name in FUNCTIONS, a `Function`, or a callable on numpy arrays."""
    if isinstance(activation, Function):
        return activation
    if isinstance(activation, str):
        if activation not in FUNCTIONS:
            raise ValueError(
                "activation %r is not one of %s; pass other activations as callables"
                % (activation, ", ".join(sorted(FUNCTIONS)))
            )
        return Function(activation, FUNCTIONS[activation])
    if callable(activation):
        return Function(getattr(activation, "__name__", type(activation).__name__), activation)
    raise ValueError("activation must be a name or a callable, got %r" % (activation,))


# The gate that decides how much of the state is kept at each step.
RETENTION_GATE = {"lstm": "forget", "conv_lstm": "forget", "gru": "update", "mlstm": "forget"}


@dataclasses.dataclass
class Trace:
    """What one recurrent cell did on a batch.

    Attributes:
      cell: `lstm`, `conv_lstm` or `gru`.
      gates: canonical gate names, in the order of `activations`' gate axis.
      functions: name of each gate's activation function (`sigmoid`, `tanh`, ...).
      activations: `(batch, time, n_gates, units)`, in the input's time order
        (also for `go_backwards`).
      valid: `(batch, time)` bool, False at masked steps, in the input's time order.
      outputs: `(batch, time, units)`, the layer's `return_sequences` output:
        in reversed time order for `go_backwards`, as Keras returns it; for a
        ConvLSTM `(batch, time, *positions, filters)`.
      positions: for a ConvLSTM the number of output positions, whose
        activations `units` holds position by position (`positions *
        filters`); 1 for LSTM and GRU cells.
      states: `(batch, time, units)`, the cell's state after each step in
        the input's time order (an LSTM's c_t, a GRU's h_t; see
        `names.STATES`), carried over at masked steps; None if not recorded.
      saturated_low, saturated_high: bool, shaped as `activations`: where
        each activation is saturated (see SATURATION_BOUNDS); None to read
        it from `functions`' bounds.
      reference_outputs: the framework's own output for the same calls,
        shaped and ordered as `outputs`, for the probe's self-check (the
        recomputation from the logged blocks must equal it); None where the
        probe could not capture it.
    """

    cell: str
    gates: tuple
    functions: tuple
    activations: np.ndarray
    valid: np.ndarray
    outputs: np.ndarray
    positions: int = 1
    states: np.ndarray = None
    saturated_low: np.ndarray = None
    saturated_high: np.ndarray = None
    reference_outputs: np.ndarray = None


def lstm(
    layout,
    arrays,
    x,
    mask=None,
    go_backwards=False,
    activation="tanh",
    recurrent_activation="sigmoid",
    initial_state=None,
):
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
    parts = _parts(layout, arrays, gates)
    act, rec = function(activation), function(recurrent_activation)
    x, valid, steps = _prepare(x, mask, go_backwards)
    xz = np.tensordot(x, parts["input"], axes=([2], [0]))  # (batch, time, 4, units)
    for name in ("bias", "input_bias", "recurrent_bias"):
        if name in parts:
            xz += parts[name]
    recurrent = parts["recurrent"]
    projection = parts.get("projection")
    batch, units = x.shape[0], recurrent.shape[-1]
    # (state, 4 * units): one matrix product per step; the state is the projection's size if any.
    recurrent = recurrent.reshape(recurrent.shape[0], -1)
    h, c = _initial_states(initial_state, [(batch, recurrent.shape[0]), (batch, units)], xz.dtype)
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
        "lstm", gates, functions, acts, valid, outputs, states=cells, saturated_low=low, saturated_high=high
    )


def gru(
    layout,
    arrays,
    x,
    mask=None,
    go_backwards=False,
    activation="tanh",
    recurrent_activation="sigmoid",
    reset_after=True,
    initial_state=None,
):
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
    parts = _parts(layout, arrays, gates)
    act, rec = function(activation), function(recurrent_activation)
    x, valid, steps = _prepare(x, mask, go_backwards)
    xz = np.tensordot(x, parts["input"], axes=([2], [0]))  # (batch, time, 3, units)
    for name in ("bias", "input_bias"):
        if name in parts:
            xz += parts[name]
    recurrent = parts["recurrent"]
    recurrent_bias = parts.get("recurrent_bias", 0)
    batch, units = x.shape[0], recurrent.shape[-1]
    recurrent_all = recurrent.reshape(units, -1)  # (units, 3 * units)
    (h,) = _initial_states(initial_state, [(batch, units)], xz.dtype)
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
        "gru", gates, functions, acts, valid, outputs, states=states, saturated_low=low, saturated_high=high
    )


def conv_lstm(
    layout,
    arrays,
    x,
    mask=None,
    go_backwards=False,
    activation="tanh",
    recurrent_activation="sigmoid",
    initial_state=None,
    strides=1,
    padding="valid",
    dilation_rate=1,
):
    """Runs a Keras ConvLSTM (channels_last) over `x` from the blocks of its weights.

    Args:
      layout: the cell's `layouts.Layout`; kernels `ks + (in, 4 * filters)`.
      x: `(batch, time, *spatial, in)` inputs.
      strides, padding, dilation_rate: the layer's, for the input
        convolution (`"valid"` or `"same"`, as TensorFlow pads); the
        recurrent convolution has stride 1 and `"same"` padding, as in Keras.
      initial_state: None for zeros, or `(h, c)`, each `(batch, *out, filters)`.
      Other arguments: as for `lstm`.

    Returns:
      a `Trace` with gates `input`, `forget`, `cell`, `output`; its units
      are the output positions times the filters.
    """
    gates = names.LSTM_GATES
    parts = _parts(layout, arrays, gates)
    act, rec = function(activation), function(recurrent_activation)
    x = np.asarray(x)
    rank = x.ndim - 3
    if rank < 1 or parts["input"].ndim != rank + 3:
        raise ValueError("expected inputs of shape (batch, time, *spatial, channels), got %s" % (x.shape,))
    strides, dilation = (_tuple(v, rank) for v in (strides, dilation_rate))
    x, valid, steps = _prepare(x.reshape(x.shape[:2] + (-1,)), mask, go_backwards, x.shape)
    kernel, recurrent = (
        parts["input"],
        parts["recurrent"],
    )  # ks + (in, 4, filters), ks + (filters, 4, filters)
    filters = recurrent.shape[-1]
    batch, time = x.shape[:2]
    xz = _conv(
        x.reshape((batch * time,) + x.shape[2:]),
        kernel.reshape(kernel.shape[:-2] + (-1,)),
        strides,
        padding,
        dilation,
    )
    out = xz.shape[1:-1]
    xz = xz.reshape((batch, time) + out + (4, filters))
    if "bias" in parts:
        xz += parts["bias"]
    recurrent = recurrent.reshape(recurrent.shape[:-2] + (-1,))
    h, c = _initial_states(initial_state, [(batch,) + out + (filters,)] * 2, xz.dtype)
    acts = np.empty(xz.shape, xz.dtype)
    low, high = np.zeros(xz.shape, bool), np.zeros(xz.shape, bool)
    outputs = np.empty((batch, time) + out + (filters,), xz.dtype)
    cells = np.empty((batch, time) + out + (filters,), xz.dtype)
    ones = (1,) * rank
    for k, t in enumerate(steps):
        z = xz[:, t] + _conv(h, recurrent, ones, "same", ones).reshape(xz.shape[:1] + xz.shape[2:])
        a = acts[:, t]
        a[..., (0, 1, 3), :] = rec(z[..., (0, 1, 3), :])
        a[..., 2, :] = act(z[..., 2, :])
        low[:, t][..., (0, 1, 3), :], high[:, t][..., (0, 1, 3), :] = rec.saturated(
            z[..., (0, 1, 3), :], a[..., (0, 1, 3), :]
        )
        low[:, t][..., 2, :], high[:, t][..., 2, :] = act.saturated(z[..., 2, :], a[..., 2, :])
        c_new = a[..., 1, :] * c + a[..., 0, :] * a[..., 2, :]
        h_new = a[..., 3, :] * act(c_new)
        keep = valid[:, t].reshape((batch,) + ones + (1,))
        c = np.where(keep, c_new, c)
        h = np.where(keep, h_new, h)
        outputs[:, k] = h
        cells[:, t] = c
    positions = int(np.prod(out))
    # (batch, time, *out, 4, filters) -> (batch, time, 4, positions * filters)
    acts, low, high = (
        np.moveaxis(v, -2, 2).reshape(batch, time, 4, positions * filters) for v in (acts, low, high)
    )
    functions = (rec.name, rec.name, act.name, rec.name)
    cells = cells.reshape(batch, time, positions * filters)
    return Trace(
        "conv_lstm",
        gates,
        functions,
        acts,
        valid,
        outputs,
        positions,
        cells,
        saturated_low=low,
        saturated_high=high,
    )


def _tuple(value, rank):
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * rank


def _conv(x, kernel, strides, padding, dilation):
    """Keras's channels_last convolution: `x` (n, *spatial, c), `kernel` (*k, c, o) -> (n, *out, o)."""
    rank = kernel.ndim - 2
    reach = [(k - 1) * d + 1 for k, d in zip(kernel.shape[:rank], dilation)]
    if padding == "same":
        # TensorFlow's "same": ceil(size / stride) outputs, the odd pad after.
        pads = []
        for size, r, s in zip(x.shape[1 : 1 + rank], reach, strides):
            total = max((-(-size // s) - 1) * s + r - size, 0)
            pads.append((total // 2, total - total // 2))
        x = np.pad(x, [(0, 0)] + pads + [(0, 0)])
    elif padding != "valid":
        raise ValueError('padding must be "valid" or "same", got %r' % (padding,))
    windows = np.lib.stride_tricks.sliding_window_view(x, reach, axis=tuple(range(1, 1 + rank)))
    windows = windows[
        (slice(None),)
        + tuple(slice(None, None, s) for s in strides)
        + (slice(None),)
        + tuple(slice(None, None, d) for d in dilation)
    ]  # (n, *out, c, *k)
    return np.tensordot(
        windows, kernel, axes=([1 + rank] + list(range(2 + rank, 2 + 2 * rank)), [rank] + list(range(rank)))
    )


def gate_statistics(trace):
    """Per-gate statistics of a trace's activations over its valid steps.

    Returns:
      dict from stat name (`act_mean`, `saturated_low`, `saturated_high`,
      `saturated`; see `metadata`) to a float64 array of shape `(n_gates,)`,
      NaN when no step is valid.
    """
    a = trace.activations[trace.valid]  # (valid steps, n_gates, units)
    stat_names = (names.ACT_MEAN, names.SATURATED_LOW, names.SATURATED_HIGH, names.SATURATED)
    if a.shape[0] == 0:
        return {stat: np.full(len(trace.gates), np.nan) for stat in stat_names}
    low, high = _saturated(trace)
    axes = (0, 2)
    result = {
        names.ACT_MEAN: a.mean(axis=axes, dtype=np.float64),
        names.SATURATED_LOW: low.mean(axis=axes),
        names.SATURATED_HIGH: high.mean(axis=axes),
    }
    result[names.SATURATED] = result[names.SATURATED_LOW] + result[names.SATURATED_HIGH]
    return result


def unit_saturation(trace):
    """Per unit, the fractions of valid steps saturated low and high, as in Karpathy et al. (2015).

    Saturation is that of `gate_statistics` (below 0.1 / above 0.9 for
    sigmoid gates, below -0.9 / above 0.9 for tanh gates, a slope below
    SATURATION_SLOPE for activations without a bounded range), counted over
    every sequence and valid time step of the trace.

    Returns:
      float32 array of shape `(n_gates, units, 2)`: `[..., 0]` the fraction
      left-saturated, `[..., 1]` right-saturated; NaN when no step is valid.
    """
    if not trace.valid.any():
        return np.full(trace.activations.shape[2:] + (2,), np.nan, dtype=np.float32)
    low, high = _saturated(trace)
    return np.stack([low.mean(axis=0), high.mean(axis=0)], axis=-1).astype(np.float32)


def _saturated(trace):
    """`(low, high)`: bool `(valid steps, n_gates, units)`, where the trace's activations are saturated."""
    if trace.saturated_low is not None:
        return trace.saturated_low[trace.valid], trace.saturated_high[trace.valid]
    a = trace.activations[trace.valid]
    low, high = (np.array([SATURATION_BOUNDS[f][i] for f in trace.functions])[:, None] for i in (0, 1))
    return a < low, a > high


def retention(trace, cap=names.RETENTION_CAP):
    """`(gate, horizon)`: the gate that keeps the state and its mean of min(1 / (1 - a), cap).

    1 / (1 - a) is how many steps a state component lasts when the gate keeps
    a fraction `a` of it at each step; capped, since a gate at 1 keeps it
    forever. NaN when no step is valid.
    """
    gate = RETENTION_GATE[trace.cell]
    kept = trace.activations[:, :, trace.gates.index(gate)][trace.valid].astype(np.float64)
    if kept.size == 0:
        return gate, float("nan")
    with np.errstate(divide="ignore"):
        return gate, float(np.minimum(1.0 / (1.0 - kept), cap).mean())


def concatenate(traces):
    """One `Trace` of several calls of one cell, joined along the time axis in the given order.

    Calls on fewer sequences than the largest are padded with invalid
    steps, so the statistics cover exactly the calls' valid steps and the
    activation map of sequence 0 spans every call. Calls whose units differ
    from the first's (a ConvLSTM cell called on another image size) are
    left out.
    """
    first = traces[0]
    if len(traces) == 1:
        return first
    traces = [t for t in traces if t.activations.shape[2:] == first.activations.shape[2:]]
    batch = max(t.activations.shape[0] for t in traces)

    def joined(field, fill):
        arrays = [getattr(t, field) for t in traces]
        if any(a is None for a in arrays):
            return None
        padded = [
            np.concatenate([a, np.full((batch - a.shape[0],) + a.shape[1:], fill, a.dtype)])
            if len(a) < batch
            else a
            for a in arrays
        ]
        return np.concatenate(padded, axis=1)

    return dataclasses.replace(
        first,
        activations=joined("activations", np.nan),
        valid=joined("valid", False),
        outputs=joined("outputs", np.nan),
        reference_outputs=joined("reference_outputs", np.nan),
        saturated_low=joined("saturated_low", False),
        saturated_high=joined("saturated_high", False),
        states=joined("states", np.nan),
    )


def activation_map(trace, sequence=0):
    """The activations of one sequence: float32 `(n_gates, time, units)`, NaN at masked steps.

    For a ConvLSTM, `units` are its filters, each the mean over the output
    positions: a map of every position would be too wide to read or store.
    """
    a = np.where(trace.valid[sequence, :, None, None], trace.activations[sequence], np.nan)
    if trace.positions > 1:
        a = a.reshape(a.shape[:2] + (trace.positions, -1)).mean(axis=2)
    return np.ascontiguousarray(a.transpose(1, 0, 2), dtype=np.float32)


# Bound of what `probe_sequences` keeps of a layer at one step: at most
# MAX_SEQUENCES sequences and MAX_SEQUENCE_VALUES values (gates and state,
# sequences, time steps, units), 256 KiB as float16.
MAX_SEQUENCES = 8
MAX_SEQUENCE_VALUES = 2**17


def probe_sequences(trace):
    """The gates and the state of the trace's first sequences over time, for the tab's Text view.

    As many sequences as fit MAX_SEQUENCES and MAX_SEQUENCE_VALUES; if one
    sequence alone does not fit, its first time steps. A ConvLSTM's units
    are its filters, each the mean over the output positions, as in
    `activation_map`.

    Returns:
      float32 `(n_gates + 1, sequences, time, units)`: the gates in the
      order of `trace.gates`, then the state (`names.STATES`); NaN at
      masked steps.
    """
    a = np.moveaxis(trace.activations, 2, 0)  # (gates, batch, time, units)
    a = np.concatenate([a, trace.states[None]], axis=0)
    if trace.positions > 1:
        a = a.reshape(a.shape[:3] + (trace.positions, -1)).mean(axis=3)
    rows, batch, time, units = a.shape
    per_sequence = rows * time * units
    sequences = max(1, min(batch, MAX_SEQUENCES, MAX_SEQUENCE_VALUES // per_sequence))
    time = min(time, max(1, MAX_SEQUENCE_VALUES // (rows * units)))
    a = np.where(trace.valid[None, :sequences, :time, None], a[:, :sequences, :time], np.nan)
    return np.ascontiguousarray(a, dtype=np.float32)


def _parts(layout, arrays, gates):
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


def _initial_states(given, shapes, dtype):
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


def _prepare(x, mask, go_backwards, shape=None):
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
