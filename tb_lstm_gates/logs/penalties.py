"""Writes the regularization series every gate logger shares.

The Keras callback, the TF1 hook and the PyTorch logger each compute gate
penalties their own way; the series they write are the same: the penalty of
each (part, gate), each cell's total (part = gate = `total`), and on the
`model` pseudo layer the model's regularization loss and the training loss.
Imports no framework.
"""

from collections.abc import Iterable, Mapping
from typing import Any

from tb_lstm_gates.logs import metadata

_MODEL_SERIES = (metadata.MODEL_LAYER, metadata.MODEL_CELL, metadata.TOTAL, metadata.TOTAL)


def write_cell_penalties(
    writer: Any, cell: Any, penalties: Iterable[tuple[str, Mapping[str, float]]]
) -> float:
    """Writes the penalty of each (part, gate) of one cell and the cell's total; returns the total.

    Args:
      writer: a `summary.GateSummaryWriter`.
      cell: has `layer` and `layout.cell`, as a `scopes.Cell`.
      penalties: `[(part, {gate: penalty})]`.
    """
    total = 0.0
    for part, per_gate in penalties:
        for gate, value in per_gate.items():
            writer.write_scalar(cell.layer, cell.layout.cell, part, gate, metadata.PENALTY, value)
            total += value
    writer.write_scalar(cell.layer, cell.layout.cell, metadata.TOTAL, metadata.TOTAL, metadata.PENALTY, total)
    return total


def write_model_totals(writer: Any, penalty: float, loss: float | None = None) -> None:
    """Writes the model's regularization `penalty` and, when given, the training `loss`.

    Both go on the `model` pseudo layer, so the tab can show each penalty's
    share of the loss.
    """
    writer.write_scalar(*_MODEL_SERIES, metadata.PENALTY, float(penalty))
    if loss is not None:
        writer.write_scalar(*_MODEL_SERIES, metadata.LOSS, float(loss))
