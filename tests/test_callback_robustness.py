"""LSTMGatesCallback when the disk fills, weights diverge, or weights are not float32.

Complements tests/test_keras_callback.py (unwritable log_dir, strict mode,
NaN weights set before training).
"""

import contextlib
import os
import subprocess
import traceback
import warnings

import keras
import numpy as np
import pytest
import worker_process

import tb_lstm_gates
from tb_lstm_gates.core import layouts
from tb_lstm_gates.keras import discover

RNG = np.random.default_rng(5)
STOPPED = "LSTMGatesCallback stopped logging"


@pytest.fixture(autouse=True)
def fresh_keras_names():
    keras.backend.clear_session()


def lstm_model(units=8, dtype=None):
    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [
            keras.Input((6, 4), dtype=dtype),
            keras.layers.LSTM(units, return_sequences=True, dtype=dtype),
            keras.layers.GRU(units, dtype=dtype),
            keras.layers.Dense(1, dtype=dtype),
        ]
    )
    model.compile(keras.optimizers.Adam(1e-2), "mse")
    return model


def data(n=16):
    return RNG.normal(size=(n, 6, 4)).astype("float32"), RNG.normal(size=(n, 1)).astype("float32")


@contextlib.contextmanager
def tiny_disk(path, size="24k"):
    """A tmpfs of `size` mounted at `path`: writes past it fail with ENOSPC, as on a full disk.

    24 KiB hold the first step of `lstm_model(units=16)` (16 KB: the first
    point of each packing goes to every stride with its metadata), not the
    second (10 KB more: it starts the packings with update_ratio), let
    alone six epochs."""
    path.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=" + size, "tmpfs", os.fspath(path)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root): " + result.stderr.strip())
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", os.fspath(path)], check=True)


def test_full_disk_is_reported_once_training_goes_on_and_whole_steps_stay_readable(tmp_path):
    with tiny_disk(tmp_path / "disk") as disk:
        model = lstm_model(units=16)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            history = model.fit(
                *data(), epochs=6, verbose=0, callbacks=[tb_lstm_gates.LSTMGatesCallback(disk)]
            )
        ours = [str(w.message) for w in caught if STOPPED in str(w.message)]
        assert len(ours) == 1, ours
        assert "strict=True" in ours[0]
        assert len(history.history["loss"]) == 6
        steps = sorted({r.step for r in tb_lstm_gates.load(disk)})
        # The disk filled before the last step; what is on it reads as whole steps.
        assert steps == list(range(len(steps))) and 0 < len(steps) < 7


def test_full_disk_in_strict_mode_stops_training(tmp_path):
    with tiny_disk(tmp_path / "disk") as disk:
        model = lstm_model(units=16)
        with pytest.raises(Exception):  # noqa: B017 - whatever the file system raises, strict lets it through
            model.fit(
                *data(), epochs=6, verbose=0, callbacks=[tb_lstm_gates.LSTMGatesCallback(disk, strict=True)]
            )


def test_a_full_disk_on_the_writer_thread_stops_training_at_on_train_end_in_strict_mode(tmp_path):
    # Step 0 fits on the disk, step 1 (the last) does not: it fails on the
    # writer's thread after on_epoch_end has returned, and on_train_end raises it.
    with tiny_disk(tmp_path / "disk") as disk:
        model = lstm_model(units=16)
        callback = tb_lstm_gates.LSTMGatesCallback(disk, strict=True)
        with pytest.raises(Exception) as raised:  # noqa: B017 - whatever the file system raises
            model.fit(*data(), epochs=1, verbose=0, callbacks=[callback])
        frames = [
            (os.path.basename(f.filename), f.name) for f in traceback.extract_tb(raised.value.__traceback__)
        ]
        assert ("callback.py", "on_train_end") in frames and ("background.py", "_serve") in frames, frames


def test_a_full_disk_on_the_writer_thread_is_one_warning_at_on_train_end(tmp_path):
    with tiny_disk(tmp_path / "disk") as disk:
        model = lstm_model(units=16)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            history = model.fit(
                *data(), epochs=1, verbose=0, callbacks=[tb_lstm_gates.LSTMGatesCallback(disk)]
            )
        ours = [str(w.message) for w in caught if STOPPED in str(w.message)]
        assert len(ours) == 1, ours
        assert len(history.history["loss"]) == 1
        assert {r.step for r in tb_lstm_gates.load(disk)} == {0}


class PoisonAfterEpoch(keras.callbacks.Callback):
    """Sets some of the LSTM's input-gate kernel entries to NaN and Inf after epoch `epoch`."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            kernel = self.model.layers[0].cell.kernel
            value = keras.ops.convert_to_numpy(kernel).copy()
            value[0, 0], value[1, 0], value[2, 1] = np.nan, np.inf, -np.inf
            kernel.assign(value)


def test_weights_turning_nan_during_training_are_counted_without_a_warning(tmp_path):
    model = lstm_model()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(
            *data(),
            epochs=3,
            verbose=0,
            callbacks=[PoisonAfterEpoch(0), tb_lstm_gates.LSTMGatesCallback(tmp_path, strict=True)],
        )
    assert not [w for w in caught if STOPPED in str(w.message)]
    assert len(history.history["loss"]) == 3
    records = tb_lstm_gates.load(tmp_path)
    nonfinite = {
        r.step: r.value
        for r in records
        if (r.layer, r.part, r.gate, r.stat) == ("lstm/lstm_cell", "input", "input", "nonfinite")
    }
    assert nonfinite[0] == 0
    # Step 1 holds the poisoned entries; NaN then spreads through training.
    assert nonfinite[1] == 3
    assert nonfinite[2] >= 3
    assert sorted(nonfinite) == [0, 1, 2, 3]


def _assert_l2_is_numpy_norm(records, model):
    cells = discover.find_cells(model)
    l2 = {(r.layer, r.part, r.gate): r.value for r in records if r.stat == "l2" and r.step == 1}
    checked = 0
    for cell in cells:
        for name, array in cell.arrays().items():
            for piece in cell.layout.weights[name]:
                for gate, block in layouts.split(array, piece, name).items():
                    expected = np.linalg.norm(block.astype(np.float64))
                    np.testing.assert_allclose(l2[cell.layer, piece.part, gate], expected, rtol=1e-6)
                    checked += 1
    assert checked == 12 + 12


def test_float64_layers_are_logged_with_their_values(tmp_path):
    model = lstm_model(dtype="float64")
    assert {np.dtype(w.dtype) for w in model.weights} == {np.dtype("float64")}
    model.fit(*data(), epochs=1, verbose=0, callbacks=[tb_lstm_gates.LSTMGatesCallback(tmp_path)])
    records = tb_lstm_gates.load(tmp_path)
    _assert_l2_is_numpy_norm(records, model)
    hist = [
        r for r in records if r.stat == "histogram" and r.layer == "lstm/lstm_cell" and r.part == "recurrent"
    ]
    assert all(r.value[:, 2].sum() == 8 * 8 for r in hist)


def test_mixed_float16_policy_logs_the_float32_weights(tmp_path):
    logdir, out = tmp_path / "logs", tmp_path / "out"
    stdout = worker_process.run("mixed_float16", logdir, out, 2)
    assert "DONE" in stdout
    logged = worker_process.logged_recurrent_l2(tb_lstm_gates.load(logdir))
    assert sorted(logged) == [0, 1, 2]
    worker_process.assert_logged_l2_is_saved_l2(logged, out)
