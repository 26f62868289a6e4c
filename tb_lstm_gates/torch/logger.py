"""`GateLogger`: writes the per-gate statistics, histograms, probe activations and penalties of a PyTorch model."""

import functools
import os
import warnings
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from tb_lstm_gates.core import callers, layouts, stats
from tb_lstm_gates.logs import background, guard, metadata, origins, penalties, selfcheck, summary, tokens
from tb_lstm_gates.logs import hparams as hparams_summary
from tb_lstm_gates.torch.cells import find_cells, numpy_copy, unlogged_weights
from tb_lstm_gates.torch.penalty import GatePenalty
from tb_lstm_gates.torch.probe import probe_traces


def _is_writer_rank() -> bool:
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
    The weights logged are those the model computes with in eval mode:
    behind weight drop its raw parameter, behind a parametrization or a
    `weight_norm` / `spectral_norm` hook the effective weight; each layer's
    metadata names where they come from (`tb_lstm_gates.torch.weights`).

    Every recurrent module registered below the model is logged (in
    attributes, `nn.ModuleList`, `nn.ModuleDict`, custom modules, at any
    depth), each module object once, under its first path; a `weight_hh*`
    left out (an `nn.RNN`'s, a hand-written cell's) or recurrent modules in
    a plain Python list (which torch does not track), a quantized LSTM/GRU
    or one whose weights cannot be read are named in one
    warning each.

    Several models, one logger: `log({"encoder": enc, "decoder": dec},
    step)` names their layers as if the models were held in an
    `nn.ModuleDict` with those keys (`encoder/gru/l0`, `decoder/gru/l0`),
    and `probe={"encoder": x}` probes the models it names, in the mapping's
    order, in one pass. Two different modules that would log under one
    name (`log(enc, s); log(dec, s)` when both hold a `gru`) raise a
    `ValueError` naming both, never merge.

    `log` returns once the weights are copied (and the probe has run);
    statistics and writing run on a background thread, one step at a time:
    a step that arrives while the previous one is still being written waits
    for it. `close()` (or leaving the `with` block) waits for the last step;
    a failure on that thread surfaces at the next `log` or in `close()`
    (docs/async-logging.md).

    With `probe=x` (a batch of model inputs, or a tuple of positional
    arguments for `model(*probe)`), each logged step also holds what every
    gate does on it, as the Keras callback logs it: activation statistics,
    retention and, on histogram steps, activation maps. The probe runs as
    one `no_grad` pass in eval mode, taking each recurrent module's input,
    initial state (a packed sequence's lengths as its mask) and output at
    every call of its `forward` (a wrapper's direct `module.forward(...)`
    too; torch's output is kept as the trace's `reference_outputs` for the
    self-check): a module called several times in the pass
    (a decoder's cell once per token) is traced over all its calls, in
    order, each from the state it was given, the calls' steps appended on
    the time axis. Afterwards every attribute of every submodule is as it
    was (state stored on `self` in `forward`, buffers, modes), and the RNG
    state too, so training is unchanged.

    With `probe_tokens=`, the probe's tokens label the tab's Text view and
    activation map (written once per run; see `tb_lstm_gates.logs.tokens`:
    token lists per sequence, a vocabulary or a decode function for a probe
    of ids shaped `(sequences, time steps)`).

    Called after `loss.backward()` and before `optimizer.zero_grad()`, `log`
    also writes each block's training gradient, the weights' own `.grad`
    split by gate, as `train_grad_norm` (beside the probe's `grad_norm`):
    the gradient of the real training batch. Where a weight's `.grad` is
    None (before the first backward, after `zero_grad(set_to_none=True)`),
    its blocks get no `train_grad_norm` at that step; after
    `zero_grad(set_to_none=False)` they read 0.

    With `penalty=` a `GatePenalty`, each step also holds the penalty of
    every block of the layers it penalizes (those with a non-zero
    coefficient), each such layer's total, the model's total and the `loss`
    given to `log`.

    Args:
      log_dir: the run directory (point `tensorboard --logdir` at it or its parent).
      histogram_freq: write histograms every this many logged steps; 0 for none.
      histogram_bins: buckets per gate histogram.
      layers: module paths to log (`encoder.rnn` or `encoder/rnn`); None for all.
      probe: None, a tensor of model inputs, or a tuple of arguments; with
        several models, a mapping from model name to one of those.
      penalty: None or the `GatePenalty` added to the loss.
      strict: raise logging failures instead of warning once and going on.
      step_unit: what `step` counts, for the tab's x axes: "epoch", "batch",
        "global step" or "step".
      probe_tokens: None, or the probe's tokens (see above).
      hparams: None, or the run's hyperparameters (a dict of names to bool,
        int, float or str) to show in TensorBoard's HParams dashboard beside
        the gate metrics every step writes (docs/sweeps.md).

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
        log_dir: str | os.PathLike[str],
        histogram_freq: int = 1,
        histogram_bins: int = stats.DEFAULT_BINS,
        layers: Sequence[str] | None = None,
        probe: Any = None,
        penalty: GatePenalty | None = None,
        strict: bool = False,
        step_unit: str = "step",
        probe_tokens: tokens.ProbeTokens | None = None,
        hparams: Mapping[str, Any] | None = None,
    ) -> None:
        errors = guard.check_logging_args(log_dir, histogram_freq, histogram_bins, hparams)
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
        probes = probe.values() if isinstance(probe, Mapping) else [probe]
        if probe is not None and not all(
            isinstance(p, (torch.Tensor, tuple, nn.utils.rnn.PackedSequence)) for p in probes
        ):
            errors.append(
                "probe must be None, a tensor of model inputs, a tuple of arguments for "
                "model(*probe), or a mapping from model name to one of those, got %r" % type(probe).__name__
            )
        self._probe_tokens: list[list[str]] | None = None
        if probe_tokens is not None and isinstance(probe, Mapping):
            errors.append(
                "probe_tokens labels one probe: give it with probe= one model's inputs, not a mapping of "
                "several models' probes"
            )
        elif probe_tokens is not None and not errors:
            try:
                self._probe_tokens = tokens.check_probe_tokens(probe_tokens, _probe_ids(probe))
            except ValueError as e:
                errors.append(str(e))
        if errors:
            raise ValueError("GateLogger: " + "; ".join(errors))
        self.log_dir = str(log_dir)
        self.histogram_freq = histogram_freq
        self.histogram_bins = histogram_bins
        self.layers = None if layers is None else list(layers)
        self.probe = probe
        self.penalty = penalty
        self.step_unit = step_unit
        self.hparams = None if hparams is None else dict(hparams)
        self._writer: summary.GateSummaryWriter | None = None
        self._logger: summary.CellLogger | None = None
        self._background = background.BackgroundWriter()
        self._logged = 0
        self._guard = guard.FailureGuard("GateLogger", self.log_dir, strict)
        self._owners: dict[
            str, tuple[Any, str, dict[str, tuple[int, ...]]]
        ] = {}  # layer -> (weak reference to its module, its repr, {weight: shape})
        self._warned: set[str] = set()  # unlogged weights already named in a warning
        self._mismatch_warned: set[str] = set()  # layers whose self-check failed, named in a warning

    def log(self, module: nn.Module | Mapping[str, nn.Module], step: int, loss: float | None = None) -> None:
        """Writes one step of the gates (and probe, penalties, `loss`) at `step`.

        Args:
          module: the model, or a mapping from model name to model
            (`{"encoder": enc, "decoder": dec}`) to log several in one step.
          step: the step (epoch, batch, ...; see `step_unit`).
          loss: the training loss, logged next to the penalties.

        Raises:
          ValueError: no recurrent module, an unknown `layers` name, a
            probe that does not fit the models, or a layer name another
            module already logs under.
        """
        if not _is_writer_rank() or self._guard.failed:
            return
        if isinstance(self.probe, Mapping) != isinstance(module, Mapping) and self.probe is not None:
            raise ValueError(
                "GateLogger: probe=%s but log() was given %s: give one probe per model, "
                "probe={'encoder': x} with log({'encoder': encoder, ...}, step), or one tensor with one model"
                % (
                    "a mapping" if isinstance(self.probe, Mapping) else "one input",
                    "a mapping of models" if isinstance(module, Mapping) else "one model",
                )
            )
        # module is a mapping too when the probe is one (checked above); the test says so to mypy.
        if isinstance(self.probe, Mapping) and isinstance(module, Mapping) and set(self.probe) - set(module):
            raise ValueError(
                "GateLogger: probe names %s, which log() was not given; the models are %s"
                % (", ".join(map(repr, set(self.probe) - set(module))), ", ".join(map(repr, module)))
            )
        cells = find_cells(module, self.layers)
        self._claim(cells)
        self._warn_unlogged(module)
        histograms = self.histogram_freq > 0 and self._logged % self.histogram_freq == 0
        if self._guard.run(self._write_step, module, cells, int(step), histograms, loss):
            self._logged += 1

    def _claim(self, cells: list[Any]) -> None:
        """Records which module each layer name logs; raises when another live module already has the name."""
        for cell in cells:
            shapes = {name: tuple(p.shape) for name, p in cell.params.items()}
            owner = self._owners.get(cell.layer)
            if owner is not None and owner[0]() is not cell.module:
                # A module that is gone was replaced (a model rebuilt or
                # reloaded under one logger): the name follows the new one,
                # unless the shapes say it is another layer altogether.
                if owner[0]() is not None or owner[2] != shapes:
                    raise ValueError(
                        "GateLogger: two different modules would log as %r: %s, logged before, and %s "
                        "now%s; log several models under their own names, "
                        "log({'encoder': encoder, 'decoder': decoder}, step), or with one GateLogger each"
                        % (
                            cell.layer,
                            owner[1],
                            _describe(cell.module),
                            "" if owner[2] == shapes else " (weights of other shapes)",
                        )
                    )
            self._owners[cell.layer] = (weakref.ref(cell.module), _describe(cell.module), shapes)

    def _warn_unlogged(self, module: Any) -> None:
        new = [
            (name, why)
            for name, why in unlogged_weights(module, find_cells(module))
            if name not in self._warned
        ]
        for name, why in new:
            self._warned.add(name)
            warnings.warn(
                "tb-lstm-gates logs no gates of %s: %s" % (name, why), stacklevel=callers.user_stacklevel()
            )

    def _write_step(
        self, module: Any, cells: list[Any], step: int, histograms: bool, loss: float | None
    ) -> None:
        if self._writer is None:
            self._writer = summary.GateSummaryWriter(self.log_dir, step_unit=self.step_unit)
            if self.hparams is not None:
                hparams_summary.write_session(self.log_dir, self.hparams)
            self._writer.set_layer_order([cell.layer for cell in cells])
            _record_heads(self._writer, cells)
            if self._probe_tokens is not None:
                self._writer.write_probe_tokens(self._probe_tokens)
            self._logger = summary.CellLogger(self._writer, self.histogram_bins)
        # Training waits only for what reads the module (the probe, which
        # cells are penalized) and for a copy of the weights; statistics,
        # histograms and writing run on the writer's thread (see `logs.background`).
        traces = [] if self.probe is None else probe_traces(module, cells, self.probe)
        # Here, on the training thread, so a failed self-check's warning points at the user's line.
        selfcheck.warn_mismatches(((cell.layer, trace) for cell, trace in traces), self._mismatch_warned)
        penalized: set[str] = set()
        if self.penalty is not None:
            # Cells the penalty leaves at zero get no series: a tab of zeros says nothing.
            penalized = {c.layer for c in self.penalty.cells(module) if self.penalty.applies_to(c)}
        # At most one step in flight: the previous one is done before this
        # step's copy is taken, so memory holds one snapshot at a time.
        self._background.wait()
        snapshot = [(cell, cell.arrays(), _train_grads(cell)) for cell in cells]
        self._background.submit(
            functools.partial(self._write_snapshot, step, histograms, traces, snapshot, penalized, loss)
        )

    def _write_snapshot(
        self, step: int, histograms: bool, traces: Any, snapshot: Any, penalized: set[str], loss: float | None
    ) -> None:
        """One step's work on the writer's thread: statistics of the copied weights, then the event."""
        assert self._writer is not None and self._logger is not None  # _write_step made them
        for cell, trace in traces:
            summary.write_probe_trace(self._writer, cell.layer, trace, histograms, self._mismatch_warned)
        model_penalty = 0.0
        for cell, arrays, grads in snapshot:
            parts = origins.of_parts(cell.layout, cell.origins)
            if parts:
                self._writer.set_weight_origins(cell.layer, parts)
            self._logger.log_cell(cell.layer, cell.layout, arrays, histograms)
            _write_train_grads(self._writer, cell, grads)
            if cell.layer in penalized:
                model_penalty += penalties.write_cell_penalties(
                    self._writer,
                    cell,
                    self.penalty.block_penalties(cell, arrays),  # type: ignore[union-attr]  # penalized is empty without a penalty
                )
        if self.penalty is not None:
            penalties.write_model_totals(self._writer, model_penalty, loss)
        self._writer.end_step(step)

    def close(self) -> None:
        """Waits for the step being written, then closes the event file."""
        if self._writer is not None:
            try:
                self._guard.run(self._background.wait)
            finally:
                self._guard.run(self._writer.close)
                self._writer = None

    def __enter__(self) -> "GateLogger":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _record_heads(writer: Any, cells: Any) -> None:
    """Records the heads of the cells that have them (xLSTM layers) in their summaries' metadata."""
    for cell in cells:
        if getattr(cell, "heads", None):
            writer.set_layer_heads(cell.layer, {"count": cell.heads, "head": cell.head})


def _describe(module: nn.Module) -> str:
    """A module's class and arguments, one line, for messages: `GRU(3, 5, batch_first=True)`."""
    text = repr(module)
    return text if "\n" not in text else type(module).__name__


def _probe_ids(probe: Any) -> Any:
    """The probe's first tensor (of a tuple of arguments, or a PackedSequence's padded data) as numpy."""
    if isinstance(probe, nn.utils.rnn.PackedSequence):
        probe = nn.utils.rnn.pad_packed_sequence(probe, batch_first=True)[0]
    elif isinstance(probe, tuple):
        probe = next((p for p in probe if isinstance(p, torch.Tensor)), None)
    return None if probe is None else probe.detach().cpu().numpy()


def _train_grads(cell: Any) -> dict[str, Any]:
    """Copies of the `.grad` of the cell's weights' leaf parameters (those not None), taken with the snapshot.

    Only leaf parameters: a weight drop's raw parameter for its dropped
    copy, none for a parametrized weight (its parameters' gradients are not
    the weight's), so torch never warns about reading a non-leaf's `.grad`.
    """
    return {name: numpy_copy(p.grad) for name, p in cell.grad_params.items() if p.grad is not None}


def _write_train_grads(writer: Any, cell: Any, grads: dict[str, Any]) -> None:
    """Writes the norm of each block of `grads` (see `_train_grads`), as TRAIN_GRAD_NORM."""
    if not grads:
        return
    arrays = layouts.torch_arrays(grads)
    layout = layouts.Layout(cell.layout.cell, {k: w for k, w in cell.layout.weights.items() if k in arrays})
    for part, gates, view in layout.blocks(arrays):
        l2 = stats.gate_stats(view)["l2"]
        writer.write_gate_stats(cell.layer, cell.layout.cell, part, gates, {metadata.TRAIN_GRAD_NORM: l2})
