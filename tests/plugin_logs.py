"""Log directories for the plugin tests: real event files, real and synthetic runs."""

import json
import os
import time

import numpy as np
from tensorboard.backend.event_processing import plugin_event_multiplexer
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.event_file_writer import EventFileWriter
from tensorboard.util import tensor_util

from tb_lstm_gates.core import layouts
from tb_lstm_gates.logs import metadata, summary

LONG_RUN = "long"
LONG_LAYER = "long/lstm_cell"
LONG_STEPS = 1000
PENALIZED_RUN = "penalized"
PENALIZED_LAYER = "lstm/lstm_cell"
MALFORMED_RUN = "malformed"
MALFORMED_LAYER = "ok/lstm_cell"
PROBE_RUN = "probe"
PROBE_LAYER = "probe/lstm_cell"
PROBE_STEPS = 3
# Steps with activation maps (as with histogram_freq=2).
PROBE_MAP_STEPS = (0, 2)


def long_value(step):
    """The `l2` of the long run's (recurrent, forget) block at `step`."""
    return 0.5 * step


def write_long_run(run_dir, steps=LONG_STEPS, writer_class=summary.GateSummaryWriter, first_step=0):
    """A run of `steps` steps from `first_step`: one l2 series and one histogram series."""
    writer = writer_class(run_dir)
    for step in range(first_step, first_step + steps):
        writer.write_scalar(LONG_LAYER, "lstm", "recurrent", "forget", "l2", long_value(step))
        buckets = np.array([[[0.0, 1.0, step], [1.0, 2.0, 1.0]]])
        writer.write_gate_histograms(LONG_LAYER, "lstm", "recurrent", ("forget",), buckets)
        writer.end_step(step)
    writer.close()


def penalty_value(part, gate, step):
    return {"input": 1.0, "recurrent": 2.0, "total": 3.0}[part] + 0.1 * step + (gate == "forget")


def write_penalized_run(run_dir, steps=5, writer_class=summary.GateSummaryWriter):
    """Penalties per block, the layer's total, the model's penalty and loss,
    and an l2 series with a NaN at step 2 and an Inf at step 3."""
    writer = writer_class(run_dir)
    for step in range(steps):
        for part, gate in (("recurrent", "forget"), ("input", "input"), ("total", "total")):
            writer.write_scalar(
                PENALIZED_LAYER, "lstm", part, gate, "penalty", penalty_value(part, gate, step)
            )
        writer.write_scalar(
            metadata.MODEL_LAYER, metadata.MODEL_CELL, "total", "total", "penalty", 10.0 + step
        )
        writer.write_scalar(metadata.MODEL_LAYER, metadata.MODEL_CELL, "total", "total", "loss", 100.0 - step)
        l2 = {2: float("nan"), 3: float("inf")}.get(step, float(step))
        writer.write_scalar(PENALIZED_LAYER, "lstm", "recurrent", "forget", "l2", l2)
        writer.end_step(step)
    writer.close()


def probe_value(gate, stat, step):
    """The probe statistic `stat` of `gate` at `step` in the probe run."""
    return metadata.ACTIVATION_STATS.index(stat) + 0.1 * metadata.LSTM_GATES.index(gate) + 0.01 * step


def probe_map(gate, step):
    """The activation map of `gate` at `step`: float32 (4 time steps, 3 units), the last step masked."""
    values = np.arange(12, dtype=np.float32).reshape(4, 3) / 16 + metadata.LSTM_GATES.index(gate) + step
    values[-1] = np.nan
    return values


def probe_unit_saturation(gate, step):
    """The per-unit saturation of `gate` at `step`: float32 (3 units, 2), sevenths (which float16 rounds), 0 and 1."""
    index = metadata.LSTM_GATES.index(gate)
    low = [index / 7, step / 7, 0.0]
    high = [0.0, 1.0, (index + step) % 7 / 7]
    return np.array([low, high], dtype=np.float32).T


def write_probe_run(run_dir, writer_class=summary.GateSummaryWriter):
    """What LSTMGatesCallback(probe=(x, y), probe_gradients=True, histogram_freq=2) writes for one LSTM
    (per-unit saturation at every step, activation maps at histogram steps)."""
    writer = writer_class(run_dir)
    gates = metadata.LSTM_GATES
    for step in range(PROBE_STEPS):
        stats = {
            stat: np.array([probe_value(g, stat, step) for g in gates])
            for stat in metadata.ACTIVATION_STATS
            if stat != metadata.RETENTION
        }
        writer.write_gate_stats(PROBE_LAYER, "lstm", metadata.ACTIVATION, gates, stats)
        writer.write_scalar(
            PROBE_LAYER,
            "lstm",
            metadata.ACTIVATION,
            "forget",
            metadata.RETENTION,
            probe_value("forget", metadata.RETENTION, step),
        )
        writer.write_gate_stats(
            PROBE_LAYER, "lstm", "recurrent", gates, {metadata.GRAD_NORM: np.full(4, 1.0 / (step + 1))}
        )
        writer.write_unit_saturation(
            PROBE_LAYER, "lstm", gates, [probe_unit_saturation(g, step) for g in gates]
        )
        if step in PROBE_MAP_STEPS:
            writer.write_activation_maps(PROBE_LAYER, "lstm", gates, [probe_map(g, step) for g in gates])
        writer.end_step(step)
    writer.close()


def v1_value(layer, cell, part, gate, stat, value):
    """A `Summary.Value` as version 1 of the data contract wrote it: one per block and statistic."""
    content = {"version": 1, "layer": layer, "cell": cell, "part": part, "gate": gate, "stat": stat}
    if stat == metadata.HISTOGRAM:
        tensor, data_class = (
            tensor_util.make_tensor_proto(np.asarray(value, np.float64)),
            summary_pb2.DATA_CLASS_TENSOR,
        )
    elif stat in (metadata.ACTIVATION_MAP, metadata.UNIT_SATURATION):
        tensor, data_class = (
            tensor_util.make_tensor_proto(np.asarray(value, np.float32)),
            summary_pb2.DATA_CLASS_TENSOR,
        )
    else:
        tensor, data_class = tensor_util.make_tensor_proto(np.float32(value)), summary_pb2.DATA_CLASS_SCALAR
    return summary_pb2.Summary.Value(
        tag="/".join(("lstm_gates", layer, part, gate, stat)),
        tensor=tensor,
        metadata=summary_pb2.SummaryMetadata(
            plugin_data=summary_pb2.SummaryMetadata.PluginData(
                plugin_name=metadata.PLUGIN_NAME, content=json.dumps(content, sort_keys=True).encode("utf-8")
            ),
            data_class=data_class,
        ),
    )


class V1Writer:
    """`summary.GateSummaryWriter`'s API, writing version 1 events (as tb-lstm-gates 7124d5e did)."""

    def __init__(self, run_dir):
        self._writer = EventFileWriter(run_dir, filename_suffix=".v1")
        self._values = []

    def write_scalar(self, layer, cell, part, gate, stat, value):
        self._values.append(v1_value(layer, cell, part, gate, stat, value))

    def write_gate_stats(self, layer, cell, part, gates, gate_stats):
        for stat, values in gate_stats.items():
            for gate, value in zip(gates, values):
                self.write_scalar(layer, cell, part, gate, stat, value)

    def write_gate_histograms(self, layer, cell, part, gates, histograms):
        for gate, buckets in zip(gates, histograms):
            self._values.append(v1_value(layer, cell, part, gate, metadata.HISTOGRAM, buckets))

    def write_activation_maps(self, layer, cell, gates, maps):
        for gate, values in zip(gates, maps):
            self._values.append(
                v1_value(layer, cell, metadata.ACTIVATION, gate, metadata.ACTIVATION_MAP, values)
            )

    def write_unit_saturation(self, layer, cell, gates, fractions):
        for gate, values in zip(gates, fractions):
            self._values.append(
                v1_value(layer, cell, metadata.ACTIVATION, gate, metadata.UNIT_SATURATION, values)
            )

    def end_step(self, step):
        event = event_pb2.Event(
            step=step, wall_time=time.time(), summary=summary_pb2.Summary(value=self._values)
        )
        self._values = []
        self._writer.add_event(event)

    def close(self):
        self._writer.close()


def write_cell_run(run_dir, writer_class=summary.GateSummaryWriter, steps=4, first_step=0):
    """What the callback writes for a `Bidirectional(LSTM(3))` and a `GRU(2)` over 2 features, through
    `summary.CellLogger`: weights that drift step by step, histograms every other step (as with
    `histogram_freq=2`), penalties of some gates and the model's loss."""
    rng = np.random.default_rng(1)
    cells = [
        ("bi/forward_lstm/lstm_cell", layouts.keras_lstm(), (2, 3), 4),
        ("bi/backward_lstm/lstm_cell", layouts.keras_lstm(), (2, 3), 4),
        ("gru/gru_cell", layouts.keras_gru(), (6, 2), 3),
    ]
    weights = {
        layer: {
            "kernel": rng.normal(size=(n_in, gates * units)).astype(np.float32),
            "recurrent_kernel": rng.normal(size=(units, gates * units)).astype(np.float32),
            "bias": rng.normal(size=(2, gates * units) if gates == 3 else (gates * units,)).astype(
                np.float32
            ),
        }
        for layer, _, (n_in, units), gates in cells
    }
    writer = writer_class(run_dir)
    logger = summary.CellLogger(writer, bins=5)
    for step in range(first_step, first_step + steps):
        for layer, layout, _, _ in cells:
            weights[layer] = {
                name: w + rng.normal(0, 0.1, w.shape).astype(np.float32) for name, w in weights[layer].items()
            }
            logger.log_cell(layer, layout, weights[layer], histograms=step % 2 == 0)
        lstm = cells[0][0]
        writer.write_scalar(lstm, "lstm", "recurrent", "forget", metadata.PENALTY, 0.5 + step)
        writer.write_scalar(lstm, "lstm", "recurrent", "input", metadata.PENALTY, 0.25 + step)
        writer.write_scalar(lstm, "lstm", metadata.TOTAL, metadata.TOTAL, metadata.PENALTY, 0.75 + 2 * step)
        model = (metadata.MODEL_LAYER, metadata.MODEL_CELL, metadata.TOTAL, metadata.TOTAL)
        writer.write_scalar(*model, metadata.PENALTY, 1.0 + step)
        writer.write_scalar(*model, metadata.LOSS, 9.0 - step)
        writer.end_step(step)
    writer.close()


def write_malformed_run(run_dir):
    """lstm_gates series whose content is not JSON, from a newer version, or lacks fields, beside a valid one."""
    writer = EventFileWriter(run_dir)
    contents = {
        "lstm_gates/bad/json": b"not json",
        "lstm_gates/bad/version": b'{"version": 99, "layer": "new", "cell": "lstm", '
        b'"part": "input", "gate": "input", "stat": "l2"}',
        "lstm_gates/bad/fields": b'{"version": 1, "layer": "x"}',
        "lstm_gates/bad/v2_fields": b'{"version": 2, "layer": "y", "cell": "lstm", "kind": "stats", '
        b'"parts": ["input"]}',
        "lstm_gates/bad/v2_empty": b'{"version": 2, "layer": "e", "cell": "lstm", "kind": "histograms", '
        b'"parts": [], "gates": ["input"]}',
        "lstm_gates/bad/v2_stride": b'{"version": 2, "layer": "s", "cell": "lstm", "kind": "histograms", '
        b'"parts": ["input"], "gates": ["input"], "stride": 7}',
        "lstm_gates/bad/v2_kind": b'{"version": 2, "layer": "z", "cell": "lstm", "kind": "images", '
        b'"parts": ["input"], "gates": ["input"]}',
    }
    values = [
        summary_pb2.Summary.Value(
            tag=tag,
            tensor=tensor_util.make_tensor_proto(np.float32(1.0)),
            metadata=summary_pb2.SummaryMetadata(
                plugin_data=summary_pb2.SummaryMetadata.PluginData(
                    plugin_name=metadata.PLUGIN_NAME, content=content
                ),
                data_class=summary_pb2.DATA_CLASS_SCALAR,
            ),
        )
        for tag, content in contents.items()
    ]
    writer.add_event(event_pb2.Event(step=0, wall_time=1.0, summary=summary_pb2.Summary(value=values)))
    writer.close()
    valid = summary.GateSummaryWriter(run_dir)
    valid.write_scalar(MALFORMED_LAYER, "lstm", "input", "input", "l2", 1.0)
    valid.end_step(0)
    valid.close()


def train_keras_run(logdir, epochs=3):
    """Trains a tiny LSTM + GRU model with `LSTMGatesCallback` into `logdir/train`.

    Returns:
      dict from cell kind (`lstm`, `gru`) to a dict from step to the cell's
      `(kernel, recurrent_kernel, bias)` at that step.
    """
    import keras

    import tb_lstm_gates

    keras.utils.set_random_seed(0)
    lstm = keras.layers.LSTM(4, return_sequences=True)
    gru = keras.layers.GRU(3)
    model = keras.Sequential([keras.Input((5, 2)), lstm, gru, keras.layers.Dense(1)])
    model.compile("adam", "mse")
    weights = {"lstm": {}, "gru": {}}

    def record(step):
        for kind, layer in (("lstm", lstm), ("gru", gru)):
            cell = layer.cell
            weights[kind][step] = tuple(
                np.array(keras.ops.convert_to_numpy(w))
                for w in (cell.kernel, cell.recurrent_kernel, cell.bias)
            )

    recorder = keras.callbacks.LambdaCallback(
        on_train_begin=lambda logs: record(0),
        on_epoch_end=lambda epoch, logs: record(epoch + 1),
    )
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(16, 5, 2)), rng.normal(size=(16, 1))
    model.fit(
        x,
        y,
        epochs=epochs,
        batch_size=8,
        verbose=0,
        callbacks=[tb_lstm_gates.LSTMGatesCallback(os.fspath(logdir)), recorder],
    )
    return weights


def step_units(logdir):
    """The set of `step_unit`s the summary metadata under `logdir` records (what the tab reads)."""
    multiplexer = plugin_event_multiplexer.EventMultiplexer()
    multiplexer.AddRunsFromDirectory(os.fspath(logdir))
    multiplexer.Reload()
    contents = multiplexer.PluginRunToTagToContent(metadata.PLUGIN_NAME).values()
    return {metadata.parse_plugin_content(c).step_unit for tags in contents for c in tags.values()}
