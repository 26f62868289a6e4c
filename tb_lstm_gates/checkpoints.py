"""Imports saved weights into a run: one logged step per checkpoint.

Reads, without building any model:
- TF checkpoints (a prefix such as `ckpt/model.ckpt-1000`): TF1 `Saver`
  checkpoints, named by variable scope (`doc_word/fw/lstm_cell/kernel`), and
  object-based tf_keras / `tf.train.Checkpoint` ones
  (`layer_with_weights-0/cell/kernel/.ATTRIBUTES/VARIABLE_VALUE`);
- Keras 3 `.weights.h5` files and `.keras` archives (a zip holding
  `model.weights.h5`), whose cells are named as Keras names their variables
  (`sequential/bidirectional/forward_lstm/lstm_cell`), so imported and live
  runs line up;
- PyTorch `.pt` / `.pth` files (a state_dict, or a dict holding one under
  `state_dict` or `model`) and Lightning `.ckpt` files, loaded with
  `weights_only=True`; cells are named as `tb_lstm_gates.torch.GateLogger`
  names them (`encoder/rnn/l0_reverse`).

Cells are found from variable names and shapes by `discover.find_cells_by_name`. The step
of a TF checkpoint is its `global_step` variable; otherwise the last number in
the file name (`ckpt-3`, `model.05.keras`).
"""

import dataclasses
import io
import os
import re
import zipfile

import numpy as np

from tb_lstm_gates import discover, reader, stats, summary

TORCH_SUFFIXES = (".pt", ".pth", ".ckpt")
CHECKPOINT_SUFFIXES = (".keras", ".weights.h5") + TORCH_SUFFIXES
_OBJECT_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"
# Variables of the optimizer and of the checkpoint itself, not of any cell.
_NOT_WEIGHTS = re.compile(r"(^|/)(\.OPTIMIZER_SLOT|optimizer|_CHECKPOINTABLE_OBJECT_GRAPH|save_counter)(/|$)")
_KERAS_VAR_NAMES = ("kernel", "recurrent_kernel", "bias")


class CheckpointError(ValueError):
    """A path that cannot be imported; the message is one line for the user."""


@dataclasses.dataclass
class Checkpoint:
    """One checkpoint to import.

    Attributes:
      path: the prefix (TF) or file (Keras).
      step: the step it is logged at.
      cells: the `discover.Cell`s found in it; `Cell.variables` maps weight
        names to keys of `read()`'s result.
      read: function returning `{key: numpy array}` of every cell weight.
    """

    path: str
    step: int
    cells: list
    read: object


def open_checkpoint(path, step=None, layouts=None, input_depth=None):
    """A `Checkpoint` for one TF checkpoint prefix, `.keras` or `.weights.h5` file.

    Reads only the checkpoint's variable list and shapes; `read()` reads the values.

    Raises:
      CheckpointError: the path is missing, unreadable or holds no recurrent cell.
    """
    if path.endswith(TORCH_SUFFIXES):
        if not os.path.isfile(path):
            raise CheckpointError("no such file: %s" % path)
        return _torch_checkpoint(path, step)
    if path.endswith(CHECKPOINT_SUFFIXES):
        if not os.path.isfile(path):
            raise CheckpointError("no such file: %s" % path)
        shapes, read = _keras_file(path)
    elif os.path.isfile(path + ".index"):
        shapes, read, global_step = _tf_checkpoint(path)
        if step is None:
            step = global_step
    elif os.path.exists(path):
        raise CheckpointError(
            "%s is not a checkpoint: expected a TF checkpoint prefix (with a "
            "%s.index file beside it), a directory of checkpoints, a .keras or "
            "a .weights.h5 file" % (path, os.path.basename(path))
        )
    else:
        raise CheckpointError("no such file or directory: %s" % path)
    try:
        cells = discover.find_cells_by_name(shapes, layouts, input_depth)
    except ValueError as e:
        raise CheckpointError("%s: %s" % (path, e)) from None
    if not cells:
        raise CheckpointError(
            "%s holds no recurrent cell tb-lstm-gates can split (supported: %s)"
            % (path, discover.SUPPORTED_CELLS)
        )
    if step is None:
        step = step_from_name(path)
    return Checkpoint(path, 0 if step is None else step, cells, read)


def step_from_name(path):
    """The last number in a checkpoint's file name (`ckpt-3` -> 3), or None."""
    name = os.path.basename(path)
    for suffix in CHECKPOINT_SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    numbers = re.findall(r"\d+", name)
    return int(numbers[-1]) if numbers else None


def _tf_checkpoint(prefix):
    import tensorflow as tf

    try:
        ckpt = tf.train.load_checkpoint(prefix)
        shape_map = ckpt.get_variable_to_shape_map()
    except Exception as e:  # TF raises several types for corrupt files.
        raise CheckpointError("cannot read TF checkpoint %s: %s" % (prefix, one_line(e))) from None
    shapes, keys = {}, {}
    for key, shape in shape_map.items():
        if _NOT_WEIGHTS.search(key):
            continue
        name = key[: -len(_OBJECT_SUFFIX)] if key.endswith(_OBJECT_SUFFIX) else key
        shapes[name] = shape
        keys[name] = key
    global_step = None
    if "global_step" in shape_map:
        global_step = int(ckpt.get_tensor("global_step"))

    def read(names):
        return {n: ckpt.get_tensor(keys[n]) for n in names}

    return shapes, read, global_step


def _torch_checkpoint(path, step):
    from tb_lstm_gates import torch as gates_torch

    try:
        state, saved_step = gates_torch.load_state_dict(path)
    except ValueError as e:
        raise CheckpointError(one_line(e)) from None
    found = gates_torch.cells_from_state_dict({k: tuple(v.shape) for k, v in state.items()})
    if not found:
        raise CheckpointError("%s holds no nn.LSTM, nn.GRU, nn.LSTMCell or nn.GRUCell weights" % path)
    cells = [discover.Cell(layer, layout, variables, (), None) for layer, layout, variables in found]
    if step is None:
        step = saved_step if saved_step is not None else step_from_name(path)
    return Checkpoint(path, 0 if step is None else step, cells, lambda keys: gates_torch.state_arrays(state, keys))


def _keras_file(path):
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
    except (OSError, KeyError, zipfile.BadZipFile) as e:
        raise CheckpointError("cannot read Keras weights in %s: %s" % (path, one_line(e))) from None

    def read(names):
        with open_h5() as h5:
            return {n: h5[datasets[n]][()] for n in names}

    return shapes, read


def _keras_cell_datasets(h5):
    """{variable path: h5 dataset key} of every cell-like weight in a Keras 3 weights file.

    Keras 3 stores each layer's variables by index under `<layer>/vars`, with
    the layer's name in the group's `name` attribute; a cell's variables are
    kernel, recurrent_kernel and bias in that order. The names below the
    model make the path (`gru/gru_cell/kernel`), so the cell's `layer` is
    the one `LSTMGatesCallback` logs (see `discover.Cell`).
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


def one_line(error):
    """The first line of an error's message, for one-line reports."""
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


def find_checkpoints(paths, step=None, layouts=None, input_depth=None):
    """Every checkpoint under `paths`, sorted by step.

    Args:
      paths: checkpoint prefixes, `.keras` / `.weights.h5` files, or
        directories holding them (not searched recursively).
      step: the step of a single checkpoint whose name and variables do not
        tell it.

    Raises:
      CheckpointError: a path is missing or unreadable, a directory holds no
        checkpoint, a checkpoint holds no recurrent cell, or two checkpoints
        have the same step.
    """
    found = []
    for path in paths:
        path = os.fspath(path).rstrip("/") or "/"
        if os.path.isdir(path):
            inside = _checkpoints_in(path)
            if not inside:
                raise CheckpointError(
                    "no checkpoint in directory %s (looked for *.index, *.keras, *.weights.h5, *.pt, "
                    "*.pth and *.ckpt)" % path
                )
            found.extend(inside)
        else:
            # A TF checkpoint's own files stand for its prefix.
            found.append(re.sub(r"\.(index|data-\d+-of-\d+)$", "", path))
    if step is not None and len(found) != 1:
        raise CheckpointError("--step applies to one checkpoint, and %d were given" % len(found))
    checkpoints = [open_checkpoint(p, step, layouts, input_depth) for p in found]
    by_step = {}
    for ckpt in checkpoints:
        if ckpt.step in by_step:
            raise CheckpointError(
                "%s and %s both have step %d: put each checkpoint's step in its "
                "file name (e.g. ckpt-3), or import one at a time with --step"
                % (by_step[ckpt.step].path, ckpt.path, ckpt.step)
            )
        by_step[ckpt.step] = ckpt
    return [by_step[s] for s in sorted(by_step)]


def _checkpoints_in(directory):
    out = []
    for name in sorted(os.listdir(directory)):
        full = os.path.join(directory, name)
        if name.endswith(".index"):
            out.append(full[: -len(".index")])
        elif name.endswith(CHECKPOINT_SUFFIXES) and os.path.isfile(full):
            out.append(full)
    return out


def logged_steps(run_dir):
    """The steps a run directory already holds tb-lstm-gates values for."""
    if not os.path.isdir(run_dir):
        return set()
    return {r.step for r in reader.load(run_dir) if r.run == "."}


def import_checkpoints(checkpoints, run_dir, histograms=True, histogram_bins=stats.DEFAULT_BINS,
                       progress=None):
    """Logs each checkpoint at its step in `run_dir`, skipping steps the run already holds.

    The event file is created only when there is a step to write, so a run
    that already holds every step is left as it is.

    Args:
      checkpoints: `Checkpoint`s, as `find_checkpoints` returns them.
      run_dir: the run directory.
      histograms: whether to write per-gate histograms.
      histogram_bins: buckets per gate histogram.
      progress: optional function called as `progress(done, total, path)`.

    Returns:
      `(written, skipped)`: lists of the steps written and of those skipped.
    """
    existing = logged_steps(run_dir)
    todo = [c for c in checkpoints if c.step not in existing]
    skipped = [c.step for c in checkpoints if c.step in existing]
    writer = None
    written = []
    try:
        for done, ckpt in enumerate(todo):
            if progress:
                progress(done, len(todo), ckpt.path)
            keys = [k for cell in ckpt.cells for k in cell.variables.values()]
            values = ckpt.read(keys)
            if writer is None:
                writer = summary.GateSummaryWriter(run_dir)
                logger = summary.CellLogger(writer, histogram_bins)
            for cell in ckpt.cells:
                arrays = {w: np.asarray(values[k]) for w, k in cell.variables.items()}
                logger.log_cell(cell.layer, cell.layout, arrays, histograms)
            writer.end_step(ckpt.step)
            written.append(ckpt.step)
        if progress and todo:
            progress(len(todo), len(todo), "")
    finally:
        if writer is not None:
            writer.close()
    return written, skipped
