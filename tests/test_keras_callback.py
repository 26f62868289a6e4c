"""LSTMGatesCallback on real Keras models, checked through the event files."""

import json
import os
import warnings

import keras
import numpy as np
import pytest

import tb_lstm_gates
from tb_lstm_gates.core import layouts
from tb_lstm_gates.keras import discover

RNG = np.random.default_rng(2)


class WeightRecorder(keras.callbacks.Callback):
    """Copies every weight at train start and after each epoch."""

    def __init__(self):
        super().__init__()
        self.snapshots = {}

    def _take(self, step):
        self.snapshots[step] = {discover.variable_path(v): np.array(v.numpy()) for v in self.model.weights}

    def on_train_begin(self, logs=None):
        self._take(0)

    def on_epoch_end(self, epoch, logs=None):
        self._take(epoch + 1)


@pytest.fixture(autouse=True)
def fresh_keras_names():
    # Keras numbers auto-generated layer names per session; start each test at the plain names.
    keras.backend.clear_session()


def mixed_model():
    keras.utils.set_random_seed(3)
    inp = keras.Input((6, 4))
    x = keras.layers.Bidirectional(keras.layers.LSTM(5, return_sequences=True))(inp)
    x = keras.layers.GRU(4, return_sequences=True)(x)
    x = keras.layers.RNN(
        keras.layers.StackedRNNCells([keras.layers.LSTMCell(3), keras.layers.GRUCell(3, reset_after=False)]),
        return_sequences=True,
    )(x)
    conv_in = keras.layers.Reshape((6, 4, 1))(inp)
    conv = keras.layers.ConvLSTM1D(2, 3, padding="same")(conv_in)
    out = keras.layers.Concatenate()([keras.layers.Flatten()(x), keras.layers.Flatten()(conv)])
    model = keras.Model(inp, keras.layers.Dense(1)(out))
    model.compile(keras.optimizers.Adam(1e-2), "mse")
    return model


def data(n=32):
    return RNG.normal(size=(n, 6, 4)).astype("float32"), RNG.normal(size=(n, 1)).astype("float32")


def by_key(records, stat):
    return {(r.layer, r.part, r.gate, r.step): r.value for r in records if r.stat == stat}


def test_mixed_model_l2_of_every_block_equals_numpy_norm_at_every_epoch(tmp_path):
    model = mixed_model()
    recorder = WeightRecorder()
    model.fit(
        *data(),
        epochs=2,
        batch_size=8,
        verbose=0,
        callbacks=[tb_lstm_gates.LSTMGatesCallback(tmp_path), recorder],
    )
    records = tb_lstm_gates.load(tmp_path)
    assert {r.run for r in records} == {"train"}
    l2 = by_key(records, "l2")
    cells = discover.find_cells(model)
    assert {c.layout.cell for c in cells} == {"lstm", "gru", "conv_lstm"}
    assert len(cells) == 6
    checked = 0
    for step, snapshot in recorder.snapshots.items():
        for cell in cells:
            arrays = {name: snapshot[discover.variable_path(v)] for name, v in cell.variables.items()}
            for name, pieces in cell.layout.weights.items():
                for piece in pieces:
                    for gate, block in layouts.split(arrays[name], piece, name).items():
                        expected = np.linalg.norm(block.astype(np.float64))
                        np.testing.assert_allclose(
                            l2[(cell.layer, piece.part, gate, step)], expected, rtol=1e-5
                        )
                        checked += 1
    # 2 LSTMs x 12 + GRU(reset_after) 12 + LSTM 12 + GRU 9 + ConvLSTM 12 blocks, 3 steps
    assert checked == 3 * (24 + 12 + 12 + 9 + 12)
    assert sorted({r.step for r in records}) == [0, 1, 2]
    ratio = by_key(records, "update_ratio")
    assert not any(k[3] == 0 for k in ratio), "update_ratio starts at the second logged step"
    assert all(v > 0 for v in ratio.values())


def test_layer_paths_name_the_layers_below_the_model(tmp_path):
    model = mixed_model()
    model.fit(*data(8), epochs=1, verbose=0, callbacks=[tb_lstm_gates.LSTMGatesCallback(tmp_path)])
    layers = {r.layer for r in tb_lstm_gates.load(tmp_path)}
    assert "bidirectional/forward_lstm/lstm_cell" in layers
    assert "bidirectional/backward_lstm/lstm_cell" in layers
    assert "gru/gru_cell" in layers
    assert "rnn/stacked_rnn_cells/lstm_cell" in layers


def test_layer_paths_survive_save_and_load_model(tmp_path):
    # Keras 3 variable paths change on load (`sequential/...` is dropped),
    # so a run resumed from a saved model would log to new layer names.
    model = keras.Sequential(
        [
            keras.Input((6, 4)),
            keras.layers.Bidirectional(keras.layers.LSTM(3, return_sequences=True)),
            keras.layers.RNN(
                keras.layers.StackedRNNCells([keras.layers.LSTMCell(2), keras.layers.GRUCell(2)])
            ),
        ]
    )
    model.save(tmp_path / "model.keras")
    restored = keras.models.load_model(tmp_path / "model.keras")
    layers = [c.layer for c in discover.find_cells(model)]
    assert layers == [
        "bidirectional/forward_lstm/lstm_cell",
        "bidirectional/backward_lstm/lstm_cell",
        "rnn/stacked_rnn_cells/lstm_cell",
        "rnn/stacked_rnn_cells/gru_cell",
    ]
    assert [c.layer for c in discover.find_cells(restored)] == layers


def test_histograms_hold_every_weight_of_the_block(tmp_path):
    model = mixed_model()
    model.fit(
        *data(8), epochs=1, verbose=0, callbacks=[tb_lstm_gates.LSTMGatesCallback(tmp_path, histogram_bins=7)]
    )
    hists = [r for r in tb_lstm_gates.load(tmp_path) if r.stat == "histogram"]
    first = [r for r in hists if r.layer == "gru/gru_cell" and r.part == "recurrent" and r.gate == "reset"]
    assert [r.step for r in first] == [0, 1]
    for r in first:
        assert r.value.shape == (7, 3)
        assert r.value[:, 2].sum() == 4 * 4  # (units, units) recurrent block


def test_resume_with_initial_epoch_continues_steps_without_repeats(tmp_path):
    model = mixed_model()
    x, y = data(16)
    model.fit(x, y, epochs=2, verbose=0, callbacks=[tb_lstm_gates.LSTMGatesCallback(tmp_path)])
    model.fit(
        x, y, epochs=4, initial_epoch=2, verbose=0, callbacks=[tb_lstm_gates.LSTMGatesCallback(tmp_path)]
    )
    records = [r for r in tb_lstm_gates.load(tmp_path) if r.stat == "l2"]
    per_block = {}
    for r in records:
        per_block.setdefault((r.layer, r.part, r.gate), []).append(r.step)
    for steps in per_block.values():
        assert steps == [0, 1, 2, 3, 4]


def test_batch_logging_uses_the_global_batch_count_across_epochs(tmp_path):
    model = mixed_model()
    x, y = data(40)  # 5 batches of 8 per epoch
    model.fit(
        x,
        y,
        epochs=2,
        batch_size=8,
        verbose=0,
        callbacks=[tb_lstm_gates.LSTMGatesCallback(tmp_path, update_freq=2, histogram_freq=0)],
    )
    records = tb_lstm_gates.load(tmp_path)
    assert sorted({r.step for r in records}) == [0, 2, 4, 6, 8, 10]
    assert not any(r.stat == "histogram" for r in records)


def test_shares_the_train_run_of_keras_tensorboard_callback(tmp_path):
    model = mixed_model()
    model.fit(
        *data(8),
        epochs=1,
        verbose=0,
        callbacks=[keras.callbacks.TensorBoard(str(tmp_path)), tb_lstm_gates.LSTMGatesCallback(tmp_path)],
    )
    assert sorted(os.listdir(tmp_path)) == ["train"]
    assert {r.run for r in tb_lstm_gates.load(tmp_path)} == {"train"}


def test_layers_filter_keeps_named_layers_only(tmp_path):
    model = mixed_model()
    model.fit(
        *data(8),
        epochs=1,
        verbose=0,
        callbacks=[tb_lstm_gates.LSTMGatesCallback(tmp_path, layers=["bidirectional"])],
    )
    assert {r.layer for r in tb_lstm_gates.load(tmp_path)} == {
        "bidirectional/forward_lstm/lstm_cell",
        "bidirectional/backward_lstm/lstm_cell",
    }


def test_nested_model_and_time_distributed_cells_are_found():
    inner = keras.Sequential([keras.Input((5, 3)), keras.layers.LSTM(4)], name="encoder")
    inp = keras.Input((2, 5, 3))
    out = keras.layers.TimeDistributed(inner)(inp)
    model = keras.Model(inp, keras.layers.GRU(2)(out))
    cells = discover.find_cells(model)
    assert [c.layout.cell for c in cells] == ["lstm", "gru"]
    assert cells[0].names[-1] == "lstm" and "encoder" in cells[0].names


def test_non_worker_zero_does_not_write(tmp_path, monkeypatch):
    monkeypatch.setenv(
        "TF_CONFIG",
        json.dumps(
            {"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}, "task": {"type": "worker", "index": 1}}
        ),
    )
    model = mixed_model()
    model.fit(*data(8), epochs=1, verbose=0, callbacks=[tb_lstm_gates.LSTMGatesCallback(tmp_path)])
    assert not os.path.exists(tmp_path / "train")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(update_freq="batch"), 'update_freq must be "epoch" or a positive int'),
        (dict(update_freq=0), 'update_freq must be "epoch" or a positive int'),
        (dict(histogram_freq=-1), "histogram_freq must be an int >= 0"),
        (dict(layers="lstm"), "layers must be None or a non-empty list"),
        (dict(histogram_bins=0), "histogram_bins must be a positive int"),
        (dict(log_dir=""), "log_dir must be a non-empty path"),
    ],
)
def test_bad_arguments_are_named_in_the_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tb_lstm_gates.LSTMGatesCallback(**kwargs)


def test_every_bad_argument_is_reported_at_once():
    with pytest.raises(ValueError) as info:
        tb_lstm_gates.LSTMGatesCallback(update_freq=-3, histogram_freq="x")
    assert "update_freq" in str(info.value) and "histogram_freq" in str(info.value)


def test_model_without_recurrent_layer_in_strict_mode_raises_listing_supported_layers(tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile("adam", "mse")
    with pytest.raises(ValueError, match="no recurrent layer.*supported: LSTM, GRU, ConvLSTM1D"):
        model.fit(
            np.zeros((4, 3)),
            np.zeros((4, 1)),
            verbose=0,
            callbacks=[tb_lstm_gates.LSTMGatesCallback(tmp_path, strict=True)],
        )
    assert not os.path.exists(tmp_path / "train")


def test_unknown_layer_name_lists_the_recurrent_layers(tmp_path):
    model = mixed_model()
    with pytest.raises(ValueError, match="no recurrent layer named nope; the model's recurrent layers are"):
        model.fit(
            *data(8),
            epochs=1,
            verbose=0,
            callbacks=[tb_lstm_gates.LSTMGatesCallback(tmp_path, layers=["nope"])],
        )


class MinimalRNNCell(keras.layers.Layer):
    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.state_size = units

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), name="kernel")

    def call(self, inputs, states):
        out = keras.ops.matmul(inputs, self.kernel) + states[0]
        return out, [out]


def test_custom_cell_is_skipped_with_one_warning_naming_it(tmp_path):
    inp = keras.Input((4, 3))
    x = keras.layers.RNN(MinimalRNNCell(2), return_sequences=True, name="custom")(inp)
    model = keras.Model(inp, keras.layers.LSTM(2)(x))
    model.compile("adam", "mse")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(
            np.zeros((4, 4, 3)),
            np.zeros((4, 2)),
            epochs=2,
            verbose=0,
            callbacks=[tb_lstm_gates.LSTMGatesCallback(tmp_path)],
        )
    ours = [w for w in caught if "cannot split" in str(w.message)]
    assert len(ours) == 1 and "MinimalRNNCell" in str(ours[0].message)
    assert {r.layer for r in tb_lstm_gates.load(tmp_path)} == {"lstm/lstm_cell"}


def test_unwritable_log_dir_warns_once_and_training_goes_on(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    model = mixed_model()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(
            *data(8), epochs=3, verbose=0, callbacks=[tb_lstm_gates.LSTMGatesCallback(blocker / "logs")]
        )
    ours = [w for w in caught if "LSTMGatesCallback stopped logging" in str(w.message)]
    assert len(ours) == 1 and "strict=True" in str(ours[0].message)
    assert len(history.history["loss"]) == 3
    assert blocker.read_text() == "not a directory"


def test_strict_mode_raises_logging_failures(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    model = mixed_model()
    with pytest.raises(Exception):  # noqa: B017 - whatever the file system raises, strict lets it through
        model.fit(
            *data(8),
            epochs=1,
            verbose=0,
            callbacks=[tb_lstm_gates.LSTMGatesCallback(blocker / "logs", strict=True)],
        )


def test_nan_weights_are_counted_not_fatal(tmp_path):
    model = mixed_model()
    cell = discover.find_cells(model, ["gru"])[0]
    kernel = cell.variables["kernel"]
    value = kernel.numpy()
    value[0, :3] = np.nan
    kernel.assign(value)
    callback = tb_lstm_gates.LSTMGatesCallback(tmp_path, strict=True)
    callback.set_model(model)
    callback.on_train_begin()
    callback.on_epoch_begin(0)
    callback.on_train_end()
    nonfinite = by_key(tb_lstm_gates.load(tmp_path), "nonfinite")
    assert nonfinite[("gru/gru_cell", "input", "update", 0)] == 3
    assert nonfinite[("gru/gru_cell", "input", "reset", 0)] == 0


def test_load_round_trips_the_written_values(tmp_path):
    model = mixed_model()
    model.fit(*data(8), epochs=1, verbose=0, callbacks=[tb_lstm_gates.LSTMGatesCallback(tmp_path)])
    records = tb_lstm_gates.load(tmp_path)
    cell = discover.find_cells(model, ["gru"])[0]
    block = layouts.split(
        cell.variables["recurrent_kernel"].numpy(), cell.layout.weights["recurrent_kernel"][0]
    )["candidate"]
    got = {
        r.stat: r.value
        for r in records
        if (r.layer, r.part, r.gate, r.step) == ("gru/gru_cell", "recurrent", "candidate", 1)
    }
    assert set(got) == {
        "l2",
        "mean",
        "std",
        "min",
        "max",
        "mean_abs",
        "max_abs",
        "nonfinite",
        "update_ratio",
        "spectral_norm",
        "histogram",
    }
    np.testing.assert_allclose(got["spectral_norm"], np.linalg.norm(block, 2), rtol=1e-3)
    np.testing.assert_allclose(got["max"], block.max(), rtol=1e-6)
    np.testing.assert_allclose(got["std"], block.std(), rtol=1e-5)
    assert all(isinstance(r.wall_time, float) and r.cell in ("lstm", "gru", "conv_lstm") for r in records)


def test_load_names_a_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="no log directory"):
        tb_lstm_gates.load(tmp_path / "missing")
