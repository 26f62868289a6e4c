"""What `LSTMGatesHook` and `log_session` share: one `session.run`'s weights, penalties and probe, logged at a step."""

import weakref
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from tb_lstm_gates.core import scopes
from tb_lstm_gates.logs import penalties, summary, tokens
from tb_lstm_gates.tf1.probe import Fetches, TF1Probe, check_probe

# One logger per writer, so `log_session` keeps the previous weights for `update_ratio`.
SESSION_LOGGERS: "weakref.WeakKeyDictionary[summary.GateSummaryWriter, SessionLogger]" = (
    weakref.WeakKeyDictionary()
)


class SessionLogger:
    """Reads every cell's weights and gate penalties in one `session.run` and logs them at a step.

    `penalties` are `penalty_fetches` of the cells' graph: the blocks of
    every `tf1_gate_penalty` on their kernels.
    """

    def __init__(
        self,
        writer: summary.GateSummaryWriter,
        cells: list[scopes.Cell],
        histogram_bins: int,
        penalties: Sequence[tuple[Any, ...]] = (),
        probe: TF1Probe | None = None,
    ) -> None:
        self.writer = writer
        self.cells = cells
        self.penalties = penalties
        self.probe = probe  # a `probe.TF1Probe`, or None
        self._logger = summary.CellLogger(writer, histogram_bins)
        writer.set_layer_order([cell.layer for cell in cells])

    def fetches(self) -> Fetches:
        fetches: Fetches = {(i, w): v for i, cell in enumerate(self.cells) for w, v in cell.variables.items()}
        fetches.update((("penalty", j), p[3]) for j, p in enumerate(self.penalties))
        if self.probe is not None:
            fetches.update(self.probe.fetches())
        return fetches

    def write(self, step: int, values: Fetches, histograms: bool, session: Any = None) -> None:
        by_layer: dict[str, dict[str, np.ndarray]] = {}
        for i, cell in enumerate(self.cells):
            arrays = by_layer[cell.layer] = {w: np.asarray(values[(i, w)]) for w in cell.variables}
            self._logger.log_cell(cell.layer, cell.layout, arrays, histograms)
        if self.probe is not None:
            # The weights of this same `session.run`: the gates are those the graph would compute now.
            self.probe.write(self.writer, values, by_layer, histograms, session)
        self._write_fetched_penalties(values)
        self.writer.end_step(step)

    def _write_fetched_penalties(self, values: Fetches) -> None:
        # Two penalties on one kernel (or on a GRU's two kernels) add up per block.
        per_cell: dict[int, dict[str, dict[str, float]]] = {}
        for j, (i, part, gates, _, penalized) in enumerate(self.penalties):
            per_gate = per_cell.setdefault(i, {}).setdefault(part, {})
            for gate, value in zip(gates, np.asarray(values["penalty", j], dtype=np.float64).tolist()):
                if gate in penalized:
                    per_gate[gate] = per_gate.get(gate, 0.0) + value
        totals = [
            penalties.write_cell_penalties(self.writer, self.cells[i], list(parts.items()))
            for i, parts in sorted(per_cell.items())
        ]
        if totals:
            penalties.write_model_totals(self.writer, sum(totals))


def probe_errors(
    probe: Any, probe_tokens: tokens.ProbeTokens | None, probe_inputs: Mapping[str, Any] | None
) -> list[str]:
    """What is wrong with a hook's or `log_session`'s probe arguments, as messages."""
    if probe is None:
        if probe_tokens is not None or probe_inputs:
            return ["probe_tokens and probe_inputs need probe=, a feed dict for the probe batch"]
        return []
    try:
        check_probe(probe)
    except ValueError as e:
        return [str(e)]
    return []


def make_probe(
    cells: list[scopes.Cell],
    probe: dict[Any, Any] | None,
    probe_tokens: tokens.ProbeTokens | None,
    probe_inputs: Mapping[str, Any] | None,
) -> TF1Probe | None:
    if probe is None:
        return None
    return TF1Probe(tf.compat.v1.get_default_graph(), cells, probe, probe_tokens, probe_inputs)
