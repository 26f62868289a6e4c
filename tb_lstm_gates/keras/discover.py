"""Finds the recurrent cells of a Keras 3 (or tf_keras) model, from Keras's own tracking.

`find_cells` walks every sublayer Keras tracks (`Layer._flatten_layers`, in
both Keras 3 and tf_keras): attributes, lists and dicts of layers, custom
Layers, nested models, wrappers (`Bidirectional`, `TimeDistributed`), the
`cell` of every `RNN` and the cells of `StackedRNNCells`. A cell is one
object, logged once however many paths reach it (a model holding
`self.cell = LSTMCell(...)` and `self.rnn = RNN(self.cell)`): its name is
that of its first path in tracking order that goes through a recurrent layer
running it (`rnn/lstm_cell`), or of its first path if no recurrent layer runs
it (a cell called step by step). Tracking order is attribute assignment
order, so the name is the same in every run and after `load_model`.

Every recurrent weight (`recurrent_kernel`) of the model belongs to exactly
one found cell, or one warning names it and says why (a cell type without
gates to split, such as `SimpleRNNCell`, or a variable no tracked layer owns).

Cells of TF1 graphs and checkpoints are found from variable names instead:
`tb_lstm_gates.core.scopes.find_cells_by_name`.
"""

import warnings
from collections.abc import Iterable, Sequence
from typing import Any

from tb_lstm_gates.core import callers, layouts
from tb_lstm_gates.core.scopes import CELL_WEIGHTS, Cell, strip_output_index

# What `find_cells` finds in a Keras model, for its error messages.
SUPPORTED_MODEL_LAYERS = (
    "LSTM, GRU, ConvLSTM1D/2D/3D, LSTMCell/GRUCell (in RNN or StackedRNNCells, or "
    "called directly), wherever the model tracks them (custom layers, lists, dicts, "
    "nested models, Bidirectional, TimeDistributed), and tf_keras CuDNNLSTM/CuDNNGRU"
)


# `(recurrent layer, the cells it runs)`: a recurrent layer running a cell.
_Owner = tuple[Any, tuple[Any, ...]]
# `(path of layers, names below the model, owner or None)`: one way a cell is reached.
_Occurrence = tuple[tuple[Any, ...], tuple[str, ...], "_Owner | None"]


class NoRecurrentLayerError(ValueError):
    """The model holds no recurrent layer whose gates tb-lstm-gates can split."""


class NotBuiltError(ValueError):
    """A recurrent layer has no weights yet: the model has not been built."""


def _class_names(obj: object) -> set[str]:
    return {klass.__name__ for klass in type(obj).__mro__}


def layout_of_cell(obj: Any) -> layouts.Layout | None:
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


def variable_path(variable: Any) -> str:
    """A variable object's path (Keras 3 `path`, else `name`), without TensorFlow's `:0`."""
    return strip_output_index(getattr(variable, "path", None) or variable.name)


def find_cells(model: Any, layers: Iterable[str] | None = None) -> list[Cell]:
    """Every recurrent cell of `model` that tb-lstm-gates can split.

    Args:
      model: a built Keras model (or a single layer).
      layers: optional names of layers to keep; a cell is kept when any layer
        on its path from the model's top level (e.g. a nested model, a
        `Bidirectional` or the recurrent layer itself) has one of these names.

    Returns:
      list of `Cell`, in tracking order, each cell object once.

    Raises:
      NoRecurrentLayerError: the model has no recurrent layer we can split.
      NotBuiltError: the model is not built.
      ValueError: a name in `layers` matches no recurrent layer.
    """
    occurrences: dict[
        int, list[_Occurrence]
    ] = {}  # id(cell) -> [(path, names below the model, owner)], in tracking order
    order: list[Any] = []  # the cells, by first occurrence
    skipped: dict[
        int, tuple[Any, str]
    ] = {}  # id(cell) -> (cell, its name and type): cells tb-lstm-gates cannot split
    top = 1 if getattr(model, "layers", None) is not None else 0

    def visit(layer: Any, path: tuple[Any, ...], below: tuple[str, ...], owner: _Owner | None) -> None:
        # `owner`: `(recurrent layer, stack)` when that layer runs `layer` (a
        # cell, or the StackedRNNCells holding `stack`), else None.
        if any(p is layer for p in path):
            return
        if layout_of_cell(layer) is not None:
            if id(layer) not in occurrences:
                occurrences[id(layer)] = []
                order.append(layer)
            occurrences[id(layer)].append((path, below, owner))
            return
        children = _children(layer)
        if (owner is not None or hasattr(layer, "recurrent_kernel")) and not children:
            # A cell of its own kind (SimpleRNNCell, a custom cell); one that
            # holds Keras cells is walked into instead.
            if id(layer) not in skipped:
                skipped[id(layer)] = (layer, "%s (%s)" % ("/".join(below), type(layer).__name__))
            return
        renamed = _unique_names(children)
        # Only an `RNN` (LSTM, GRU, ConvLSTM, ...) runs its `cell` over sequences;
        # a custom layer's `cell` attribute is just a sublayer.
        inner = getattr(layer, "cell", None) if "RNN" in _class_names(layer) else None
        stack = tuple(getattr(inner, "cells", None) or ()) if _is_layer(inner) else ()
        for child in children:
            child_owner: _Owner | None
            if inner is not None and child is inner:
                child_owner = (layer, stack or (child,))
            elif owner is not None and any(child is c for c in owner[1]):
                child_owner = owner
            else:
                child_owner = None
            visit(child, path + (layer,), below + (renamed.get(id(child), child.name),), child_owner)

    visit(model, (), () if top else (model.name,), None)
    found = [_cell(obj, occurrences[id(obj)]) for obj in order]
    _warn_skipped(model, found, skipped.values())
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


def _cell(obj: Any, occurrences: Sequence[_Occurrence]) -> Cell:
    """The `Cell` of one cell object, named after its preferred path (see the module's docstring)."""
    owned = [o for o in occurrences if o[2] is not None]
    path, below, _ = (owned or occurrences)[0]
    # StackedRNNCells are cells, not layers a user filters on.
    path = tuple(p for p in path if getattr(p, "cells", None) is None)
    names = _names(path) or (obj.name,)
    owners: list[_Owner] = []
    for _, _, owner in owned:
        # Every owner in `owned` is set; the test says so to the type checker.
        if owner is not None and not any(owner[0] is o[0] for o in owners):
            owners.append(owner)
    variables = {name: getattr(obj, name) for name in CELL_WEIGHTS if getattr(obj, name, None) is not None}
    if "kernel" not in variables:
        raise NotBuiltError(
            "layer %r is not built yet, so its gates cannot be found: build "
            "the model (call it on data or give it an `Input`) before "
            "training with LSTMGatesCallback" % "/".join(names)
        )
    layout = layout_of_cell(obj)
    assert layout is not None  # `find_cells` keeps only objects with a layout
    layout = layouts.Layout(layout.cell, {k: v for k, v in layout.weights.items() if k in variables})
    return Cell("/".join(below), layout, variables, names, obj, path, tuple(owners))


def _warn_skipped(model: Any, found: Sequence[Cell], skipped: Iterable[tuple[Any, str]]) -> None:
    """One warning naming the cells that cannot be split, and every other recurrent kernel no found cell owns."""
    accounted = {id(v) for cell in found for v in cell.variables.values()}
    accounted.update(id(v) for obj, _ in skipped for v in getattr(obj, "weights", ()))
    orphans: list[str] = []
    for variable in getattr(model, "weights", None) or ():
        path = variable_path(variable)
        if id(variable) not in accounted and path.rsplit("/", 1)[-1] == "recurrent_kernel":
            accounted.add(id(variable))
            orphans.append(path)
    parts: list[str] = []
    if skipped:
        names = [name for _, name in skipped]
        parts.append(
            "cannot split the gates of %s and skips %s"
            % (", ".join(names), "it" if len(names) == 1 else "them")
        )
    if orphans:
        parts.append(
            "skips the recurrent weight%s %s: no layer Keras tracks in the model holds %s"
            % ("s" if len(orphans) > 1 else "", ", ".join(orphans), "it" if len(orphans) == 1 else "them")
        )
    if parts:
        warnings.warn(
            "tb-lstm-gates %s; it supports %s" % ("; it ".join(parts), SUPPORTED_MODEL_LAYERS),
            stacklevel=callers.user_stacklevel(),
        )


def _children(layer: Any) -> list[Any]:
    """The sublayers Keras tracks directly under `layer`, in tracking order."""
    flatten = getattr(layer, "_flatten_layers", None)
    if flatten is not None:
        return [c for c in flatten(include_self=False, recursive=False) if _is_layer(c)]
    children: list[Any] = []
    for name in ("forward_layer", "backward_layer", "cell", "layer"):
        if _is_layer(getattr(layer, name, None)):
            children.append(getattr(layer, name))
    children.extend(getattr(layer, "cells", None) or getattr(layer, "layers", None) or ())
    return children


def _names(layers: Iterable[Any]) -> tuple[str, ...]:
    return tuple(layer.name for layer in layers)


def _unique_names(siblings: Sequence[Any]) -> dict[int, str]:
    """`{id(obj): name}` for the siblings whose name an earlier sibling already has.

    Each gets the first `name_<k>` (k = 2, 3, ...) that no sibling has, so the
    result depends only on the siblings' names and order.
    """
    taken = {obj.name for obj in siblings}
    seen: set[str] = set()
    renamed: dict[int, str] = {}
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


def _is_layer(obj: Any) -> bool:
    return obj is not None and hasattr(obj, "weights") and hasattr(obj, "name")
