"""Training scripts as users write them: every `fit` pattern logs right, and the callback never changes training.

Each test is named after the pattern; the models follow keras-io examples
(addition_rnn's loop of `fit`, lstm_seq2seq's decoder with `initial_state`,
bidirectional_lstm_imdb) and common model shapes. Values are checked from
`tb_lstm_gates.load()` against numpy on the weights.
"""

import os
import subprocess
import sys
import warnings

import keras
import numpy as np
import pytest

import tb_lstm_gates
from tb_lstm_gates.core import layouts
from tb_lstm_gates.keras import discover, probe

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RNG = np.random.default_rng(16)


@pytest.fixture(autouse=True)
def fresh_keras_names():
    keras.backend.clear_session()


def lstm_model(seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((5, 3)), keras.layers.LSTM(4), keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(1e-2), "mse")
    return model


def data(n=16, t=5, f=3, out=1):
    return RNG.normal(size=(n, t, f)).astype("float32"), RNG.normal(size=(n, out)).astype("float32")


def block_l2(records):
    """`{(layer, part, gate, step): l2}` of the weights."""
    return {(r.layer, r.part, r.gate, r.step): r.value for r in records if r.stat == "l2"}


def expected_l2(cell, arrays):
    """`{(layer, part, gate): l2}` numpy computes from `arrays` of `cell`."""
    expected = {}
    for name, pieces in cell.layout.weights.items():
        for piece in pieces:
            for gate, block in layouts.split(arrays[name], piece, name).items():
                expected[cell.layer, piece.part, gate] = np.linalg.norm(block.astype(np.float64))
    return expected


def assert_step_is(records, model, step):
    """The l2 logged at `step` for every block of `model` equals numpy's norm of its weights now."""
    logged = block_l2(records)
    checked = 0
    for cell in discover.find_cells(model):
        for (layer, part, gate), value in expected_l2(cell, cell.arrays()).items():
            assert logged[layer, part, gate, step] == pytest.approx(value, rel=1e-6)
            checked += 1
    assert checked


def steps_of(records):
    return sorted({r.step for r in records})


def caught_warnings(fn):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fn()
    return result, [str(w.message) for w in caught]


# --- item 3: loops of fit, resumed runs, reruns -------------------------------------------------------


def addition_rnn_model():
    """keras-io addition_rnn, small: LSTM encoder, RepeatVector, LSTM decoder, Dense softmax per step."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((7, 12)),
            keras.layers.LSTM(16),
            keras.layers.RepeatVector(4),
            keras.layers.LSTM(16, return_sequences=True),
            keras.layers.Dense(12, activation="softmax"),
        ]
    )
    model.compile("adam", "categorical_crossentropy", metrics=["accuracy"])
    return model


def test_addition_rnn_loop_of_fit_with_one_callback_keeps_counting_steps(tmp_path):
    # keras-io addition_rnn: for epoch in range(...): model.fit(x, y, epochs=1, ...)
    model = addition_rnn_model()
    x = keras.utils.to_categorical(RNG.integers(0, 12, size=(32, 7)), 12)
    y = keras.utils.to_categorical(RNG.integers(0, 12, size=(32, 4)), 12)
    callback = tb_lstm_gates.LSTMGatesCallback(tmp_path, probe=x[:4])
    before = {c.layer: c.arrays() for c in discover.find_cells(model)}
    after = []
    for _ in range(4):
        model.fit(x, y, epochs=1, batch_size=8, verbose=0, callbacks=[callback])
        after.append({c.layer: c.arrays() for c in discover.find_cells(model)})
    records = tb_lstm_gates.load(tmp_path)
    assert steps_of(records) == [0, 1, 2, 3, 4]
    logged = block_l2(records)
    for step, weights in enumerate([before] + after):
        for cell in discover.find_cells(model):
            for (layer, part, gate), value in expected_l2(cell, weights[cell.layer]).items():
                assert logged[layer, part, gate, step] == pytest.approx(value, rel=1e-6)
    # One writer for the whole loop, and update_ratio compares each call with the one before.
    assert len(os.listdir(tmp_path / "train")) == 1
    assert {r.step for r in records if r.stat == "update_ratio"} == {1, 2, 3, 4}
    assert {(r.layer, r.step) for r in records if r.stat == "retention"} == {
        (layer, step) for layer in ("lstm/lstm_cell", "lstm_1/lstm_cell") for step in range(5)
    }


def test_log_dir_removed_between_two_fits_of_one_callback_gets_a_new_event_file(tmp_path):
    import shutil

    model = lstm_model()
    x, y = data()
    callback = tb_lstm_gates.LSTMGatesCallback(tmp_path / "logs")
    model.fit(x, y, epochs=1, verbose=0, callbacks=[callback])
    shutil.rmtree(tmp_path / "logs")
    model.fit(x, y, epochs=1, verbose=0, callbacks=[callback])
    records = tb_lstm_gates.load(tmp_path / "logs")
    assert steps_of(records) == [2]
    assert_step_is(records, model, 2)


def test_loop_of_fit_with_a_new_callback_each_time_continues_after_the_logged_steps(tmp_path):
    model = lstm_model()
    x, y = data()
    for _ in range(3):
        _, messages = caught_warnings(
            lambda: model.fit(
                x, y, epochs=2, batch_size=8, verbose=0, callbacks=[tb_lstm_gates.LSTMGatesCallback(tmp_path)]
            )
        )
        assert not [m for m in messages if "LSTMGatesCallback" in m], messages
    records = tb_lstm_gates.load(tmp_path)
    assert steps_of(records) == list(range(7))
    assert_step_is(records, model, 6)


def test_loop_of_fit_with_batch_logging_counts_global_batches(tmp_path):
    model = lstm_model()
    x, y = data(24)  # 3 batches of 8
    callback = tb_lstm_gates.LSTMGatesCallback(tmp_path, update_freq=2, histogram_freq=0)
    for _ in range(3):
        model.fit(x, y, epochs=1, batch_size=8, verbose=0, callbacks=[callback])
    records = tb_lstm_gates.load(tmp_path)
    assert steps_of(records) == [0, 2, 4, 6, 8]
    assert int(model.optimizer.iterations.numpy()) == 9


def test_rerun_of_a_fresh_model_on_a_used_log_dir_warns_once_naming_the_dir_and_its_steps(tmp_path):
    x, y = data()
    lstm_model().fit(x, y, epochs=3, verbose=0, callbacks=[tb_lstm_gates.LSTMGatesCallback(tmp_path)])
    keras.backend.clear_session()
    rerun = lstm_model(seed=1)
    _, messages = caught_warnings(
        lambda: rerun.fit(x, y, epochs=2, verbose=0, callbacks=[tb_lstm_gates.LSTMGatesCallback(tmp_path)])
    )
    ours = [m for m in messages if "LSTMGatesCallback" in m]
    assert len(ours) == 1, ours
    assert os.path.join(str(tmp_path), "train") in ours[0] and "steps 0 to 3" in ours[0]
    assert "new directory" in ours[0]
    records = tb_lstm_gates.load(tmp_path)
    # The rerun's steps are read (the last written); step 3 of the first run stays.
    assert steps_of(records) == [0, 1, 2, 3]
    assert_step_is(records, rerun, 2)


def test_resume_from_an_older_checkpoint_warns_about_the_step_it_writes_again(tmp_path):
    x, y = data()
    model = lstm_model()
    model.fit(x, y, epochs=1, verbose=0, callbacks=[tb_lstm_gates.LSTMGatesCallback(tmp_path)])
    model.save(tmp_path / "epoch1.keras")
    model.fit(
        x, y, epochs=2, initial_epoch=1, verbose=0, callbacks=[tb_lstm_gates.LSTMGatesCallback(tmp_path)]
    )
    restored = keras.models.load_model(tmp_path / "epoch1.keras")
    _, messages = caught_warnings(
        lambda: restored.fit(
            x, y, epochs=3, initial_epoch=1, verbose=0, callbacks=[tb_lstm_gates.LSTMGatesCallback(tmp_path)]
        )
    )
    ours = [m for m in messages if "LSTMGatesCallback" in m]
    assert len(ours) == 1 and "writes step 2 again" in ours[0], ours
    records = tb_lstm_gates.load(tmp_path)
    assert steps_of(records) == [0, 1, 2, 3]
    assert_step_is(records, restored, 3)


# --- item 4: a model without recurrent layers ------------------------------------------------------------


def test_shared_train_helper_on_an_lstm_then_a_cnn_warns_once_and_trains_on(tmp_path):
    def train_model(model, x, y, run):
        return model.fit(
            x, y, epochs=2, verbose=0, callbacks=[tb_lstm_gates.LSTMGatesCallback(tmp_path / run)]
        )

    lstm = lstm_model()
    train_model(lstm, *data(), "lstm")
    keras.utils.set_random_seed(0)
    cnn = keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 3), keras.layers.Flatten(), keras.layers.Dense(1)]
    )
    cnn.compile("adam", "mse")
    history, messages = caught_warnings(
        lambda: train_model(cnn, RNG.normal(size=(8, 8, 8, 1)), RNG.normal(size=(8, 1)), "cnn")
    )
    ours = [m for m in messages if "LSTMGatesCallback" in m]
    assert len(ours) == 1 and "no recurrent layer" in ours[0] and "strict=True" in ours[0]
    assert len(history.history["loss"]) == 2
    assert not os.path.exists(tmp_path / "cnn" / "train")
    assert steps_of(tb_lstm_gates.load(tmp_path / "lstm")) == [0, 1, 2]


# --- item 5: registration on import ----------------------------------------------------------------------


def _python(code, **env):
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=dict(os.environ, PYTHONPATH=REPO, **env),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize(
    "imports",
    [
        "import tb_lstm_gates; import keras",
        "import keras; import tb_lstm_gates",
        "import tb_lstm_gates; import tensorflow; import keras",
    ],
)
def test_load_model_after_a_plain_import_restores_gate_regularizers(tmp_path, imports):
    model = keras.Sequential(
        [
            keras.Input((3, 2)),
            keras.layers.LSTM(
                4, recurrent_regularizer=tb_lstm_gates.GateRegularizer("lstm", l2={"forget": 0.5})
            ),
        ]
    )
    model.save(tmp_path / "model.keras")
    code = (
        "%s\nimport numpy as np\n"
        "m = keras.models.load_model(%r)\n"
        "r = m.layers[0].cell.recurrent_regularizer\n"
        "print(type(r).__name__, float(r(m.layers[0].cell.recurrent_kernel)))"
        % (imports, str(tmp_path / "model.keras"))
    )
    name, penalty = _python(code).split()
    expected = float(model.layers[0].cell.recurrent_regularizer(model.layers[0].cell.recurrent_kernel))
    assert name == "GateRegularizer" and float(penalty) == pytest.approx(expected, rel=1e-6) and expected > 0


def test_importing_the_package_and_the_plugin_imports_neither_keras_nor_tensorflow():
    code = (
        "import sys, tb_lstm_gates, tb_lstm_gates.plugin.loader\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('keras', 'tensorflow', 'tf_keras')) "
        "or 'none')"
    )
    assert _python(code) == "none"


# --- item 6: layers sharing a name -----------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="test_training_patterns")
class TwoSameNamedLSTMs(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.a = keras.layers.LSTM(8, return_sequences=True, name="rnn")
        self.b = keras.layers.LSTM(16, name="rnn")
        self.out = keras.layers.Dense(1)

    def call(self, x):
        return self.out(self.b(self.a(x)))


def test_subclassed_model_with_two_layers_named_alike_logs_both_under_unique_stable_names(tmp_path):
    keras.utils.set_random_seed(0)
    model = TwoSameNamedLSTMs()
    model.compile(keras.optimizers.Adam(1e-2), "mse")
    x, y = data()
    _, messages = caught_warnings(
        lambda: model.fit(
            x, y, epochs=2, verbose=0, callbacks=[tb_lstm_gates.LSTMGatesCallback(tmp_path, probe=x[:4])]
        )
    )
    assert not [m for m in messages if "shape" in m], messages
    records = tb_lstm_gates.load(tmp_path)
    assert {r.layer for r in records} == {"rnn/lstm_cell", "rnn_2/lstm_cell"}
    logged = block_l2(records)
    assert logged["rnn/lstm_cell", "recurrent", "forget", 2] == pytest.approx(
        np.linalg.norm(model.a.cell.recurrent_kernel.numpy()[:, 8:16]), rel=1e-6
    )
    assert logged["rnn_2/lstm_cell", "recurrent", "forget", 2] == pytest.approx(
        np.linalg.norm(model.b.cell.recurrent_kernel.numpy()[:, 16:32]), rel=1e-6
    )
    assert {r.layer for r in records if r.part == "activation"} == {"rnn/lstm_cell", "rnn_2/lstm_cell"}
    model.save(tmp_path / "model.keras")
    restored = keras.models.load_model(tmp_path / "model.keras")
    cells = {c.layer: c for c in discover.find_cells(restored)}
    assert sorted(cells) == ["rnn/lstm_cell", "rnn_2/lstm_cell"]
    np.testing.assert_array_equal(cells["rnn_2/lstm_cell"].arrays()["kernel"], model.b.cell.kernel.numpy())


class ThreeRNNs(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.a = keras.layers.LSTM(2, return_sequences=True, name="rnn")
        self.b = keras.layers.LSTM(2, return_sequences=True, name="rnn")
        self.c = keras.layers.GRU(2, name="rnn_2")

    def call(self, x):
        return self.c(self.b(self.a(x)))


def test_unique_names_skip_names_other_layers_already_have():
    model = ThreeRNNs()
    model(np.zeros((1, 4, 3), "float32"))
    layers = [c.layer for c in discover.find_cells(model)]
    assert layers == ["rnn/lstm_cell", "rnn_3/lstm_cell", "rnn_2/gru_cell"]


# --- items 2 and 8: the probe never changes training; frozen layers ---------------------------------------


def stateful_model(batch=4):
    keras.utils.set_random_seed(2)
    model = keras.Sequential(
        [
            keras.Input(batch_shape=(batch, 5, 3)),
            keras.layers.LSTM(6, stateful=True, return_sequences=True),
            keras.layers.LSTM(4, stateful=True),
            keras.layers.Dense(1),
        ]
    )
    model.compile(keras.optimizers.Adam(1e-2), "mse", metrics=["mae"])
    return model


def layer_states(model):
    stateful = [layer for layer in model.layers if getattr(layer, "stateful", False)]
    return [np.array(s.numpy()) for layer in stateful for s in layer.states]


def test_stateful_stacked_lstms_keep_their_carried_states_and_a_probe_of_another_batch_size_logs(tmp_path):
    model = stateful_model()
    x, y = data(8)
    model.fit(x, y, epochs=1, batch_size=4, shuffle=False, verbose=0)
    states = layer_states(model)
    assert all(np.abs(s).sum() > 0 for s in states)
    metrics = [np.array(v.numpy()) for v in model.metrics_variables]
    callback = tb_lstm_gates.LSTMGatesCallback(tmp_path, probe=(x[:3], y[:3]), probe_gradients=True)
    callback.set_model(model)
    callback.on_train_begin()
    callback.on_epoch_begin(0)  # logs step 0, probe included
    for before, after in zip(states, layer_states(model)):
        np.testing.assert_array_equal(before, after)
    for before, v in zip(metrics, model.metrics_variables):
        np.testing.assert_array_equal(before, v.numpy())
    callback.on_train_end()  # waits for the writer's thread, which writes the step
    records = tb_lstm_gates.load(tmp_path)
    activation = {(r.layer, r.gate) for r in records if r.stat == "act_mean"}
    assert activation == {
        (layer, gate)
        for layer in ("lstm/lstm_cell", "lstm_1/lstm_cell")
        for gate in ("input", "forget", "cell", "output")
    }
    assert len([r for r in records if r.stat == "grad_norm"]) == 24
    # The probe ran from a zero state: its first layer's outputs are Keras's on a fresh copy.
    traces = probe.ProbeLogger(model, discover.find_cells(model), x[:3]).traces()
    fresh = keras.Sequential([keras.Input((5, 3)), keras.layers.LSTM(6, return_sequences=True)])
    fresh.layers[0].set_weights(model.layers[0].get_weights())
    first = next(t for c, t in traces if c.layer == "lstm/lstm_cell")
    np.testing.assert_allclose(first.outputs, fresh(x[:3]), rtol=1e-4, atol=1e-5)


def test_frozen_layer_gets_no_grad_norm_but_its_trainable_neighbour_does(tmp_path):
    keras.utils.set_random_seed(0)
    frozen = keras.layers.LSTM(4, return_sequences=True, name="frozen", trainable=False)
    model = keras.Sequential(
        [keras.Input((5, 3)), frozen, keras.layers.GRU(3, name="tuned"), keras.layers.Dense(1)]
    )
    model.compile(keras.optimizers.Adam(1e-2), "mse")
    x, y = data()
    callback = tb_lstm_gates.LSTMGatesCallback(tmp_path, probe=(x[:4], y[:4]), probe_gradients=True)
    model.fit(x, y, epochs=1, verbose=0, callbacks=[callback])
    records = tb_lstm_gates.load(tmp_path)
    grads = {r.layer for r in records if r.stat == "grad_norm"}
    assert grads == {"tuned/gru_cell"}
    assert {r.layer for r in records if r.stat == "l2"} == {"frozen/lstm_cell", "tuned/gru_cell"}
    # Unfrozen for a second fit (recompiled, as fine-tuning does), it gets its gradient norms from then on.
    frozen.trainable = True
    model.compile(keras.optimizers.Adam(1e-2), "mse")
    model.fit(x, y, epochs=1, verbose=0, callbacks=[callback])
    records = tb_lstm_gates.load(tmp_path)
    steps = {r.step for r in records if r.stat == "grad_norm" and r.layer == "frozen/lstm_cell"}
    assert steps == {2}


# --- item 7: probe coverage ------------------------------------------------------------------------------


def traces_by_layer(model, x, cells=None):
    return {c.layer: t for c, t in probe.ProbeLogger(model, cells or discover.find_cells(model), x).traces()}


def test_lstm_seq2seq_decoder_with_initial_state_is_probed_from_the_encoders_states(tmp_path):
    # keras-io lstm_seq2seq: the encoder's final (h, c) start the decoder.
    keras.utils.set_random_seed(3)
    enc_in, dec_in = keras.Input((6, 5)), keras.Input((4, 7))
    _, h, c = keras.layers.LSTM(8, return_state=True, name="encoder")(enc_in)
    dec_seq = keras.layers.LSTM(8, return_sequences=True, name="decoder")(dec_in, initial_state=[h, c])
    model = keras.Model([enc_in, dec_in], keras.layers.Dense(7, activation="softmax")(dec_seq))
    model.compile(keras.optimizers.Adam(1e-2), "categorical_crossentropy")
    xe, xd = RNG.normal(size=(16, 6, 5)).astype("float32"), RNG.normal(size=(16, 4, 7)).astype("float32")
    y = keras.utils.to_categorical(RNG.integers(0, 7, size=(16, 4)), 7)
    _, messages = caught_warnings(
        lambda: model.fit(
            [xe, xd],
            y,
            epochs=1,
            verbose=0,
            callbacks=[
                tb_lstm_gates.LSTMGatesCallback(
                    tmp_path, probe=([xe[:4], xd[:4]], y[:4]), probe_gradients=True
                )
            ],
        )
    )
    assert not [m for m in messages if "probe" in m], messages
    traces = traces_by_layer(model, [xe[:4], xd[:4]])
    expected = keras.Model(model.inputs, dec_seq)([xe[:4], xd[:4]])
    np.testing.assert_allclose(traces["decoder/lstm_cell"].outputs, expected, rtol=1e-4, atol=1e-5)
    records = tb_lstm_gates.load(tmp_path)
    assert {r.layer for r in records if r.stat == "act_mean"} == {"encoder/lstm_cell", "decoder/lstm_cell"}
    assert {r.layer for r in records if r.stat == "grad_norm"} == {"encoder/lstm_cell", "decoder/lstm_cell"}


def test_bidirectional_imdb_model_logs_activations_of_every_direction_over_the_unpadded_steps(tmp_path):
    # keras-io bidirectional_lstm_imdb, small: Embedding -> BiLSTM(seq) -> BiLSTM -> Dense.
    keras.utils.set_random_seed(4)
    tokens = RNG.integers(1, 50, size=(32, 12))
    tokens[:, 9:] = 0  # padding
    model = keras.Sequential(
        [
            keras.Input((12,), dtype="int32"),
            keras.layers.Embedding(50, 8, mask_zero=True),
            keras.layers.Bidirectional(keras.layers.LSTM(6, return_sequences=True)),
            keras.layers.Bidirectional(keras.layers.LSTM(5)),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile("adam", "binary_crossentropy")
    y = RNG.integers(0, 2, size=(32, 1)).astype("float32")
    callback = tb_lstm_gates.LSTMGatesCallback(tmp_path, probe=tokens[:4])
    model.fit(tokens, y, epochs=1, verbose=0, callbacks=[callback])
    records = tb_lstm_gates.load(tmp_path)
    layers = {r.layer for r in records if r.stat == "activation_map"}
    assert layers == {
        "bidirectional/forward_lstm/lstm_cell",
        "bidirectional/backward_lstm/lstm_cell",
        "bidirectional_1/forward_lstm_1/lstm_cell",
        "bidirectional_1/backward_lstm_1/lstm_cell",
    }
    maps = [r.value for r in records if r.stat == "activation_map" and r.step == 1]
    assert all(np.isnan(m[9:]).all() and not np.isnan(m[:9]).any() for m in maps)
    traces = traces_by_layer(model, tokens[:4])
    bi = keras.Model(model.inputs, model.layers[1].output)(tokens[:4])
    forward = traces["bidirectional/forward_lstm/lstm_cell"].outputs
    backward = traces["bidirectional/backward_lstm/lstm_cell"].outputs[:, ::-1]
    np.testing.assert_allclose(
        np.concatenate([forward, backward], -1)[:, :9], np.asarray(bi)[:, :9], rtol=1e-4, atol=1e-5
    )


@keras.saving.register_keras_serializable(package="test_training_patterns")
class Tagger(keras.Model):
    """A subclassed model that feeds its LSTM a transformed sequence and its own initial state."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.project = keras.layers.Dense(4, activation="tanh")
        self.start = keras.layers.Dense(6)
        self.rnn = keras.layers.LSTM(6, return_sequences=True)
        self.head = keras.layers.Dense(1)

    def call(self, x):
        h0 = self.start(keras.ops.mean(x, axis=1))
        return self.head(self.rnn(self.project(x), initial_state=[h0, keras.ops.zeros_like(h0)]))


def test_subclassed_model_is_probed_on_what_its_lstm_really_receives(tmp_path):
    keras.utils.set_random_seed(5)
    model = Tagger()
    model.compile(keras.optimizers.Adam(1e-2), "mse")
    x, y = data(16)[0], RNG.normal(size=(16, 5, 1)).astype("float32")
    model.fit(x, y, epochs=1, verbose=0, callbacks=[tb_lstm_gates.LSTMGatesCallback(tmp_path, probe=x[:4])])
    trace = traces_by_layer(model, x[:4])["lstm/lstm_cell"]
    h0 = model.start(keras.ops.mean(x[:4], axis=1))
    expected = model.rnn(model.project(x[:4]), initial_state=[h0, keras.ops.zeros_like(h0)])
    np.testing.assert_allclose(trace.outputs, expected, rtol=1e-4, atol=1e-5)
    assert {r.layer for r in tb_lstm_gates.load(tmp_path) if r.stat == "retention"} == {"lstm/lstm_cell"}


def test_time_distributed_lstm_is_probed_on_every_inner_call_in_order():
    keras.utils.set_random_seed(6)
    model = keras.Sequential(
        [
            keras.Input((3, 5, 2)),
            keras.layers.TimeDistributed(keras.layers.LSTM(4)),
            keras.layers.GRU(3),
        ]
    )
    x = RNG.normal(size=(2, 3, 5, 2)).astype("float32")
    traces = traces_by_layer(model, x)
    inner = traces["time_distributed/lstm/lstm_cell"]
    # Keras 3 calls the inner layer once per outer step, on the whole batch:
    # the calls are joined along the time axis, in call order.
    assert inner.activations.shape == (2, 3 * 5, 4, 4)
    expected = keras.Model(model.inputs, model.layers[0].output)(x)  # (2, 3, 4)
    got = inner.outputs.reshape(2, 3, 5, 4)[:, :, -1]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(traces["gru/gru_cell"].outputs[:, -1], model(x), rtol=1e-4, atol=1e-5)


def test_conv_lstm_layers_are_probed_as_keras_computes_them(tmp_path):
    keras.utils.set_random_seed(7)
    inp = keras.Input((4, 7, 6, 2))
    conv2d = keras.layers.ConvLSTM2D(3, 3, strides=2, padding="same", return_sequences=True)(inp)
    conv1d = keras.layers.ConvLSTM1D(2, 2, dilation_rate=2, go_backwards=True)(
        keras.layers.Reshape((4, 7, 6 * 2))(inp)
    )
    out = keras.layers.Concatenate()([keras.layers.Flatten()(conv2d), keras.layers.Flatten()(conv1d)])
    model = keras.Model(inp, keras.layers.Dense(1)(out))
    model.compile(keras.optimizers.Adam(1e-2), "mse")
    for cell in discover.find_cells(model):  # gates away from their initial values
        for v in cell.variables.values():
            v.assign(RNG.normal(scale=0.5, size=v.shape).astype("float32"))
    x = RNG.normal(size=(6, 4, 7, 6, 2)).astype("float32")
    y = RNG.normal(size=(6, 1)).astype("float32")
    traces = traces_by_layer(model, x[:3])
    np.testing.assert_allclose(
        traces["conv_lstm2d/conv_lstm_cell"].outputs, keras.Model(inp, conv2d)(x[:3]), rtol=1e-4, atol=1e-5
    )
    np.testing.assert_allclose(
        traces["conv_lstm1d/conv_lstm_cell"].outputs[:, -1],
        keras.Model(inp, conv1d)(x[:3]),
        rtol=1e-4,
        atol=1e-5,
    )
    model.fit(
        x,
        y,
        epochs=1,
        verbose=0,
        callbacks=[tb_lstm_gates.LSTMGatesCallback(tmp_path, probe=(x[:3], y[:3]), probe_gradients=True)],
    )
    records = tb_lstm_gates.load(tmp_path)
    maps = {
        r.layer: r.value for r in records if r.stat == "activation_map" and r.gate == "forget" and r.step == 1
    }
    # One row per time step, one column per filter (its mean over the output positions).
    assert maps["conv_lstm2d/conv_lstm_cell"].shape == (4, 3)
    assert maps["conv_lstm1d/conv_lstm_cell"].shape == (4, 2)
    assert {r.cell for r in records if r.stat == "retention"} == {"conv_lstm"}
    assert len({r.layer for r in records if r.stat == "grad_norm"}) == 2


def test_a_layer_the_model_does_not_call_on_the_probe_is_named_once():
    keras.utils.set_random_seed(8)
    inp = keras.Input((5, 3))
    used = keras.layers.LSTM(2, name="used")(inp)
    model = keras.Model(inp, used)
    unused = keras.layers.GRU(2, name="unused")
    unused.build((None, 5, 3))
    cells = discover.find_cells(model) + discover.find_cells(unused)
    logger = probe.ProbeLogger(model, cells, RNG.normal(size=(2, 5, 3)))
    with pytest.warns(UserWarning, match="the model does not call it when it runs on the probe"):
        assert [c.layer for c, _ in logger.traces()] == ["used/lstm_cell"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        logger.traces()


def test_unbuilt_subclassed_model_without_a_probe_logs_from_its_first_epoch_and_says_step_0_is_missing(
    tmp_path,
):
    keras.utils.set_random_seed(9)
    model = Tagger()
    model.compile(keras.optimizers.Adam(1e-2), "mse")
    x, y = data(16)[0], RNG.normal(size=(16, 5, 1)).astype("float32")
    _, messages = caught_warnings(
        lambda: model.fit(x, y, epochs=2, verbose=0, callbacks=[tb_lstm_gates.LSTMGatesCallback(tmp_path)])
    )
    ours = [m for m in messages if "LSTMGatesCallback" in m]
    assert len(ours) == 1 and "step 0 (the weights before training) is not logged" in ours[0], ours
    records = tb_lstm_gates.load(tmp_path)
    assert steps_of(records) == [1, 2]
    assert_step_is(records, model, 2)


def test_probe_that_cannot_be_compiled_runs_eagerly_to_the_same_traces(monkeypatch):
    keras.utils.set_random_seed(10)
    model = keras.Sequential(
        [keras.Input((5, 3)), keras.layers.LSTM(4, return_sequences=True), keras.layers.GRU(2)]
    )
    x = RNG.normal(size=(3, 5, 3)).astype("float32")
    compiled = traces_by_layer(model, x)

    def cannot_compile(fn):
        def run(x):
            raise TypeError("a tensor made inside a loop cannot leave it")

        return run

    monkeypatch.setattr(probe, "tf_function", cannot_compile)
    eager = traces_by_layer(model, x)
    assert sorted(eager) == sorted(compiled) == ["gru/gru_cell", "lstm/lstm_cell"]
    for layer in eager:
        np.testing.assert_allclose(eager[layer].activations, compiled[layer].activations, rtol=1e-6)
