"""The framework's own outputs of each probed call, for the probe's self-check (`core.selfcheck`).

The probe recomputes a cell's gates in numpy from the blocks it logs; here
the cell's own `call` runs on the same inputs, states and mask, through
Keras's (or tf_keras's) own recurrent loop: a call of a recurrent layer
through an `RNN` around the cell, with `return_sequences=True` and the
layer's `go_backwards`, so every step's output is there, in the order of
`Trace.outputs` (masked steps carry the previous output over, as the
recomputation does); a direct call of the cell, one step. If a custom cell's
`call` computes with other weights or inputs than those the probe reads,
the two differ.
"""

import numpy as np

from tb_lstm_gates.keras.probe_calls import flatten, to_numpy


def _rnn_class(cell):
    if type(cell).__module__.startswith("tf_keras"):
        import tf_keras

        return tf_keras.layers.RNN
    import keras

    return keras.layers.RNN


def _dtype(cell):
    return getattr(cell, "compute_dtype", None) or "float32"


def _states(cell_kind, trace, states, dtype):
    """The call's initial states, or zeros shaped as the outputs' (h, and c for an LSTM)."""
    if states is not None:
        return [np.asarray(s, dtype) for s in states]
    zero = np.zeros(trace.outputs[:, 0].shape, dtype)
    return [zero] if cell_kind == "gru" else [zero, zero.copy()]


def layer_outputs(cell, trace, sequence, mask, go_backwards, states):
    """What Keras's loop gives running `cell` on a layer call's `sequence`: shaped and ordered as `trace.outputs`."""
    obj = cell.obj
    dtype = _dtype(obj)
    rnn = _rnn_class(obj)(obj, return_sequences=True, go_backwards=go_backwards)
    kwargs = {"initial_state": _states(cell.layout.cell, trace, states, dtype), "training": False}
    if mask is not None:
        kwargs["mask"] = np.asarray(mask, bool)
    out = rnn(np.asarray(sequence, dtype), **kwargs)
    return to_numpy(flatten(out)[0]).reshape(trace.outputs.shape)


def step_outputs(cell, trace, inputs, states):
    """What one direct call of `cell` on `inputs` and `states` returns, shaped as `trace.outputs`."""
    obj = cell.obj
    dtype = _dtype(obj)
    out = obj(np.asarray(inputs, dtype), _states(cell.layout.cell, trace, states, dtype), training=False)
    return to_numpy(flatten(out)[0]).reshape(trace.outputs.shape)
