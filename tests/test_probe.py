"""LSTMGatesCallback's probe: activations fed by Keras, recomputed in numpy, logged per gate."""

import keras
import numpy as np
import pytest

import tb_lstm_gates
from tb_lstm_gates.core import activations
from tb_lstm_gates.keras import discover, probe
from tb_lstm_gates.logs import metadata

RNG = np.random.default_rng(7)
T = 7
TOKENS = RNG.integers(1, 10, size=(6, T))
TOKENS[0, 4:] = 0  # right padding
TOKENS[1, :3] = 0  # left padding
TOKENS[2, 2:4] = 0  # a hole
VALID = TOKENS != 0


@pytest.fixture(autouse=True)
def fresh_keras_names():
    keras.backend.clear_session()


def masked_model():
    """Embedding(mask_zero) -> Bidirectional LSTM -> stacked LSTM+GRU -> nested Sequential GRU, and a ConvLSTM."""
    keras.utils.set_random_seed(4)
    inp = keras.Input((T,), dtype="int32")
    embedded = keras.layers.Embedding(10, 3, mask_zero=True)(inp)
    bi = keras.layers.Bidirectional(keras.layers.LSTM(4, return_sequences=True))(embedded)
    stacked = keras.layers.RNN(
        keras.layers.StackedRNNCells([keras.layers.LSTMCell(3), keras.layers.GRUCell(3, reset_after=False)]),
        return_sequences=True,
    )(bi)
    inner = keras.Sequential([keras.Input((T, 3)), keras.layers.GRU(2, name="inner_gru")], name="inner")
    nested = inner(stacked)
    conv = keras.layers.ConvLSTM1D(2, 3, padding="same")(keras.layers.Reshape((T, 3, 1))(embedded))
    out = keras.layers.Dense(1)(keras.layers.Concatenate()([nested, keras.layers.Flatten()(conv)]))
    model = keras.Model(inp, out)
    model.compile(keras.optimizers.Adam(1e-2), "mse")
    # Gates away from their initial values, so a wrong feed shows.
    for cell in discover.find_cells(model):
        for v in cell.variables.values():
            v.assign(RNG.normal(scale=0.6, size=v.shape).astype("float32"))
    return model, {"bidirectional": bi, "rnn": stacked, "inner": nested, "conv": conv}


def outputs_of(model, tensor):
    return np.asarray(keras.Model(model.input, tensor)(TOKENS))


def probe_logger(model, **kwargs):
    return probe.ProbeLogger(model, discover.find_cells(model), TOKENS, **kwargs)


def test_probe_recurrences_reproduce_every_layers_keras_output():
    model, tensors = masked_model()
    traces = {cell.layer: trace for cell, trace in probe_logger(model).traces()}
    assert sorted(traces) == [
        "bidirectional/backward_lstm/lstm_cell",
        "bidirectional/forward_lstm/lstm_cell",
        "conv_lstm1d/conv_lstm_cell",
        "inner/inner_gru/gru_cell",
        "rnn/stacked_rnn_cells/gru_cell",
        "rnn/stacked_rnn_cells/lstm_cell",
    ]
    forward = traces["bidirectional/forward_lstm/lstm_cell"]
    backward = traces["bidirectional/backward_lstm/lstm_cell"]
    np.testing.assert_array_equal(forward.valid, VALID)  # the Embedding's mask reached the layer
    expected = outputs_of(model, tensors["bidirectional"])
    got = np.concatenate([forward.outputs, backward.outputs[:, ::-1]], axis=-1)
    np.testing.assert_allclose(expected[VALID], got[VALID], rtol=1e-4, atol=1e-5)
    expected = outputs_of(model, tensors["rnn"])
    got = traces["rnn/stacked_rnn_cells/gru_cell"].outputs
    np.testing.assert_allclose(expected[VALID], got[VALID], rtol=1e-4, atol=1e-5)
    # Keras warns that the nested Sequential drops the mask, yet hands it to its GRU.
    inner = traces["inner/inner_gru/gru_cell"]
    np.testing.assert_array_equal(inner.valid, VALID)
    np.testing.assert_allclose(
        outputs_of(model, tensors["inner"]), inner.outputs[:, -1], rtol=1e-4, atol=1e-5
    )


def test_logged_statistics_and_maps_are_those_of_the_traces(tmp_path):
    model, _ = masked_model()
    callback = tb_lstm_gates.LSTMGatesCallback(tmp_path, probe=TOKENS, layers=["bidirectional"])
    y = RNG.normal(size=(len(TOKENS), 1))
    with pytest.warns(UserWarning):
        model.fit(TOKENS, y, epochs=1, verbose=0, callbacks=[callback])
    records = [r for r in tb_lstm_gates.load(tmp_path) if r.part == metadata.ACTIVATION and r.step == 1]
    logged = {(r.layer, r.gate, r.stat): r.value for r in records}
    cells = discover.find_cells(model, ["bidirectional"])
    traces = probe.ProbeLogger(model, cells, TOKENS).traces()
    assert {key[0] for key in logged} == {cell.layer for cell in cells}
    for cell, trace in traces:
        for stat, values in activations.gate_statistics(trace).items():
            for gate, value in zip(trace.gates, values):
                assert logged[cell.layer, gate, stat] == pytest.approx(value, rel=1e-5, abs=1e-6)
        assert logged[cell.layer, "forget", "retention"] == pytest.approx(
            activations.retention(trace)[1], rel=1e-5
        )
        assert not any(key[:2] == (cell.layer, "input") and key[2] == "retention" for key in logged)
        maps = activations.activation_map(trace)
        for g, gate in enumerate(trace.gates):
            logged_map = logged[cell.layer, gate, "activation_map"]
            assert logged_map.shape == (T, 4) and logged_map.dtype == np.float32
            # Stored as float16: within half a unit in the last place of 11 bits.
            np.testing.assert_allclose(logged_map, maps[g], rtol=2.0**-11, atol=0)
        assert np.isnan(logged[cell.layer, "forget", "activation_map"][4:]).all()  # padding of sequence 0


def test_gradient_norms_are_the_norms_of_each_gates_slice_of_the_loss_gradient(tmp_path):
    import tensorflow as tf

    keras.utils.set_random_seed(6)
    lstm = keras.layers.LSTM(3)
    model = keras.Sequential([keras.Input((5, 2)), lstm, keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(1e-2), "mse")
    x, y = RNG.normal(size=(4, 5, 2)).astype("float32"), RNG.normal(size=(4, 1)).astype("float32")
    callback = tb_lstm_gates.LSTMGatesCallback(tmp_path, probe=(x, y), probe_gradients=True)
    model.fit(x, y, epochs=2, verbose=0, callbacks=[callback])
    logged = {
        (r.part, r.gate): r.value
        for r in tb_lstm_gates.load(tmp_path)
        if r.stat == "grad_norm" and r.step == 2
    }
    with tf.GradientTape() as tape:
        loss = keras.losses.MeanSquaredError()(y, model(x))
    weights = (lstm.cell.kernel, lstm.cell.recurrent_kernel, lstm.cell.bias)
    grads = [np.asarray(g) for g in tape.gradient(loss, weights)]
    assert len(logged) == 12
    for part, grad in zip(("input", "recurrent", "bias"), grads):
        for k, gate in enumerate(metadata.LSTM_GATES):
            expected = np.linalg.norm(grad[..., 3 * k : 3 * (k + 1)])
            assert logged[part, gate] == pytest.approx(expected, rel=1e-4)


def copy_first_token_run(logdir):
    """Trains a small LSTM to output the first of 24 random signs, logging the probe's gates."""
    keras.utils.set_random_seed(1)
    rng = np.random.default_rng(1)
    x = rng.choice([-1.0, 1.0], size=(512, 24, 1)).astype("float32")
    y = (x[:, 0, 0] > 0).astype("float32")[:, None]
    model = keras.Sequential(
        [keras.Input((24, 1)), keras.layers.LSTM(8), keras.layers.Dense(1, activation="sigmoid")]
    )
    model.compile(keras.optimizers.Adam(1e-2), "binary_crossentropy", metrics=["accuracy"])
    callback = tb_lstm_gates.LSTMGatesCallback(logdir, probe=x[:16], histogram_freq=0)
    history = model.fit(x, y, epochs=15, batch_size=64, verbose=0, callbacks=[callback])
    return history.history["accuracy"][-1]


def test_forget_gate_retention_rises_while_learning_to_remember_the_first_token(tmp_path):
    accuracy = copy_first_token_run(tmp_path)
    assert accuracy > 0.85  # it learned to remember
    records = tb_lstm_gates.load(tmp_path)
    retention = [r.value for r in records if r.stat == "retention"]
    forget = [r.value for r in records if r.stat == "act_mean" and r.gate == "forget"]
    assert len(retention) == len(forget) == 16  # step 0 and 15 epochs
    # Keras starts the forget bias at 1: sigmoid(1) keeps 73 %, about 3.7 steps.
    assert 3 < retention[0] < 4.5
    assert retention[-1] > 1.5 * retention[0]
    assert forget[-1] > forget[0]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(probe="abc"), "probe must be an array"),
        (dict(probe=[object()]), "probe must be an array"),
        (dict(probe=np.zeros((300, 5, 2))), "probe holds 300 sequences; give 1 to 256"),
        (dict(probe=np.zeros((0, 5, 2))), "probe holds 0 sequences"),
        (dict(probe=(np.zeros((4, 5, 2)), np.zeros((3, 1)))), r"different numbers of sequences: \[3, 4\]"),
        (dict(probe_gradients=True), r"probe_gradients=True needs probe=\(x, y\)"),
        (dict(probe=np.zeros((4, 5, 2)), probe_gradients=True), "got inputs only"),
        (dict(probe=np.zeros((4, 5, 2)), probe_gradients=1), "probe_gradients must be True or False"),
    ],
)
def test_bad_probes_are_named_in_the_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tb_lstm_gates.LSTMGatesCallback("logs", **kwargs)


def test_probe_accepts_lists_and_dicts_of_inputs():
    x, y = probe.check_probe(([np.zeros((2, 3, 1)), np.ones((2, 4))], np.zeros((2, 1))), gradients=True)
    assert [a.shape for a in x] == [(2, 3, 1), (2, 4)] and y.shape == (2, 1)
    x, y = probe.check_probe({"a": [[1, 2]], "b": np.zeros((1, 3))}, gradients=False)
    assert x["a"].shape == (1, 2) and y is None
