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

import importlib
import weakref
from typing import Any

import numpy as np

from tb_lstm_gates.core import scopes


def _first(out: Any) -> Any:
    """The outputs of what an RNN (a tensor) or a cell (outputs and states) returns."""
    return out[0] if isinstance(out, (list, tuple)) else out


def _legacy(cell: Any) -> bool:
    """Whether `cell` is a tf_keras cell (or a user's subclass of one)."""
    return any(klass.__module__.startswith("tf_keras") for klass in type(cell).__mro__)


def _rnn_class(cell: Any) -> Any:
    if _legacy(cell):
        return importlib.import_module("tf_keras").layers.RNN
    import keras

    return keras.layers.RNN


def _tensor(cell: Any, value: Any, dtype: Any) -> Any:
    """`value` as the framework's tensor: tf_keras takes no numpy array as an initial state."""
    if _legacy(cell):
        import tensorflow as tf

        return tf.convert_to_tensor(np.asarray(value, dtype))
    import keras

    return keras.ops.convert_to_tensor(np.asarray(value, dtype))


def _dtype(cell: Any) -> Any:
    return getattr(cell, "compute_dtype", None) or getattr(cell, "dtype", None) or "float32"


def _states(cell: Any, trace: Any, states: Any, dtype: Any) -> list[Any]:
    """The call's initial states, or zeros shaped as the outputs' (h, and c for an LSTM)."""
    if states is None:
        zero = np.zeros(trace.outputs[:, 0].shape, dtype)
        states = [zero] if cell.layout.cell == "gru" else [zero, zero]
    return [_tensor(cell.obj, s, dtype) for s in states]


# cell object -> {(go_backwards, masked): the loop over it}: built once, so each logged step reuses
# the same loop (on TensorFlow a traced `tf.function`; running Keras's loop eagerly step by step
# costs about 10 ms a step, which made the probe's blocking ten times its numpy recomputation).
_LOOPS: "weakref.WeakKeyDictionary[Any, dict[tuple[bool, bool], Any]]" = weakref.WeakKeyDictionary()


def _on_tensorflow(obj: Any) -> bool:
    if _legacy(obj):
        return True
    import keras

    return bool(keras.backend.backend() == "tensorflow")


def _loop(obj: Any, go_backwards: bool, masked: bool) -> Any:
    """Keras's own loop over `obj`, returning every step's output; compiled once on TensorFlow."""
    loops = _LOOPS.setdefault(obj, {})
    key = (go_backwards, masked)
    if key not in loops:
        rnn = _rnn_class(obj)(obj, return_sequences=True, go_backwards=go_backwards)

        def run(sequence: Any, states: Any, mask: Any = None) -> Any:
            kwargs = {} if mask is None else {"mask": mask}
            return _first(rnn(sequence, initial_state=states, training=False, **kwargs))

        if _on_tensorflow(obj):
            import tensorflow as tf

            run = tf.function(run, reduce_retracing=True)
        loops[key] = run
    return loops[key]


def layer_outputs(
    cell: Any, trace: Any, sequence: Any, mask: Any, go_backwards: bool, states: Any
) -> np.ndarray:
    """What Keras's loop gives running `cell` on a layer call's `sequence`: shaped and ordered as `trace.outputs`."""
    obj = cell.obj
    dtype = _dtype(obj)
    run = _loop(obj, go_backwards, mask is not None)
    args = [_tensor(obj, sequence, dtype), _states(cell, trace, states, dtype)]
    if mask is not None:
        args.append(_tensor(obj, mask, bool))
    out = run(*args)
    array: np.ndarray = np.asarray(scopes.variable_array(out)).reshape(trace.outputs.shape)
    return array


def step_outputs(cell: Any, trace: Any, inputs: Any, states: Any) -> np.ndarray:
    """What one direct call of `cell` on `inputs` and `states` returns, shaped as `trace.outputs`."""
    obj = cell.obj
    dtype = _dtype(obj)
    out = obj(_tensor(obj, inputs, dtype), _states(cell, trace, states, dtype), training=False)
    array: np.ndarray = np.asarray(scopes.variable_array(_first(out))).reshape(trace.outputs.shape)
    return array
