"""Tiny Keras runs trained to show each condition the findings rules look for.

Each `train_*` function trains one model with `LSTMGatesCallback` into
`root/<name>`, so its run is `<name>/train`. They share one regression task:
the sum over time of the first input feature, which an 8-unit LSTM learns in
a few epochs.
"""

import os

import numpy as np

SEQUENCES, TIME, FEATURES = 64, 12, 3
EPOCHS = 6
# Epoch whose end writes NaN into the NaN run's recurrent kernel; the callback
# logs it at step NAN_EPOCH + 1.
NAN_EPOCH = 2
NAN_STEP = NAN_EPOCH + 1
# Epoch from which the stalled run's learning rate is almost zero.
STALL_EPOCH = 3


def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(SEQUENCES, TIME, FEATURES)).astype("float32")
    y = x[..., :1].sum(axis=1) / np.sqrt(TIME)
    return x, y


def _fit(root, name, model, optimizer, probe=False, callbacks=(), epochs=EPOCHS):
    import keras

    import tb_lstm_gates

    model.compile(optimizer, "mse")
    x, y = data()
    logger = tb_lstm_gates.LSTMGatesCallback(
        os.path.join(os.fspath(root), name),
        probe=(x[:16], y[:16]) if probe else None,
        probe_gradients=probe,
        histogram_freq=0,
    )
    # The run's own callbacks go first: what they change at an epoch's end is
    # what the logger sees at that step.
    model.fit(x, y, epochs=epochs, batch_size=16, verbose=0, callbacks=[*callbacks, logger])
    keras.backend.clear_session()
    return name + "/train"


def _model(*layers):
    import keras

    return keras.Sequential([keras.Input((TIME, FEATURES)), *layers, keras.layers.Dense(1)])


def _set_gate_bias(layer, gate, value):
    """Sets one gate's slice of a built Keras LSTM's bias (gates i, f, c, o)."""
    bias = np.array(layer.cell.bias.numpy())
    units = bias.shape[0] // 4
    k = ("input", "forget", "cell", "output").index(gate)
    bias[k * units : (k + 1) * units] = value
    layer.cell.bias.assign(bias)


def train_healthy(root):
    """LSTM -> GRU, Adam at 3e-3, a light gate-wise L2 and a probe with gradients."""
    import keras

    from tb_lstm_gates.keras.regularizers import GateRegularizer

    keras.utils.set_random_seed(1)
    model = _model(
        keras.layers.LSTM(8, return_sequences=True, recurrent_regularizer=GateRegularizer("lstm", l2=1e-4)),
        keras.layers.GRU(6),
    )
    return _fit(root, "healthy", model, keras.optimizers.Adam(3e-3), probe=True)


def train_nan(root):
    """An LSTM whose recurrent kernel gets a NaN at the end of epoch NAN_EPOCH."""
    import keras

    keras.utils.set_random_seed(2)
    lstm = keras.layers.LSTM(8)
    model = _model(lstm)

    def poison(epoch, logs):
        if epoch == NAN_EPOCH:
            kernel = np.array(lstm.cell.recurrent_kernel.numpy())
            kernel[0, 8 + 1] = np.nan  # a weight of the forget gate (columns 8..15)
            lstm.cell.recurrent_kernel.assign(kernel)

    return _fit(
        root,
        "nan",
        model,
        keras.optimizers.Adam(3e-3),
        callbacks=[keras.callbacks.LambdaCallback(on_epoch_end=poison)],
    )


def train_gates(root):
    """Two LSTMs with biases that force gates: the first's forget gate shut
    (bias -10), the second's forget gate stuck open (+10) and its input gate
    saturated (+10); probe with gradients."""
    import keras

    keras.utils.set_random_seed(3)
    shut = keras.layers.LSTM(8, return_sequences=True, name="shut")
    stuck = keras.layers.LSTM(8, name="stuck")
    model = _model(shut, stuck)
    _set_gate_bias(shut, "forget", -10.0)
    _set_gate_bias(stuck, "forget", 10.0)
    _set_gate_bias(stuck, "input", 10.0)
    return _fit(root, "gates", model, keras.optimizers.Adam(1e-3), probe=True)


def train_high_lr(root):
    """An LSTM trained with Adam at a learning rate of 0.5, hundreds of times too high."""
    import keras

    keras.utils.set_random_seed(4)
    return _fit(root, "high_lr", _model(keras.layers.LSTM(8)), keras.optimizers.Adam(0.5))


def train_stalled(root):
    """An LSTM whose learning rate drops to 1e-9 from epoch STALL_EPOCH on."""
    import keras

    keras.utils.set_random_seed(5)
    schedule = keras.callbacks.LearningRateScheduler(lambda epoch, lr: 3e-3 if epoch < STALL_EPOCH else 1e-9)
    return _fit(
        root, "stalled", _model(keras.layers.LSTM(8)), keras.optimizers.Adam(3e-3), callbacks=[schedule]
    )


def train_over_regularized(root):
    """An LSTM whose gate-wise L2 of 1.0 on every block outweighs the data loss."""
    import keras

    from tb_lstm_gates.keras.regularizers import GateRegularizer

    keras.utils.set_random_seed(6)
    heavy = GateRegularizer("lstm", l2=1.0)
    lstm = keras.layers.LSTM(8, kernel_regularizer=heavy, recurrent_regularizer=heavy)
    return _fit(root, "over_regularized", _model(lstm), keras.optimizers.Adam(3e-3))


def train_expansive(root):
    """An LSTM whose recurrent kernel starts orthogonal with gain 12: every
    gate's recurrent block has singular values near 12."""
    import keras

    keras.utils.set_random_seed(7)
    lstm = keras.layers.LSTM(8, recurrent_initializer=keras.initializers.Orthogonal(gain=12.0))
    return _fit(root, "expansive", _model(lstm), keras.optimizers.Adam(1e-3))


TRAINERS = {
    "healthy": train_healthy,
    "nan": train_nan,
    "gates": train_gates,
    "high_lr": train_high_lr,
    "stalled": train_stalled,
    "over_regularized": train_over_regularized,
    "expansive": train_expansive,
}


def train_all(root):
    """Trains every run into `root`; returns `{name: run}`."""
    return {name: train(root) for name, train in TRAINERS.items()}
