"""Writes per-gate statistics as TensorBoard events, following the data contract.

Needs numpy, tensorboard and google-crc32c only, and never imports TensorFlow:
a PyTorch or JAX process must not pay for it. Event files are TFRecord files
of `Event` protos, framed here with google-crc32c's compiled CRC32C
(TensorBoard's pure-Python one runs at about 1.5 MB/s, which histograms of
large layers feel). Files go through TensorBoard's own `gfile` (local, S3,
fsspec), or TensorFlow's for a remote path when TensorFlow is installed, as
remote log directories always needed it.
"""

import importlib.util
import itertools
import os
import socket
import struct
import time

import google_crc32c
import numpy as np
from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2

from tb_lstm_gates import metadata, stats

_SCALAR_SHAPE = tensor_shape_pb2.TensorShapeProto()


def scalar_tensor(value):
    """A rank-0 float32 `TensorProto` (RustBoard drops float64 scalars)."""
    return tensor_pb2.TensorProto(
        dtype=types_pb2.DT_FLOAT, tensor_shape=_SCALAR_SHAPE, float_val=[value]
    )


def histogram_tensor(buckets):
    """A float64 `[k, 3]` `TensorProto`, TensorBoard's histogram format."""
    return _array_tensor(buckets, np.float64, types_pb2.DT_DOUBLE)


def map_tensor(values):
    """A float32 `TensorProto` of any shape, e.g. an activation map `[time, units]`."""
    return _array_tensor(values, np.float32, types_pb2.DT_FLOAT)


def _array_tensor(values, dtype, proto_dtype):
    values = np.ascontiguousarray(values, dtype=dtype)
    return tensor_pb2.TensorProto(
        dtype=proto_dtype,
        tensor_shape=tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=n) for n in values.shape]
        ),
        tensor_content=values.tobytes(),
    )


_file_ids = itertools.count()


def gfile(path):
    """The `gfile` module for `path`: TensorFlow's for a remote path when installed, else TensorBoard's."""
    if "://" in os.fspath(path) and importlib.util.find_spec("tensorflow") is not None:
        import tensorflow as tf

        return tf.io.gfile
    from tensorboard.compat.tensorflow_stub.io import gfile as stub_gfile

    return stub_gfile


def _masked_crc(data):
    """TFRecord's masked CRC32C of `data`."""
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


class _RecordFile:
    """Writes TFRecords (length, its CRC, data, its CRC) to a file object."""

    def __init__(self, file):
        self._file = file

    def write(self, data):
        header = struct.pack("<Q", len(data))
        self._file.write(
            header + struct.pack("<I", _masked_crc(header)) + data + struct.pack("<I", _masked_crc(data))
        )

    def flush(self):
        self._file.flush()

    def close(self):
        self._file.close()


def read_events(path):
    """The `Event`s of one event file, up to its last whole, intact record.

    Reads the framing itself, like `_RecordFile` writes it, because
    TensorBoard's readers import TensorFlow whenever it is installed.
    """
    with gfile(path).GFile(path, "rb") as f:
        data = f.read()
    offset = 0
    while offset + 12 <= len(data):
        header = data[offset : offset + 8]
        (length,) = struct.unpack("<Q", header)
        end = offset + 12 + length + 4
        if end > len(data) or struct.unpack("<I", data[offset + 8 : offset + 12])[0] != _masked_crc(header):
            return
        record = data[offset + 12 : end - 4]
        if struct.unpack("<I", data[end - 4 : end])[0] != _masked_crc(record):
            return
        yield event_pb2.Event.FromString(record)
        offset = end


def _open_records(path):
    """A TFRecord writer with `write(bytes)`, `flush()` and `close()`."""
    return _RecordFile(gfile(path).GFile(path, "wb"))


def event_file_name(filename_suffix=""):
    """A new event file name in TensorBoard's pattern, unique in this process."""
    return "events.out.tfevents.%010d.%s.%d.%d%s" % (
        time.time(), socket.gethostname(), os.getpid(), next(_file_ids), filename_suffix
    )


class GateSummaryWriter:
    """Writes the data contract's summaries to one run directory.

    Each `write_*` call adds values to the step being assembled; `end_step`
    writes them as one event and flushes, so a run killed between steps
    leaves only whole steps on disk. Summary metadata goes with the first
    value of each tag in a file, as TensorFlow's own writers do.

    Args:
      logdir: the run directory (created if missing; local or remote path).
      filename_suffix: appended to the event file name.
    """

    def __init__(self, logdir, filename_suffix=".lstm_gates"):
        logdir = os.fspath(logdir)
        gfile(logdir).makedirs(logdir)
        self.logdir = logdir
        self.path = os.path.join(logdir, event_file_name(filename_suffix))
        self._records = _open_records(self.path)
        self._tags = {}  # (layer, part, gate, stat) -> tag already written to this file
        self._values = []
        self._write(event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2"))

    def _write(self, event):
        self._records.write(event.SerializeToString())
        self._records.flush()

    def _add(self, layer, cell, part, gate, stat, tensor):
        key = (layer, part, gate, stat)
        tag = self._tags.get(key)
        value = summary_pb2.Summary.Value(tag=tag, tensor=tensor)
        if tag is None:
            tag = self._tags[key] = value.tag = metadata.tag_for(layer, part, gate, stat)
            value.metadata.CopyFrom(metadata.create_summary_metadata(layer, cell, part, gate, stat))
        self._values.append(value)

    def write_scalar(self, layer, cell, part, gate, stat, value):
        """Adds one float32 scalar of one block (or a total) to the current step."""
        self._add(layer, cell, part, gate, stat, scalar_tensor(float(value)))

    def write_gate_stats(self, layer, cell, part, gates, gate_stats):
        """Adds every statistic of every gate of one piece.

        Args:
          gates: gate names, in the order of the arrays' entries.
          gate_stats: dict from stat name to an array of shape `(len(gates),)`.
        """
        for stat, values in gate_stats.items():
            for gate, value in zip(gates, values.tolist()):
                self.write_scalar(layer, cell, part, gate, stat, value)

    def write_gate_histograms(self, layer, cell, part, gates, histograms):
        """Adds the histogram of each gate; `histograms` has shape `(len(gates), k, 3)`."""
        for gate, buckets in zip(gates, histograms):
            self._add(layer, cell, part, gate, metadata.HISTOGRAM, histogram_tensor(buckets))

    def write_activation_maps(self, layer, cell, gates, maps):
        """Adds each gate's activation map; `maps` has shape `(len(gates), time, units)`."""
        for gate, values in zip(gates, maps):
            self._add(layer, cell, metadata.ACTIVATION, gate, metadata.ACTIVATION_MAP, map_tensor(values))

    def write_unit_saturation(self, layer, cell, gates, fractions):
        """Adds each gate's per-unit saturation; `fractions` has shape `(len(gates), units, 2)`."""
        for gate, values in zip(gates, fractions):
            self._add(layer, cell, metadata.ACTIVATION, gate, metadata.UNIT_SATURATION, map_tensor(values))

    def end_step(self, step, wall_time=None):
        """Writes the values added since the last call as one event at `step`, and flushes."""
        if self._values:
            event = event_pb2.Event(
                step=int(step),
                wall_time=time.time() if wall_time is None else wall_time,
                summary=summary_pb2.Summary(value=self._values),
            )
            self._values = []
            self._write(event)

    def close(self):
        self._values = []
        self._records.close()


class CellLogger:
    """Splits a cell's weights, computes their statistics and hands them to a writer.

    Keeps the previous step's weights of each cell (references to arrays the
    caller no longer changes) for `update_ratio`.

    Args:
      writer: a `GateSummaryWriter`.
      bins: histogram buckets per gate block.
    """

    def __init__(self, writer, bins=stats.DEFAULT_BINS):
        self._writer = writer
        self._bins = bins
        self._previous = {}

    def log_cell(self, layer, layout, arrays, histograms=True):
        """Adds the statistics (and optionally histograms) of one cell to the current step.

        Args:
          layer: the cell's path, e.g. `model/lstm/lstm_cell`.
          layout: its `layouts.Layout`.
          arrays: mapping from weight name to numpy array, as the layout names them.
          histograms: whether to add per-gate histograms.
        """
        pieces = list(layout.blocks(arrays))
        previous = self._previous.get(layer)
        if previous is None:
            previous_views = [None] * len(pieces)
        else:
            previous_views = [view for _, _, view in layout.blocks(previous)]
        for (part, gates, view), previous_view in zip(pieces, previous_views):
            block_stats, hist = stats.gate_summary(view, previous_view, self._bins if histograms else 0)
            if part == "recurrent" and view.ndim == 3:
                # A matrix per gate (not a ConvLSTM's convolution): its spectral norm.
                block_stats[metadata.SPECTRAL_NORM] = stats.spectral_norm(view)
            self._writer.write_gate_stats(layer, layout.cell, part, gates, block_stats)
            if hist is not None:
                self._writer.write_gate_histograms(layer, layout.cell, part, gates, hist)
        self._previous[layer] = arrays
