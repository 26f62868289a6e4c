"""`LSTMGatesCallback` for Lightning: `tb_lstm_gates.torch.GateLogger` driven by the trainer."""

import os
from collections.abc import Mapping, Sequence
from typing import Any

import lightning.pytorch as pl

from tb_lstm_gates import torch as gates_torch
from tb_lstm_gates.core import stats
from tb_lstm_gates.logs import guard, tokens


class LSTMGatesCallback(pl.Callback):
    """Logs per-gate statistics of the LightningModule's LSTMs and GRUs while it trains.

    Writes what `tb_lstm_gates.torch.GateLogger` writes: step 0 holds the
    weights before training, then step `e` those after epoch `e` (every
    `every_n_epochs` epochs), or, with `every_n_train_steps=N`, the weights
    at every N-th global step. Only global rank 0 writes. The `loss` logged
    beside the penalties is the mean of the training losses `training_step`
    returned since the last logged step.

    Args:
      log_dir: where to write; None for the trainer's log directory
        (`trainer.log_dir`: the TensorBoardLogger's `version_N` folder), next
        to Lightning's own scalars, so they share a run in TensorBoard.
      every_n_epochs: log after every this many epochs.
      every_n_train_steps: log every this many global steps instead of by epoch.
      probe, penalty, layers, histogram_freq, histogram_bins, probe_tokens, hparams: as for `GateLogger`.

    Example:

    ```python
    trainer = lightning.Trainer(max_epochs=5, callbacks=[LSTMGatesCallback(probe=x[:8])])
    trainer.fit(module, loader)
    # tensorboard --logdir lightning_logs, then the LSTM Gates tab
    ```
    """

    def __init__(
        self,
        log_dir: str | os.PathLike[str] | None = None,
        every_n_epochs: int = 1,
        every_n_train_steps: int | None = None,
        probe: Any = None,
        penalty: gates_torch.GatePenalty | None = None,
        layers: Sequence[str] | None = None,
        histogram_freq: int = 1,
        histogram_bins: int = stats.DEFAULT_BINS,
        probe_tokens: tokens.ProbeTokens | None = None,
        hparams: Mapping[str, Any] | None = None,
    ) -> None:
        errors = []
        if not (guard.is_int(every_n_epochs) and every_n_epochs > 0):
            errors.append("every_n_epochs must be a positive int, got %r" % (every_n_epochs,))
        if every_n_train_steps is not None and not (
            guard.is_int(every_n_train_steps) and every_n_train_steps > 0
        ):
            errors.append(
                "every_n_train_steps must be None or a positive int, got %r" % (every_n_train_steps,)
            )
        if errors:
            raise ValueError("LSTMGatesCallback: " + "; ".join(errors))
        # GateLogger checks the rest now, with a stand-in directory when the trainer's is not known yet.
        gates_torch.GateLogger(
            log_dir or "unset",
            histogram_freq,
            histogram_bins,
            layers,
            probe,
            penalty,
            probe_tokens=probe_tokens,
            hparams=hparams,
        )
        self.log_dir = None if log_dir is None else str(log_dir)
        self.every_n_epochs = every_n_epochs
        self.every_n_train_steps = every_n_train_steps
        self._options = dict(
            histogram_freq=histogram_freq,
            histogram_bins=histogram_bins,
            layers=layers,
            probe=probe,
            penalty=penalty,
            probe_tokens=probe_tokens,
            hparams=hparams,
            step_unit="epoch" if every_n_train_steps is None else "global step",
        )
        self._logger: gates_torch.GateLogger | None = None
        self._losses: list[float] = []

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # trainer.log_dir broadcasts from rank 0: every rank has to ask.
        log_dir = self.log_dir or trainer.log_dir
        self._losses = []
        if not trainer.is_global_zero:
            return
        self._logger = gates_torch.GateLogger(log_dir, **self._options)
        if trainer.global_step == 0:
            self._logger.log(pl_module, 0)

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self._logger is None:
            return
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if loss is not None:
            self._losses.append(float(loss.detach()) if hasattr(loss, "detach") else float(loss))
        step = trainer.global_step
        if self.every_n_train_steps is not None and step % self.every_n_train_steps == 0:
            self._log(pl_module, step)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        epoch = trainer.current_epoch + 1
        if self._logger is not None and self.every_n_train_steps is None and epoch % self.every_n_epochs == 0:
            self._log(pl_module, epoch)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._logger is not None:
            self._logger.close()
            self._logger = None

    def _log(self, pl_module: pl.LightningModule, step: int) -> None:
        loss = sum(self._losses) / len(self._losses) if self._losses else None
        self._losses = []
        assert self._logger is not None  # callers check it first
        self._logger.log(pl_module, step, loss=loss)
