"""The ConvLSTM recurrence (`conv_lstm`), with Keras's channels_last convolution in numpy.

Follows `recurrences`' conventions: initial state, masks and
`go_backwards` as Keras's `RNN` layer treats them.
"""

from typing import Any

import numpy as np

from tb_lstm_gates.core import names
from tb_lstm_gates.core.functions import function
from tb_lstm_gates.core.recurrences import gate_parts, initial_states, prepare_inputs
from tb_lstm_gates.core.trace import Trace


def conv_lstm(
    layout: Any,
    arrays: Any,
    x: np.ndarray,
    mask: np.ndarray | None = None,
    go_backwards: bool = False,
    activation: Any = "tanh",
    recurrent_activation: Any = "sigmoid",
    initial_state: Any = None,
    strides: Any = 1,
    padding: str = "valid",
    dilation_rate: Any = 1,
) -> Trace:
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
    parts = gate_parts(layout, arrays, gates)
    act, rec = function(activation), function(recurrent_activation)
    x = np.asarray(x)
    rank = x.ndim - 3
    if rank < 1 or parts["input"].ndim != rank + 3:
        raise ValueError("expected inputs of shape (batch, time, *spatial, channels), got %s" % (x.shape,))
    strides, dilation = (_tuple(v, rank) for v in (strides, dilation_rate))
    x, valid, steps = prepare_inputs(x.reshape(x.shape[:2] + (-1,)), mask, go_backwards, x.shape)
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
    h, c = initial_states(initial_state, [(batch,) + out + (filters,)] * 2, xz.dtype)
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
        outputs_backwards=go_backwards,
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
