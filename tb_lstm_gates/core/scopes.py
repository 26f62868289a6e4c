"""Recurrent cells found from variable names and shapes alone, and the `Cell` record.

`find_cells_by_name` serves TF1 graphs, whose cells are not objects one can
walk after the graph is built, and checkpoint files of any framework:
`doc_word/fw/lstm_cell/kernel` (in + h, 4u), `.../lstm_cell/w_i_diag`,
`.../lstm_cell/projection/kernel`,
`rnn/multi_rnn_cell/cell_1/gru_cell/gates/kernel`, and Keras cells
(`kernel` + `recurrent_kernel` under one scope). Plain Python and numpy:
readers of checkpoints use it without importing any framework.
"""

import dataclasses
import re
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from tb_lstm_gates.core import layouts
from tb_lstm_gates.core.layouts import Layout

CELL_WEIGHTS = ("kernel", "recurrent_kernel", "bias")
# A variable's shape.
Shape = tuple[int, ...]


@dataclasses.dataclass
class Cell:
    """One recurrent cell of a model.

    Attributes:
      layer: the names of the layers and cells from below the model down to
        the cell, e.g. `bidirectional/forward_lstm/lstm_cell` (the `layer`
        of the data contract). Where two layers (or cells) of one container
        share a name, as a subclassed model allows, the later ones in model
        order get the first free `name_2`, `name_3`, ..., so every cell's
        path is unique and the same after `load_model`. Keras 3 variable paths would not do: they
        depend on where a layer was built, and a model restored by
        `keras.models.load_model` loses the model's and wrappers' scopes
        (`sequential/bidirectional/forward_lstm/lstm_cell` comes back as
        `forward_lstm/lstm_cell`), so a resumed run would log new layers.
      layout: the `layouts.Layout` of its weights.
      variables: mapping from weight name (as the layout names it) to the
        framework variable.
      names: names of the Keras layers from the model's top level down to the
        recurrent layer, for the `layers=` filter.
      obj: the cell (or, for CuDNN layers, the layer) that owns the variables.
      path: the Keras layers whose names are `names`, from the model down to
        the recurrent layer.
      owners: for Keras, the recurrent layers that run this cell over
        sequences, each `(layer, stack)`: `stack` the cells the layer runs
        in order (this one among them; one cell unless `StackedRNNCells`).
    """

    layer: str
    layout: layouts.Layout
    variables: dict[str, Any]
    names: tuple[str, ...]
    obj: Any
    path: tuple[Any, ...] = ()
    owners: tuple[Any, ...] = ()

    def arrays(self) -> dict[str, np.ndarray]:
        """The current weights as numpy arrays, keyed as the layout names them."""
        return {name: variable_array(v) for name, v in self.variables.items()}

    def snapshot(self) -> dict[str, np.ndarray]:
        """`arrays()`, each an array of its own, which training cannot change while another thread reads it.

        TensorFlow hands out copies already; Keras on torch and JAX hand out
        views of the live buffers, which the optimizer updates in place (or
        donates): those are copied.
        """
        arrays = self.arrays()
        return {name: a if a.flags.owndata else a.copy() for name, a in arrays.items()}


def variable_array(variable: Any) -> np.ndarray:
    """A framework's variable or tensor as a numpy array, by duck typing (no framework imported).

    Keras 3 variables are read through their backend tensor (`.value`, an
    attribute; tf.Variable's `value` is a method): numpy 2 warns about their
    `__array__`. Torch tensors are detached first.
    """
    value = variable
    inner = getattr(variable, "value", None)
    if inner is not None and not callable(inner):
        value = inner
    if hasattr(value, "detach"):
        value = value.detach().cpu()
    if hasattr(value, "numpy"):
        value = value.numpy()
    return np.asarray(value)


_TF1_LSTM_SCOPE = re.compile(r"(^|/)(basic_)?lstm_cell(_\d+)?$")
_TF1_GRU_SCOPE = re.compile(r"(^|/)gru_cell(_\d+)?$")
_PEEPHOLES = ("w_i_diag", "w_f_diag", "w_o_diag")
_PROJECTION = "projection/kernel"
_TF1_GRU_WEIGHTS = ("gates/kernel", "gates/bias", "candidate/kernel", "candidate/bias")
# Longest first, so `.../projection/kernel` is not read as a `kernel` of scope
# `.../projection`.
_WEIGHT_NAMES = sorted(
    set(("kernel", "bias", _PROJECTION) + _PEEPHOLES + _TF1_GRU_WEIGHTS + CELL_WEIGHTS),
    key=len,
    reverse=True,
)

# What `find_cells_by_name` finds among variable names, for error messages.
SUPPORTED_VARIABLE_SCOPES = (
    "TF1 LSTMCell (with peepholes and num_proj), BasicLSTMCell and GRUCell in "
    "scopes named lstm_cell, basic_lstm_cell or gru_cell (also inside "
    "MultiRNNCell and bidirectional_dynamic_rnn), and Keras/tf_keras LSTM, GRU, "
    "ConvLSTM and CuDNN cells"
)


def strip_output_index(name: str) -> str:
    """A TensorFlow tensor or variable name string without its `:0` output index."""
    return re.sub(r":\d+$", "", name)


def find_cells_by_name(
    shapes: Mapping[str, Iterable[int]],
    layouts: Mapping[str, layouts.Layout] | None = None,
    input_depth: Mapping[str, int] | None = None,
) -> list[Cell]:
    """The recurrent cells among named variables, from names and shapes alone.

    Args:
      shapes: mapping from variable name (`:0` suffix optional) to shape.
      layouts: optional mapping from a cell's scope (e.g. `"enc/my_cell"`) to
        its `layouts.Layout`, for cells whose scope is not a standard cell
        name or whose split cannot be told from shapes; the layout's weight
        names are relative to the scope (`kernel`, `bias`, ...).
      input_depth: optional mapping from a TF1 cell's scope to the depth of
        its input, which fixes where the kernel's input rows end.

    Returns:
      list of `Cell`, sorted by `layer` (the cell's scope).
      `Cell.variables` maps each weight name of the layout to the variable's
      name as given in `shapes`; `Cell.names` holds the scope's components;
      `Cell.obj` is None.

    Raises:
      ValueError: a cell's shapes do not fit its kind, or an override names a
        scope or weight that is not there. The message says which override
        fixes it.
    """
    layouts = dict(layouts or {})
    input_depth = dict(input_depth or {})
    scopes: dict[str, dict[str, tuple[str, Shape]]] = {}
    for name, shape in shapes.items():
        path = strip_output_index(name)
        for weight in _WEIGHT_NAMES:
            if path.endswith("/" + weight) or path == weight:
                scope = path[: -len(weight)].rstrip("/")
                scopes.setdefault(scope, {})[weight] = (name, tuple(shape))
                break
    for scope in list(layouts) + list(input_depth):
        if scope not in scopes:
            raise ValueError(
                "no cell variables under scope %r; scopes with cell-like "
                "variables: %s" % (scope, ", ".join(sorted(scopes)) or "none")
            )
    cells = []
    for scope, weights in sorted(scopes.items()):
        layout: Layout | None
        if scope in layouts:
            layout = layouts[scope]
        else:
            layout = _layout_of_scope(scope, {w: s for w, (_, s) in weights.items()}, input_depth.get(scope))
            if layout is None:
                continue
        missing = [w for w in layout.weights if w not in weights]
        if missing:
            raise ValueError(
                "cell %r has no weight %s (it has %s)"
                % (scope, ", ".join(missing), ", ".join(sorted(weights)))
            )
        variables = {w: weights[w][0] for w in layout.weights}
        cells.append(Cell(scope, layout, variables, tuple(scope.split("/")), None))
    return cells


def _layout_of_scope(scope: str, shapes: Mapping[str, Shape], depth: int | None) -> layouts.Layout | None:
    """The layout of the cell under `scope`, told from its weights' names and shapes; None if none."""
    if "recurrent_kernel" in shapes and "kernel" in shapes:
        return _keras_layout(shapes)
    if _TF1_LSTM_SCOPE.search(scope) and "kernel" in shapes and "bias" in shapes:
        return _tf1_lstm_layout(scope, shapes, depth)
    if _TF1_GRU_SCOPE.search(scope) and all(w in shapes for w in _TF1_GRU_WEIGHTS):
        return _tf1_gru_layout(scope, shapes, depth)
    return None


def _ambiguous(scope: str, problem: str, builder: str) -> ValueError:
    return ValueError(
        "cannot split cell %r: %s. If it is a %s, pass input_depth={%r: N} "
        "(N = the depth of the cell's input) or layouts={%r: "
        "tb_lstm_gates.core.layouts.%s(N)}" % (scope, problem, builder, scope, scope, builder)
    )


def _tf1_lstm_layout(scope: str, shapes: Mapping[str, Shape], depth: int | None) -> layouts.Layout:
    kernel, bias = shapes["kernel"], shapes["bias"]
    if len(kernel) != 2 or kernel[1] % 4 or bias != (kernel[1],):
        raise _ambiguous(
            scope,
            "kernel %s and bias %s are not (in + h, 4u) and (4u)" % (kernel, bias),
            "tf1_lstm",
        )
    units = kernel[1] // 4
    peepholes = [w for w in _PEEPHOLES if w in shapes]
    if peepholes and (len(peepholes) < 3 or any(shapes[w] != (units,) for w in peepholes)):
        raise ValueError(
            "cell %r has peepholes %s, expected w_i_diag, w_f_diag and w_o_diag "
            "of shape (%d,)" % (scope, {w: shapes[w] for w in peepholes}, units)
        )
    projection = shapes.get(_PROJECTION)
    if projection is not None and (len(projection) != 2 or projection[0] != units):
        raise ValueError(
            "cell %r has projection/kernel %s, expected (%d, num_proj)" % (scope, projection, units)
        )
    h = projection[1] if projection is not None else units
    if depth is None:
        depth = kernel[0] - h
    if not 0 < depth < kernel[0]:
        raise _ambiguous(
            scope,
            "its kernel %s leaves no input rows after the %d recurrent rows" % (kernel, h),
            "tf1_lstm",
        )
    return layouts.tf1_lstm(depth, peepholes=bool(peepholes), projection=projection is not None)


def _tf1_gru_layout(scope: str, shapes: Mapping[str, Shape], depth: int | None) -> layouts.Layout:
    gates, candidate = shapes["gates/kernel"], shapes["candidate/kernel"]
    ok = (
        len(gates) == 2
        and gates[1] % 2 == 0
        and candidate == (gates[0], gates[1] // 2)
        and shapes["gates/bias"] == (gates[1],)
        and shapes["candidate/bias"] == (gates[1] // 2,)
    )
    if not ok:
        raise _ambiguous(
            scope,
            "gates/kernel %s, candidate/kernel %s are not (in + u, 2u), (in + u, u)" % (gates, candidate),
            "tf1_gru",
        )
    if depth is None:
        depth = gates[0] - gates[1] // 2
    if not 0 < depth < gates[0]:
        raise _ambiguous(scope, "its kernel %s leaves no input rows" % (gates,), "tf1_gru")
    return layouts.tf1_gru(depth)


def _keras_layout(shapes: Mapping[str, Shape]) -> layouts.Layout | None:
    recurrent = shapes["recurrent_kernel"]
    bias = shapes.get("bias")
    if len(recurrent) < 2 or recurrent[-2] == 0 or recurrent[-1] % recurrent[-2]:
        # Not a cell we know; `layouts=` can still name it.
        return None
    units, n_gates = recurrent[-2], recurrent[-1] // recurrent[-2]
    if n_gates == 4:
        if bias == (8 * units,):
            layout = layouts.cudnn_lstm(units)
        elif len(shapes["kernel"]) > 2:
            layout = layouts.keras_conv_lstm()
        else:
            layout = layouts.keras_lstm()
    elif n_gates == 3:
        if bias == (6 * units,):
            layout = layouts.cudnn_gru(units)
        else:
            layout = layouts.keras_gru(reset_after=bias is not None and len(bias) == 2)
    else:
        return None
    # A cell built with use_bias=False stores no bias.
    return layouts.Layout(layout.cell, {w: p for w, p in layout.weights.items() if w in shapes})
