"""Gate health for TensorBoard's HParams dashboard: plain scalar metrics and session summaries.

The data contract's own summaries are packed tensors that only the LSTM
Gates tab reads. The HParams dashboard reads a session's metrics from
ordinary scalar summaries (TensorBoard's `scalars` plugin): when no
experiment config is written, every scalar tag in the session's folder and
its subfolders is a metric, and its value is the last one logged. So each
step also writes a few scalars per layer, for the gate that keeps the state
(LSTM and ConvLSTM `forget`, GRU `update`):

- `lstm_gates/<layer>/<gate>/recurrent_l2`: the Frobenius norm of the gate's
  recurrent block;
- `lstm_gates/<layer>/<gate>/saturated`: the fraction of the gate's
  activations on the probe at either bound (with a probe only);
- `lstm_gates/<layer>/<gate>/retention`: the probe's mean retention horizon
  in steps (with a probe only).

A logger's `hparams=` argument writes the session's hyperparameters with
TensorBoard's own `hparams` summary API (`summary_v2.hparams_pb`, which
needs no TensorFlow), so the run becomes an HParams session.
"""

import numbers
import os
import time
from collections.abc import Mapping
from typing import Any

from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2
from tensorboard.plugins.hparams import summary_v2
from tensorboard.plugins.scalar import metadata as scalar_metadata

from tb_lstm_gates.core import activations, names
from tb_lstm_gates.logs import event_files, metadata

# (part, stat) of the data contract -> the metric's last tag component.
METRICS = (
    ("recurrent", "l2", "recurrent_l2"),
    (names.ACTIVATION, names.SATURATED, "saturated"),
    (names.ACTIVATION, names.RETENTION, "retention"),
)


def metric_tag(layer, gate, metric):
    """The scalar tag of one gate metric, e.g. `lstm_gates/lstm/lstm_cell/forget/recurrent_l2`."""
    return "/".join((metadata.TAG_PREFIX, layer, gate, metric))


def gate_metrics(layer, cell, scalars):
    """`{tag: value}` of the gate metrics in one layer's step.

    Args:
      layer, cell: the layer's name and cell kind (`lstm`, `gru`, ...).
      scalars: the step's `{part: {stat: {gate: value}}}` of that layer.
    """
    gate = activations.RETENTION_GATE.get(cell)
    found = {}
    if gate is None:
        return found
    for part, stat, metric in METRICS:
        value = scalars.get(part, {}).get(stat, {}).get(gate)
        if value is not None:
            found[metric_tag(layer, gate, metric)] = value
    return found


def scalar_value(tag, value, with_metadata):
    """A `Summary.Value` in TensorBoard's scalar format: a rank-0 float32 tensor of the `scalars` plugin."""
    tensor = tensor_pb2.TensorProto(
        dtype=types_pb2.DT_FLOAT, tensor_shape=tensor_shape_pb2.TensorShapeProto(), float_val=[value]
    )
    summary_value = summary_pb2.Summary.Value(tag=tag, tensor=tensor)
    if with_metadata:
        summary_value.metadata.CopyFrom(
            scalar_metadata.create_summary_metadata(display_name="", description="")
        )
        summary_value.metadata.data_class = summary_pb2.DATA_CLASS_SCALAR
    return summary_value


def check_hparams(hparams: Any) -> dict[str, Any] | None:
    """`hparams` as a dict of names to bool, int, float or str values; None stays None.

    Raises:
      ValueError: `hparams` is not such a dict, naming what is wrong and what is accepted.
    """
    if hparams is None:
        return None
    if not isinstance(hparams, dict) or not hparams:
        raise ValueError("hparams must be None or a non-empty dict of names to values, got %r" % (hparams,))
    wrong = [
        "%r: %r" % (k, v)
        for k, v in hparams.items()
        if not isinstance(k, str) or not isinstance(v, (bool, numbers.Real, str))
    ]
    if wrong:
        raise ValueError(
            "hparams must map str names to bool, int, float or str values (what TensorBoard's "
            "HParams dashboard shows); these are not: %s" % ", ".join(wrong)
        )
    return dict(hparams)


def session_start_value(hparams):
    """The `Summary.Value` that makes a run an HParams session with `hparams` (see `check_hparams`)."""
    (value,) = summary_v2.hparams_pb(hparams).value
    value.metadata.data_class = summary_pb2.DATA_CLASS_TENSOR
    return value


def write_session(logdir: str | os.PathLike[str], values: Mapping[str, Any]) -> None:
    """Makes `logdir` a session of TensorBoard's HParams dashboard with the hyperparameters `values`.

    `values` is a dict of names to bool, int, float or str (see
    `check_hparams`). Writes one small event file; the gate metrics
    every step writes in `logdir` or below it (see above)
    then show beside them.
    """
    value = session_start_value(check_hparams(values))
    logdir = os.fspath(logdir)
    event_files.gfile(logdir).makedirs(logdir)
    records = event_files.open_records(os.path.join(logdir, event_files.event_file_name(".hparams")))
    for event in (
        event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2"),
        event_pb2.Event(wall_time=time.time(), summary=summary_pb2.Summary(value=[value])),
    ):
        records.write(event.SerializeToString())
    records.close()
