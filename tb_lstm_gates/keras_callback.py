"""`LSTMGatesCallback`: per-gate weight summaries from `model.fit`."""

import os

import keras

from tb_lstm_gates import discover, distribute, regularizers, stats, summary
from tb_lstm_gates import probe as probe_lib

TRAIN_RUN = "train"


class LSTMGatesCallback(keras.callbacks.Callback):
    """Logs per-gate statistics and histograms of every recurrent layer.

    Each LSTM, GRU or ConvLSTM layer keeps its gates fused in one kernel, one
    recurrent kernel and one bias. This callback splits them into per-gate
    blocks (input, forget, cell, output for LSTMs; update, reset, candidate
    for GRUs) and writes, for each block, its `l2` norm, `mean`, `std`,
    `min`, `max`, `mean_abs`, `max_abs`, `nonfinite` count and
    `update_ratio`, plus a histogram, and for each recurrent block its
    `spectral_norm` (largest singular value), for the "LSTM Gates" tab of
    TensorBoard.

    Layers that carry `GateRegularizer`s (see `tb_lstm_gates.regularizers`)
    also get the penalty of each gate and their total, next to the model's
    weight regularization loss and its training loss.

    Summaries go to `log_dir/train`, the run folder that
    `keras.callbacks.TensorBoard` uses for the same `log_dir`. Step 0 holds the
    weights before training; then step `e` holds the weights after epoch `e`
    (`update_freq="epoch"`) or step `b` those after global batch `b`. Training
    resumed with `initial_epoch` continues the steps. Under `tf.distribute`
    only the chief writes.

    With `probe=x`, a small fixed batch of model inputs, each logged step
    also holds what every LSTM and GRU layer's gates do on it: per gate the
    mean activation, the fraction of saturated activations and, for the
    gate that keeps the state (LSTM forget, GRU update), the mean retention
    horizon 1 / (1 - a) in steps (capped at 1000), and per unit the
    fractions left- and right-saturated, all over the probe's unmasked time
    steps; and, with the histograms, each gate's activations on
    the probe's first sequence over time steps and units. Their `part` is
    `activation` (see `tb_lstm_gates.metadata`). With `probe=(x, y)` and
    `probe_gradients=True` (TensorFlow, torch or JAX backend), also the norm of the
    gradient of the model's loss on the probe for each block, as stat
    `grad_norm`: which gates still learn.

    A failure while logging (an unwritable `log_dir`, a full disk) is
    reported once as a warning and logging stops; training goes on, unless
    `strict=True`.

    Args:
      log_dir: the log directory, as given to `keras.callbacks.TensorBoard`.
      update_freq: `"epoch"` to log after every epoch, or an int `N` to log
        every `N` batches (on the global batch count).
      histogram_freq: write histograms every this many logged steps; 0 for
        none.
      layers: names of the layers to log (recurrent layers, wrappers or
        nested models); None for every recurrent layer.
      histogram_bins: buckets per gate histogram.
      strict: raise logging failures instead of warning and going on.
      probe: None, or model inputs `x` (an array, a list of arrays or a
        dict of arrays by input name, 1 to 256 sequences on the first axis),
        or a tuple `(x, y)` with targets. Pass several inputs as a list.
      probe_gradients: also log per-block gradient norms on the probe; needs
        `probe=(x, y)` and Keras on TensorFlow, torch or JAX.

    Example:

    ```python
    import numpy as np
    import keras
    import tb_lstm_gates

    model = keras.Sequential([keras.Input((20, 8)), keras.layers.LSTM(16), keras.layers.Dense(1)])
    model.compile("adam", "mse")
    x, y = np.random.rand(64, 20, 8), np.random.rand(64, 1)
    callback = tb_lstm_gates.LSTMGatesCallback("logs/run1", probe=(x[:8], y[:8]), probe_gradients=True)
    model.fit(x, y, epochs=3, callbacks=[callback])
    # then: tensorboard --logdir logs, and open the LSTM Gates tab
    ```
    """

    def __init__(
        self,
        log_dir="logs",
        update_freq="epoch",
        histogram_freq=1,
        layers=None,
        histogram_bins=stats.DEFAULT_BINS,
        strict=False,
        probe=None,
        probe_gradients=False,
    ):
        super().__init__()
        errors = summary.check_logging_args(log_dir, histogram_freq, histogram_bins)
        try:
            self._probe_x, self._probe_y = probe_lib.check_probe(probe, probe_gradients)
        except ValueError as e:
            errors.append(str(e))
        if update_freq != "epoch" and not (summary.is_int(update_freq) and update_freq > 0):
            errors.append('update_freq must be "epoch" or a positive int (batches), got %r' % (update_freq,))
        if layers is not None and (
            isinstance(layers, str) or not all(isinstance(n, str) for n in layers) or not layers
        ):
            errors.append("layers must be None or a non-empty list of layer names, got %r" % (layers,))
        if not isinstance(probe_gradients, bool):
            errors.append("probe_gradients must be True or False, got %r" % (probe_gradients,))
        if errors:
            raise ValueError("LSTMGatesCallback: " + "; ".join(errors))
        self.log_dir = os.fspath(log_dir)
        self.update_freq = update_freq
        self.histogram_freq = histogram_freq
        self.layers = list(layers) if layers is not None else None
        self.histogram_bins = histogram_bins
        self.strict = strict
        self.probe_gradients = probe_gradients
        self._probe = None
        self._writer = None
        self._logger = None
        self._cells = []
        self._epoch = 0
        self._logged = 0
        self._last_step = None
        self._guard = summary.FailureGuard("LSTMGatesCallback", self.run_dir, strict)

    @property
    def run_dir(self):
        return os.path.join(self.log_dir, TRAIN_RUN)

    def on_train_begin(self, logs=None):
        self._cells = discover.find_cells(self.model, self.layers)
        self._guard.failed = False
        self._logged = 0
        self._last_step = None
        if not distribute.is_chief():
            self._writer = None
            return
        self._guard.run(self._open)

    def _open(self):
        self._writer = summary.GateSummaryWriter(self.run_dir)
        self._logger = summary.CellLogger(self._writer, self.histogram_bins)
        if self._probe_x is not None:
            self._probe = probe_lib.ProbeLogger(
                self.model, self._cells, self._probe_x, self._probe_y, self.probe_gradients
            )

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        if epoch == 0 and self._last_step is None:
            self._log(0)

    def on_train_batch_end(self, batch, logs=None):
        if self.update_freq == "epoch":
            return
        step = self._global_batch(batch)
        if step % self.update_freq == 0:
            self._sync_backend_state()
            self._log(step, logs)

    def on_epoch_end(self, epoch, logs=None):
        if self.update_freq == "epoch":
            self._log(epoch + 1, logs)

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._guard.run(self._writer.close)
            self._writer = None

    def _global_batch(self, batch):
        steps = (self.params or {}).get("steps")
        if steps:
            return self._epoch * steps + batch + 1
        # Unknown epoch length: the optimizer's own count survives resumes
        # from a saved model.
        self._sync_backend_state()
        return int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))

    def _sync_backend_state(self):
        # Keras on JAX keeps the weights out of the model's variables during an
        # epoch; a batch hook that reads them has to put them back first.
        sync = getattr(self.model, "jax_state_sync", None)
        if sync is not None:
            sync()

    def _log(self, step, logs=None):
        if self._writer is None or self._guard.failed or step == self._last_step:
            return
        histograms = self.histogram_freq > 0 and self._logged % self.histogram_freq == 0
        if self._guard.run(self._write_step, step, histograms, logs):
            self._logged += 1
            self._last_step = step

    def _write_step(self, step, histograms, logs):
        if self._probe is not None:
            self._probe.log(self._writer, maps=histograms)
        penalties = []
        # One cell's weights at a time, so only one cell's copy is alive
        # beside the previous step's weights.
        for cell in self._cells:
            arrays = cell.arrays()
            self._logger.log_cell(cell.layer, cell.layout, arrays, histograms)
            penalties.append((cell, regularizers.cell_penalties(cell, arrays)))
        regularizers.write_penalties(self._writer, self.model, penalties, (logs or {}).get("loss"))
        self._writer.end_step(step)
