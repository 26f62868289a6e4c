"""Trains one generated model structure: `python every_cell_training_worker.py MODE SPEC OUT`.

For `tests/test_every_cell_keras.py`. MODE is `plain` (no callback) or
`callback` (`LSTMGatesCallback` logging every batch with a probe and its
gradients, to `logs/` beside OUT). SPEC is the `repr` of a
`keras_structures` model spec. Saves OUT (.npz): every model and optimizer
variable and the loss of each epoch.
"""

import ast
import os
import sys

MODE, SPEC, OUT = sys.argv[1], ast.literal_eval(sys.argv[2]), sys.argv[3]

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
import keras_structures  # noqa: E402

import tb_lstm_gates  # noqa: E402

tf.config.experimental.enable_op_determinism()
keras.utils.set_random_seed(0)
rng = np.random.default_rng(0)
x = rng.normal(size=(8, keras_structures.T, keras_structures.FEATURES)).astype("float32")
y = rng.normal(size=(8, 1)).astype("float32")
model = keras_structures.model(SPEC)
callbacks = []
if MODE == "callback":
    logs = os.path.join(os.path.dirname(OUT), "logs")
    callbacks = [
        tb_lstm_gates.LSTMGatesCallback(logs, update_freq=1, probe=(x[:3], y[:3]), probe_gradients=True)
    ]
history = model.fit(x, y, batch_size=4, epochs=2, shuffle=True, verbose=0, callbacks=callbacks)
arrays = {"loss": np.array(history.history["loss"])}
for kind, variables in (("model", model.variables), ("optimizer", model.optimizer.variables)):
    for i, v in enumerate(variables):
        arrays["%s/%d/%s" % (kind, i, v.path)] = np.array(v.value)
np.savez(OUT, **arrays)
