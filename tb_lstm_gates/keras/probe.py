"""Gate activations and gradients on a fixed probe batch, for `LSTMGatesCallback`.

At each logged step the model runs once on the probe, in inference mode,
with each probed cell intercepted wherever it is called: every recurrent
layer that runs it (`RNN`, LSTM, GRU, ConvLSTM, the directions of a
`Bidirectional`, a layer inside `TimeDistributed`) has its `call` wrapped to
record its sequence, mask and initial state, and the cell's own `call` is
wrapped to record its inputs and states when the model calls it directly
(a decoder stepping `x, state = self.cell(x, states=state)` in a Python
loop). Then `tb_lstm_gates.core.activations` runs each call's recurrence in
numpy from the split blocks, so the statistics describe the gates as the
split defines them, whatever the model's structure. `StackedRNNCells` are
run cell after cell (each reads the previous cell's outputs); a backward
layer reads its sequence from the end.

A cell called several times in one pass (a layer applied to several
inputs, a step loop, the outer steps of `TimeDistributed`) gets every call,
in call order, joined along the time axis (`activations.concatenate`): the
statistics cover all of them, and the map of the probe's first sequence
spans them. One cell object is one logged cell: calls from separate places
sharing it (an encoder's and a decoder's) are joined the same way, in call
order, as they train the same weights.

Activations are those of the cell: Keras's sigmoid, hard_sigmoid, tanh, relu
and linear through numpy twins proven equal to Keras's own in the tests,
every other activation (and any callable) through the cell's own function
on numpy input, that is the backend's.

The probe never changes training. Stateful layers run on it from a zero state
(the probe's sequences are not the training batch the carried state belongs
to) and keep their carried state; their fixed batch size does not bind the
probe. Every state a run in inference mode could touch (layer states,
non-trainable variables such as random seeds, metric variables, which the
gradients' loss updates) is put back as it was.

ConvLSTM layers (channels_last) are probed too: their gates are
convolutions, computed in numpy as TensorFlow pads and strides them; their
statistics run over every output position and filter, and their activation
maps show each filter's mean over the positions.

Not probed, with a warning: channels_first ConvLSTM layers, CuDNN layers,
tf_keras layers with `time_major=True`, and cells the model does not call on
the probe.
"""

import dataclasses
import warnings
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from tb_lstm_gates.core import activations, callers, layouts, stats
from tb_lstm_gates.keras import probe_reference
from tb_lstm_gates.keras.probe_calls import calls_to_numpy, record_calls, to_numpy
from tb_lstm_gates.keras.probe_run import (
    GRADIENT_BACKENDS,
    gradient_function,
    preserved,
    tf_function,
    uses_tensorflow,
)
from tb_lstm_gates.logs import metadata, summary

# The probe runs at every logged step: keep it a handful of sequences.
MAX_SEQUENCES = 256


def check_probe(probe: Any, gradients: Any) -> Any:
    """`(x, y)` from the callback's `probe` argument.

    `probe` is `x` or a tuple `(x, y)`; `x` is an array, a list of arrays
    (one per model input) or a dict of arrays (by input name); `y` holds
    targets like `x`. Every array holds the same number of sequences on
    its first axis, 1 to MAX_SEQUENCES.

    Raises:
      ValueError: naming what is wrong.
    """
    if probe is None:
        if gradients:
            raise ValueError("probe_gradients=True needs probe=(x, y), with targets")
        return None, None
    x, y = probe if isinstance(probe, tuple) and len(probe) == 2 else (probe, None)
    if gradients:
        if y is None:
            raise ValueError("probe_gradients=True needs probe=(x, y), with targets; got inputs only")
        if keras.backend.backend() not in GRADIENT_BACKENDS:
            raise ValueError(
                "probe_gradients=True needs Keras on %s; Keras runs on %s"
                % (", ".join(GRADIENT_BACKENDS), keras.backend.backend())
            )
    x = _checked_arrays("probe", x)
    sizes = {a.shape[0] for a in keras.tree.flatten(x)}
    if y is not None:
        y = _checked_arrays("probe targets", y)
        sizes |= {a.shape[0] for a in keras.tree.flatten(y)}
    if len(sizes) != 1:
        raise ValueError("probe arrays hold different numbers of sequences: %s" % sorted(sizes))
    (n,) = sizes
    if not 1 <= n <= MAX_SEQUENCES:
        raise ValueError(
            "probe holds %d sequences; give 1 to %d (it is run at every logged step, a few dozen "
            "show the gates well)" % (n, MAX_SEQUENCES)
        )
    return x, y


def _checked_arrays(what: Any, value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _checked_array(what, v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and value and all(hasattr(v, "shape") for v in value):
        return [_checked_array(what, v) for v in value]
    return _checked_array(what, value)


def _checked_array(what: Any, value: Any) -> Any:
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as e:
        array, error = None, e
    if array is None or array.dtype == object or array.ndim == 0:
        raise ValueError(
            "%s must be an array (or a list or dict of arrays) of numbers with the sequences on its "
            "first axis, got %s" % (what, error if array is None else "%r" % type(value).__name__)
        )
    return array


class ProbeLogger:
    """Writes per-gate activation statistics (and gradient norms) of `cells` on a probe.

    Args:
      model: the Keras (or tf_keras) model being trained, built.
      cells: the `scopes.Cell`s to log.
      x, y: the probe's inputs and targets, as `check_probe` returns them.
      gradients: also write the norm of the loss's gradient for each block of
        a trainable weight.
    """

    def __init__(self, model: Any, cells: Any, x: Any, y: Any = None, gradients: Any = False) -> None:
        self._model = model
        self._x, self._y = x, y
        self._gradient_cells = cells if gradients else []
        self._gradient_fn: Any = None
        self._gradient_key: tuple[int, ...] | None = None
        self._cells: list[Any] = []  # the probed cells
        self._owners: dict[
            int, tuple[Any, list[Any] | None]
        ] = {}  # id(recurrent layer) -> (layer, its stack of probed cells or None)
        self._order: list[tuple[int, int]] = []  # (id of a layer or cell, index of its call), in call order
        self._missing_warned = False
        self._unchecked: set[str] = set()  # layers whose self-check could not run, warned about
        self._warned: set[str] = set()  # layers whose self-check failed, warned about
        self._compiled_capture: Any = None  # a tf.function of _run_recording, False where one cannot be
        skipped = []
        for cell in cells:
            reason = _unprobed(cell)
            if reason:
                skipped.append("%s (%s)" % (cell.layer, reason))
            else:
                self._cells.append(cell)
        by_object = {id(cell.obj): cell for cell in self._cells}
        for cell in self._cells:
            for rnn, stack in cell.owners:
                probed = [by_object.get(id(c)) for c in stack]
                # A stack holding a cell that is not probed cannot be run through.
                self._owners[id(rnn)] = (rnn, None if None in probed else probed)
        if skipped:
            warnings.warn(
                "tb-lstm-gates computes no probe activations for %s" % "; ".join(skipped),
                stacklevel=callers.user_stacklevel(),
            )

    def _capture(self) -> Any:
        """`{id(layer or cell): [(inputs, mask, states)]}`: every call on the probe, as numpy; sets `_order`."""
        if self._compiled_capture is None and uses_tensorflow(self._model):
            try:
                self._compiled_capture = tf_function(self._run_recording)
                calls = self._compiled_capture(self._x)
            except Exception:  # e.g. a layer called inside a loop Keras traces: run eagerly instead
                self._compiled_capture = False
            else:
                return calls_to_numpy(calls)
        if self._compiled_capture:
            return calls_to_numpy(self._compiled_capture(self._x))
        return calls_to_numpy(self._run_recording(self._x))

    def _run_recording(self, x: Any) -> Any:
        """Runs the model on `x` in inference mode; returns what each probed layer's and cell's calls received.

        Under `tf.function` this runs once, while tracing: the graph then
        returns the recorded tensors at every call, at the speed of `predict`,
        and `_order` keeps the order the trace saw.
        """
        calls: dict[int, list[Any]] = {key: [] for key in self._owners}
        calls.update({id(cell.obj): [] for cell in self._cells})
        order: list[tuple[int, int]] = []
        running: list[Any] = []  # the probed recurrent layers running now: their cells' calls are theirs

        def sink(key: Any, owner: Any) -> Any:
            def add(inputs: Any) -> None:
                if owner or not running:
                    order.append((key, len(calls[key])))
                    calls[key].append(inputs)

            return add

        undo = []
        try:
            for key, (rnn, _) in self._owners.items():
                undo.append(record_calls(rnn, sink(key, True), running))
            for cell in self._cells:
                undo.append(record_calls(cell.obj, sink(id(cell.obj), False)))
            self._model(x, training=False)
        finally:
            for restore in reversed(undo):
                restore()
        self._order = order
        return calls

    def traces(self) -> Any:
        """`[(cell, trace)]`: each probed cell and its `activations.Trace` on the probe, now (all its calls)."""
        return [(cell, activations.concatenate(calls)) for cell, calls in self.call_traces() if calls]

    def call_traces(self) -> Any:
        """`[(cell, [trace of each call, in call order])]` for every probed cell, on the probe, now."""
        with preserved(self._model):
            calls = self._capture()
        traced: dict[int, list[Any]] = {id(cell.obj): [] for cell in self._cells}
        for key, index in self._order:
            inputs, mask, states = calls[key][index]
            if key in traced:
                # A direct call of the cell: one step from the states it was given.
                cell = next(c for c in self._cells if id(c.obj) == key)
                trace = _trace(cell, inputs[:, None], None, False, states)
                traced[key].append(self._checked(trace, cell, probe_reference.step_outputs, inputs, states))
                continue
            rnn, stack = self._owners[key]
            if stack is None:
                continue
            # `find_cells` lists stacked cells in their order, and Keras
            # orders their initial states the same way.
            sequence = inputs
            for cell in stack:
                count = 1 if cell.layout.cell == "gru" else 2
                own, states = (None, None) if states is None else (states[:count], states[count:])
                trace = _trace(cell, sequence, mask, rnn.go_backwards, own)
                traced[id(cell.obj)].append(
                    self._checked(
                        trace, cell, probe_reference.layer_outputs, sequence, mask, rnn.go_backwards, own
                    )
                )
                # The next stacked cell reads this one's outputs, in the input's time order.
                sequence = trace.outputs[:, ::-1] if rnn.go_backwards else trace.outputs
        missing = [cell.layer for cell in self._cells if not traced[id(cell.obj)]]
        if missing and not self._missing_warned:
            self._missing_warned = True
            warnings.warn(
                "tb-lstm-gates computes no probe activations for %s: the model does not call %s "
                "when it runs on the probe" % (", ".join(missing), "it" if len(missing) == 1 else "them"),
                stacklevel=callers.user_stacklevel(),
            )
        return [(cell, traced[id(cell.obj)]) for cell in self._cells]

    def _checked(self, trace: Any, cell: Any, reference: Callable[..., Any], *call: Any) -> Any:
        """`trace` with Keras's own outputs of the call (`probe_reference`), for the self-check."""
        try:
            with preserved(self._model):
                outputs = reference(cell, trace, *call)
        except Exception as e:  # never a failed probe for a failed check; say it once
            if cell.layer not in self._unchecked:
                self._unchecked.add(cell.layer)
                warnings.warn(
                    "tb-lstm-gates cannot self-check the probe of %s (%s: %s): nothing verifies that its "
                    "logged weights are the ones it computes with" % (cell.layer, type(e).__name__, e),
                    stacklevel=callers.user_stacklevel(),
                )
            return trace
        return dataclasses.replace(trace, reference_outputs=outputs)

    def log(self, writer: Any, maps: Any) -> None:
        """Adds the probe's statistics (and activation maps if `maps`) to the writer's current step."""
        for cell, trace in self.traces():
            summary.write_probe_trace(writer, cell.layer, trace, maps, self._warned)
        if self._gradient_cells:
            self._log_gradients(writer)

    def _log_gradients(self, writer: Any) -> None:
        # Gradients of frozen weights would read as "still learning"; they
        # are left out, and the set is read again at each step, since a
        # layer can be unfrozen between two `fit` calls.
        trainable = {id(v) for v in self._model.trainable_variables}
        pieces = []
        for cell in self._gradient_cells:
            named = [(name, v) for name, v in cell.variables.items() if id(v) in trainable]
            if named:
                pieces.append((cell, named))
        variables = [v for _, named in pieces for _, v in named]
        if not variables:
            return
        key = tuple(id(v) for v in variables)
        if self._gradient_key != key:
            self._gradient_fn, self._gradient_key = gradient_function(self._model, variables), key
        with preserved(self._model):
            grads = iter(list(self._gradient_fn(self._x, self._y)))
        for cell, named in pieces:
            arrays = {
                name: np.zeros(v.shape, np.float32) if g is None else to_numpy(g)
                for (name, v), g in zip(named, grads)
            }
            weights = {k: p for k, p in cell.layout.weights.items() if k in arrays}
            layout = layouts.Layout(cell.layout.cell, weights)
            for part, gates, view in layout.blocks(arrays):
                l2 = stats.gate_stats(view)["l2"]
                writer.write_gate_stats(cell.layer, cell.layout.cell, part, gates, {metadata.GRAD_NORM: l2})


def _unprobed(cell: Any) -> Any:
    """Why `cell` cannot be probed, or None."""
    if cell.layout.cell not in ("lstm", "gru", "conv_lstm") or not hasattr(cell.obj, "recurrent_activation"):
        return "%s layers are not probed" % type(cell.obj).__name__
    if (
        cell.layout.cell == "conv_lstm"
        and getattr(cell.obj, "data_format", "channels_last") != "channels_last"
    ):
        return "only channels_last ConvLSTM layers are probed"
    if any(getattr(rnn, "time_major", False) for rnn, _ in cell.owners):
        return "time_major layers are not probed"
    return None


def _function(fn: Any) -> Any:
    """The `activations.Function` of a cell's activation: a numpy twin of Keras's own, else `fn` itself."""
    name = getattr(fn, "__name__", None) or type(fn).__name__
    if name in activations.FUNCTIONS and _from_keras(fn):
        return activations.function(name)
    return activations.Function(name, lambda z: to_numpy(fn(z)))


def _from_keras(fn: Any) -> Any:
    return (getattr(fn, "__module__", None) or "").split(".")[0] in ("keras", "tf_keras")


def _trace(cell: Any, x: Any, mask: Any, go_backwards: Any, initial_state: Any = None) -> Any:
    obj = cell.obj
    kwargs = dict(
        activation=_function(obj.activation),
        recurrent_activation=_function(obj.recurrent_activation),
        initial_state=initial_state,
    )
    if cell.layout.cell == "gru":
        return activations.gru(
            cell.layout, cell.arrays(), x, mask, go_backwards, reset_after=obj.reset_after, **kwargs
        )
    if cell.layout.cell == "conv_lstm":
        return activations.conv_lstm(
            cell.layout,
            cell.arrays(),
            x,
            mask,
            go_backwards,
            strides=obj.strides,
            padding=obj.padding.lower(),
            dilation_rate=obj.dilation_rate,
            **kwargs,
        )
    return activations.lstm(cell.layout, cell.arrays(), x, mask, go_backwards, **kwargs)
