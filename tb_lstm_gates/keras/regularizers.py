"""Gate-wise regularization of LSTM, GRU and ConvLSTM weights.

- `GateRegularizer`: a Keras regularizer with one L1, L2 and soft-orthogonal
  coefficient per gate, for `kernel_regularizer`, `recurrent_regularizer` and
  `bias_regularizer` of LSTM, GRU and ConvLSTM layers and cells.
- `attach_gate_regularizers`: puts gate regularizers on the weights of an
  already built model or layer.
- `tf1_gate_penalty` (defined in `tb_lstm_gates.tf1.penalty`, importable from here):
  the same penalty on a TF1 cell's concatenated kernel, as a tensor for the loss.

`tb_lstm_gates.logs.penalties` recomputes every gate's penalty in numpy for the log.

Coefficients are given per gate (`{"forget": 1e-3}`: every part of the gate)
or per block (`{"recurrent/forget": 1e-3}`: W_hf alone), in canonical names.
Every gate's penalty follows Keras's own convention on that gate's block `W`
(the weight's columns of that gate, all rows of the part):

    l1 * sum(|W|) + l2 * sum(W ** 2) + orthogonal * ||M^T M - I||_F^2

where `M` is `W` reshaped to `(rows, units)`. For a recurrent kernel `M` is
the gate's square `(units, units)` block. For a ConvLSTM recurrent kernel of
shape `ks + (filters, 4 * filters)`, `M` stacks the gate's kernel taps into
`(prod(ks) * filters, filters)`: the term asks the gate's output channels to be
orthonormal over all taps, the soft orthogonality usual for convolution
kernels, and equals the dense case when the kernel size is 1.

The penalty formula is written once (`gate_penalty.per_gate_penalty`) and evaluated with
`keras.ops` in the loss, with TensorFlow for TF1 graphs and with numpy for the
log, where the blocks come from `layouts.gate_view`, so what is logged is not
read back from the framework's loss.
"""

import types
from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np

from tb_lstm_gates.core import gate_penalty, layouts
from tb_lstm_gates.core.gate_penalty import CELL_GATES, Coefficients, Vectors
from tb_lstm_gates.keras import discover

Shape = Sequence[int]
# Weight name -> (its regularizer attribute on Keras cells, attach argument).
_KERAS_WEIGHTS = {
    "kernel": ("kernel_regularizer", "kernel"),
    "recurrent_kernel": ("recurrent_regularizer", "recurrent"),
    "bias": ("bias_regularizer", "bias"),
}


def _keras_ops(dtype: Any) -> types.SimpleNamespace:
    ops = keras.ops
    return types.SimpleNamespace(
        const=lambda v: ops.convert_to_tensor(v, dtype=dtype),
        zeros=lambda n: ops.zeros((n,), dtype=dtype),
        sum=lambda x, axis: ops.sum(x, axis=axis),
        abs=ops.abs,
        square=ops.square,
        einsum=ops.einsum,
        eye=lambda n: ops.eye(n, dtype=dtype),
    )


@keras.saving.register_keras_serializable(package="tb_lstm_gates")
class GateRegularizer(keras.regularizers.Regularizer):
    """L1, L2 and soft-orthogonal penalties with one coefficient per gate or per block.

    Use it as `kernel_regularizer`, `recurrent_regularizer` or
    `bias_regularizer` of `LSTM`, `GRU` (either `reset_after`),
    `ConvLSTM1D/2D/3D` and their cells. The weight's last axis holds the
    gates in Keras's order (LSTM: input, forget, cell, output; GRU: update,
    reset, candidate); each gate's block gets

        l1[g] * sum(|W_g|) + l2[g] * sum(W_g ** 2)
        + orthogonal[g] * ||M_g^T M_g - I||_F^2

    with `M_g` the block reshaped to `(rows, units)` (see the module
    docstring for ConvLSTM). `orthogonal` needs square blocks, which
    recurrent kernels have: use it in `recurrent_regularizer`.

    A coefficient key is a gate (`"forget"`: the gate's columns in every
    part the weight holds) or, when `weight` says which weight the
    regularizer goes on, a block `"part/gate"` of that weight, which wins
    over its gate's key. Block keys matter for GRU's `(2, 3 * units)` bias,
    whose rows are the parts `input_bias` and `recurrent_bias`; on a kernel
    (`"input/forget"`) or a recurrent kernel (`"recurrent/forget"`) a block
    is the whole gate. To give one set of coefficients to every weight of a
    layer, use `attach_gate_regularizers`.

    Models saved to `.keras` files load back with the same regularizers once
    `tb_lstm_gates.keras.regularizers` is imported.

    Args:
      cell: `"lstm"`, `"gru"` or `"conv_lstm"`: the layer the weight belongs to.
      l1: a float >= 0 for every gate, or a mapping from canonical gate name
        (or `"part/gate"` block) to float (gates left out get 0), e.g.
        `{"forget": 1e-3}`.
      l2: as `l1`.
      orthogonal: as `l1`.
      weight: `"kernel"`, `"recurrent_kernel"` or `"bias"`: the weight the
        regularizer goes on, needed for block keys; None otherwise.

    Raises:
      ValueError: unknown cell, gate, block or weight names, negative or
        non-numeric coefficients (the message names the valid keys); when
        called, a weight whose last axis does not split into the cell's
        gates, a weight that does not hold a block a key names, or
        `orthogonal` on non-square blocks.

    Example:

    ```python
    import keras
    from tb_lstm_gates.keras.regularizers import GateRegularizer

    lstm = keras.layers.LSTM(
        32,
        kernel_regularizer=GateRegularizer("lstm", l2={"forget": 1e-3}),
        recurrent_regularizer=GateRegularizer("lstm", orthogonal=1e-2),
    )
    gru = keras.layers.GRU(
        32, bias_regularizer=GateRegularizer("gru", weight="bias", l2={"recurrent_bias/reset": 1e-3})
    )
    ```
    """

    def __init__(
        self,
        cell: str = "lstm",
        l1: Coefficients = 0.0,
        l2: Coefficients = 0.0,
        orthogonal: Coefficients = 0.0,
        weight: str | None = None,
    ) -> None:
        owner = "GateRegularizer"
        if weight is not None and weight not in _KERAS_WEIGHTS:
            raise ValueError(
                "%s: weight must be None or one of %s, got %r"
                % (owner, ", ".join(repr(w) for w in _KERAS_WEIGHTS), weight)
            )
        hint = (
            "block keys need weight=, the weight the regularizer goes on (%s), e.g. "
            "GateRegularizer(%r, weight='recurrent_kernel', l2={'recurrent/%s': 1e-3}); or give "
            "one set of coefficients to a whole layer with attach_gate_regularizers(model, ...)"
            % (", ".join(_KERAS_WEIGHTS), cell, CELL_GATES.get(cell, ("",) * 2)[1])
        )
        self.gates, self._coefficients, self._config = gate_penalty.parse_coefficients(
            owner,
            cell,
            {"l1": l1, "l2": l2, "orthogonal": orthogonal},
            None if weight is None else _weight_parts(cell, weight),
            hint,
        )
        self.cell = cell
        self.weight = weight

    def coefficients(self, part: str | None = None, gates: Sequence[str] | None = None) -> Vectors:
        """`{term: list of floats in the order of gates, or None when all zero}` on `part`."""
        return gate_penalty.coefficient_vectors(
            self._coefficients, self.gates if gates is None else gates, part
        )

    def penalized_gates(self, part: str | None = None, gates: Sequence[str] | None = None) -> list[str]:
        """The gates (of `gates`, default all) with a nonzero coefficient on `part`, in order."""
        gates = self.gates if gates is None else gates
        vectors = [v for v in self.coefficients(part, gates).values() if v]
        return [g for k, g in enumerate(gates) if any(v[k] for v in vectors)]

    def _pieces(self, shape: tuple[int, ...]) -> tuple[layouts.Piece, ...]:
        """The `layouts.Piece`s of a weight of `shape`: the whole weight unless `weight` is set."""
        if self.weight is None:
            return (layouts.Piece("weight", self.gates),)
        return _layout_of_kind(self.cell, len(shape)).weights[self.weight]

    def _check_orthogonal(self, part: str, rows_shape: Shape, units: int, weight_shape: Shape) -> None:
        """Raises unless blocks with leading shape `rows_shape` fit the orthogonal term of `part`."""
        if self.coefficients(part)["orthogonal"] and (not rows_shape or rows_shape[-1] != units):
            raise ValueError(
                "GateRegularizer(orthogonal=...) needs square gate blocks (units, units), "
                "as a recurrent kernel has; the weight of shape %s has %s blocks per gate: "
                "put orthogonal only in recurrent_regularizer"
                % (tuple(weight_shape), tuple(rows_shape) + (units,))
            )

    def validate_shape(self, shape: Sequence[int]) -> int:
        """The units per gate of a weight of `shape`; raises ValueError if the weight does not fit."""
        n = len(self.gates)
        shape = tuple(shape)
        if not shape or shape[-1] is None or shape[-1] == 0 or shape[-1] % n:
            raise ValueError(
                "GateRegularizer(cell=%r) got a weight of shape %s whose last axis does not "
                "split into the %d gates of a %s cell (%s): give the regularizer the cell "
                "of the layer it regularizes" % (self.cell, shape, n, self.cell, ", ".join(self.gates))
            )
        units = shape[-1] // n
        self._check_weight(shape, units)
        for piece in self._pieces(shape):
            rows = shape if piece.rows is None else shape[1:]
            self._check_orthogonal(piece.part, rows[:-1], units, shape)
        return units

    def _check_weight(self, shape: tuple[int, ...], units: int) -> None:
        """Raises when a shape cannot be `self.weight`'s, or lacks a block that a key names."""
        if self.weight is None:
            return
        expected = {
            "kernel": "(inputs, %d)" % shape[-1],
            "recurrent_kernel": "(%d, %d)" % (units, shape[-1]),
            "bias": "(%d,)" % shape[-1] + (" or (2, %d)" % shape[-1] if self.cell == "gru" else ""),
        }[self.weight]
        if self.weight == "recurrent_kernel":
            fits = len(shape) >= 2 and shape[-2] == units
        elif self.weight == "bias":
            fits = len(shape) == 1 or (self.cell == "gru" and shape[:-1] == (2,))
        else:
            fits = len(shape) >= 2
        if not fits:
            raise ValueError(
                "GateRegularizer(weight=%r) got a weight of shape %s; a %s cell's %s has shape %s: "
                "put the regularizer on the weight it names"
                % (self.weight, shape, self.cell, self.weight, expected)
            )
        held = {piece.part for piece in self._pieces(shape)}
        missing = sorted(
            "%s/%s" % block
            for _, per_block in self._coefficients.values()
            for block in per_block
            if block[0] not in held
        )
        if missing:
            gru_bias = self.cell == "gru" and self.weight == "bias"
            raise ValueError(
                "GateRegularizer: the %s of shape %s has no block %s; its keys are %s%s"
                % (
                    self.weight,
                    shape,
                    ", ".join(repr(k) for k in missing),
                    gate_penalty.key_text(self.gates, sorted(held)),
                    " (GRU's bias has input_bias and recurrent_bias rows with reset_after=True, "
                    "one bias part otherwise)"
                    if gru_bias
                    else "",
                )
            )

    def __call__(self, x: Any) -> Any:
        units = self.validate_shape(tuple(x.shape))
        xp = _keras_ops(x.dtype)
        total = None
        for piece in self._pieces(tuple(x.shape)):
            selected = x if piece.rows is None else x[piece.rows]
            blocks = keras.ops.reshape(selected, (-1, len(self.gates), units))
            term = keras.ops.sum(gate_penalty.per_gate_penalty(blocks, self.coefficients(piece.part), xp))
            total = term if total is None else total + term
        return total

    def gate_penalties(
        self, array: Any, piece: layouts.Piece | None = None, name: str = "weight"
    ) -> dict[str, float]:
        """The penalty of each gate, computed in numpy: `{gate: float}`.

        Args:
          array: the weight, as a numpy array.
          piece: a `layouts.Piece` to take only part of the weight (e.g. one
            row of GRU's `(2, 3 * units)` bias), with that part's
            coefficients; None for the whole weight, which is what
            `__call__` adds to the loss.
          name: the weight's name, for error messages.
        """
        array = np.asarray(array, dtype=np.float64)
        if piece is None:
            self.validate_shape(array.shape)
            totals = dict.fromkeys(self.gates, 0.0)
            for whole in self._pieces(array.shape):
                for gate, value in self.gate_penalties(array, whole, name).items():
                    totals[gate] += value
            return totals
        view = layouts.gate_view(array, piece, name)
        units = view.shape[-1]
        self._check_orthogonal(piece.part, view.shape[:-2], units, array.shape)
        blocks = view.reshape((-1,) + view.shape[-2:])
        coefficients = self.coefficients(piece.part, piece.gates)
        values = gate_penalty.per_gate_penalty(blocks, coefficients, gate_penalty.numpy_ops())
        return dict(zip(piece.gates, values.tolist()))

    def get_config(self) -> dict[str, Any]:
        return dict(self._config, cell=self.cell, weight=self.weight)

    def __repr__(self) -> str:
        terms = ", ".join("%s=%r" % (t, v) for t, v in self._config.items() if v)
        if self.weight is not None:
            terms = "weight=%r%s" % (self.weight, ", " + terms if terms else "")
        return "GateRegularizer(%r%s)" % (self.cell, ", " + terms if terms else "")


def _layout_of_kind(cell: str, ndim_bias: int) -> layouts.Layout:
    """The Keras layout of `cell`; for GRU, `ndim_bias` tells `reset_after` (2-D bias) apart."""
    if cell == "gru":
        return layouts.keras_gru(reset_after=ndim_bias == 2)
    return layouts.keras_conv_lstm() if cell == "conv_lstm" else layouts.keras_lstm()


def _weight_parts(cell: str, weight: str) -> tuple[str, ...]:
    """The parts a Keras weight can hold: both bias layouts for GRU."""
    if cell == "gru" and weight == "bias":
        return ("bias", "input_bias", "recurrent_bias")
    return tuple(piece.part for piece in _layout_of_kind(cell, 1).weights[weight])


def attach_gate_regularizers(
    model: keras.Model,
    kernel: Mapping[str, Coefficients] | None = None,
    recurrent: Mapping[str, Coefficients] | None = None,
    bias: Mapping[str, Coefficients] | None = None,
    layers: Sequence[str] | None = None,
    overwrite: bool = False,
) -> dict[str, GateRegularizer]:
    """Puts gate regularizers on the weights of the recurrent layers of a built model or layer.

    For users who build models elsewhere: the result is the same as passing
    `GateRegularizer`s to the layers' constructors. The penalties enter the
    loss of the next `fit` (Keras collects `variable.regularizer` at each
    step) and the layers' configs, so `.keras` files keep them. Attach before
    the first `fit`, or `compile` again afterwards: `fit` reuses its traced
    step otherwise.

    Args:
      model: a built Keras model or layer.
      kernel: `dict(l1=..., l2=..., orthogonal=...)` for the kernels (input
        part), as `GateRegularizer` takes them; None to leave them alone.
        Keys are gates or blocks of that weight (`"input/forget"`).
      recurrent: the same for the recurrent kernels (blocks
        `"recurrent/<gate>"`).
      bias: the same for the biases (blocks `"bias/<gate>"`; for GRU with
        `reset_after=True`, `"input_bias/<gate>"` and `"recurrent_bias/<gate>"`).
      layers: names of the layers to regularize (recurrent layers, wrappers
        or nested models), as `LSTMGatesCallback` takes them; None for every
        LSTM, GRU and ConvLSTM layer.
      overwrite: replace regularizers already on those weights instead of
        raising.

    Returns:
      dict from variable path to the `GateRegularizer` put on it.

    Raises:
      ValueError: bad coefficients or layer names, a weight that does not
        fit, a layer without bias when `bias` is given, or a weight that
        already has a regularizer (unless `overwrite`). Nothing is attached
        when an error is raised.

    Example:

    ```python
    attach_gate_regularizers(model, kernel=dict(l2={"forget": 1e-3}),
                             recurrent=dict(orthogonal=1e-2))
    attach_gate_regularizers(gru_model, bias=dict(l1={"recurrent_bias/reset": 1e-3}))
    ```
    """
    requested = {"kernel": kernel, "recurrent": recurrent, "bias": bias}
    for arg, value in requested.items():
        if value is not None and not isinstance(value, Mapping):
            raise ValueError(
                "attach_gate_regularizers: %s must be None or a dict of GateRegularizer "
                "coefficients such as dict(l2={'forget': 1e-3}), got %r" % (arg, value)
            )
    if not any(v is not None for v in requested.values()):
        raise ValueError("attach_gate_regularizers: give at least one of kernel=, recurrent=, bias=")
    plan: list[tuple[Any, str, Any, GateRegularizer]] = []
    for cell in discover.find_cells(model, layers):
        for weight, (attribute, arg) in _KERAS_WEIGHTS.items():
            coefficients = requested[arg]
            if coefficients is None:
                continue
            variable = cell.variables.get(weight)
            where = "layer %r (%s)" % ("/".join(cell.names), cell.layer)
            if variable is None:
                raise ValueError(
                    "attach_gate_regularizers: %s has no %s; leave %s=None or pick "
                    "layers with layers=[...]" % (where, weight, arg)
                )
            if getattr(variable, "regularizer", None) is not None and not overwrite:
                raise ValueError(
                    "attach_gate_regularizers: the %s of %s already has the regularizer %r; "
                    "pass overwrite=True to replace it" % (weight, where, variable.regularizer)
                )
            try:
                regularizer = GateRegularizer(cell.layout.cell, weight=weight, **coefficients)
                regularizer.validate_shape(tuple(variable.shape))
            except ValueError as e:
                raise ValueError("attach_gate_regularizers: %s of %s: %s" % (arg, where, e)) from None
            plan.append((cell, attribute, variable, regularizer))
    attached: dict[str, GateRegularizer] = {}
    for cell, attribute, variable, regularizer in plan:
        variable.regularizer = regularizer
        setattr(cell.obj, attribute, regularizer)
        attached[discover.variable_path(variable)] = regularizer
    return attached
