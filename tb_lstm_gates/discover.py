"""Finds the recurrent cells of a Keras model and the layout of their weights.

Works on Keras 3 models and, by the same duck typing, on tf_keras models.
Cells are found through `layer.cell` (LSTM, GRU, ConvLSTM*, RNN),
`Bidirectional.forward_layer` / `.backward_layer`, `StackedRNNCells.cells`,
wrappers such as `TimeDistributed` (`.layer`) and nested models (`.layers`).
"""

import dataclasses
import warnings

import numpy as np

from tb_lstm_gates import layouts

SUPPORTED_LAYERS = (
    "LSTM, GRU, ConvLSTM1D/2D/3D, RNN or StackedRNNCells over LSTMCell/GRUCell, "
    "Bidirectional or TimeDistributed wrappers of those, nested models holding "
    "them, and tf_keras CuDNNLSTM/CuDNNGRU"
)

_CELL_WEIGHTS = ("kernel", "recurrent_kernel", "bias")


@dataclasses.dataclass
class Cell:
    """One recurrent cell of a model.

    Attributes:
      layer: the names of the layers and cells from below the model down to
        the cell, e.g. `bidirectional/forward_lstm/lstm_cell` (the `layer`
        of the data contract). Keras 3 variable paths would not do: they
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
    """

    layer: str
    layout: layouts.Layout
    variables: dict
    names: tuple
    obj: object

    def arrays(self):
        """The current weights as numpy arrays, keyed as the layout names them."""
        return {name: _to_numpy(v) for name, v in self.variables.items()}


def _to_numpy(variable):
    value = variable.numpy() if hasattr(variable, "numpy") else variable
    return np.asarray(value)


def _class_names(obj):
    return {klass.__name__ for klass in type(obj).__mro__}


def layout_of(obj):
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
    """A variable's path without TensorFlow's `:0` suffix."""
    path = getattr(variable, "path", None) or variable.name
    return path[:-2] if path.endswith(":0") else path


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
      ValueError: the model has no recurrent layer we can split, the model is
        not built, or a name in `layers` matches no recurrent layer.
    """
    found, skipped = [], []
    seen = set()
    top = 1 if getattr(model, "layers", None) is not None else 0

    def visit_layer(layer, names):
        if id(layer) in seen:
            return
        seen.add(id(layer))
        names = names + (layer.name,)
        if getattr(layer, "forward_layer", None) is not None:
            visit_layer(layer.forward_layer, names)
            visit_layer(layer.backward_layer, names)
        elif getattr(layer, "cell", None) is not None:
            visit_cell(layer.cell, names, names[top:])
        elif layout_of(layer) is not None:
            visit_cell(layer, names, names[top:-1])
        elif _is_layer(getattr(layer, "layer", None)):
            visit_layer(layer.layer, names)
        else:
            for sublayer in getattr(layer, "layers", None) or ():
                visit_layer(sublayer, names)

    def visit_cell(cell, names, path):
        # `path`: the names below the model (whose name Keras numbers per
        # session) down to the cell's owner.
        path = path + (cell.name,)
        if getattr(cell, "cells", None) is not None:
            for sub in cell.cells:
                visit_cell(sub, names, path)
            return
        layout = layout_of(cell)
        if layout is None:
            skipped.append("%s (%s)" % ("/".join(names), type(cell).__name__))
            return
        variables = {
            name: getattr(cell, name)
            for name in _CELL_WEIGHTS
            if getattr(cell, name, None) is not None
        }
        if "kernel" not in variables:
            raise ValueError(
                "layer %r is not built yet, so its gates cannot be found: build "
                "the model (call it on data or give it an `Input`) before "
                "training with LSTMGatesCallback" % "/".join(names)
            )
        layout = layouts.Layout(
            layout.cell, {k: v for k, v in layout.weights.items() if k in variables}
        )
        found.append(Cell("/".join(path), layout, variables, names, cell))

    visit_layer(model, ())
    if skipped:
        warnings.warn(
            "tb-lstm-gates cannot split the gates of %s and skips %s; it "
            "supports %s" % (", ".join(skipped), "it" if len(skipped) == 1 else "them", SUPPORTED_LAYERS),
            stacklevel=3,
        )
    if not found:
        raise ValueError(
            "model %r has no recurrent layer whose gates tb-lstm-gates can "
            "split; supported: %s" % (getattr(model, "name", model), SUPPORTED_LAYERS)
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


def _is_layer(obj):
    return obj is not None and hasattr(obj, "weights") and hasattr(obj, "name")
