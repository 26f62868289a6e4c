"""`tb_lstm_gates.LSTMGatesCallback` with tf_keras's `fit` (TF_USE_LEGACY_KERAS=1), probe included.

Runs in the legacy-Keras process (see tests/conftest.py).
"""

import warnings

import numpy as np
import pytest
import tf_keras

import tb_lstm_gates
from tb_lstm_gates.core import layouts
from tb_lstm_gates.keras import discover, probe
from tb_lstm_gates.logs import summary

RNG = np.random.default_rng(11)


@pytest.fixture(autouse=True)
def fresh_keras_names():
    tf_keras.backend.clear_session()


def data(n=16, t=6, f=3):
    return RNG.normal(size=(n, t, f)).astype("float32"), RNG.normal(size=(n, 1)).astype("float32")


def expected_l2(model):
    expected = {}
    for cell in discover.find_cells(model):
        arrays = cell.arrays()
        for name, pieces in cell.layout.weights.items():
            for piece in pieces:
                for gate, block in layouts.split(arrays[name], piece, name).items():
                    expected[cell.layer, piece.part, gate] = np.linalg.norm(block.astype(np.float64))
    return expected


def assert_last_step_is_the_weights(records, model, step):
    logged = {(r.layer, r.part, r.gate): r.value for r in records if r.stat == "l2" and r.step == step}
    expected = expected_l2(model)
    assert set(logged) == set(expected)
    for key, value in expected.items():
        assert logged[key] == pytest.approx(value, rel=1e-6)


def test_tf_keras_fit_logs_every_gate_with_probe_and_gradients(tmp_path):
    tf_keras.utils.set_random_seed(0)
    model = tf_keras.Sequential(
        [
            tf_keras.Input((6, 3)),
            tf_keras.layers.Bidirectional(tf_keras.layers.LSTM(4, return_sequences=True)),
            tf_keras.layers.GRU(3),
            tf_keras.layers.Dense(1),
        ]
    )
    model.compile(tf_keras.optimizers.Adam(1e-2), "mse")
    x, y = data()
    callback = tb_lstm_gates.LSTMGatesCallback(tmp_path, probe=(x[:4], y[:4]), probe_gradients=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # a logging failure would be one
        model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[callback])
    records = tb_lstm_gates.load(tmp_path)
    layers = {"bidirectional/forward_lstm/lstm_cell", "bidirectional/backward_lstm/lstm_cell", "gru/gru_cell"}
    assert {r.layer for r in records} == layers
    assert sorted({r.step for r in records}) == [0, 1, 2]
    assert_last_step_is_the_weights(records, model, 2)
    assert {r.layer for r in records if r.stat == "act_mean" and r.step == 2} == layers
    assert {r.layer for r in records if r.stat == "grad_norm" and r.step == 2} == layers
    traces = {c.layer: t for c, t in probe.ProbeLogger(model, discover.find_cells(model), x[:4]).traces()}
    np.testing.assert_allclose(
        traces["gru/gru_cell"].outputs[:, -1],
        tf_keras.Model(model.inputs, model.layers[1].output)(x[:4]),
        rtol=1e-4,
        atol=1e-5,
    )


def test_tf_keras_batch_logging_in_a_loop_of_fit_counts_global_batches(tmp_path):
    tf_keras.utils.set_random_seed(1)
    model = tf_keras.Sequential([tf_keras.Input((6, 3)), tf_keras.layers.LSTM(4), tf_keras.layers.Dense(1)])
    model.compile(tf_keras.optimizers.Adam(1e-2), "mse")
    x, y = data(24)
    callback = tb_lstm_gates.LSTMGatesCallback(tmp_path, update_freq=2, histogram_freq=0)
    for _ in range(2):
        model.fit(x, y, epochs=1, batch_size=8, verbose=0, callbacks=[callback])
    records = tb_lstm_gates.load(tmp_path)
    assert sorted({r.step for r in records}) == [0, 2, 4, 6]
    assert_last_step_is_the_weights(records, model, 6)


def test_tf_keras_stateful_lstms_keep_their_states_under_a_probe_of_another_batch_size(tmp_path):
    tf_keras.utils.set_random_seed(2)
    model = tf_keras.Sequential(
        [
            tf_keras.Input(batch_shape=(4, 6, 3)),
            tf_keras.layers.LSTM(5, stateful=True, return_sequences=True),
            tf_keras.layers.LSTM(3, stateful=True),
            tf_keras.layers.Dense(1),
        ]
    )
    model.compile(tf_keras.optimizers.Adam(1e-2), "mse", metrics=["mae"])
    x, y = data(8)
    model.fit(x, y, epochs=1, batch_size=4, shuffle=False, verbose=0)
    states = [np.array(s.numpy()) for layer in model.layers[:2] for s in layer.states]
    metrics = [np.array(v.numpy()) for m in model.metrics for v in m.variables]
    callback = tb_lstm_gates.LSTMGatesCallback(tmp_path, probe=(x[:3], y[:3]), probe_gradients=True)
    model.fit(x, y, epochs=1, batch_size=4, shuffle=False, verbose=0, callbacks=[callback])
    records = tb_lstm_gates.load(tmp_path)
    # The model had trained (its optimizer stepped) and the log dir was empty: steps 0 and 1.
    assert sorted({r.step for r in records}) == [0, 1]
    assert {r.layer for r in records if r.stat == "act_mean"} == {"lstm/lstm_cell", "lstm_1/lstm_cell"}
    assert len([r for r in records if r.stat == "grad_norm" and r.step == 1]) == 24
    # The probe, run again by hand, leaves states and metrics as they are.
    states = [np.array(s.numpy()) for layer in model.layers[:2] for s in layer.states]
    metrics = [np.array(v.numpy()) for m in model.metrics for v in m.variables]
    logger = probe.ProbeLogger(model, discover.find_cells(model), x[:3], y[:3], gradients=True)
    writer = summary.GateSummaryWriter(tmp_path / "by_hand")
    logger.log(writer, maps=True)
    writer.end_step(0)
    writer.close()
    for before, after in zip(states, [s.numpy() for layer in model.layers[:2] for s in layer.states]):
        np.testing.assert_array_equal(before, after)
    for before, after in zip(metrics, [v.numpy() for m in model.metrics for v in m.variables]):
        np.testing.assert_array_equal(before, after)
    assert model.layers[0].stateful and model.layers[0].input_spec is not None


class Encoder(tf_keras.layers.Layer):
    """A custom layer holding its RNNs as an attribute and in a list, and one cell by two paths."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.lstm_cell = tf_keras.layers.LSTMCell(3)
        self.rnns = [tf_keras.layers.Bidirectional(tf_keras.layers.GRU(2, return_sequences=True))]
        self.lstm_rnn = tf_keras.layers.RNN(self.lstm_cell)

    def call(self, x):
        return self.lstm_rnn(self.rnns[0](x))


def test_tf_keras_rnn_inside_a_custom_layer_and_a_cell_on_two_paths_are_logged_once(tmp_path):
    inp = tf_keras.Input((6, 3))
    model = tf_keras.Model(inp, tf_keras.layers.Dense(1)(Encoder(name="encoder")(inp)))
    model.compile("adam", "mse")
    x, y = data(8)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(
            x, y, epochs=1, verbose=0, callbacks=[tb_lstm_gates.LSTMGatesCallback(tmp_path, probe=x[:3])]
        )
    assert [str(w.message) for w in caught if "tb-lstm-gates" in str(w.message)] == []
    cells = discover.find_cells(model)
    # The cell is tracked first as `encoder.lstm_cell`, but named by its path through the RNN.
    assert [c.layer for c in cells] == [
        "encoder/rnn/lstm_cell",
        "encoder/bidirectional/forward_gru/gru_cell",
        "encoder/bidirectional/backward_gru/gru_cell",
    ]
    recurrent = {id(v) for v in model.weights if "recurrent_kernel" in v.name}
    assert sorted(id(c.variables["recurrent_kernel"]) for c in cells) == sorted(recurrent)
    layers = {r.layer for r in tb_lstm_gates.load(tmp_path) if r.stat == "act_mean"}
    assert layers == {c.layer for c in cells}
