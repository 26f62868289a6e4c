"""What each probed recurrent layer and cell receives when the model runs on the probe.

`record_calls` wraps a layer's (or cell's) `call` to record its inputs,
mask and initial state; `calls_to_numpy` turns the recorded calls into
numpy for `activations`.
"""

import inspect
from typing import Any

from tb_lstm_gates.core import scopes


def record_calls(layer: Any, add: Any, running: Any = None) -> Any:
    """Wraps `layer.call` to give `add` the `(inputs, mask, states)` of each call; returns the undo.

    `running`: a list `layer` is on while its call runs, or None.
    """
    original = layer.call
    signature = inspect.signature(original)
    own = layer.__dict__.get("call")

    def call(*args: Any, **kwargs: Any) -> Any:
        add(_call_inputs(signature, args, kwargs))
        if running is None:
            return original(*args, **kwargs)
        running.append(layer)
        try:
            return original(*args, **kwargs)
        finally:
            running.pop()

    # `object.__setattr__`: the layer's own `__setattr__` would track the
    # function; an instance attribute shadows the class's method for this
    # layer only, wherever Keras looks it up (`__call__`, TimeDistributed).
    object.__setattr__(layer, "call", call)

    def undo() -> None:
        if own is None:
            object.__delattr__(layer, "call")
        else:
            object.__setattr__(layer, "call", own)

    return undo


def _call_inputs(signature: Any, args: Any, kwargs: Any) -> Any:
    """`(inputs, mask, states)` of one call of a recurrent layer or cell, as given (None when absent)."""
    arguments = signature.bind(*args, **kwargs).arguments
    sequence = arguments[next(iter(signature.parameters))]
    states, mask = arguments.get("initial_state", arguments.get("states")), arguments.get("mask")
    if isinstance(sequence, (list, tuple)):
        # tf_keras hands a functional model's `initial_state` in with the inputs.
        sequence, rest = sequence[0], list(sequence[1:])
        states = states if states is not None or not rest else rest
    if isinstance(mask, (list, tuple)):
        mask = mask[0]
    return sequence, mask, None if states is None else flatten(states) or None


def calls_to_numpy(calls: Any) -> Any:
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


def flatten(structure: Any) -> Any:
    if isinstance(structure, (list, tuple)):
        return [leaf for item in structure for leaf in flatten(item)]
    return [structure]


def to_numpy(value: Any) -> Any:
    """A tensor or variable of any Keras backend (or tf_keras) as a numpy array, without numpy 2's warnings.

    `np.array` of a Keras 3 variable, or `keras.ops.convert_to_numpy` of one,
    warns under numpy 2 (its `__array__` takes no `copy`): a Keras 3
    variable is read through its backend tensor instead.
    """
    return scopes.variable_array(value)
