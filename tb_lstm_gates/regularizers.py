"""Gate-wise regularization of LSTM, GRU and ConvLSTM weights, and its penalties for logging.

- `GateRegularizer`: a Keras regularizer with one L1, L2 and soft-orthogonal
  coefficient per gate, for `kernel_regularizer`, `recurrent_regularizer` and
  `bias_regularizer` of LSTM, GRU and ConvLSTM layers and cells.
- `attach_gate_regularizers`: puts gate regularizers on the weights of an
  already built model or layer.
- `tf1_gate_penalty`: the same penalty on a TF1 cell's concatenated kernel, as
  a tensor for the loss.
- `cell_penalties` and `write_penalties`: the penalty of every gate,
  recomputed in numpy from `layouts`, for `LSTMGatesCallback`.

Every gate's penalty follows Keras's own convention on that gate's block `W`
(the weight's columns of that gate, all rows):

    l1 * sum(|W|) + l2 * sum(W ** 2) + orthogonal * ||M^T M - I||_F^2

where `M` is `W` reshaped to `(rows, units)`. For a recurrent kernel `M` is
the gate's square `(units, units)` block. For a ConvLSTM recurrent kernel of
shape `ks + (filters, 4 * filters)`, `M` stacks the gate's kernel taps into
`(prod(ks) * filters, filters)`: the term asks the gate's output channels to be
orthonormal over all taps, the soft orthogonality usual for convolution
kernels, and equals the dense case when the kernel size is 1.

The penalty formula is written once (`_per_gate`) and evaluated with
`keras.ops` in the loss, with TensorFlow for TF1 graphs and with numpy for the
log, where the blocks come from `layouts.gate_view`, so what is logged is not
read back from the framework's loss.
"""

import numbers
import types
from collections.abc import Mapping

import keras
import numpy as np

from tb_lstm_gates import discover, layouts, metadata

CELL_GATES = {
    "lstm": layouts.KERAS_LSTM_ORDER,
    "conv_lstm": layouts.KERAS_LSTM_ORDER,
    "gru": layouts.KERAS_GRU_ORDER,
}
TERMS = ("l1", "l2", "orthogonal")

# Weight name -> (its regularizer attribute on Keras cells, attach argument).
_KERAS_WEIGHTS = {
    "kernel": ("kernel_regularizer", "kernel"),
    "recurrent_kernel": ("recurrent_regularizer", "recurrent"),
    "bias": ("bias_regularizer", "bias"),
}


def _parse_coefficients(owner, cell, terms):
    """`(gates, {term: {gate: float}}, {term: config value})`, or a ValueError naming every problem."""
    if cell not in CELL_GATES:
        raise ValueError(
            "%s: cell must be one of %s, got %r" % (owner, ", ".join(repr(c) for c in CELL_GATES), cell)
        )
    gates = CELL_GATES[cell]
    errors, per_gate, config = [], {}, {}
    for term, value in terms.items():
        if isinstance(value, Mapping):
            unknown = sorted(str(g) for g in value if g not in gates)
            if unknown:
                errors.append(
                    "%s names unknown gate %s; the gates of a %s cell are %s (e.g. %s={%r: 1e-3})"
                    % (term, ", ".join(repr(g) for g in unknown), cell, ", ".join(gates), term, gates[1])
                )
            items = [(g, value[g]) for g in gates if g in value]
        else:
            items = [(g, value) for g in gates]
        bad = [(g, v) for g, v in items if not _is_coefficient(v)]
        if bad:
            errors.append(
                "%s must be a float >= 0 or a mapping from gate name to such floats, got %s"
                % (term, ", ".join("%r for %s" % (v, g) for g, v in bad))
            )
            continue
        per_gate[term] = {g: 0.0 for g in gates}
        per_gate[term].update((g, float(v)) for g, v in items)
        config[term] = {g: float(v) for g, v in items} if isinstance(value, Mapping) else float(value)
    if errors:
        raise ValueError("%s: %s" % (owner, "; ".join(errors)))
    return gates, per_gate, config


def _is_coefficient(value):
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and np.isfinite(value)
        and value >= 0
    )


def _vectors(per_gate, gates, terms=TERMS):
    """`{term: list of floats in the order of gates, or None when all zero}`."""
    vectors = {}
    for term in terms:
        vector = [per_gate[term][g] for g in gates]
        vectors[term] = vector if any(vector) else None
    return vectors


def _per_gate(blocks, coefficients, xp):
    """The penalty of each gate, shape `(n_gates,)`.

    Args:
      blocks: tensor of shape `(rows, n_gates, units)`: `blocks[:, g, :]` is
        gate `g`'s block `M`.
      coefficients: `{term: list of n_gates floats, or None when all zero}`.
      xp: namespace with `const`, `zeros`, `sum`, `abs`, `square`, `einsum`, `eye`.
    """
    terms = []
    if coefficients.get("l1"):
        terms.append(xp.const(coefficients["l1"]) * xp.sum(xp.abs(blocks), (0, 2)))
    if coefficients.get("l2"):
        terms.append(xp.const(coefficients["l2"]) * xp.sum(xp.square(blocks), (0, 2)))
    if coefficients.get("orthogonal"):
        gram = xp.einsum("rgu,rgv->guv", blocks, blocks) - xp.eye(blocks.shape[-1])
        terms.append(xp.const(coefficients["orthogonal"]) * xp.sum(xp.square(gram), (1, 2)))
    if not terms:
        return xp.zeros(blocks.shape[1])
    return sum(terms[1:], terms[0])


def _numpy_ops():
    return types.SimpleNamespace(
        const=lambda v: np.asarray(v, dtype=np.float64),
        zeros=lambda n: np.zeros(n),
        sum=lambda x, axis: np.sum(x, axis=axis),
        abs=np.abs,
        square=np.square,
        einsum=np.einsum,
        eye=lambda n: np.eye(n),
    )


def _keras_ops(dtype):
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


def _tf_ops(tf, dtype):
    return types.SimpleNamespace(
        const=lambda v: tf.constant(v, dtype=dtype),
        zeros=lambda n: tf.zeros((n,), dtype=dtype),
        sum=lambda x, axis: tf.reduce_sum(x, axis=list(axis)),
        abs=tf.abs,
        square=tf.square,
        einsum=tf.einsum,
        eye=lambda n: tf.eye(n, dtype=dtype),
    )


@keras.saving.register_keras_serializable(package="tb_lstm_gates")
class GateRegularizer(keras.regularizers.Regularizer):
    """L1, L2 and soft-orthogonal penalties with one coefficient per gate.

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

    Models saved to `.keras` files load back with the same regularizers once
    `tb_lstm_gates.regularizers` is imported.

    Args:
      cell: `"lstm"`, `"gru"` or `"conv_lstm"`: the layer the weight belongs to.
      l1: a float >= 0 for every gate, or a mapping from canonical gate name
        to float (gates left out get 0), e.g. `{"forget": 1e-3}`.
      l2: as `l1`.
      orthogonal: as `l1`.

    Raises:
      ValueError: unknown cell or gate names, negative or non-numeric
        coefficients; when called, a weight whose last axis does not split
        into the cell's gates, or `orthogonal` on non-square blocks.

    Example:

    ```python
    import keras
    from tb_lstm_gates.regularizers import GateRegularizer

    lstm = keras.layers.LSTM(
        32,
        kernel_regularizer=GateRegularizer("lstm", l2={"forget": 1e-3}),
        recurrent_regularizer=GateRegularizer("lstm", orthogonal=1e-2),
    )
    ```
    """

    def __init__(self, cell="lstm", l1=0.0, l2=0.0, orthogonal=0.0):
        self.gates, self._coefficients, self._config = _parse_coefficients(
            "GateRegularizer", cell, {"l1": l1, "l2": l2, "orthogonal": orthogonal}
        )
        self.cell = cell

    def coefficients(self, gates=None):
        """`{term: list of floats in the order of gates, or None when all zero}`."""
        return _vectors(self._coefficients, self.gates if gates is None else gates)

    def _check_orthogonal(self, rows_shape, units, weight_shape):
        """Raises unless blocks with leading shape `rows_shape` fit the orthogonal term."""
        if self.coefficients()["orthogonal"] and (not rows_shape or rows_shape[-1] != units):
            raise ValueError(
                "GateRegularizer(orthogonal=...) needs square gate blocks (units, units), "
                "as a recurrent kernel has; the weight of shape %s has %s blocks per gate: "
                "put orthogonal only in recurrent_regularizer"
                % (tuple(weight_shape), tuple(rows_shape) + (units,))
            )

    def validate_shape(self, shape):
        """The units per gate of a weight of `shape`; raises ValueError if the weight does not fit."""
        n = len(self.gates)
        if not shape or shape[-1] is None or shape[-1] == 0 or shape[-1] % n:
            raise ValueError(
                "GateRegularizer(cell=%r) got a weight of shape %s whose last axis does not "
                "split into the %d gates of a %s cell (%s): give the regularizer the cell "
                "of the layer it regularizes" % (self.cell, tuple(shape), n, self.cell, ", ".join(self.gates))
            )
        units = shape[-1] // n
        self._check_orthogonal(tuple(shape[:-1]), units, shape)
        return units

    def __call__(self, x):
        units = self.validate_shape(tuple(x.shape))
        blocks = keras.ops.reshape(x, (-1, len(self.gates), units))
        return keras.ops.sum(_per_gate(blocks, self.coefficients(), _keras_ops(x.dtype)))

    def gate_penalties(self, array, piece=None, name="weight"):
        """The penalty of each gate, computed in numpy: `{gate: float}`.

        Args:
          array: the weight, as a numpy array.
          piece: a `layouts.Piece` to take only part of the weight (e.g. one
            row of GRU's `(2, 3 * units)` bias); None for the whole weight,
            which is what `__call__` adds to the loss.
          name: the weight's name, for error messages.
        """
        piece = piece or layouts.Piece("weight", self.gates)
        view = layouts.gate_view(np.asarray(array, dtype=np.float64), piece, name)
        units = view.shape[-1]
        self._check_orthogonal(view.shape[:-2], units, np.shape(array))
        blocks = view.reshape((-1,) + view.shape[-2:])
        values = _per_gate(blocks, self.coefficients(piece.gates), _numpy_ops())
        return dict(zip(piece.gates, values.tolist()))

    def get_config(self):
        return dict(self._config, cell=self.cell)

    def __repr__(self):
        terms = ", ".join("%s=%r" % (t, v) for t, v in self._config.items() if v)
        return "GateRegularizer(%r%s)" % (self.cell, ", " + terms if terms else "")


def attach_gate_regularizers(model, kernel=None, recurrent=None, bias=None, layers=None, overwrite=False):
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
      recurrent: the same for the recurrent kernels.
      bias: the same for the biases.
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
    plan = []
    for cell in discover.find_cells(model, layers):
        for weight, (attribute, arg) in _KERAS_WEIGHTS.items():
            if requested[arg] is None:
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
            regularizer = GateRegularizer(cell.layout.cell, **requested[arg])
            try:
                regularizer.validate_shape(tuple(variable.shape))
            except ValueError as e:
                raise ValueError("attach_gate_regularizers: %s of %s: %s" % (arg, where, e)) from None
            plan.append((cell, attribute, variable, regularizer))
    attached = {}
    for cell, attribute, variable, regularizer in plan:
        variable.regularizer = regularizer
        setattr(cell.obj, attribute, regularizer)
        attached[discover.variable_path(variable)] = regularizer
    return attached


def cell_penalties(cell, arrays):
    """The gate penalties of one discovered cell, recomputed in numpy.

    Args:
      cell: a `discover.Cell` of a Keras 3 model.
      arrays: its current weights, as `cell.arrays()` returns them.

    Returns:
      list of `(part, {gate: penalty})`, one per layout piece of every weight
      that carries a `GateRegularizer`; empty when none does.

    Raises:
      ValueError: a regularizer made for another kind of cell, whose gates
        Keras splits wrongly without noticing when the widths happen to divide.
    """
    penalties = []
    for name, variable in cell.variables.items():
        regularizer = getattr(variable, "regularizer", None)
        if not isinstance(regularizer, GateRegularizer):
            continue
        if set(regularizer.gates) != set(CELL_GATES[cell.layout.cell]):
            raise ValueError(
                "the %s of %s (a %s cell) has %r: use GateRegularizer(cell=%r)"
                % (name, cell.layer, cell.layout.cell, regularizer, cell.layout.cell)
            )
        for piece in cell.layout.weights[name]:
            penalties.append((piece.part, regularizer.gate_penalties(arrays[name], piece, name)))
    return penalties


def weight_regularization_loss(model):
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


def write_penalties(writer, model, cells_penalties, loss=None):
    """Adds the regularization series to a `GateSummaryWriter`'s current step.

    When any cell carries a `GateRegularizer`: the penalty of each (part,
    gate) and each cell's total (part = gate = `total`), the model's weight
    regularization loss and, when given, the training `loss` (on the `model`
    pseudo layer). Nothing otherwise.

    Args:
      writer: a `summary.GateSummaryWriter`.
      model: the Keras model.
      cells_penalties: `(cell, cell_penalties(cell, arrays))` pairs.
      loss: the training loss, or None.
    """
    logged = False
    for cell, penalties in cells_penalties:
        if not penalties:
            continue
        logged = True
        total = 0.0
        for part, per_gate in penalties:
            for gate, value in per_gate.items():
                writer.write_scalar(cell.layer, cell.layout.cell, part, gate, metadata.PENALTY, value)
                total += value
        writer.write_scalar(
            cell.layer, cell.layout.cell, metadata.TOTAL, metadata.TOTAL, metadata.PENALTY, total
        )
    if not logged:
        return
    model_series = (metadata.MODEL_LAYER, metadata.MODEL_CELL, metadata.TOTAL, metadata.TOTAL)
    writer.write_scalar(*model_series, metadata.PENALTY, weight_regularization_loss(model))
    if loss is not None:
        writer.write_scalar(*model_series, metadata.LOSS, loss)


def tf1_gate_penalty(kernel, input_depth, cell="lstm", l1=0.0, l2=0.0, orthogonal=0.0):
    """The gate-wise penalty of a TF1 cell's kernel, as a scalar tensor.

    TF1 cells concatenate the input and recurrent rows in one kernel: rows
    `[:input_depth]` act on x_t, rows `[input_depth:]` on h_{t-1} (see
    `layouts.tf1_lstm`, `layouts.tf1_gru`). `l1` and `l2` apply to all rows
    of each gate's columns, `orthogonal` to each gate's recurrent block.

    Add the result to the loss, or to
    `tf.compat.v1.GraphKeys.REGULARIZATION_LOSSES`.

    Args:
      kernel: `lstm_cell/kernel` (input_depth + h, 4 * units), gates in TF1's
        order i, j, f, o; or, for `cell="gru"`, `gru_cell/gates/kernel`
        (input_depth + units, 2 * units; reset, update) or
        `gru_cell/candidate/kernel` (input_depth + units, units), told apart
        by their shapes. Call it once per kernel.
      input_depth: the depth of the cell's input.
      cell: `"lstm"` or `"gru"`.
      l1, l2, orthogonal: as for `GateRegularizer`, with canonical gate names
        (`cell` for TF1's j, `update` for its u). Gates the kernel does not
        hold are ignored.

    Raises:
      ValueError: bad coefficients, or a kernel whose shape does not fit
        `cell` and `input_depth`.
    """
    import tensorflow as tf

    owner = "tf1_gate_penalty"
    if cell not in ("lstm", "gru"):
        raise ValueError("%s: cell must be 'lstm' or 'gru', got %r" % (owner, cell))
    _, per_gate, _ = _parse_coefficients(owner, cell, {"l1": l1, "l2": l2, "orthogonal": orthogonal})
    kernel = tf.convert_to_tensor(kernel)
    shape = tuple(kernel.shape.as_list())
    depth = _tf1_input_depth(owner, shape, input_depth)
    rows, cols = shape
    if cell == "lstm":
        weight = "kernel"
        pieces = layouts.tf1_lstm(depth).weights[weight]
    else:
        weight = {2 * (rows - depth): "gates/kernel", rows - depth: "candidate/kernel"}.get(cols)
        if weight is None:
            raise ValueError(
                "%s: a GRU kernel of shape %s with input_depth=%d should have %d columns "
                "(gates/kernel) or %d (candidate/kernel)"
                % (owner, shape, depth, 2 * (rows - depth), rows - depth)
            )
        pieces = layouts.tf1_gru(depth).weights[weight]
    gates = pieces[0].gates
    if cols % len(gates):
        raise ValueError(
            "%s: %s of shape %s does not split into the %d gates %s"
            % (owner, weight, shape, len(gates), ", ".join(gates))
        )
    units = cols // len(gates)

    xp = _tf_ops(tf, kernel.dtype)
    blocks = tf.reshape(kernel, (-1, len(gates), units))
    penalty = tf.reduce_sum(_per_gate(blocks, _vectors(per_gate, gates, ("l1", "l2")), xp))
    orthogonal_terms = _vectors(per_gate, gates, ("orthogonal",))
    if orthogonal_terms["orthogonal"]:
        recurrent_rows = rows - depth
        if recurrent_rows != units:
            raise ValueError(
                "%s: orthogonal needs square recurrent blocks, but %s of shape %s has %d "
                "recurrent rows for %d units per gate (a projection?): set orthogonal=0"
                % (owner, weight, shape, recurrent_rows, units)
            )
        recurrent = tf.reshape(kernel[depth:], (recurrent_rows, len(gates), units))
        penalty += tf.reduce_sum(_per_gate(recurrent, orthogonal_terms, xp))
    return penalty


def _tf1_input_depth(owner, shape, input_depth):
    if len(shape) != 2 or None in shape:
        raise ValueError(
            "%s: kernel must have a known 2-D shape (input_depth + h, columns), got %s" % (owner, shape)
        )
    if not isinstance(input_depth, numbers.Integral) or not 0 < input_depth < shape[0]:
        raise ValueError(
            "%s: input_depth must be an int between 1 and %d (the kernel has %d rows: "
            "input_depth input rows, then the recurrent rows), got %r"
            % (owner, shape[0] - 1, shape[0], input_depth)
        )
    return int(input_depth)
