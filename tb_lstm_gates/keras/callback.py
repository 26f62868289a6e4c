"""`LSTMGatesCallback`: per-gate weight summaries from `model.fit`."""

import os
import warnings
from collections.abc import Sequence
from typing import Any

import keras

from tb_lstm_gates.core import callers, stats
from tb_lstm_gates.keras import (
    callback_args,
    callback_steps,
    discover,
    probe_run,
    run_steps,
    step_writer,
)
from tb_lstm_gates.keras import probe as probe_lib
from tb_lstm_gates.logs import background, distribute, guard, summary, tokens
from tb_lstm_gates.logs import hparams as hparams_summary

TRAIN_RUN = "train"


class LSTMGatesCallback(callback_steps.StepNumbering, keras.callbacks.Callback):
    # One class for Keras 3 and tf_keras: it subclasses Keras 3's Callback and
    # implements the few private hooks tf_keras's CallbackList asks every
    # callback for (below). Choosing the base class by the model's framework
    # would need the class before the model is known, and two classes behind
    # one name break isinstance checks and pickling.
    """Logs per-gate statistics and histograms of every recurrent layer.

    Each LSTM, GRU or ConvLSTM layer keeps its gates fused in one kernel, one
    recurrent kernel and one bias. This callback splits them into per-gate
    blocks (input, forget, cell, output for LSTMs; update, reset, candidate
    for GRUs) and writes, for each block, its `l2` norm, `mean`, `std`,
    `min`, `max`, `mean_abs`, `max_abs`, `nonfinite` count and
    `update_ratio`, plus a histogram, and for each recurrent block its
    `spectral_norm` (largest singular value), for the "LSTM Gates" tab of
    TensorBoard.

    Layers that carry `GateRegularizer`s (see `tb_lstm_gates.keras.regularizers`)
    also get the penalty of each gate and their total, next to the model's
    weight regularization loss and its training loss.

    Summaries go to `log_dir/train`, the run folder that
    `keras.callbacks.TensorBoard` uses for the same `log_dir`. Step 0 holds the
    weights before training; then step `e` holds the weights after epoch `e`
    (`update_freq="epoch"`) or step `b` those after global batch `b`. Steps
    keep counting when `fit` is called again, in a loop, with this callback
    or a new one: a run resumed with `initial_epoch` takes Keras's epoch
    numbers; a model that has already trained (its optimizer has taken
    steps) continues after the last step in `log_dir`. A model that has not
    trained yet, given a `log_dir` that already holds steps, starts again at
    step 0 with a warning naming the steps it replaces: give each run its own
    directory. Under `tf.distribute` only the chief writes.

    The callback never changes training: the probe runs in inference mode,
    stateful layers keep their carried states, and no weight, optimizer
    slot, random seed or metric differs because it ran. The same callback
    works with Keras 3 and with tf_keras (`TF_USE_LEGACY_KERAS=1`) models.

    With `probe=x`, a small fixed batch of model inputs, each logged step
    also holds what every LSTM and GRU layer's gates do on it: per gate the
    mean activation, the fraction of saturated activations and, for the
    gate that keeps the state (LSTM forget, GRU update), the mean retention
    horizon 1 / (1 - a) in steps (capped at 1000), and per unit the
    fractions left- and right-saturated, all over the probe's unmasked time
    steps; and, with the histograms, each gate's activations on
    the probe's first sequence over time steps and units. Their `part` is
    `activation` (see `tb_lstm_gates.logs.metadata`). With `probe=(x, y)` and
    `probe_gradients=True` (TensorFlow, torch or JAX backend), also the norm of the
    gradient of the model's loss on the probe for each block, as stat
    `grad_norm`: which gates still learn (for trainable weights only; a
    frozen layer gets none).

    Training waits only for a copy of the recurrent weights (and for the
    probe, which runs the model); statistics and writing run on a
    background thread, one step at a time: a step that arrives while the
    previous one is still being written waits for it (docs/async-logging.md).

    A failure while logging (an unwritable `log_dir`, a full disk, a model
    without any recurrent layer) is reported once as a warning and logging
    stops; training goes on, unless `strict=True`. A failure on the
    background thread surfaces at the next logged step or in `on_train_end`.

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
      probe_tokens: None, or the probe's tokens for the tab's Text view and
        activation map (written once per run): a list of token lists, one
        per probe sequence and as long as its time steps; or, for a probe
        of integer ids, a vocabulary (a list or dict from id to string) or
        a function from an id to its string (`tb_lstm_gates.logs.tokens`).
      hparams: None, or the run's hyperparameters (a dict of names to bool,
        int, float or str): `log_dir` becomes a session of TensorBoard's
        HParams dashboard, as with `hp.KerasCallback(log_dir, hparams)`, and
        shows the gate metrics every step writes (docs/sweeps.md).

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
        log_dir: str | os.PathLike[str] = "logs",
        update_freq: str | int = "epoch",
        histogram_freq: int = 1,
        layers: Sequence[str] | None = None,
        histogram_bins: int = stats.DEFAULT_BINS,
        strict: bool = False,
        probe: Any = None,
        probe_gradients: bool = False,
        probe_tokens: tokens.ProbeTokens | None = None,
        hparams: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self._probe_x, self._probe_y, self._probe_tokens = callback_args.check(
            log_dir,
            update_freq,
            histogram_freq,
            layers,
            histogram_bins,
            probe,
            probe_gradients,
            probe_tokens,
            hparams,
        )
        self.log_dir = os.fspath(log_dir)
        self.update_freq = update_freq
        self.histogram_freq = histogram_freq
        self.layers = list(layers) if layers is not None else None
        self.histogram_bins = histogram_bins
        self.strict = strict
        self.probe_gradients = probe_gradients
        self.hparams = None if hparams is None else dict(hparams)
        self._guard = guard.FailureGuard("LSTMGatesCallback", self.run_dir, strict)
        # What tf_keras's CallbackList reads from every callback: logs as
        # numpy values, and no chief-only rule of its own (`is_chief` decides).
        self._supports_tf_logs = False
        self._chief_worker_only = None
        self._counted = None  # the model the state below belongs to
        self._first_epoch = None  # the first epoch of the current `fit` call
        self._base = self._epoch = 0
        self._forget_model()

    def _forget_model(self) -> None:
        self._probe: probe_lib.ProbeLogger | None = None
        self._writer: summary.GateSummaryWriter | None = None
        self._logger: summary.CellLogger | None = None
        self._background: background.BackgroundWriter | None = None
        self._cells: list[Any] = []
        self._logged = 0  # steps logged, for histogram_freq
        self._last_step = None  # the last step logged for this model, or found in log_dir
        self._last_written = None  # the last step this callback wrote
        self._existing: set[int] = set()  # steps log_dir held when this callback first saw the model
        self._rerun = False  # a fresh model writes over those steps, as the user was told
        self._warned_rewrite = False
        self._no_cells = False
        self._unbuilt = False  # cells are looked for once the first batch has built the model

    @property
    def run_dir(self) -> Any:
        return os.path.join(self.log_dir, TRAIN_RUN)

    # tf_keras's CallbackList calls these to learn which batch hooks to run.
    def _implements_train_batch_hooks(self) -> Any:
        return self.update_freq != "epoch"

    def _implements_test_batch_hooks(self) -> Any:
        return False

    def _implements_predict_batch_hooks(self) -> Any:
        return False

    # Every hook works in any order a `CallbackList` (or a hand-written loop
    # over one) may call them: each starts what an earlier hook would have,
    # and runs its work through the failure guard. Only the model's own
    # faults (no recurrent layer with strict=True, an unknown name in
    # `layers=`) come out of a hook.
    def on_train_begin(self, logs: Any = None) -> None:
        self._first_epoch = None
        self._started()
        self._guarded(self._open_if_ready)

    def _started(self) -> Any:
        """Whether the callback has a model to log; finds its cells once per model."""
        if self.model is not self._counted:
            self._close()
            self._forget_model()
            self._counted = self.model
            self._guard.failed = False
            if self.model is None:
                return False
            self._start_counting()
            self._guarded(self._open_if_ready)
        return self.model is not None

    def _guarded(self, fn: Any, *args: Any) -> None:
        if not self._guard.failed:
            self._guard.run(fn, *args)

    def _open_if_ready(self) -> None:
        if self._no_cells or self._unbuilt or not distribute.is_chief() or self._guard.failed:
            return
        if self._writer is not None and not run_steps.exists(self._writer.path):
            # The log directory was removed between two `fit` calls (a
            # notebook's `rm -r logs`): write a new file rather than the
            # unlinked one.
            self._close()
        if self._writer is None:
            self._guard.run(self._open)

    def _start_counting(self) -> None:
        """Finds the cells and where this model's steps continue, once per model."""
        try:
            try:
                self._cells = discover.find_cells(self.model, self.layers)
            except discover.NotBuiltError:
                if self._probe_x is None:
                    # A subclassed model builds in its first training step.
                    self._unbuilt = True
                    return
                # Calling the model builds it, as its first training step
                # would, with the same initial weights.
                with probe_run.preserved(self.model):
                    self.model(self._probe_x, training=False)
                self._cells = discover.find_cells(self.model, self.layers)
        except discover.NoRecurrentLayerError as e:
            if self.strict:
                raise
            self._no_cells = True
            warnings.warn(
                "LSTMGatesCallback logs nothing for this model: %s. Training goes on; pass strict=True "
                "to stop it instead." % e,
                RuntimeWarning,
                stacklevel=callers.user_stacklevel(),
            )
            return
        if distribute.is_chief():
            self._guarded(self._continue_run)

    def _open(self) -> None:
        # The writer stays open for the next `fit` of this model (every step
        # is flushed as it is written), so a loop of `fit` calls leaves one
        # event file and `update_ratio` compares with the last call's weights.
        # Steps count epochs or batches, as `update_freq` says; the tab names the unit on its axes.
        unit = "epoch" if self.update_freq == "epoch" else "batch"
        self._writer = writer = summary.GateSummaryWriter(self.run_dir, step_unit=unit)
        if self.hparams is not None:
            hparams_summary.write_session(self.log_dir, self.hparams)
        writer.set_layer_order([cell.layer for cell in self._cells])
        if self._probe_tokens is not None:
            writer.write_probe_tokens(self._probe_tokens)
        self._logger = summary.CellLogger(writer, self.histogram_bins)
        self._background = background.BackgroundWriter()
        if self._probe_x is not None:
            self._probe = probe_lib.ProbeLogger(
                self.model, self._cells, self._probe_x, self._probe_y, self.probe_gradients
            )

    def on_epoch_begin(self, epoch: Any, logs: Any = None) -> None:
        if self._started():
            self._guarded(self._epoch_begin, epoch)

    def _epoch_begin(self, epoch: Any) -> None:
        if self._first_epoch is None:
            self._begin_fit(epoch)
        self._epoch = epoch

    def _built_now(self) -> None:
        """Finds the cells of a model the first training step has just built; warns of the lost step."""
        self._unbuilt = False
        self._start_counting()
        self._open_if_ready()
        if self._writer is not None and self._last_step is None:
            warnings.warn(
                "LSTMGatesCallback: the model was built by its first training step, so step %d (the weights "
                "before training) is not logged. Build it first (call it on a batch) or pass probe=, "
                "which builds it." % self._base,
                stacklevel=callers.user_stacklevel(),
            )

    def on_train_batch_end(self, batch: Any, logs: Any = None) -> None:
        if self.update_freq != "epoch" and self._started():
            self._guarded(self._train_batch_end, batch, logs)

    def _train_batch_end(self, batch: Any, logs: Any) -> None:
        self._fit_begun(self._epoch)
        if self._unbuilt:
            self._built_now()
        step = self._global_batch(batch)
        if step is not None and step % self.update_freq == 0:
            self._sync_backend_state()
            self._log(step, logs)

    def on_epoch_end(self, epoch: Any, logs: Any = None) -> None:
        if self._started():
            self._guarded(self._epoch_end, epoch, logs)

    def _epoch_end(self, epoch: Any, logs: Any) -> None:
        self._fit_begun(epoch)
        if self._unbuilt:
            self._built_now()
        if self.update_freq == "epoch":
            self._log(self._base + epoch - self._first_epoch + 1, logs)

    def on_train_end(self, logs: Any = None) -> None:
        # The last step is still being written on the writer's thread.
        if self._background is not None:
            self._guard.run(self._background.wait)

    def _close(self) -> None:
        if self._writer is not None:
            try:
                if self._background is not None:  # opened with the writer
                    self._guard.run(self._background.wait)
            finally:
                self._guard.run(self._writer.close)
                self._writer = None

    def _log(self, step: Any, logs: Any = None) -> None:
        if self._writer is None or self._guard.failed or step == self._last_written:
            return
        if step in self._existing and not self._rerun and not self._warned_rewrite:
            self._warned_rewrite = True
            warnings.warn(
                "LSTMGatesCallback writes step %d again in %s, which already holds steps %s; readers show "
                "the value written last. A run resumed from a checkpoint older than its last logged "
                "step does this; to keep both, log to a new directory."
                % (step, self.run_dir, run_steps.step_range(self._existing)),
                stacklevel=callers.user_stacklevel(),
            )
        histograms = self.histogram_freq > 0 and self._logged % self.histogram_freq == 0
        if self._guard.run(self._write_step, step, histograms, logs):
            self._logged += 1
            self._last_step = self._last_written = step

    def _write_step(self, step: Any, histograms: Any, logs: Any) -> None:
        step_writer.write_step(
            self.model,
            self._cells,
            self._probe,
            self._background,
            self._writer,
            self._logger,
            step,
            histograms,
            logs,
        )
