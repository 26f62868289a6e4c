"""What a wing hands the writer: a cell's weight statistics (`CellLogger`) and a probe's trace (`write_probe_trace`)."""

from collections.abc import Mapping
from typing import Any

import numpy as np

from tb_lstm_gates.core import activations, stats
from tb_lstm_gates.core.layouts import Layout
from tb_lstm_gates.core.trace import Trace
from tb_lstm_gates.logs import metadata, selfcheck


class CellLogger:
    """Splits a cell's weights, computes their statistics and hands them to a writer.

    Keeps the previous step's weights of each cell (references to arrays the
    caller no longer changes) for `update_ratio`, and the top singular
    vectors of its recurrent blocks, from which the next step's
    `spectral_norm` starts (see `stats.top_singular`).

    Args:
      writer: a `GateSummaryWriter`.
      bins: histogram buckets per gate block.
    """

    # `writer` is a `summary.GateSummaryWriter`, which imports this module.
    def __init__(self, writer: Any, bins: int = stats.DEFAULT_BINS) -> None:
        self._writer = writer
        self._bins = bins
        self._previous: dict[str, Mapping[str, np.ndarray]] = {}
        self._singular: dict[tuple[str, tuple[str, ...]], Any] = {}

    def log_cell(
        self, layer: str, layout: Layout, arrays: Mapping[str, np.ndarray], histograms: bool = True
    ) -> None:
        """Adds the statistics (and optionally histograms) of one cell to the current step.

        Args:
          layer: the cell's path, e.g. `model/lstm/lstm_cell`.
          layout: its `layouts.Layout`.
          arrays: mapping from weight name to numpy array, as the layout names them.
          histograms: whether to add per-gate histograms.
        """
        pieces = list(layout.blocks(arrays))
        previous = self._previous.get(layer)
        if previous is None:
            previous_views: list[np.ndarray | None] = [None] * len(pieces)
        else:
            previous_views = [view for _, _, view in layout.blocks(previous)]
        for (part, gates, view), previous_view in zip(pieces, previous_views):
            block_stats, hist = stats.gate_summary(view, previous_view, self._bins if histograms else 0)
            if part == "recurrent" and view.ndim == 3:
                # A matrix per gate (not a ConvLSTM's convolution): its spectral norm.
                key = (layer, tuple(gates))  # a TF1 GRU has two recurrent pieces
                block_stats[metadata.SPECTRAL_NORM], self._singular[key] = stats.top_singular(
                    view, self._singular.get(key)
                )
            self._writer.write_gate_stats(layer, layout.cell, part, gates, block_stats)
            if hist is not None:
                self._writer.write_gate_histograms(layer, layout.cell, part, gates, hist)
        self._previous[layer] = arrays


def write_probe_trace(
    writer: Any, layer: str, trace: Trace, maps: bool, warned: set[str] | None = None
) -> None:
    """Adds what one layer's gates did on the probe (an `activations.Trace`) to the writer's current step.

    Per gate: the activation statistics, the state gate's retention, each
    unit's saturated fractions and, with `maps`, the activation map and the
    probe's first sequences with the cell's state (for the tab's Text view).
    Per layer, the self-check, where the trace has `reference_outputs`
    (`logs.selfcheck.write_self_check`; `warned` as there).
    """
    selfcheck.write_self_check(writer, layer, trace, warned)
    writer.write_gate_stats(
        layer, trace.cell, metadata.ACTIVATION, trace.gates, activations.gate_statistics(trace)
    )
    writer.write_activation_functions(layer, trace.gates, trace.functions)
    gate, horizon = activations.retention(trace)
    writer.write_scalar(layer, trace.cell, metadata.ACTIVATION, gate, metadata.RETENTION, horizon)
    writer.write_unit_saturation(layer, trace.cell, trace.gates, activations.unit_saturation(trace))
    if maps:
        writer.write_activation_maps(layer, trace.cell, trace.gates, activations.activation_map(trace))
        if trace.states is not None:
            writer.write_probe_sequences(layer, trace.cell, trace.gates, activations.probe_sequences(trace))
