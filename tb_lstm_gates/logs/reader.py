"""`load()`: every value tb-lstm-gates logged, for notebooks and scripts.

Built on TensorBoard's own event reading (`EventMultiplexer`), so it reads
what the tab shows, from local or remote log directories.
"""

import collections
import warnings

import numpy as np
from tensorboard.backend.event_processing import plugin_event_multiplexer
from tensorboard.util import tensor_util

from tb_lstm_gates.logs import metadata

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


def load(logdir):
    """Reads every tb-lstm-gates value under `logdir`.

    Args:
      logdir: a log directory as given to `tensorboard --logdir`; every
        sub-directory holding event files is a run, named by its path
        relative to `logdir` (`.` for `logdir` itself).

    Returns:
      list of `Record(run, layer, cell, part, gate, stat, step, wall_time,
      value)`, sorted by run, layer, part, gate, stat and step; one per
      step of a series, the last written if a step was written twice.

    Raises:
      FileNotFoundError: `logdir` does not exist.
    """
    from tensorboard.compat import tf

    logdir = str(logdir)
    if not tf.io.gfile.isdir(logdir):
        raise FileNotFoundError("no log directory at %s" % logdir)
    multiplexer = plugin_event_multiplexer.EventMultiplexer(
        size_guidance={"tensors": 0}, tensor_size_guidance={metadata.PLUGIN_NAME: 0}
    )
    multiplexer.AddRunsFromDirectory(logdir)
    multiplexer.Reload()
    # (run, layer, part, gate, stat) -> {step: (wall_time, cell, value)}: one
    # record per step, the last written, across every summary holding the
    # block (a run resumed from a checkpoint older than its last logged
    # step writes some steps again; a version 1 and a version 2 file may
    # both hold a block).
    latest = {}
    newer = None  # the message of the first summary from a newer version, warned once
    for run, tags in multiplexer.PluginRunToTagToContent(metadata.PLUGIN_NAME).items():
        for tag, content in tags.items():
            try:
                kind, blocks, shape, stride = metadata.parse_plugin_content(content)[:4]
            except metadata.NewerVersionError as e:
                newer = newer or str(e)
                continue
            except ValueError:
                continue
            if stride != 1:
                continue  # a copy of some points of the stride-1 series
            for event in multiplexer.Tensors(run, tag):
                try:
                    array = tensor_util.make_ndarray(event.tensor_proto)
                except (ValueError, TypeError):
                    continue  # a tensor that does not decode: skipped, as the tab does
                if array.shape[: len(shape)] != shape:
                    continue  # not what the metadata says: skipped, as the tab does
                for block in blocks:
                    steps = latest.setdefault((run, block.layer, block.part, block.gate, block.stat), {})
                    kept = steps.get(event.step)
                    if kept is None or event.wall_time >= kept[0]:
                        steps[event.step] = (event.wall_time, block.cell, _value(kind, block, array))
    if newer:
        # One warning, not one per series: they all say the same.
        warnings.warn("%s; load() left out every series written by the newer version" % newer, stacklevel=2)
    records = [
        Record(run, layer, cell, part, gate, stat, step, wall_time, value)
        for (run, layer, part, gate, stat), steps in latest.items()
        for step, (wall_time, cell, value) in steps.items()
    ]
    records.sort(key=lambda r: (r.run, r.layer, r.part, r.gate, r.stat, r.step))
    return records


def _value(kind, block, array):
    """The value of `block` in a summary's tensor, as `Record.value` has it."""
    if kind is None:
        return array if block.stat in metadata.TENSOR_STATS else float(array)
    if kind == metadata.STATS_KIND:
        return float(array[block.index])
    if kind == metadata.HISTOGRAMS_KIND:
        return metadata.histogram_rows(array[block.index])
    return array[block.index].astype(np.float32)
