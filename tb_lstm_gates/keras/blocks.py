"""The gate blocks of a Keras recurrent cell as tensors, for per-gate losses written by hand.

`gate_blocks(layer_or_cell)` slices a cell's variables by its `layouts`
entry, keyed `(part, gate)` in the canonical names that the logged data,
`GateRegularizer`'s block keys (`"recurrent/forget"`) and
`tb_lstm_gates.tf1.gate_blocks` use. The slices are taken from the variables
with the backend's own indexing, so they are differentiable on every Keras
backend and inside a JAX stateless scope.
"""

from typing import Any

import keras

from tb_lstm_gates.keras import discover


def gate_blocks(layer_or_cell: keras.layers.Layer) -> dict[tuple[str, str], Any]:
    """`{(part, gate): tensor}`: every gate block of one Keras LSTM, GRU or ConvLSTM cell.

    Keys use canonical names: parts `input` (kernel), `recurrent`
    (recurrent kernel), `bias`, or for GRU with `reset_after=True`
    `input_bias` and `recurrent_bias` (the rows of its `(2, 3 * units)`
    bias); gates `input`, `forget`, `cell`, `output` (LSTM, ConvLSTM) or
    `update`, `reset`, `candidate` (GRU). `("recurrent", "forget")` is
    W_hf, of shape `(units, units)` (ConvLSTM: `ks + (filters, filters)`).

    The values are slices of the current variables: call `gate_blocks`
    where the loss is computed (inside `GradientTape`, a custom
    `train_step` or `compute_loss`) so the slices follow the training.

    Args:
      layer_or_cell: a built `LSTM`, `GRU`, `ConvLSTM1D/2D/3D` layer, or its
        cell. A `Bidirectional` layer holds two cells: pass its
        `forward_layer` or `backward_layer`.

    Returns:
      dict from `(part, gate)` to a backend tensor.

    Raises:
      ValueError: a `Bidirectional` layer, an unbuilt layer, or anything
        that is not exactly one recurrent cell tb-lstm-gates can split.

    Example:

    ```python
    import keras
    import tb_lstm_gates

    class Regularized(keras.Sequential):
        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
            w_hf = tb_lstm_gates.gate_blocks(self.get_layer("lstm"))["recurrent", "forget"]
            loss = super().compute_loss(x, y, y_pred, sample_weight, training)
            return loss + 1e-3 * keras.ops.sum(w_hf ** 2)

    model = Regularized(
        [keras.Input((None, 200)), keras.layers.LSTM(100, name="lstm"), keras.layers.Dense(1)]
    )
    model.compile("adam", "mse")
    ```
    """
    owner = "gate_blocks"
    if getattr(layer_or_cell, "forward_layer", None) is not None:
        raise ValueError(
            "%s: %r is a Bidirectional layer, which holds two cells: call "
            "gate_blocks(layer.forward_layer) and gate_blocks(layer.backward_layer)"
            % (owner, getattr(layer_or_cell, "name", layer_or_cell))
        )
    if not isinstance(layer_or_cell, keras.layers.Layer) and not hasattr(layer_or_cell, "trainable_weights"):
        raise ValueError(
            "%s takes a Keras LSTM, GRU or ConvLSTM layer or cell, got %s; for TF1 cells use "
            "tb_lstm_gates.tf1.gate_blocks(kernel, input_depth)" % (owner, type(layer_or_cell).__name__)
        )
    if not getattr(layer_or_cell, "built", True):
        raise ValueError(
            "%s: layer %r is not built, so it has no weights yet: build it first (call it on "
            "data, or put it in a model with an Input)" % (owner, layer_or_cell.name)
        )
    cells = discover.find_cells(layer_or_cell)
    if len(cells) != 1:
        raise ValueError(
            "%s: %r holds %d recurrent cells (%s): call gate_blocks on one recurrent layer or cell"
            % (
                owner,
                getattr(layer_or_cell, "name", layer_or_cell),
                len(cells),
                ", ".join(c.layer for c in cells),
            )
        )
    (cell,) = cells
    blocks: dict[tuple[str, str], Any] = {}
    for name, pieces in cell.layout.weights.items():
        variable = cell.variables[name]
        for piece in pieces:
            selected = variable if piece.rows is None else variable[piece.rows]
            units = selected.shape[-1] // len(piece.gates)
            for k, gate in enumerate(piece.gates):
                blocks[piece.part, gate] = selected[..., k * units : (k + 1) * units]
    return blocks
