"""Warnings raised while Keras trains name the user's `model.fit` line, not ours or Keras's."""

import inspect
import warnings

import keras
import numpy as np

import tb_lstm_gates


def fit_line_and_warnings(model, callback):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(4, 3, 2)), rng.normal(size=(4, 1))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        line = inspect.currentframe().f_lineno + 1
        model.fit(x, y, epochs=1, verbose=0, callbacks=[callback])
    ours = ("tb-lstm-gates", "LSTMGatesCallback")
    return line, [w for w in caught if any(name in str(w.message) for name in ours)]


def test_a_logging_failure_warning_names_the_fit_line(tmp_path):
    model = keras.Sequential([keras.Input((3, 2)), keras.layers.LSTM(2), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    # A log directory below a regular file cannot be created.
    (tmp_path / "file").write_text("")
    callback = tb_lstm_gates.LSTMGatesCallback(str(tmp_path / "file" / "logs"))
    line, caught = fit_line_and_warnings(model, callback)
    (warning,) = caught
    assert "stopped logging" in str(warning.message)
    assert (warning.filename, warning.lineno) == (__file__, line)


def test_the_skipped_layer_warning_names_the_fit_line(tmp_path):
    model = keras.Sequential(
        [
            keras.Input((3, 2)),
            keras.layers.SimpleRNN(2, return_sequences=True, name="simple"),
            keras.layers.LSTM(2),
            keras.layers.Dense(1),
        ]
    )
    model.compile("sgd", "mse")
    line, caught = fit_line_and_warnings(model, tb_lstm_gates.LSTMGatesCallback(str(tmp_path / "logs")))
    (warning,) = caught
    assert "skips it" in str(warning.message) and "simple" in str(warning.message)
    assert (warning.filename, warning.lineno) == (__file__, line)


def test_the_callbacks_own_warnings_name_the_fit_line(tmp_path):
    def lstm():
        model = keras.Sequential([keras.Input((3, 2)), keras.layers.LSTM(2), keras.layers.Dense(1)])
        model.compile("sgd", "mse")
        return model

    fit_line_and_warnings(lstm(), tb_lstm_gates.LSTMGatesCallback(str(tmp_path / "logs")))
    # A rerun of the script: a fresh model on a log directory that holds steps.
    line, caught = fit_line_and_warnings(lstm(), tb_lstm_gates.LSTMGatesCallback(str(tmp_path / "logs")))
    (warning,) = caught
    assert "already holds steps" in str(warning.message)
    assert (warning.filename, warning.lineno) == (__file__, line)

    cnn = keras.Sequential(
        [keras.Input((3, 2)), keras.layers.Conv1D(2, 2), keras.layers.Flatten(), keras.layers.Dense(1)]
    )
    cnn.compile("sgd", "mse")
    line, caught = fit_line_and_warnings(cnn, tb_lstm_gates.LSTMGatesCallback(str(tmp_path / "cnn")))
    (warning,) = caught
    assert "logs nothing for this model" in str(warning.message)
    assert (warning.filename, warning.lineno) == (__file__, line)
