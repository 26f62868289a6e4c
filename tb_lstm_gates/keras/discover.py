"""Finds the recurrent cells of a Keras 3 (or, by the same duck typing, tf_keras) model.

`find_cells` walks `layer.cell` (LSTM, GRU, ConvLSTM*, RNN),
`Bidirectional.forward_layer` / `.backward_layer`, `StackedRNNCells.cells`,
wrappers such as `TimeDistributed` (`.layer`) and nested models (`.layers`).
Cells of TF1 graphs and checkpoints are found from variable names instead:
`tb_lstm_gates.core.scopes.find_cells_by_name`.
"""

import warnings

from tb_lstm_gates.core import callers, layouts
from tb_lstm_gates.core.scopes import CELL_WEIGHTS, Cell, strip_output_index

# What `find_cells` finds in a Keras model, for its error messages.
SUPPORTED_MODEL_LAYERS = (
    "LSTM, GRU, ConvLSTM1D/2D/3D, RNN or StackedRNNCells over LSTMCell/GRUCell, "
    "Bidirectional or TimeDistributed wrappers of those, nested models holding "
    "them, and tf_keras CuDNNLSTM/CuDNNGRU"
)


class NoRecurrentLayerError(ValueError):
    """The model holds no recurrent layer whose gates tb-lstm-gates can split."""


class NotBuiltError(ValueError):
    """A recurrent layer has no weights yet: the model has not been built."""


def _class_names(obj):
    return {klass.__name__ for klass in type(obj).__mro__}


def layout_of_cell(obj):
    """The layout of a Keras cell (or CuDNN layer), or None if it is not one we can split."""
    names = _class_names(obj)
    if "ConvLSTMCell" in names:
        return layouts.keras_conv_lstm()
    if "LSTMCell" in names and "PeepholeLSTMCell" not in names:
        return layouts.keras_lstm()
    if "GRUCell" in names:
        return layouts.keras_gru(reset_after=bool(getattr(obj, "reset_after", False)))
    if "CuDNNLSTM" in names:
        return layouts.cudnn_lstm(obj.units)
    if "CuDNNGRU" in names:
        return layouts.cudnn_gru(obj.units)
    return None


def variable_path(variable):
    """A variable object's path (Keras 3 `path`, else `name`), without TensorFlow's `:0`."""
    return strip_output_index(getattr(variable, "path", None) or variable.name)


def find_cells(model, layers=None):
    """Every recurrent cell of `model` that tb-lstm-gates can split.

    Args:
      model: a built Keras model (or a single layer).
      layers: optional names of layers to keep; a cell is kept when any layer
        on its path from the model's top level (e.g. a nested model, a
        `Bidirectional` or the recurrent layer itself) has one of these names.

    Returns:
      list of `Cell`, in model order, each cell once.

    Raises:
      NoRecurrentLayerError: the model has no recurrent layer we can split.
      NotBuiltError: the model is not built.
      ValueError: a name in `layers` matches no recurrent layer.
    """
    found, skipped = [], []
    seen = set()
    top = 1 if getattr(model, "layers", None) is not None else 0
    unique = {}  # id(layer or cell) -> its name, made unique among its siblings

    def name_of(obj):
        return unique.get(id(obj), obj.name)

    def visit_layer(layer, path):
        if id(layer) in seen:
            return
        seen.add(id(layer))
        path = path + (layer,)
        below = tuple(name_of(p) for p in path[top:])
        if getattr(layer, "forward_layer", None) is not None:
            visit_layer(layer.forward_layer, path)
            visit_layer(layer.backward_layer, path)
        elif getattr(layer, "cell", None) is not None:
            visit_cell(layer.cell, path, below)
        elif layout_of_cell(layer) is not None:
            visit_cell(layer, path, below[:-1])
        elif _is_layer(getattr(layer, "layer", None)):
            visit_layer(layer.layer, path)
        else:
            sublayers = list(getattr(layer, "layers", None) or ())
            unique.update(_unique_names(sublayers))
            for sublayer in sublayers:
                visit_layer(sublayer, path)

    def visit_cell(cell, path, below_model):
        # `below_model`: the names below the model (whose name Keras numbers
        # per session) down to the cell's owner.
        below_model = below_model + (name_of(cell),)
        names = _names(path)
        if getattr(cell, "cells", None) is not None:
            unique.update(_unique_names(cell.cells))
            for sub in cell.cells:
                visit_cell(sub, path, below_model)
            return
        layout = layout_of_cell(cell)
        if layout is None:
            skipped.append("%s (%s)" % ("/".join(names), type(cell).__name__))
            return
        variables = {
            name: getattr(cell, name) for name in CELL_WEIGHTS if getattr(cell, name, None) is not None
        }
        if "kernel" not in variables:
            raise NotBuiltError(
                "layer %r is not built yet, so its gates cannot be found: build "
                "the model (call it on data or give it an `Input`) before "
                "training with LSTMGatesCallback" % "/".join(names)
            )
        layout = layouts.Layout(layout.cell, {k: v for k, v in layout.weights.items() if k in variables})
        found.append(Cell("/".join(below_model), layout, variables, names, cell, path))

    visit_layer(model, ())
    if skipped:
        warnings.warn(
            "tb-lstm-gates cannot split the gates of %s and skips %s; it supports %s"
            % (", ".join(skipped), "it" if len(skipped) == 1 else "them", SUPPORTED_MODEL_LAYERS),
            stacklevel=callers.user_stacklevel(),
        )
    if not found:
        raise NoRecurrentLayerError(
            "model %r has no recurrent layer whose gates tb-lstm-gates can "
            "split; supported: %s" % (getattr(model, "name", model), SUPPORTED_MODEL_LAYERS)
        )
    if layers is not None:
        wanted = set(layers)
        unknown = wanted.difference(*(c.names for c in found))
        if unknown:
            available = sorted({c.names[-1] for c in found})
            raise ValueError(
                "layers=%r: no recurrent layer named %s; the model's recurrent "
                "layers are %s" % (list(layers), ", ".join(sorted(unknown)), ", ".join(available))
            )
        found = [c for c in found if wanted.intersection(c.names)]
    return found


def _names(layers):
    return tuple(layer.name for layer in layers)


def _unique_names(siblings):
    """`{id(obj): name}` for the siblings whose name an earlier sibling already has.

    Each gets the first `name_<k>` (k = 2, 3, ...) that no sibling has, so the
    result depends only on the siblings' names and order.
    """
    taken = {obj.name for obj in siblings}
    seen, renamed = set(), {}
    for obj in siblings:
        if obj.name not in seen:
            seen.add(obj.name)
            continue
        k = 2
        while "%s_%d" % (obj.name, k) in taken:
            k += 1
        renamed[id(obj)] = "%s_%d" % (obj.name, k)
        taken.add(renamed[id(obj)])
    return renamed


def _is_layer(obj):
    return obj is not None and hasattr(obj, "weights") and hasattr(obj, "name")
