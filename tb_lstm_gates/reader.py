"""`load()`: every value tb-lstm-gates logged, for notebooks and scripts.

Built on TensorBoard's own event reading (`EventMultiplexer`), so it reads
what the tab shows, from local or remote log directories.
"""

import collections

from tensorboard.backend.event_processing import plugin_event_multiplexer
from tensorboard.util import tensor_util

from tb_lstm_gates import metadata

Record = collections.namedtuple(
    "Record", ["run", "layer", "cell", "part", "gate", "stat", "step", "wall_time", "value"]
)
Record.__doc__ = """One logged value.

`value` is a float for statistics and penalties, a float64 array of shape
`(k, 3)` (rows `[left, right, count]`) for `stat == "histogram"`, and a
float32 array of shape `(time, units)` for `stat == "activation_map"`, and
a float32 array of shape `(units, 2)` for `stat == "unit_saturation"`.
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
    records = []
    for run, tags in multiplexer.PluginRunToTagToContent(metadata.PLUGIN_NAME).items():
        for tag, content in tags.items():
            try:
                info = metadata.parse_plugin_content(content)
            except ValueError:
                continue
            # One record per step, the last written: a run resumed from a
            # checkpoint older than its last logged step writes some again.
            latest = {}
            for event in sorted(multiplexer.Tensors(run, tag), key=lambda e: e.wall_time):
                latest[event.step] = event
            for event in latest.values():
                array = tensor_util.make_ndarray(event.tensor_proto)
                value = array if info["stat"] in metadata.TENSOR_STATS else float(array)
                records.append(
                    Record(
                        run, info["layer"], info["cell"], info["part"], info["gate"],
                        info["stat"], event.step, event.wall_time, value,
                    )
                )
    records.sort(key=lambda r: (r.run, r.layer, r.part, r.gate, r.stat, r.step))
    return records
