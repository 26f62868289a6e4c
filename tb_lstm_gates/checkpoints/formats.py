"""Reads the variable names, shapes and step counters of each checkpoint format, without building a model.

Each reader returns what `checkpoints.open_checkpoint` needs: the variables
(names and shapes, or the cells themselves for PyTorch), a function that
reads the values of some of them, and the step counters the file stores
(`GLOBAL_STEP`, `ITERATIONS`).
"""

import io
import re
import zipfile

from tb_lstm_gates.core import scopes

# Keys of the step counters a checkpoint stores.
GLOBAL_STEP = "global_step"
ITERATIONS = "iterations"
_OBJECT_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"
# Variables of the optimizer and of the checkpoint itself, not of any cell.
_NOT_WEIGHTS = re.compile(r"(^|/)(\.OPTIMIZER_SLOT|optimizer|_CHECKPOINTABLE_OBJECT_GRAPH|save_counter)(/|$)")
_KERAS_VAR_NAMES = ("kernel", "recurrent_kernel", "bias")
# The optimizer's step counter in object-based checkpoints: Keras 3
# (`_iterations`), tf_keras's OptimizerV2 (`iter`).
_ITERATIONS_VARIABLE = re.compile(r"(^|/)optimizer/(_iterations|iter|iterations)$")


class CheckpointError(ValueError):
    """A path that cannot be imported; the message is one line for the user."""


def one_line(error: BaseException) -> str:
    """The first line of an error's message, for one-line reports."""
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


def read_tf_checkpoint(prefix):
    import tensorflow as tf

    try:
        ckpt = tf.train.load_checkpoint(prefix)
        shape_map = ckpt.get_variable_to_shape_map()
    except Exception as e:  # TF raises several types for corrupt files.
        raise CheckpointError("cannot read TF checkpoint %s: %s" % (prefix, one_line(e))) from None
    shapes, keys, counters = {}, {}, {}
    for key, shape in shape_map.items():
        name = key[: -len(_OBJECT_SUFFIX)] if key.endswith(_OBJECT_SUFFIX) else key
        if name == "global_step":
            counters[GLOBAL_STEP] = int(ckpt.get_tensor(key))
        elif _ITERATIONS_VARIABLE.search(name) and not shape:
            counters[ITERATIONS] = int(ckpt.get_tensor(key))
        if _NOT_WEIGHTS.search(key):
            continue
        shapes[name] = shape
        keys[name] = key

    def read(names):
        return {n: ckpt.get_tensor(keys[n]) for n in names}

    return shapes, read, counters


def read_torch_checkpoint(path):
    """Cells, a reader and the step counters of a PyTorch or Lightning file."""
    from tb_lstm_gates import torch as gates_torch

    try:
        state, saved_step = gates_torch.load_state_dict(path)
    except ValueError as e:
        raise CheckpointError(one_line(e)) from None
    found = gates_torch.cells_from_state_dict({k: tuple(v.shape) for k, v in state.items()})
    if not found:
        raise CheckpointError("%s holds no nn.LSTM, nn.GRU, nn.LSTMCell or nn.GRUCell weights" % path)
    cells = [scopes.Cell(layer, layout, variables, (), None) for layer, layout, variables in found]
    counters = {} if saved_step is None else {GLOBAL_STEP: saved_step}
    return cells, lambda keys: gates_torch.state_arrays(state, keys), counters


def read_keras_file(path):
    """Shapes and a reader of a Keras 3 `.weights.h5` file or `.keras` archive."""
    import h5py

    def open_h5():
        if path.endswith(".keras"):
            with zipfile.ZipFile(path) as archive:
                return h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r")
        return h5py.File(path, "r")

    try:
        with open_h5() as h5:
            datasets = _keras_cell_datasets(h5)
            shapes = {name: h5[key].shape for name, key in datasets.items()}
            counters = {}
            # Keras 3 creates an optimizer's iteration count as its first variable.
            iterations = h5.get("optimizer/vars/0")
            if iterations is not None and iterations.shape == () and iterations.dtype.kind in "iu":
                counters[ITERATIONS] = int(iterations[()])
    except (OSError, KeyError, zipfile.BadZipFile) as e:
        raise CheckpointError("cannot read Keras weights in %s: %s" % (path, one_line(e))) from None

    def read(names):
        with open_h5() as h5:
            return {n: h5[datasets[n]][()] for n in names}

    return shapes, read, counters


def _keras_cell_datasets(h5):
    """{variable path: h5 dataset key} of every cell-like weight in a Keras 3 weights file.

    Keras 3 stores each layer's variables by index under `<layer>/vars`, with
    the layer's name in the group's `name` attribute; a cell's variables are
    kernel, recurrent_kernel and bias in that order. The names below the
    model make the path (`gru/gru_cell/kernel`), so the cell's `layer` is
    the one `LSTMGatesCallback` logs (see `scopes.Cell`).
    """
    out = {}

    def visit(group, names, in_cell):
        vars_group = group.get("vars")
        if vars_group is not None and "name" in vars_group.attrs:
            name = vars_group.attrs["name"]
            names = names + (name.decode() if isinstance(name, bytes) else str(name),)
            count = len(vars_group)
            if in_cell and count in (2, 3):
                for i, var_name in enumerate(_KERAS_VAR_NAMES[:count]):
                    out["/".join(names + (var_name,))] = vars_group[str(i)].name
        for key, child in group.items():
            if key != "vars" and hasattr(child, "items"):
                visit(child, names, in_cell or key in ("cell", "cells"))

    # The root's own `vars` group names the model, which layer names leave out.
    for key, child in h5.items():
        if key != "vars" and hasattr(child, "items"):
            visit(child, (), key in ("cell", "cells"))
    return out
