"""`load()`: every value tb-lstm-gates logged, for notebooks and scripts.

Reads event files with the package's own CRC-checked record reader
(`summary.read_events`), never through TensorBoard's event multiplexer,
which imports TensorFlow whenever it is installed: a PyTorch or JAX process
must not pay seconds and gigabytes for it. It reads what TensorBoard shows:
the runs are the directories holding event files, a file's damaged tail is
left out and what is whole before it kept, and a tag's summary metadata is
the first its run holds.
"""

import collections
import gc
import os
import warnings
from typing import Any

import numpy as np
from tensorboard.util import tensor_util

from tb_lstm_gates.core import callers
from tb_lstm_gates.logs import background, metadata, summary

Record = collections.namedtuple(
    "Record", ["run", "layer", "cell", "part", "gate", "stat", "step", "wall_time", "value"]
)
Record.__doc__ = """One logged value.

`value` is a float for statistics and penalties, a float64 array of shape
`(k, 3)` (rows `[left, right, count]`) for `stat == "histogram"`, and a
float32 array of shape `(time, units)` for `stat == "activation_map"`,
and a float32 array of shape `(units, 2)` for `stat == "unit_saturation"`,
whichever version of the data contract wrote it.
"""


def load(logdir: str | os.PathLike[str]) -> list[Record]:
    """Reads every tb-lstm-gates value under `logdir`.

    Args:
      logdir: a log directory as given to `tensorboard --logdir`; every
        sub-directory holding event files is a run, named by its path
        relative to `logdir` (`.` for `logdir` itself).

    Returns:
      list of `Record(run, layer, cell, part, gate, stat, step, wall_time,
      value)`, sorted by run, layer, part, gate, stat and step; one per
      step of a series, the last written if a step was written twice.

    Steps that loggers of this process have handed to their writer's
    thread are written first, so a `load()` right after `log()` or
    `on_epoch_end` reads them.

    Raises:
      FileNotFoundError: `logdir` does not exist.
    """
    background.settle_all()
    # A million records are a million tuples, which make Python's cyclic
    # collector rescan the growing heap again and again (a third of the time
    # on the scale bench's logs); they hold no cycles.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _load(str(logdir))
    finally:
        if collecting:
            gc.enable()


def _load(logdir: str) -> list[Record]:
    gfile = summary.gfile(logdir)
    if not gfile.isdir(logdir):
        raise FileNotFoundError("no log directory at %s" % logdir)
    # (run, layer, part, gate, stat) -> {step: (wall_time, cell, value)}: one
    # record per step, the last written, across every summary holding the
    # block (a run resumed from a checkpoint older than its last logged
    # step writes some steps again; a version 1 and a version 2 file may
    # both hold a block).
    latest: dict[tuple[str, str, str, str, str], dict[int, tuple[float, str, Any]]] = {}
    newer: str | None = None  # the message of the first summary from a newer version, warned once
    for run, paths in _runs(gfile, logdir):
        series: dict[
            str, Any
        ] = {}  # tag -> (kind, shape, [(its block's steps in `latest`, block)]), or None if not ours
        for path in paths:
            for event in summary.read_events(path):
                for value in event.summary.value:
                    tag = series.get(value.tag, _UNSEEN)
                    if tag is _UNSEEN:
                        # As TensorBoard: a tag's metadata is what its first value carries.
                        parsed = _parse(value.metadata)
                        if isinstance(parsed, metadata.NewerVersionError):
                            newer = newer or str(parsed)
                            parsed = None
                        tag = series[value.tag] = parsed and (
                            parsed[0],
                            parsed[2],
                            [
                                (latest.setdefault((run, b.layer, b.part, b.gate, b.stat), {}), b)
                                for b in parsed[1]
                            ],
                        )
                    if tag and value.HasField("tensor"):
                        _add(event, value.tensor, *tag)
    if newer:
        # One warning, not one per series: they all say the same.
        warnings.warn(
            "%s; load() left out every series written by the newer version" % newer,
            stacklevel=callers.user_stacklevel(),
        )
    # Sorted series by series, then step by step: cheaper than sorting every record.
    records: list[Record] = []
    for (run, layer, part, gate, stat), steps in sorted(latest.items(), key=lambda item: item[0]):
        records.extend(
            Record(run, layer, cell, part, gate, stat, step, wall_time, value)
            for step, (wall_time, cell, value) in sorted(steps.items(), key=lambda item: item[0])
        )
    return records


_UNSEEN = object()


def _runs(gfile: Any, logdir: str) -> list[tuple[str, list[str]]]:
    """`[(run, [event file paths in name order])]` of every directory under `logdir` holding event files."""
    runs: list[tuple[str, list[str]]] = []
    for directory, _, files in gfile.walk(logdir):
        events = sorted(f for f in files if "tfevents" in f)
        if events:
            run = os.path.relpath(directory, logdir) if "://" not in logdir else directory[len(logdir) :]
            runs.append((run.strip("/") or ".", [os.path.join(directory, f) for f in events]))
    return sorted(runs)


def _parse(summary_metadata: Any) -> tuple[Any, Any, Any] | metadata.NewerVersionError | None:
    """`(kind, blocks, shape)` of a stride-1 tag of ours, the error of a newer version's, else None."""
    if summary_metadata.plugin_data.plugin_name != metadata.PLUGIN_NAME:
        return None
    try:
        kind, blocks, shape, stride = metadata.parse_plugin_content(summary_metadata.plugin_data.content)[:4]
    except metadata.NewerVersionError as e:
        return e
    except ValueError:
        return None
    if stride != 1:
        return None  # a copy of some points of the stride-1 series
    return kind, blocks, shape


def _add(event: Any, tensor_proto: Any, kind: str | None, shape: tuple[int, ...], blocks: Any) -> None:
    try:
        array = tensor_util.make_ndarray(tensor_proto)
    except (ValueError, TypeError):
        return  # a tensor that does not decode: skipped, as the tab does
    if array.shape[: len(shape)] != shape:
        return  # not what the metadata says: skipped, as the tab does
    # One conversion per tensor, not one per block.
    if kind == metadata.STATS_KIND:
        values = array.tolist()
    elif kind == metadata.HISTOGRAMS_KIND:
        values = metadata.histogram_rows(array)
    else:
        values = array
    for steps, block in blocks:
        kept = steps.get(event.step)
        if kept is None or event.wall_time >= kept[0]:
            steps[event.step] = (event.wall_time, block.cell, _value(kind, block, values))


def _value(kind: str | None, block: Any, array: Any) -> Any:
    """The value of `block` in a summary's tensor, as `Record.value` has it."""
    if kind is None:
        return array if block.stat in metadata.TENSOR_STATS else float(array)
    if kind == metadata.STATS_KIND:
        p, s, g = block.index
        return array[p][s][g]
    if kind == metadata.HISTOGRAMS_KIND:
        return array[block.index]
    if kind == metadata.PROBE_TOKENS_KIND:
        return metadata.parse_tokens(array)
    return array[block.index].astype(np.float32)
