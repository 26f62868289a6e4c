"""What each recurrent layer receives when the model runs on the probe.

`record_calls` wraps a layer's `call` to record its sequence, mask and
initial state; `calls_to_numpy` and `merge_calls` turn a layer's recorded
calls into one numpy `(sequence, mask, states)` for `activations`.
"""

import inspect

import keras
import numpy as np


def record_calls(layer, sink):
    """Wraps `layer.call` to append `(sequence, mask, states)` of each call to `sink`; returns the undo."""
    original = layer.call
    signature = inspect.signature(original)
    own = layer.__dict__.get("call")

    def call(*args, **kwargs):
        sink.append(_call_inputs(signature, args, kwargs))
        return original(*args, **kwargs)

    # `object.__setattr__`: the layer's own `__setattr__` would track the
    # function; an instance attribute shadows the class's method for this
    # layer only, wherever Keras looks it up (`__call__`, TimeDistributed).
    object.__setattr__(layer, "call", call)

    def undo():
        if own is None:
            object.__delattr__(layer, "call")
        else:
            object.__setattr__(layer, "call", own)

    return undo


def _call_inputs(signature, args, kwargs):
    """`(sequence, mask, states)` of one call of a recurrent layer, as given (None when absent)."""
    arguments = signature.bind(*args, **kwargs).arguments
    sequence = arguments[next(iter(signature.parameters))]
    states, mask = arguments.get("initial_state"), arguments.get("mask")
    if isinstance(sequence, (list, tuple)):
        # tf_keras hands a functional model's `initial_state` in with the inputs.
        sequence, rest = sequence[0], list(sequence[1:])
        states = states if states is not None or not rest else rest
    if isinstance(mask, (list, tuple)):
        mask = mask[0]
    return sequence, mask, None if states is None else flatten(states) or None


def calls_to_numpy(calls):
    return {
        key: [
            (
                to_numpy(sequence),
                None if mask is None else to_numpy(mask).astype(bool),
                None if states is None else [to_numpy(s) for s in states],
            )
            for sequence, mask, states in recorded
        ]
        for key, recorded in calls.items()
    }


def flatten(structure):
    if isinstance(structure, (list, tuple)):
        return [leaf for item in structure for leaf in flatten(item)]
    return [structure]


def merge_calls(calls):
    """One `(sequence, mask, states)` from a layer's calls: those shaped as the first, along the batch axis.

    A layer inside `TimeDistributed` is called once per step of the outer axis
    (Keras 3) or once on the outer axis folded into the batch (tf_keras); a
    shared layer is called once per use.
    """
    first = calls[0]
    same = [
        c
        for c in calls
        if c[0].shape[1:] == first[0].shape[1:]
        and (c[1] is None) == (first[1] is None)
        and (c[2] is None) == (first[2] is None)
    ]
    sequence = np.concatenate([c[0] for c in same])
    mask = None if first[1] is None else np.concatenate([c[1] for c in same])
    states = None if first[2] is None else [np.concatenate(parts) for parts in zip(*(c[2] for c in same))]
    return sequence, mask, states


def to_numpy(value):
    """A tensor or variable of any Keras backend as a numpy array."""
    if hasattr(value, "detach"):  # a torch tensor that may require grad
        value = value.detach().cpu()
    if hasattr(value, "numpy"):  # variables and eager tensors of every backend Keras runs on
        return np.asarray(value.numpy())
    return np.asarray(keras.ops.convert_to_numpy(value))
