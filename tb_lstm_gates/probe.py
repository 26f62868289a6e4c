"""Gate activations and gradients on a fixed probe batch, for `LSTMGatesCallback`.

At each logged step Keras computes what each recurrent layer receives on the
probe (a sub-model from the model's inputs to the layer's input and mask),
then `tb_lstm_gates.activations` runs the cell's recurrence in numpy from the
split blocks, so the statistics describe the gates as the split defines
them.

Covered: LSTM, GRU and `RNN` layers over LSTMCell/GRUCell, `Bidirectional`
wrappers (the backward layer reads the sequence from its end),
`StackedRNNCells` (each cell reads the previous cell's outputs), in
functional and Sequential models, nested or not. Skipped, with a warning:
ConvLSTM layers, layers inside `TimeDistributed`, CuDNN layers, layers
called with an `initial_state` and cells with activations other than
sigmoid, hard_sigmoid and tanh. States start at zero, also for stateful layers.
"""

import warnings

import keras
import numpy as np

from tb_lstm_gates import activations, metadata, stats

# The probe runs at every logged step: keep it a handful of sequences.
MAX_SEQUENCES = 256
# Keras backends whose gradients `_gradient_function` takes.
GRADIENT_BACKENDS = ("tensorflow", "torch", "jax")


def check_probe(probe, gradients):
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
    x = _arrays("probe", x)
    sizes = {a.shape[0] for a in keras.tree.flatten(x)}
    if y is not None:
        y = _arrays("probe targets", y)
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


def _arrays(what, value):
    if isinstance(value, dict):
        return {k: _array(what, v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and value and all(hasattr(v, "shape") for v in value):
        return [_array(what, v) for v in value]
    return _array(what, value)


def _array(what, value):
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
      model: the Keras model being trained (built).
      cells: the `discover.Cell`s to log.
      x, y: the probe's inputs and targets, as `check_probe` returns them.
      gradients: also write the norm of the loss's gradient for each block.
    """

    def __init__(self, model, cells, x, y=None, gradients=False):
        self._model = model
        self._x, self._y = x, y
        self._gradient_cells = cells if gradients else []
        self._gradient_fn = None
        self._layers = []  # (recurrent layer, chain of layers down to the one fed, cells in stack order)
        self._submodels = {}
        skipped = []
        by_layer = {}
        for cell in cells:
            reason = self._plan(cell, by_layer)
            if reason:
                skipped.append("%s (%s)" % (cell.layer, reason))
        if skipped:
            warnings.warn(
                "tb-lstm-gates computes no probe activations for %s" % "; ".join(skipped), stacklevel=3
            )

    def _plan(self, cell, by_layer):
        """Adds `cell` to the layers to probe, or says why it cannot be."""
        rnn = cell.path[-1]
        if cell.layout.cell != "lstm" and cell.layout.cell != "gru":
            return "%s layers are not probed" % type(rnn).__name__
        if getattr(rnn, "cell", None) is None:
            return "only layers with a Keras cell are probed"
        for name in ("activation", "recurrent_activation"):
            function = getattr(getattr(cell.obj, name, None), "__name__", None)
            if function not in activations.FUNCTIONS:
                return "its %s %r is not one of %s" % (name, function, ", ".join(sorted(activations.FUNCTIONS)))
        fed = cell.path[-2] if len(cell.path) > 1 and getattr(cell.path[-2], "forward_layer", None) else rnn
        chain = cell.path[: cell.path.index(fed) + 1]
        if any(getattr(c, "layers", None) is None for c in chain[:-1]):
            return "it sits in a wrapper (%s)" % ", ".join(
                type(c).__name__ for c in chain[:-1] if getattr(c, "layers", None) is None
            )
        if id(rnn) not in by_layer:
            try:
                for container, child in zip(chain, chain[1:]):
                    self._submodel(container, child, fed=child is fed)
            except ValueError as e:
                return str(e)
            by_layer[id(rnn)] = (rnn, chain, [])
            self._layers.append(by_layer[id(rnn)])
        by_layer[id(rnn)][2].append(cell)
        return None

    def _submodel(self, container, child, fed):
        """A model from `container`'s inputs to `{"inputs": child's inputs, "mask": their mask}`.

        The mask is there when `container`'s graph gives `child` one.
        """
        key = (id(container), id(child))
        if key in self._submodels:
            return self._submodels[key]
        # A Sequential model keeps its graph in a functional model of its own.
        graph = getattr(container, "_functional", None) or container
        for node in getattr(child, "_inbound_nodes", ()):
            args, kwargs = node.arguments.args, node.arguments.kwargs
            if fed and kwargs.get("initial_state") is not None:
                raise ValueError("it is called with an initial_state")
            outputs = {"inputs": args[0] if args else kwargs.get("sequences", kwargs.get("inputs"))}
            if kwargs.get("mask") is not None:
                outputs["mask"] = kwargs["mask"]
            try:
                self._submodels[key] = keras.Model(graph.input, outputs)
            except (ValueError, AttributeError):
                continue
            return self._submodels[key]
        raise ValueError("its input cannot be reached from the inputs of %s" % container.name)

    def _layer_input(self, chain, cache):
        """`(sequence, mask)` that the last layer of `chain` receives on the probe, as numpy."""
        key = tuple(id(c) for c in chain)
        if key not in cache:
            value, mask = self._x, None
            for container, child in zip(chain, chain[1:]):
                # A mask entering a nested model flows through its graph as
                # Keras attaches it to each tensor; a mask made inside the
                # graph is one of the sub-model's outputs.
                submodel = self._submodels[id(container), id(child)]
                # predict_on_batch runs a compiled function, far faster than an
                # eager call when recurrent layers lie before the one fed.
                if mask is None:
                    out = submodel.predict_on_batch(value)
                else:
                    out = submodel(value, training=False, mask=mask)
                value = out["inputs"]
                mask = out["mask"] if "mask" in out else getattr(keras.tree.flatten(value)[0], "_keras_mask", None)
            cache[key] = (
                keras.ops.convert_to_numpy(value),
                None if mask is None else keras.ops.convert_to_numpy(mask),
            )
        return cache[key]

    def traces(self):
        """`[(cell, trace)]`: each probed cell and its `activations.Trace` on the probe, now."""
        inputs, traced = {}, []
        for rnn, chain, cells in self._layers:
            sequence, mask = (self._x, None) if len(chain) == 1 else self._layer_input(chain, inputs)
            # `find_cells` lists stacked cells in their order.
            for cell in cells:
                trace = _trace(cell, sequence, mask, rnn.go_backwards)
                traced.append((cell, trace))
                # The next stacked cell reads this one's outputs, in the input's time order.
                sequence = trace.outputs[:, ::-1] if rnn.go_backwards else trace.outputs
        return traced

    def log(self, writer, maps):
        """Adds the probe's statistics (and activation maps if `maps`) to the writer's current step."""
        for cell, trace in self.traces():
            writer.write_gate_stats(
                cell.layer, trace.cell, metadata.ACTIVATION, trace.gates, activations.gate_statistics(trace)
            )
            gate, horizon = activations.retention(trace)
            writer.write_scalar(cell.layer, trace.cell, metadata.ACTIVATION, gate, metadata.RETENTION, horizon)
            saturation = activations.unit_saturation(trace)
            writer.write_unit_saturation(cell.layer, trace.cell, trace.gates, saturation)
            if maps:
                writer.write_activation_maps(cell.layer, trace.cell, trace.gates, activations.activation_map(trace))
        if self._gradient_cells:
            self._log_gradients(writer)

    def _log_gradients(self, writer):
        if self._gradient_fn is None:
            self._gradient_fn = _gradient_function(self._model, self._gradient_cells)
        grads = iter(self._gradient_fn(self._x, self._y))
        for cell in self._gradient_cells:
            arrays = {
                name: np.zeros(v.shape, np.float32) if g is None else keras.ops.convert_to_numpy(g)
                for (name, v), g in zip(cell.variables.items(), grads)
            }
            for part, gates, view in cell.layout.blocks(arrays):
                l2 = stats.gate_stats(view)["l2"]
                writer.write_gate_stats(cell.layer, cell.layout.cell, part, gates, {metadata.GRAD_NORM: l2})


def _gradient_function(model, cells):
    """`f(x, y)`: gradients of the model's loss w.r.t. every variable of `cells`, in order.

    One function per Keras backend (GRADIENT_BACKENDS): a `tf.function` with a
    `GradientTape`, `torch.autograd.grad` (which leaves the parameters'
    `.grad` alone), or `jax.grad` of a stateless call. None of them changes
    a variable.
    """
    variables = [v for cell in cells for v in cell.variables.values()]

    def loss_of(x, y):
        y_pred = model(x, training=False)
        return model.compute_loss(x=x, y=y, y_pred=y_pred, training=False)

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        @tf.function
        def tf_gradients(x, y):
            with tf.GradientTape() as tape:
                loss = loss_of(x, y)
            return tape.gradient(loss, variables)

        return tf_gradients
    if backend == "torch":
        import torch

        def torch_gradients(x, y):
            values = [v.value for v in variables]
            with torch.enable_grad():
                loss = loss_of(x, y)
            return torch.autograd.grad(loss, values, allow_unused=True)

        return torch_gradients
    if backend == "jax":
        import jax

        def jax_gradients(x, y):
            def loss_at(values):
                # The scope makes the variables read `values`, which jax traces.
                with keras.StatelessScope(state_mapping=list(zip(variables, values))):
                    return loss_of(x, y)

            return jax.grad(loss_at)([v.value for v in variables])

        return jax_gradients
    raise ValueError("probe_gradients=True needs Keras on %s, not %s" % (", ".join(GRADIENT_BACKENDS), backend))


def _trace(cell, x, mask, go_backwards):
    obj = cell.obj
    kwargs = dict(activation=obj.activation.__name__, recurrent_activation=obj.recurrent_activation.__name__)
    if cell.layout.cell == "gru":
        return activations.gru(cell.layout, cell.arrays(), x, mask, go_backwards, reset_after=obj.reset_after,
                               **kwargs)
    return activations.lstm(cell.layout, cell.arrays(), x, mask, go_backwards, **kwargs)
