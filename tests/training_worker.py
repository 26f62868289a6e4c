"""A training process for the tests that need their own: `python training_worker.py MODE ARGS...`.

Each mode trains a tiny LSTM with `LSTMGatesCallback` on a fixed data set,
and saves the LSTM's recurrent kernel after each epoch (`OUT/step_<n>.npy`,
step 0 before training) so the test can compare the logged values with
numpy's. Modes:

- `mirrored LOGDIR OUT EPOCHS`: `MirroredStrategy` over two logical CPUs.
- `mwms LOGDIR OUT EPOCHS`: `MultiWorkerMirroredStrategy`; the cluster comes
  from `TF_CONFIG`.
- `crash LOGDIR OUT EPOCHS`: after each epoch `n`, saves the model
  (`OUT/model_<n>.keras`) and then `n` (`OUT/epoch`), prints `EPOCH n`
  and, after `EPOCHS`, waits to be killed.
- `resume LOGDIR OUT EPOCHS`: loads the model of the epoch in `OUT/epoch`
  and trains from there up to `EPOCHS`.
- `mixed_float16 LOGDIR OUT EPOCHS`: under the `mixed_float16` policy.
- `append LOGDIR OUT EPOCHS`: plain training, one second per epoch, for the
  load test's live log directory.
"""

import os
import sys
import time

import numpy as np

MODE, LOGDIR, OUT, EPOCHS = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
UNITS = 4

if MODE == "mirrored":
    # Must run before TensorFlow initialises its devices.
    import tensorflow as tf

    (cpu,) = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
elif MODE == "mwms":
    import tensorflow as tf

    strategy = tf.distribute.MultiWorkerMirroredStrategy()
else:
    strategy = None

import keras  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import tb_lstm_gates  # noqa: E402
from tb_lstm_gates.logs import distribute  # noqa: E402

if MODE == "mixed_float16":
    keras.mixed_precision.set_global_policy("mixed_float16")


def build():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((5, 2)), keras.layers.LSTM(UNITS), keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(1e-2), "mse")
    return model


def work_around_keras_multi_worker_bugs(model):
    """Keras 3's `fit` fails under `MultiWorkerMirroredStrategy` before any callback runs
    (keras-team/keras#20585, tensorflow/tensorflow#72388): it reduces the first
    input batch with `strategy.reduce` to build the model, and every step's
    scalar metrics with `reduce(..., axis=0)`; both raise. Build the model
    here instead, and reduce the metrics per worker (the gradients are still
    all-reduced across workers by the optimizer, so weights stay in sync).
    """
    from keras.src.backend.tensorflow import trainer

    with strategy.scope():
        model._symbolic_build(data_batch=(X[:1], Y[:1]))
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None
    trainer._collective_all_reduce_multi_worker = lambda strategy: False


class SaveKernel(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        if MODE != "resume":
            self._save(0)

    def on_epoch_end(self, epoch, logs=None):
        self._save(epoch + 1)

    def _save(self, step):
        lstm = self.model.layers[0]
        np.save(
            os.path.join(OUT, "step_%d.npy" % step), keras.ops.convert_to_numpy(lstm.cell.recurrent_kernel)
        )


class CheckpointThenWaitToBeKilled(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        self.model.save(os.path.join(OUT, "model_%d.keras" % (epoch + 1)))
        with open(os.path.join(OUT, "epoch"), "w") as f:
            f.write(str(epoch + 1))
        print("EPOCH %d" % (epoch + 1), flush=True)
        if epoch + 1 == EPOCHS:
            time.sleep(3600)


class Slow(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        print("EPOCH %d" % (epoch + 1), flush=True)
        time.sleep(1)


rng = np.random.default_rng(0)
X = rng.normal(size=(32, 5, 2)).astype("float32")
Y = rng.normal(size=(32, 1)).astype("float32")
os.makedirs(OUT, exist_ok=True)
print("CHIEF %s" % distribute.is_chief(), flush=True)

initial_epoch, epochs = 0, EPOCHS
callbacks = [tb_lstm_gates.LSTMGatesCallback(LOGDIR), SaveKernel()]
if MODE == "resume":
    with open(os.path.join(OUT, "epoch")) as f:
        initial_epoch = int(f.read())
    model = keras.models.load_model(os.path.join(OUT, "model_%d.keras" % initial_epoch))
elif strategy is not None:
    with strategy.scope():
        model = build()
    if MODE == "mwms":
        work_around_keras_multi_worker_bugs(model)
else:
    model = build()
if MODE == "crash":
    epochs = EPOCHS + 1
    callbacks.append(CheckpointThenWaitToBeKilled())
elif MODE == "append":
    callbacks.append(Slow())
model.fit(X, Y, epochs=epochs, initial_epoch=initial_epoch, batch_size=8, verbose=0, callbacks=callbacks)
print("DONE", flush=True)
