"""`GateLogger`: writes the per-gate statistics, histograms, probe activations and penalties of a PyTorch model."""

import torch
from torch import nn

from tb_lstm_gates.core import stats
from tb_lstm_gates.logs import guard, metadata, penalties, summary
from tb_lstm_gates.torch.cells import find_cells
from tb_lstm_gates.torch.penalty import GatePenalty
from tb_lstm_gates.torch.probe import probe_traces


def _is_writer_rank():
    """Whether this process writes: alone, or global rank 0 of a `torch.distributed` group."""
    return not (torch.distributed.is_available() and torch.distributed.is_initialized()) or (
        torch.distributed.get_rank() == 0
    )


class GateLogger:
    """Logs per-gate statistics and histograms of a PyTorch model's LSTMs and GRUs.

    For every block (part and gate) of every layer and direction: `l2`,
    `mean`, `std`, `min`, `max`, `mean_abs`, `max_abs`, `nonfinite` and
    `update_ratio`, and a histogram, for TensorBoard's "LSTM Gates" tab. Call
    `log(model, step)` before training (step 0) and after each epoch or
    every few batches. Under `torch.distributed` only global rank 0 writes.

    With `probe=x` (a batch of model inputs, or a tuple of positional
    arguments for `model(*probe)`), each logged step also holds what every
    gate does on it, as the Keras callback logs it: activation statistics,
    retention and, on histogram steps, activation maps. The probe runs as
    one `no_grad` pass in eval mode, with forward hooks that take each
    recurrent module's input and initial state (a packed sequence's lengths
    as its mask); the modules' modes and the RNG state are restored, so
    training is unchanged. A cell module called once per time step in a
    loop is probed over its calls in that pass, from the state given to its
    first call.

    With `penalty=` a `GatePenalty`, each step also holds the penalty of
    every block of the layers it penalizes (those with a non-zero
    coefficient), each such layer's total, the model's total and the `loss`
    given to `log`.

    Args:
      log_dir: the run directory (point `tensorboard --logdir` at it or its parent).
      histogram_freq: write histograms every this many logged steps; 0 for none.
      histogram_bins: buckets per gate histogram.
      layers: module paths to log (`encoder.rnn` or `encoder/rnn`); None for all.
      probe: None, a tensor of model inputs, or a tuple of arguments.
      penalty: None or the `GatePenalty` added to the loss.
      strict: raise logging failures instead of warning once and going on.
      step_unit: what `step` counts, for the tab's x axes: "epoch", "batch",
        "global step" or "step".

    Example:

    ```python
    with GateLogger("logs/run1", probe=x[:8]) as gates:
        gates.log(model, 0)
        for epoch in range(1, 4):
            ...  # train one epoch
            gates.log(model, epoch, loss=loss.item())
    ```
    """

    def __init__(
        self,
        log_dir,
        histogram_freq=1,
        histogram_bins=stats.DEFAULT_BINS,
        layers=None,
        probe=None,
        penalty=None,
        strict=False,
        step_unit="step",
    ):
        errors = guard.check_logging_args(log_dir, histogram_freq, histogram_bins)
        try:
            metadata.check_step_unit(step_unit)
        except ValueError as e:
            errors.append(str(e))
        if layers is not None and (
            isinstance(layers, str) or not layers or not all(isinstance(n, str) for n in layers)
        ):
            errors.append("layers must be None or a non-empty list of module paths, got %r" % (layers,))
        if penalty is not None and not isinstance(penalty, GatePenalty):
            errors.append("penalty must be None or a GatePenalty, got %r" % (penalty,))
        if probe is not None and not isinstance(probe, (torch.Tensor, tuple, nn.utils.rnn.PackedSequence)):
            errors.append(
                "probe must be None, a tensor of model inputs or a tuple of arguments for "
                "model(*probe), got %r" % type(probe).__name__
            )
        if errors:
            raise ValueError("GateLogger: " + "; ".join(errors))
        self.log_dir = str(log_dir)
        self.histogram_freq = histogram_freq
        self.histogram_bins = histogram_bins
        self.layers = None if layers is None else list(layers)
        self.probe = probe
        self.penalty = penalty
        self.step_unit = step_unit
        self._writer = None
        self._logger = None
        self._logged = 0
        self._guard = guard.FailureGuard("GateLogger", self.log_dir, strict)

    def log(self, module, step, loss=None):
        """Writes one step of `module`'s gates (and probe, penalties, `loss`) at `step`."""
        if not _is_writer_rank() or self._guard.failed:
            return
        cells = find_cells(module, self.layers)
        histograms = self.histogram_freq > 0 and self._logged % self.histogram_freq == 0
        if self._guard.run(self._write_step, module, cells, int(step), histograms, loss):
            self._logged += 1

    def _write_step(self, module, cells, step, histograms, loss):
        if self._writer is None:
            self._writer = summary.GateSummaryWriter(self.log_dir, step_unit=self.step_unit)
            self._logger = summary.CellLogger(self._writer, self.histogram_bins)
        if self.probe is not None:
            for cell, trace in probe_traces(module, cells, self.probe):
                summary.write_probe_trace(self._writer, cell.layer, trace, histograms)
        penalized = set()
        if self.penalty is not None:
            # Cells the penalty leaves at zero get no series: a tab of zeros says nothing.
            penalized = {c.layer for c in self.penalty.cells(module) if self.penalty.applies_to(c)}
        model_penalty = 0.0
        for cell in cells:
            arrays = cell.arrays()
            self._logger.log_cell(cell.layer, cell.layout, arrays, histograms)
            if cell.layer in penalized:
                model_penalty += penalties.write_cell_penalties(
                    self._writer, cell, self.penalty.block_penalties(cell, arrays)
                )
        if self.penalty is not None:
            penalties.write_model_totals(self._writer, model_penalty, loss)
        self._writer.end_step(step)

    def close(self):
        if self._writer is not None:
            self._guard.run(self._writer.close)
            self._writer = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
