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

from tb_lstm_gates.core import activations, stats
from tb_lstm_gates.logs import metadata


def array_tensor(values, dtype):
    """A `TensorProto` of `values` as `dtype` (float32, float16, uint8, uint16 or uint32), any shape."""
    values = np.ascontiguousarray(values, dtype=dtype)
    return tensor_pb2.TensorProto(
        dtype=_PROTO_DTYPES[values.dtype],
        tensor_shape=tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=n) for n in values.shape]
        ),
        tensor_content=values.tobytes(),
    )


_PROTO_DTYPES = {
    np.dtype(np.float32): types_pb2.DT_FLOAT,
    np.dtype(np.float16): types_pb2.DT_HALF,
    np.dtype(np.uint8): types_pb2.DT_UINT8,
    np.dtype(np.uint16): types_pb2.DT_UINT16,
    np.dtype(np.uint32): types_pb2.DT_UINT32,
}


def pack_histograms(histograms):
    """`(ends, counts)` of `n` histograms of `k` even buckets: float32 `(n, 2)` `[left, right]`, int64 `(n, k)`.

    Args:
      histograms: array of shape `(n, k, 3)`, rows `[left, right, count]`,
        as `stats.gate_summary` returns.

    Raises:
      ValueError: the buckets of a histogram are not contiguous and evenly
        spaced (what `stats` makes), so the edges cannot be rebuilt from
        the ends, or the counts are not whole numbers below 2**32.
    """
    histograms = np.asarray(histograms, dtype=np.float64)
    if histograms.ndim != 3 or histograms.shape[-1] != 3 or not histograms.shape[1]:
        raise ValueError("histograms must have shape (gates, buckets, 3), got %s" % (histograms.shape,))
    left, right = histograms[:, 0, 0], histograms[:, -1, 1]
    k = histograms.shape[1]
    edges = left[:, None] + ((right - left) / k)[:, None] * np.arange(k + 1)
    edges[:, -1] = right
    tolerance = 1e-6 * np.abs(right - left)[:, None] + 1e-12
    if not (
        np.all(np.abs(histograms[:, :, 0] - edges[:, :-1]) <= tolerance)
        and np.all(np.abs(histograms[:, :, 1] - edges[:, 1:]) <= tolerance)
    ):
        raise ValueError(
            "histogram buckets must be contiguous and evenly spaced (as stats.gate_summary makes them); "
            "compute them with stats.gate_histograms"
        )
    counts = histograms[:, :, 2]
    if not (np.all(counts >= 0) and np.all(counts < 2**32) and np.all(counts == np.round(counts))):
        raise ValueError("histogram counts must be whole numbers from 0 to 2**32 - 1")
    return np.stack([left, right], axis=-1).astype(np.float32), counts.astype(np.int64)


def histogram_tensor(ends, counts):
    """Packed histograms: `[..., ends as float32 bits, counts]` in the smallest unsigned type that holds the counts.

    Args:
      ends: float32 array `(..., 2)`, `[left, right]` of each histogram.
      counts: int array `(..., bins)`.
    """
    largest = int(counts.max()) if counts.size else 0
    dtype = next(t for t in (np.uint8, np.uint16, np.uint32) if largest <= np.iinfo(t).max)
    bits = np.ascontiguousarray(ends, dtype=np.float32).view(dtype)
    return array_tensor(np.concatenate([bits, counts.astype(dtype)], axis=-1), dtype)


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
        time.time(),
        socket.gethostname(),
        os.getpid(),
        next(_file_ids),
        filename_suffix,
    )


class GateSummaryWriter:
    """Writes the data contract's summaries (version 2) to one run directory.

    Each `write_*` call adds values to the step being assembled; `end_step`
    packs them and writes them as one event, and flushes, so a run killed
    between steps leaves only whole steps on disk. Packing, per layer:
    the scalars of the parts that share their gates and whose statistics
    nest become one float32 `[parts, stats, gates]` tensor (NaN where a
    part lacks a statistic, listed as `missing` in its metadata), the histograms one unsigned
    integer `[parts, gates, ends + bins]` tensor, the activation maps one
    float16 `[gates, time, units]` tensor, the per-unit saturations one
    float16 `[gates, units, 2]` tensor (see `metadata`). Summary metadata
    goes with the first value of each tag in a file, as TensorFlow's own
    writers do.

    Args:
      logdir: the run directory (created if missing; local or remote path).
      filename_suffix: appended to the event file name.
      step_unit: what the steps of `end_step` count, one of
        `metadata.STEP_UNITS` (`"epoch"`, `"batch"`, `"global step"`, or
        `"step"` when unknown); recorded in the summary metadata so the tab
        names the unit on its x axes.
    """

    def __init__(self, logdir, filename_suffix=".lstm_gates", step_unit=metadata.DEFAULT_STEP_UNIT):
        self.step_unit = metadata.check_step_unit(step_unit)
        logdir = os.fspath(logdir)
        gfile(logdir).makedirs(logdir)
        self.logdir = logdir
        self.path = os.path.join(logdir, event_file_name(filename_suffix))
        self._records = _open_records(self.path)
        self._tags = {}  # (layer, kind, cell, parts, stats, gates, missing) -> tags of stride 1 and STRIDES
        self._written = set()  # tags whose metadata this file holds
        self._step = {}
        self._order = {}  # layer -> its index in the model's order
        self._functions = {}  # layer -> {gate: name of its activation function}
        self._origins = {}  # layer -> {part: origin} of weights that are not plain parameters
        self._sequence_offers = {}  # layer -> probe sequences offered so far
        self._tokens = None  # the probe's tokens, until the next step writes them
        self._write(event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2"))

    def _write(self, event):
        self._records.write(event.SerializeToString())
        self._records.flush()

    def set_layer_order(self, layers):
        """Records the model's order of its layers (a list of names, first first) in their summaries' metadata.

        Every writer calls it with its cells in model order, so the tab opens
        on the model's first recurrent layer and lists them in order.
        """
        self._order = {layer: i for i, layer in enumerate(layers)}

    def set_weight_origins(self, layer, origins):
        """Records where the weights of `layer`'s parts come from (`{part: origin}`, see `logs.origins`)."""
        self._origins[layer] = dict(origins)

    def write_probe_tokens(self, tokens):
        """Writes the probe's tokens (a list of lists of strings) with the next step, once."""
        self._tokens = tokens

    def _layer(self, layer, cell):
        """The values of `layer` in the current step: scalars, histograms, activation maps, unit
        saturations, probe sequences."""
        entry = self._step.get((layer, cell))
        if entry is None:
            entry = self._step[layer, cell] = ({}, {}, [], [], [])
        return entry

    def write_scalar(self, layer, cell, part, gate, stat, value):
        """Adds one scalar of one block (or a total) to the current step."""
        self._layer(layer, cell)[0].setdefault(part, {}).setdefault(stat, {})[gate] = float(value)

    def write_gate_stats(self, layer, cell, part, gates, gate_stats):
        """Adds every statistic of every gate of one piece.

        Args:
          gates: gate names, in the order of the arrays' entries.
          gate_stats: dict from stat name to an array of shape `(len(gates),)`.
        """
        scalars = self._layer(layer, cell)[0].setdefault(part, {})
        for stat, values in gate_stats.items():
            scalars.setdefault(stat, {}).update(zip(gates, np.asarray(values, dtype=np.float64).tolist()))

    def write_gate_histograms(self, layer, cell, part, gates, histograms):
        """Adds the histogram of each gate; `histograms` has shape `(len(gates), k, 3)` of even buckets."""
        self._layer(layer, cell)[1][part] = (tuple(gates), *pack_histograms(histograms))

    def write_activation_maps(self, layer, cell, gates, maps):
        """Adds each gate's activation map; `maps` has shape `(len(gates), time, units)`."""
        self._layer(layer, cell)[2][:] = [(tuple(gates), np.asarray(maps))]

    def write_activation_functions(self, layer, gates, functions):
        """Names each gate's activation function in the metadata of the layer's probe summaries."""
        self._functions[layer] = dict(zip(gates, functions))

    def write_unit_saturation(self, layer, cell, gates, fractions):
        """Adds each gate's per-unit saturation; `fractions` has shape `(len(gates), units, 2)`."""
        self._layer(layer, cell)[3][:] = [(tuple(gates), np.asarray(fractions))]

    def write_probe_sequences(self, layer, cell, gates, sequences):
        """Adds the probe's first sequences; `sequences` has shape `(len(gates) + 1, sequences, time, units)`,
        the gates then the state (see `activations.probe_sequences`).

        Up to 256 KiB a layer-step, they would outweigh everything else a
        long run writes, so the steps thin out as the run goes on
        (`keeps_sequences`): the first SEQUENCE_STEPS offers of a layer are
        kept, then every 2nd of the next SEQUENCE_STEPS, every 4th of the
        next 2 * SEQUENCE_STEPS, and so on: SEQUENCE_STEPS / 2 more kept
        steps per doubling of the run (about 300 of 10,000 offers).
        """
        offered = self._sequence_offers.get(layer, 0)
        self._sequence_offers[layer] = offered + 1
        if keeps_sequences(offered):
            self._layer(layer, cell)[4][:] = [(tuple(gates), np.asarray(sequences))]

    def _values(self, step, layer, kind, cell, parts, stats, gates, tensor, missing=()):
        """The `Summary.Value`s of one packed tensor: its own, and those of the strides `step` falls on."""
        key = (layer, kind, cell, parts, stats, gates, missing)
        # The probe's sequences, thinned by the writer and viewed one step at
        # a time, get no stride copies: they would add half their bytes again.
        strides = (1,) if kind == metadata.PROBE_SEQUENCES_KIND else (1,) + metadata.STRIDES
        tags = self._tags.get(key)
        if tags is None:
            tags = self._tags[key] = [
                metadata.tag_for(layer, kind, cell, parts, stats, gates, stride, missing)
                for stride in strides
            ]
        # The first point of a time series in this file goes to every stride,
        # so a run's first step is in all of them.
        first = tags[0] not in self._written
        values = []
        for stride, tag in zip(strides, tags):
            if stride > 1 and not first and step % stride:
                break  # strides are multiples of each other
            value = summary_pb2.Summary.Value(tag=tag, tensor=tensor)
            if tag not in self._written:
                self._written.add(tag)
                value.metadata.CopyFrom(
                    metadata.create_summary_metadata(
                        layer,
                        kind,
                        cell,
                        parts,
                        stats,
                        gates,
                        stride,
                        missing,
                        self.step_unit,
                        self._order.get(layer),
                        self._functions.get(layer),
                        self._origins.get(layer),
                    )
                )
            values.append(value)
        return values

    def _packed(self, step):
        """The `Summary.Value`s of the current step, packed."""
        values = []
        if self._tokens is not None:
            values.append(self._tokens_value())
            self._tokens = None
        for (layer, cell), (scalars, histograms, maps, saturations, sequences) in self._step.items():
            # gates -> [(stats, {part: {stat: [gates] values}})]: parts sharing
            # their gates whose statistics nest go in one tensor.
            grids = {}
            for part, per_stat in scalars.items():
                by_gates = {}
                for stat, per_gate in per_stat.items():
                    by_gates.setdefault(tuple(per_gate), {})[stat] = list(per_gate.values())
                for gates, rows in by_gates.items():
                    _pack_part(grids.setdefault(gates, []), part, rows)
            for gates, packings in grids.items():
                for stat_names, parts in packings:
                    grid = np.full((len(parts), len(stat_names), len(gates)), np.nan)
                    missing = []
                    for p, rows in enumerate(parts.values()):
                        for s, stat in enumerate(stat_names):
                            if stat in rows:
                                grid[p, s] = rows[stat]
                            else:
                                missing.append((p, s))
                    values += self._values(
                        step,
                        layer,
                        metadata.STATS_KIND,
                        cell,
                        tuple(parts),
                        tuple(stat_names),
                        gates,
                        array_tensor(grid, np.float32),
                        tuple(missing),
                    )
            by_shape = {}
            for part, (gates, ends, counts) in histograms.items():
                by_shape.setdefault((gates, counts.shape[1]), {})[part] = (ends, counts)
            for (gates, _), parts in by_shape.items():
                tensor = histogram_tensor(
                    np.stack([ends for ends, _ in parts.values()]),
                    np.stack([counts for _, counts in parts.values()]),
                )
                values += self._values(
                    step, layer, metadata.HISTOGRAMS_KIND, cell, tuple(parts), (), gates, tensor
                )
            per_gate = (
                (metadata.ACTIVATION_MAPS_KIND, maps),
                (metadata.UNIT_SATURATIONS_KIND, saturations),
                (metadata.PROBE_SEQUENCES_KIND, sequences),
            )
            for kind, packed in per_gate:
                for gates, array in packed:
                    tensor = array_tensor(array, np.float16)
                    values += self._values(step, layer, kind, cell, (metadata.ACTIVATION,), (), gates, tensor)
        return values

    def _tokens_value(self):
        """The `Summary.Value` of the probe's tokens: one time series of stride 1, never thinned."""
        parts, layer, cell = (metadata.ACTIVATION,), metadata.MODEL_LAYER, metadata.MODEL_CELL
        kind = metadata.PROBE_TOKENS_KIND
        value = summary_pb2.Summary.Value(
            tag=metadata.tag_for(layer, kind, cell, parts, (), ()),
            tensor=array_tensor(metadata.tokens_tensor(self._tokens), np.uint8),
        )
        value.metadata.CopyFrom(
            metadata.create_summary_metadata(layer, kind, cell, parts, (), (), step_unit=self.step_unit)
        )
        return value

    def end_step(self, step, wall_time=None):
        """Writes the values added since the last call as one event at `step`, and flushes."""
        if self._step:
            values = self._packed(int(step))
            self._step = {}
            self._write(
                event_pb2.Event(
                    step=int(step),
                    wall_time=time.time() if wall_time is None else wall_time,
                    summary=summary_pb2.Summary(value=values),
                )
            )

    def close(self):
        self._step = {}
        self._records.close()


# How many probe-sequence steps of a layer are all kept before they thin out.
SEQUENCE_STEPS = 64


def keeps_sequences(offered):
    """Whether the writer keeps a layer's probe sequences offered for the `offered`-th time (0 first).

    All of the first SEQUENCE_STEPS; then every 2nd, 4th, 8th, ... as the
    count doubles: offers [64, 128) keep every 2nd, [128, 256) every 4th.
    """
    if offered < SEQUENCE_STEPS:
        return True
    every = 2 ** ((offered // SEQUENCE_STEPS).bit_length())
    return offered % every == 0


def _pack_part(packings, part, rows):
    """Adds `part`'s `rows` ({stat: values}) to the first of `packings` whose statistics nest with its own.

    `packings` is a list of `(stats, {part: rows})`; a part whose statistics
    are a superset extends that packing's, so the weight statistics of every
    part, with `spectral_norm` on the recurrent part only, go in one tensor.
    """
    names = set(rows)
    for stat_names, parts in packings:
        known = set(stat_names)
        if names <= known or known <= names:
            stat_names.extend(stat for stat in rows if stat not in known)
            parts[part] = rows
            return
    packings.append((list(rows), {part: rows}))


class CellLogger:
    """Splits a cell's weights, computes their statistics and hands them to a writer.

    Keeps the previous step's weights of each cell (references to arrays the
    caller no longer changes) for `update_ratio`, and the top singular
    vectors of its recurrent blocks, from which the next step's
    `spectral_norm` starts (see `stats.top_singular`).

    Args:
      writer: a `GateSummaryWriter`.
      bins: histogram buckets per gate block.
    """

    def __init__(self, writer, bins=stats.DEFAULT_BINS):
        self._writer = writer
        self._bins = bins
        self._previous = {}
        self._singular = {}

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
                key = (layer, tuple(gates))  # a TF1 GRU has two recurrent pieces
                block_stats[metadata.SPECTRAL_NORM], self._singular[key] = stats.top_singular(
                    view, self._singular.get(key)
                )
            self._writer.write_gate_stats(layer, layout.cell, part, gates, block_stats)
            if hist is not None:
                self._writer.write_gate_histograms(layer, layout.cell, part, gates, hist)
        self._previous[layer] = arrays


def write_probe_trace(writer, layer, trace, maps):
    """Adds what one layer's gates did on the probe (an `activations.Trace`) to the writer's current step.

    Per gate: the activation statistics, the state gate's retention, each
    unit's saturated fractions and, with `maps`, the activation map and the
    probe's first sequences with the cell's state (for the tab's Text view).
    """
    writer.write_gate_stats(
        layer, trace.cell, metadata.ACTIVATION, trace.gates, activations.gate_statistics(trace)
    )
    writer.write_activation_functions(layer, trace.gates, trace.functions)
    gate, horizon = activations.retention(trace)
    writer.write_scalar(layer, trace.cell, metadata.ACTIVATION, gate, metadata.RETENTION, horizon)
    writer.write_unit_saturation(layer, trace.cell, trace.gates, activations.unit_saturation(trace))
    if maps:
        writer.write_activation_maps(layer, trace.cell, trace.gates, activations.activation_map(trace))
        if trace.states is not None:
            writer.write_probe_sequences(layer, trace.cell, trace.gates, activations.probe_sequences(trace))
