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

Cells are found from variable names and shapes by `scopes.find_cells_by_name`.

The step of a checkpoint is, first of these that applies: the one given
(`--step`); its `global_step` variable (TF1 training logs at that step); the
number a recognised name pattern puts after its prefix (`epoch_03.weights.h5`,
`model.10.keras`, `weights.05-0.32.weights.h5` from `ModelCheckpoint`'s
`{epoch:02d}-{val_loss:.2f}`, `ckpt-1000`, `model.ckpt-1000`: the epoch, which
is what `LSTMGatesCallback` logs at); its optimizer's iteration count. Other
digits in a name (`s2s_model.keras`, `run_2024-01-05`) are never taken for a
step.

A checkpoint whose step the run already holds is the same checkpoint when
its weights give the statistics logged at that step (compared on the ones
that do not depend on summation order: `min`, `max`, `max_abs`, `nonfinite`
exactly, `l2` and `mean_abs` to a relative 1e-5), and is then skipped; any
other is an error. Comparing values, not a hash stored at import, also
recognises the checkpoints of a run `LSTMGatesCallback` logged live.
"""

import dataclasses
import os
import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tb_lstm_gates.checkpoints import formats as checkpoint_formats

# CheckpointError and one_line are this module's API (the CLI reports with them).
from tb_lstm_gates.checkpoints.formats import CheckpointError
from tb_lstm_gates.core import scopes, stats
from tb_lstm_gates.logs import reader, summary

TORCH_SUFFIXES = (".pt", ".pth", ".ckpt")
CHECKPOINT_SUFFIXES = (".keras", ".weights.h5") + TORCH_SUFFIXES

# A checkpoint name with a step: words (a letter, then letters or digits)
# joined by `.`, `_` or `-`, a separator, the step, then optionally metric
# values as ModelCheckpoint formats them (`-0.32`, `_loss_0.12`). Metric
# values need a decimal point, so a date (`run_2024-01-05`) is no step.
_WORD = r"[A-Za-z][A-Za-z0-9]*"
_METRIC = r"[._-](?:%s|[-+]?\d+\.\d+(?:[eE][-+]?\d+)?)" % _WORD
_STEP_NAME = re.compile(r"^%s(?:[._-]%s)*[._-](\d+)(?:%s)*$" % (_WORD, _WORD, _METRIC))
NAME_EXAMPLES = "epoch_03.weights.h5, model.10.keras, weights.05-0.32.weights.h5, ckpt-1000"

# How each step source reads in the CLI's report.
STEP_GIVEN, STEP_GLOBAL, STEP_NAME, STEP_ITERATIONS = (
    "given with --step",
    "from its global_step",
    "from its file name",
    "from its optimizer's iteration count",
)

# The recipe for runs whose only record is event files.
RECIPE = 'keras.callbacks.ModelCheckpoint("ckpt/epoch_{epoch:02d}.weights.h5", save_weights_only=True)'

# Statistics of the weights alone that a re-import compares with the run.
_EXACT_STATS = ("min", "max", "max_abs", "nonfinite")
_CLOSE_STATS = ("l2", "mean_abs")


@dataclasses.dataclass
class Checkpoint:
    """One checkpoint to import.

    Attributes:
      path: the prefix (TF) or file (Keras).
      step: the step it is logged at.
      step_source: where the step came from, one of `STEP_GIVEN`,
        `STEP_GLOBAL`, `STEP_NAME`, `STEP_ITERATIONS`.
      cells: the `scopes.Cell`s found in it; `Cell.variables` maps weight
        names to keys of `read()`'s result.
      read: function returning `{key: numpy array}` of every cell weight.
    """

    path: str
    step: int
    step_source: str
    cells: list
    read: object


def open_checkpoint(path, step=None, layouts=None, input_depth=None):
    """A `Checkpoint` for one TF checkpoint prefix, `.keras` or `.weights.h5` file.

    Reads only the checkpoint's variable list and shapes (and its step
    counters); `read()` reads the values.

    Raises:
      CheckpointError: the path is missing, unreadable, holds no recurrent
        cell, or has no step (see the module's docstring) and none is given.
    """
    if path.endswith(CHECKPOINT_SUFFIXES) and not os.path.isfile(path):
        raise CheckpointError("no such file: %s" % path)
    if path.endswith(TORCH_SUFFIXES):
        cells, read, counters = checkpoint_formats.read_torch_checkpoint(path)
        return _with_step(path, step, counters, cells, read)
    if path.endswith(CHECKPOINT_SUFFIXES):
        shapes, read, counters = checkpoint_formats.read_keras_file(path)
    elif os.path.isfile(path + ".index"):
        shapes, read, counters = checkpoint_formats.read_tf_checkpoint(path)
    elif os.path.isfile(path) and _is_event_file(path):
        raise CheckpointError(
            "%s is a TensorBoard event file, not a checkpoint: %s" % (path, _EVENT_FILES_ADVICE)
        )
    elif os.path.exists(path):
        raise CheckpointError(
            "%s is not a checkpoint: expected a TF checkpoint prefix (with a "
            "%s.index file beside it), a directory of checkpoints, a .keras or "
            "a .weights.h5 file" % (path, os.path.basename(path))
        )
    else:
        raise CheckpointError("no such file or directory: %s" % path)
    try:
        cells = scopes.find_cells_by_name(shapes, layouts, input_depth)
    except ValueError as e:
        raise CheckpointError("%s: %s" % (path, e)) from None
    if not cells:
        raise CheckpointError(
            "%s holds no recurrent cell tb-lstm-gates can split (supported: %s)"
            % (path, scopes.SUPPORTED_VARIABLE_SCOPES)
        )
    return _with_step(path, step, counters, cells, read)


def _with_step(path, step, counters, cells, read):
    """The `Checkpoint`, its step taken from the first source that has one."""
    candidates = (
        (step, STEP_GIVEN),
        (counters.get(checkpoint_formats.GLOBAL_STEP), STEP_GLOBAL),
        (step_from_name(path), STEP_NAME),
        (counters.get(checkpoint_formats.ITERATIONS), STEP_ITERATIONS),
    )
    for value, source in candidates:
        if value is not None:
            return Checkpoint(path, int(value), source, cells, read)
    raise CheckpointError(
        "cannot tell the step of %s: its name follows no checkpoint pattern (%s) and it "
        "stores no global_step or optimizer iteration count; import it on its own with "
        "--step N" % (path, NAME_EXAMPLES)
    )


def step_from_name(path):
    """The step a recognised checkpoint name holds (`epoch_03.weights.h5` -> 3), or None.

    See the module's docstring for the patterns; `s2s_model.keras` has none.
    """
    name = os.path.basename(path)
    for suffix in CHECKPOINT_SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    match = _STEP_NAME.match(name)
    return int(match.group(1)) if match else None


_EVENT_FILES_ADVICE = (
    "the histograms in event files (those of keras.callbacks.TensorBoard, for one) fuse the "
    "gates of each weight and cannot be split; tb-lstm-gates needs the weights themselves. "
    "Save checkpoints while training, e.g. callbacks=[%s], then run: "
    "tb-lstm-gates import ckpt --logdir LOGDIR" % RECIPE
)


def _is_event_file(path):
    return "tfevents" in os.path.basename(path)


def _holds_event_files(directory):
    return any(_is_event_file(name) for _, _, names in os.walk(directory) for name in names)


def find_checkpoints(
    paths: Sequence[str], step: int | None = None, layouts: Any = None, input_depth: Any = None
) -> list[Any]:
    """Every checkpoint under `paths`, sorted by step.

    Args:
      paths: checkpoint prefixes, `.keras` / `.weights.h5` files, or
        directories holding them (not searched recursively).
      step: the step of a single checkpoint, over what its variables and
        name tell.

    Raises:
      CheckpointError: a path is missing or unreadable, a directory holds no
        checkpoint (saying what to do if it holds event files instead), a
        checkpoint holds no recurrent cell or has no step, or two checkpoints
        have the same step.
    """
    found = []
    for path in paths:
        path = os.fspath(path).rstrip("/") or "/"
        if os.path.isdir(path):
            inside = _checkpoints_in(path)
            if not inside and _holds_event_files(path):
                raise CheckpointError(
                    "%s holds TensorBoard event files, not checkpoints: %s" % (path, _EVENT_FILES_ADVICE)
                )
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
    by_step: dict[int, Any] = {}
    for ckpt in checkpoints:
        if ckpt.step in by_step:
            raise CheckpointError(
                "%s and %s both have step %d: put each checkpoint's step in its "
                "file name (e.g. ckpt-3), or import one at a time with --step"
                % (by_step[ckpt.step].path, ckpt.path, ckpt.step)
            )
        by_step[ckpt.step] = ckpt
    return [by_step[s] for s in sorted(by_step)]


def reads_tf_checkpoints(paths: Sequence[str]) -> bool:
    """Whether importing `paths` reads a TF checkpoint, the only format that needs TensorFlow.

    PyTorch, Lightning and Keras files, alone or in a directory, are read
    without it; anything else (a prefix, a missing path) may need it.
    """
    for path in map(os.fspath, paths):
        found = _checkpoints_in(path) if os.path.isdir(path) else [path]
        if not all(p.endswith(CHECKPOINT_SUFFIXES) and os.path.isfile(p) for p in found):
            return True
    return False


def _checkpoints_in(directory):
    out = []
    for name in sorted(os.listdir(directory)):
        full = os.path.join(directory, name)
        if name.endswith(".index"):
            out.append(full[: -len(".index")])
        elif name.endswith(CHECKPOINT_SUFFIXES) and os.path.isfile(full):
            out.append(full)
    return out


def logged_weight_stats(run_dir):
    """`{step: {(layer, part, gate, stat): value}}` of the weight statistics a run directory holds."""
    if not summary.gfile(run_dir).isdir(run_dir):  # local or remote
        return {}
    out = {}
    for r in reader.load(run_dir):
        if r.run == ".":
            # Every logged step counts, even one holding only probe values.
            step_values = out.setdefault(r.step, {})
            if r.stat in _EXACT_STATS + _CLOSE_STATS:
                step_values[r.layer, r.part, r.gate, r.stat] = r.value
    return out


def _difference_from_log(ckpt, values, logged):
    """How a checkpoint's weights differ from the statistics logged at its step, or None if they do not.

    Args:
      ckpt: a `Checkpoint`.
      values: `ckpt.read()` of its cells' weights.
      logged: `{(layer, part, gate, stat): value}` at `ckpt.step`.

    Returns:
      None when every statistic both have agrees (see the module's
      docstring) and they share at least one; else a short description.
    """
    shared = 0
    for cell in ckpt.cells:
        arrays = {w: np.asarray(values[k]) for w, k in cell.variables.items()}
        for part, gates, view in cell.layout.blocks(arrays):
            block_stats = stats.gate_stats(view)
            for stat in _EXACT_STATS + _CLOSE_STATS:
                for gate, value in zip(gates, block_stats[stat]):
                    key = (cell.layer, part, gate, stat)
                    if key not in logged:
                        continue
                    shared += 1
                    mine, theirs = np.float32(value), np.float32(logged[key])
                    rtol = 1e-5 if stat in _CLOSE_STATS else 0.0
                    if not np.isclose(mine, theirs, rtol=rtol, atol=0.0, equal_nan=True):
                        return "%s of %s %s/%s is %.6g in the run and %.6g in the checkpoint" % (
                            stat,
                            cell.layer,
                            part,
                            gate,
                            theirs,
                            mine,
                        )
    if not shared:
        return "the run holds other layers there (%s)" % ", ".join(sorted({k[0] for k in logged}) or ["none"])
    return None


def _step_unit(checkpoints):
    """What the steps of `checkpoints` count, if they all agree (else `step`).

    A TF `global_step` counts global steps; a Keras checkpoint name holds
    the epoch (`ModelCheckpoint`'s `{epoch}`); a TF name's number (`ckpt-1000`)
    is a save counter or a step, and a given step anything: `step`.
    """
    units = {
        "global step"
        if c.step_source == STEP_GLOBAL
        else "epoch"
        if c.step_source == STEP_NAME and c.path.endswith(CHECKPOINT_SUFFIXES)
        else "step"
        for c in checkpoints
    }
    return units.pop() if len(units) == 1 else "step"


def import_checkpoints(
    checkpoints: Sequence[Any],
    run_dir: str,
    histograms: bool = True,
    histogram_bins: int = stats.DEFAULT_BINS,
    progress: Callable[[int, int, str], None] | None = None,
) -> tuple[list[int], list[int]]:
    """Logs each checkpoint at its step in `run_dir`; the same checkpoint again is skipped.

    Checks every checkpoint whose step the run already holds first, so on a
    conflict nothing is written; the event file is created only when there
    is a step to write, so a run that already holds every step is left as it is.

    Args:
      checkpoints: `Checkpoint`s, as `find_checkpoints` returns them.
      run_dir: the run directory.
      histograms: whether to write per-gate histograms.
      histogram_bins: buckets per gate histogram.
      progress: optional function called as `progress(done, total, path)`.

    Returns:
      `(written, skipped)`: lists of the steps written and of those skipped
      because the run holds the same checkpoint there.

    Raises:
      CheckpointError: the run holds other weights at a checkpoint's step.
    """
    logged = logged_weight_stats(run_dir)
    todo, skipped = [], []
    for ckpt in checkpoints:
        if ckpt.step not in logged:
            todo.append(ckpt)
            continue
        keys = [k for cell in ckpt.cells for k in cell.variables.values()]
        why = _difference_from_log(ckpt, ckpt.read(keys), logged[ckpt.step])
        if why is not None:
            raise CheckpointError(
                "step %d of %s already holds other weights than %s: %s. Nothing was imported; "
                "import into a new run (--run), or give the checkpoint another step (--step)"
                % (ckpt.step, run_dir, ckpt.path, why)
            )
        skipped.append(ckpt.step)
    writer = None
    written = []
    try:
        for done, ckpt in enumerate(todo):
            if progress:
                progress(done, len(todo), ckpt.path)
            keys = [k for cell in ckpt.cells for k in cell.variables.values()]
            values = ckpt.read(keys)
            if writer is None:
                writer = summary.GateSummaryWriter(run_dir, step_unit=_step_unit(todo))
                # A checkpoint stores names, not the model's order: the cells' scopes in order.
                writer.set_layer_order([cell.layer for cell in ckpt.cells])
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
