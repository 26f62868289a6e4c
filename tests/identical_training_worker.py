"""Trains one seeded model and saves everything training carries: `python identical_training_worker.py MODE OUT`.

For `tests/test_callback_never_changes_training.py`. Each run is its own
process, so both runs start from the same interpreter, TensorFlow and Keras
state. Modes:

- `plain`: no callback.
- `callback`: `LSTMGatesCallback` with a probe of another batch size than the
  model's, `probe_gradients=True`, logging every 2 batches (so the probe runs
  between batches of a stateful model) with histograms and activation maps.
- `meddling`: a callback that runs the model on a batch between batches, as
  a naive probe would; the test expects this run to differ.

Saves `OUT` (.npz): every model variable (weights, moving statistics, random
seed states), every optimizer variable, every metric variable, the stateful
layers' carried states, and the loss of each epoch.
"""

import os
import sys

MODE, OUT = sys.argv[1], sys.argv[2]

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import tb_lstm_gates  # noqa: E402

BATCH, T, F = 8, 6, 3

# Deterministic kernels, so two plain runs are bit-identical and any
# difference comes from the callback.
tf.config.experimental.enable_op_determinism()
keras.utils.set_random_seed(0)
rng = np.random.default_rng(0)
x = rng.normal(size=(48, T, F)).astype("float32")
y = rng.normal(size=(48, 1)).astype("float32")

model = keras.Sequential(
    [
        keras.Input(batch_shape=(BATCH, T, F)),
        keras.layers.BatchNormalization(),
        keras.layers.LSTM(6, stateful=True, return_sequences=True, dropout=0.2, recurrent_dropout=0.2),
        keras.layers.LSTM(4, stateful=True, dropout=0.1, recurrent_dropout=0.3),
        keras.layers.Dropout(0.2),
        keras.layers.Dense(1),
    ]
)
model.compile(keras.optimizers.Adam(1e-2), "mse", metrics=["mae"])


class Meddling(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        self.model.predict_on_batch(x[:BATCH])


callbacks = {
    "plain": [],
    "callback": [
        tb_lstm_gates.LSTMGatesCallback(
            os.path.join(os.path.dirname(OUT), "logs"),
            update_freq=2,
            probe=(x[:5], y[:5]),
            probe_gradients=True,
        )
    ],
    "meddling": [Meddling()],
}[MODE]
history = model.fit(x, y, batch_size=BATCH, epochs=3, shuffle=True, verbose=0, callbacks=callbacks)

arrays = {"loss": np.array(history.history["loss"])}
for kind, variables in (
    ("model", model.variables),
    ("optimizer", model.optimizer.variables),
    ("metric", model.metrics_variables),
    ("state", [s for layer in model.layers if getattr(layer, "stateful", False) for s in layer.states]),
):
    for i, v in enumerate(variables):
        arrays["%s/%d/%s" % (kind, i, v.path)] = np.array(v.numpy())
np.savez(OUT, **arrays)
print("saved", len(arrays))
