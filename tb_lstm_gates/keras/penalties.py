"""The gate penalties of a Keras model, recomputed in numpy for `LSTMGatesCallback`.

`cell_penalties` evaluates each `GateRegularizer`'s formula on the weights
split by `layouts`, so what is logged is not read back from Keras's loss;
`write_penalties` hands them and the model's totals to `penalties`.
"""

from collections.abc import Iterable, Mapping
from typing import Any

import keras
import numpy as np

from tb_lstm_gates.core import gate_penalty
from tb_lstm_gates.core.scopes import Cell
from tb_lstm_gates.keras import regularizers
from tb_lstm_gates.logs import penalties

# `[(part, {gate: penalty})]`, as `cell_penalties` returns it.
CellPenalties = list[tuple[str, dict[str, float]]]


def cell_penalties(cell: Cell, arrays: Mapping[str, np.ndarray]) -> CellPenalties:
    """The gate penalties of one discovered cell, recomputed in numpy.

    Args:
      cell: a `scopes.Cell` of a Keras 3 model.
      arrays: its current weights, as `cell.arrays()` returns them.

    Returns:
      list of `(part, {gate: penalty})`, one per layout piece of every weight
      that carries a `GateRegularizer`, with the gates that have a nonzero
      coefficient on that part (a block no key names has no penalty to
      show); empty when none does.

    Raises:
      ValueError: a regularizer made for another kind of cell, whose gates
        Keras splits wrongly without noticing when the widths happen to divide.
    """
    found: CellPenalties = []
    for name, variable in cell.variables.items():
        regularizer = getattr(variable, "regularizer", None)
        if not isinstance(regularizer, regularizers.GateRegularizer):
            continue
        if set(regularizer.gates) != set(gate_penalty.CELL_GATES[cell.layout.cell]):
            raise ValueError(
                "the %s of %s (a %s cell) has %r: use GateRegularizer(cell=%r)"
                % (name, cell.layer, cell.layout.cell, regularizer, cell.layout.cell)
            )
        if regularizer.weight not in (None, name):
            raise ValueError(
                "the %s of %s has %r, made for its %s: put it on the weight it names"
                % (name, cell.layer, regularizer, regularizer.weight)
            )
        for piece in cell.layout.weights[name]:
            active = regularizer.penalized_gates(piece.part, piece.gates)
            if active:
                values = regularizer.gate_penalties(arrays[name], piece, name)
                found.append((piece.part, {g: values[g] for g in active}))
    return found


def weight_regularization_loss(model: Any) -> float:
    """The weight regularizers' share of `model.losses`, as a float.

    Sums every regularizer on a trainable weight (gate regularizers and any
    other), as Keras does at each step. Activity regularization and
    `add_loss` terms depend on a batch and are left out.
    """
    total = 0.0
    for variable in model.trainable_weights:
        regularizer = getattr(variable, "regularizer", None)
        if regularizer is not None:
            total += float(keras.ops.convert_to_numpy(regularizer(variable)))
    return total


def write_penalties(
    writer: Any, model: Any, cells_penalties: Iterable[tuple[Cell, CellPenalties]], loss: float | None = None
) -> None:
    """Adds the regularization series to a `GateSummaryWriter`'s current step.

    When any cell carries a `GateRegularizer`: the penalty of each (part,
    gate) and each cell's total (see `penalties.write_cell_penalties`), the model's
    weight regularization loss and, when given, the training `loss` (on the
    `model` pseudo layer). Nothing otherwise.

    Args:
      writer: a `summary.GateSummaryWriter`.
      model: the Keras model.
      cells_penalties: `(cell, cell_penalties(cell, arrays))` pairs.
      loss: the training loss, or None.
    """
    logged = False
    for cell, per_part in cells_penalties:
        if per_part:
            penalties.write_cell_penalties(writer, cell, per_part)
            logged = True
    if logged:
        penalties.write_model_totals(writer, weight_regularization_loss(model), loss)
