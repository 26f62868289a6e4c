"""The Keras callback's core cases on the torch and JAX backends (run by tests/test_keras_backends.py).

Collected only in a process started with KERAS_BACKEND=torch or jax (see
tests/conftest.py).
"""

import time

import keras
import numpy as np
import pytest

import tb_lstm_gates
from tb_lstm_gates.core import layouts
from tb_lstm_gates.keras import discover, probe
from tb_lstm_gates.keras.regularizers import GateRegularizer
from tb_lstm_gates.logs import metadata

RNG = np.random.default_rng(5)


@pytest.fixture(autouse=True)
def fresh_keras_names():
    keras.backend.clear_session()


def model_and_data(n=16):
    keras.utils.set_random_seed(1)
    inp = keras.Input((5, 3))
    x = keras.layers.Bidirectional(keras.layers.LSTM(4, return_sequences=True))(inp)
    x = keras.layers.GRU(3, recurrent_regularizer=GateRegularizer("gru", l2={"update": 0.1}))(x)
    model = keras.Model(inp, keras.layers.Dense(1)(x))
    model.compile(keras.optimizers.Adam(1e-2), "mse")
    x = RNG.normal(size=(n, 5, 3)).astype("float32")
    y = RNG.normal(size=(n, 1)).astype("float32")
    return model, x, y


class WeightRecorder(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.snapshots = {}

    def _take(self, step):
        self.snapshots[step] = {
            discover.variable_path(v): np.array(keras.ops.convert_to_numpy(v)) for v in self.model.weights
        }

    def on_train_begin(self, logs=None):
        self._take(0)

    def on_epoch_end(self, epoch, logs=None):
        self._take(epoch + 1)


def test_backend_is_the_one_asked_for():
    import os

    assert keras.backend.backend() == os.environ["KERAS_BACKEND"]


def fit_two_epochs(model, x, y, log_dir):
    """Fits with the callback beside a `WeightRecorder`; returns the recorder and the logged records."""
    recorder = WeightRecorder()
    model.fit(
        x,
        y,
        epochs=2,
        batch_size=8,
        verbose=0,
        callbacks=[recorder, tb_lstm_gates.LSTMGatesCallback(log_dir)],
    )
    return recorder, tb_lstm_gates.load(log_dir)


def assert_l2_is_that_of_the_recorded_weights(records, cells, recorder):
    """Every block's logged `l2` is the norm of the weights recorded at its step; returns how many were checked."""
    l2 = {(r.layer, r.part, r.gate, r.step): r.value for r in records if r.stat == "l2"}
    checked = 0
    for cell in cells:
        for step, weights in recorder.snapshots.items():
            arrays = {name: weights[discover.variable_path(v)] for name, v in cell.variables.items()}
            for part, gates, view in cell.layout.blocks(arrays):
                for g, gate in enumerate(gates):
                    expected = np.linalg.norm(view[..., g, :])
                    assert l2[cell.layer, part, gate, step] == pytest.approx(expected, rel=1e-5), (
                        step,
                        part,
                        gate,
                    )
                    checked += 1
    return checked


def test_l2_of_every_block_equals_the_weights_at_every_epoch(tmp_path):
    model, x, y = model_and_data()
    recorder, records = fit_two_epochs(model, x, y, tmp_path)
    checked = assert_l2_is_that_of_the_recorded_weights(records, discover.find_cells(model), recorder)
    assert checked == 3 * (
        2 * 3 * 4 + 3 * 4
    )  # steps x (two LSTMs' 3 parts x 4 gates + GRU's 4 parts x 3 gates)
    penalties = {
        (r.layer, r.gate, r.step): r.value
        for r in records
        if r.stat == metadata.PENALTY and r.part == "recurrent"
    }
    u = recorder.snapshots[2]["gru/gru_cell/recurrent_kernel"][:, :3]
    assert penalties["gru/gru_cell", "update", 2] == pytest.approx(0.1 * np.sum(u**2), rel=1e-5)


def test_the_writers_thread_reads_the_steps_weights_while_training_changes_them(tmp_path, monkeypatch):
    # The writer's thread sleeps before each step's statistics, so the next
    # batches update the weights meanwhile: it must read a copy. On torch, a
    # variable's numpy array is a view of the live tensor.
    from tb_lstm_gates.logs import summary

    log_cell = summary.CellLogger.log_cell

    def slow_log_cell(*args, **kwargs):
        time.sleep(0.3)
        return log_cell(*args, **kwargs)

    monkeypatch.setattr(summary.CellLogger, "log_cell", slow_log_cell)
    model, x, y = model_and_data(n=64)
    recorder, records = fit_two_epochs(model, x, y, tmp_path)
    gru = discover.find_cells(model, ["gru"])
    assert assert_l2_is_that_of_the_recorded_weights(records, gru, recorder) == 3 * 4 * 3


def test_batch_logging_counts_global_batches(tmp_path):
    model, x, y = model_and_data(n=40)
    recorder = WeightRecorder()
    model.fit(
        x,
        y,
        epochs=2,
        batch_size=8,
        verbose=0,
        callbacks=[recorder, tb_lstm_gates.LSTMGatesCallback(tmp_path, update_freq=2, histogram_freq=0)],
    )
    records = tb_lstm_gates.load(tmp_path)
    assert sorted({r.step for r in records}) == [0, 2, 4, 6, 8, 10]
    # The last logged batch is the end of training: the weights then are the final ones.
    kernel = recorder.snapshots[2]["gru/gru_cell/kernel"]
    logged = [
        r.value
        for r in records
        if (r.layer, r.part, r.gate, r.stat, r.step) == ("gru/gru_cell", "input", "reset", "l2", 10)
    ]
    assert logged == [pytest.approx(np.linalg.norm(kernel[:, 3:6]), rel=1e-5)]


def test_probe_recurrences_reproduce_keras_outputs():
    model, x, _ = model_and_data()
    cells = discover.find_cells(model)
    traces = dict((c.layer, t) for c, t in probe.ProbeLogger(model, cells, x[:4]).traces())
    bi = keras.ops.convert_to_numpy(keras.Model(model.input, model.layers[1].output)(x[:4]))
    forward = traces["bidirectional/forward_lstm/lstm_cell"].outputs
    backward = traces["bidirectional/backward_lstm/lstm_cell"].outputs[:, ::-1]
    np.testing.assert_allclose(np.concatenate([forward, backward], -1), bi, rtol=1e-5, atol=1e-5)
    gru = keras.ops.convert_to_numpy(keras.Model(model.input, model.layers[2].output)(x[:4]))
    np.testing.assert_allclose(traces["gru/gru_cell"].outputs[:, -1], gru, rtol=1e-5, atol=1e-5)


def backend_gradients(model, variables, x, y):
    """The loss's gradients w.r.t. `variables` through the backend's own API, by a stateless call."""
    trainable = model.trainable_variables
    x, y = keras.ops.convert_to_tensor(x), keras.ops.convert_to_tensor(y)
    positions = [next(i for i, t in enumerate(trainable) if t is v) for v in variables]

    def loss_of(values, xp_values):
        y_pred, _ = model.stateless_call(values, [v.value for v in model.non_trainable_variables], x)
        # mse plus the GRU's GateRegularizer, as the model's loss has it.
        penalty = sum(v.regularizer(xp_values[i]) for i, v in enumerate(trainable) if v.regularizer)
        return keras.ops.mean(keras.ops.square(y_pred - y)) + penalty

    if keras.backend.backend() == "jax":
        import jax

        grads = jax.grad(lambda values: loss_of(values, values))([v.value for v in trainable])
    else:
        import torch

        values = [v.value.detach().clone().requires_grad_() for v in trainable]
        grads = torch.autograd.grad(loss_of(values, values), values)
    return [keras.ops.convert_to_numpy(grads[i]) for i in positions]


def test_gradient_norms_are_the_gate_slices_of_the_backends_gradient(tmp_path):
    model, x, y = model_and_data()
    cells = discover.find_cells(model)
    variables = [v for c in cells for v in c.variables.values()]
    expected = backend_gradients(model, variables, x[:6], y[:6])
    model.fit(
        x,
        y,
        epochs=1,
        verbose=0,
        callbacks=[tb_lstm_gates.LSTMGatesCallback(tmp_path, probe=(x[:6], y[:6]), probe_gradients=True)],
    )
    records = tb_lstm_gates.load(tmp_path)
    grad_norm = {
        (r.layer, r.part, r.gate): r.value for r in records if r.stat == metadata.GRAD_NORM and r.step == 0
    }
    grads = iter(expected)
    checked = 0
    for cell in cells:
        arrays = {name: next(grads) for name in cell.variables}
        for part, gates, view in cell.layout.blocks(arrays):
            for g, gate in enumerate(gates):
                assert grad_norm[cell.layer, part, gate] == pytest.approx(
                    np.linalg.norm(view[..., g, :]), rel=1e-4, abs=1e-7
                )
                checked += 1
    assert checked == len(grad_norm) == 2 * 3 * 4 + 4 * 3


def test_layouts_split_the_backends_weights_as_on_tensorflow():
    # The numpy recurrence from the blocks gives the GRU's own output on this backend.
    keras.utils.set_random_seed(2)
    layer = keras.layers.GRU(3, return_sequences=True)
    x = RNG.normal(size=(2, 4, 3)).astype("float32")
    out = keras.ops.convert_to_numpy(layer(x))
    from tb_lstm_gates.core import activations

    arrays = {
        "kernel": keras.ops.convert_to_numpy(layer.cell.kernel),
        "recurrent_kernel": keras.ops.convert_to_numpy(layer.cell.recurrent_kernel),
        "bias": keras.ops.convert_to_numpy(layer.cell.bias),
    }
    trace = activations.gru(layouts.keras_gru(True), arrays, x)
    np.testing.assert_allclose(trace.outputs, out, rtol=1e-5, atol=1e-5)
