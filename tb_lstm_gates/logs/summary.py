"""Writes per-gate statistics as TensorBoard events, following the data contract.

Needs numpy, tensorboard and google-crc32c only, and never imports TensorFlow:
a PyTorch or JAX process must not pay for it. Event files are TFRecord files
of `Event` protos, framed here with google-crc32c's compiled CRC32C
(TensorBoard's pure-Python one runs at about 1.5 MB/s, which histograms of
large layers feel). `storage` picks the file system of a path and, on
object storage, uploads a run as a sequence of event files.

The event framing lives in `event_files`, the tensors in `tensors`, and
what a wing hands the writer in `cell_logger`; their public names are
re-exported here, where they have always been imported from.
"""

import os
import time
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from tensorboard.compat.proto import event_pb2, summary_pb2

from tb_lstm_gates.logs import event_files, hparams, metadata
from tb_lstm_gates.logs.cell_logger import CellLogger, write_probe_trace
from tb_lstm_gates.logs.event_files import event_file_name, gfile, read_events
from tb_lstm_gates.logs.tensors import array_tensor, histogram_tensor, pack_histograms

__all__ = [
    "SEQUENCE_STEPS",
    "CellLogger",
    "GateSummaryWriter",
    "array_tensor",
    "event_file_name",
    "gfile",
    "histogram_tensor",
    "keeps_sequences",
    "pack_histograms",
    "read_events",
    "write_probe_trace",
]


class GateSummaryWriter:
    """Writes the data contract's summaries (version 2) to one run directory.

    Each `write_*` call adds values to the step being assembled; `end_step`
    packs them and writes them as one event, and flushes, so a run killed
    between steps leaves only whole steps on disk (on object storage, the
    steps go up every `storage.ROLL_SECONDS`, as new files). Packing, per layer:
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

    def __init__(
        self,
        logdir: str | os.PathLike[str],
        filename_suffix: str = ".lstm_gates",
        step_unit: str = metadata.DEFAULT_STEP_UNIT,
    ) -> None:
        self.step_unit = metadata.check_step_unit(step_unit)
        logdir = os.fspath(logdir)
        gfile(logdir).makedirs(logdir)
        self.logdir = logdir
        self.path = os.path.join(logdir, event_files.event_file_name(filename_suffix))
        self._records = event_files.open_records(self.path)
        self._tags: dict[
            tuple[Any, ...], list[str]
        ] = {}  # (layer, kind, cell, parts, stats, gates, missing) -> tags of stride 1 and STRIDES
        self._written: set[str] = set()  # tags whose metadata this file holds
        self._step: dict[tuple[str, str], Any] = {}  # (layer, cell) -> the values added this step
        self._order: dict[str, int] = {}  # layer -> its index in the model's order
        self._functions: dict[str, dict[str, str]] = {}  # layer -> {gate: name of its activation function}
        self._heads: dict[str, Any] = {}  # layer -> {"count": heads, "head": k or None} (xLSTM layers)
        self._origins: dict[
            str, dict[str, Any]
        ] = {}  # layer -> {part: origin} of weights that are not plain parameters
        self._sequence_offers: dict[str, int] = {}  # layer -> probe sequences offered so far
        self._tokens: list[list[str]] | None = None  # the probe's tokens, until the next step writes them
        self._write(event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2"))

    def _write(self, event):
        self._records.write(event.SerializeToString())
        self._records.flush()

    def set_layer_order(self, layers: Iterable[str]) -> None:
        """Records the model's order of its layers (a list of names, first first) in their summaries' metadata.

        Every writer calls it with its cells in model order, so the tab opens
        on the model's first recurrent layer and lists them in order.
        """
        self._order = {layer: i for i, layer in enumerate(layers)}

    def set_layer_heads(self, layer, heads):
        """Records a layer's heads (`metadata.create_summary_metadata`'s `heads`) in its summaries' metadata."""
        self._heads[layer] = heads

    def set_weight_origins(self, layer: str, origins: Mapping[str, str]) -> None:
        """Records where the weights of `layer`'s parts come from (`{part: origin}`, see `logs.origins`)."""
        self._origins[layer] = dict(origins)

    def write_probe_tokens(self, tokens: list[list[str]]) -> None:
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
                        self._heads.get(layer),
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

    def _gate_metrics(self):
        """The step's gate metrics for the HParams dashboard, as plain scalars (see `hparams`)."""
        values = []
        for (layer, cell), entry in self._step.items():
            for tag, value in hparams.gate_metrics(layer, cell, entry[0]).items():
                values.append(hparams.scalar_value(tag, value, tag not in self._written))
                self._written.add(tag)
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

    def end_step(self, step: int, wall_time: float | None = None) -> None:
        """Writes the values added since the last call as one event at `step`, and flushes."""
        if self._step:
            values = self._packed(int(step)) + self._gate_metrics()
            self._step = {}
            self._write(
                event_pb2.Event(
                    step=int(step),
                    wall_time=time.time() if wall_time is None else wall_time,
                    summary=summary_pb2.Summary(value=values),
                )
            )

    def close(self) -> None:
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
