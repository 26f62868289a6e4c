"""The writer's packing (version 2 of the data contract), read back through `load()`."""

import numpy as np
import pytest
from tensorboard.backend.event_processing import event_file_loader

import tb_lstm_gates
from tb_lstm_gates.core import layouts, stats
from tb_lstm_gates.logs import hparams, metadata, summary

LAYER = "lstm/lstm_cell"


def _events(writer):
    return [e for e in event_file_loader.EventFileLoader(writer.path).Load() if e.summary.value]


@pytest.mark.parametrize("largest, dtype", [(255, np.uint8), (256, np.uint16), (70000, np.uint32)])
def test_histogram_counts_take_the_smallest_unsigned_type_and_read_back_exactly(tmp_path, largest, dtype):
    buckets = np.array([[[-0.25, 0.0, 3.0], [0.0, 0.25, float(largest)]], [[1.0, 2.0, 0.0], [2.0, 3.0, 7.0]]])
    writer = summary.GateSummaryWriter(tmp_path)
    writer.write_gate_histograms(LAYER, "lstm", "recurrent", ("input", "forget"), buckets)
    writer.end_step(4)
    writer.close()
    (event,) = _events(writer)
    values = [
        v for v in event.summary.value if not v.tag.endswith(tuple("every_%d" % s for s in metadata.STRIDES))
    ]
    (value,) = values
    array = np.frombuffer(value.tensor.tensor_content, dtype=dtype)
    assert array.size == 2 * (8 // np.dtype(dtype).itemsize + 2)
    records = {r.gate: r.value for r in tb_lstm_gates.load(tmp_path)}
    np.testing.assert_array_equal(records["input"], buckets[0])
    np.testing.assert_array_equal(records["forget"], buckets[1])


def test_histograms_of_real_weights_read_back_with_float32_edges(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {
        "kernel": rng.normal(size=(3, 20)).astype(np.float32),
        "recurrent_kernel": rng.normal(size=(5, 20)).astype(np.float32),
        "bias": rng.normal(size=20).astype(np.float32),
    }
    writer = summary.GateSummaryWriter(tmp_path)
    summary.CellLogger(writer, bins=7).log_cell(LAYER, layouts.keras_lstm(), arrays)
    writer.end_step(0)
    writer.close()
    logged = {(r.part, r.gate, r.stat): r.value for r in tb_lstm_gates.load(tmp_path)}
    for part, gates, view in layouts.keras_lstm().blocks(arrays):
        block_stats, histograms = stats.gate_summary(view, bins=7)
        for g, gate in enumerate(gates):
            np.testing.assert_allclose(logged[part, gate, "histogram"], histograms[g], rtol=1e-6)
            assert logged[part, gate, "l2"] == pytest.approx(block_stats["l2"][g], rel=1e-6)


def test_one_event_per_step_packs_a_layers_statistics_into_one_tensor(tmp_path):
    writer = summary.GateSummaryWriter(tmp_path)
    gates = ("input", "forget")
    for part in ("input", "recurrent"):
        writer.write_gate_stats(
            LAYER, "lstm", part, gates, {"l2": np.array([1.0, 2.0]), "max": np.array([3.0, 4.0])}
        )
    writer.end_step(7)
    writer.close()
    (event,) = _events(writer)
    # Beside the packed tensor: the plain scalars of the HParams dashboard (logs/hparams.py).
    (value,) = [
        v
        for v in event.summary.value
        if "every_" not in v.tag and v.metadata.plugin_data.plugin_name == metadata.PLUGIN_NAME
    ]
    np.testing.assert_array_equal(
        np.frombuffer(value.tensor.tensor_content, np.float32).reshape(2, 2, 2), [[[1, 2], [3, 4]]] * 2
    )
    content = metadata.parse_plugin_content(value.metadata.plugin_data.content)
    assert (content.kind, content.shape) == (metadata.STATS_KIND, (2, 2, 2))
    # Step 7 is the first step of the file: in every stride too.
    assert sorted(v.tag for v in event.summary.value) == sorted(
        [value.tag]
        + ["%s/every_%d" % (value.tag, s) for s in metadata.STRIDES]
        + [hparams.metric_tag(LAYER, "forget", "recurrent_l2")]
    )


def test_a_statistic_of_one_part_shares_the_tensor_and_only_that_part_reads_it(tmp_path):
    """spectral_norm is on the recurrent part only: NaN elsewhere in the layer's one tensor, listed as missing."""
    writer = summary.GateSummaryWriter(tmp_path)
    logger = summary.CellLogger(writer, bins=3)
    rng = np.random.default_rng(0)
    arrays = {
        "kernel": rng.normal(size=(2, 12)),
        "recurrent_kernel": rng.normal(size=(3, 12)),
        "bias": np.ones(12),
    }
    logger.log_cell(LAYER, layouts.keras_lstm(), {k: v.astype(np.float32) for k, v in arrays.items()})
    writer.end_step(0)
    writer.close()
    (event,) = _events(writer)
    (value,) = [v for v in event.summary.value if "/stats/" in v.tag and "every_" not in v.tag]
    content = metadata.parse_plugin_content(value.metadata.plugin_data.content)
    spectral = [b for b in content.blocks if b.stat == metadata.SPECTRAL_NORM]
    assert [(b.part, b.gate) for b in spectral] == [("recurrent", g) for g in metadata.LSTM_GATES]
    grid = np.frombuffer(value.tensor.tensor_content, np.float32).reshape(content.shape)
    (p,), (s,) = {b.index[0] for b in spectral}, {b.index[1] for b in spectral}
    assert np.isnan(np.delete(grid, p, axis=0)[:, s]).all() and not np.isnan(grid[p]).any()
    assert len(content.blocks) == grid.size - 2 * len(metadata.LSTM_GATES)
    records = {r.gate: r.value for r in tb_lstm_gates.load(tmp_path) if r.stat == metadata.SPECTRAL_NORM}
    expected = stats.spectral_norm(arrays["recurrent_kernel"].astype(np.float32).reshape(3, 4, 3))
    assert list(records) == sorted(metadata.LSTM_GATES)
    np.testing.assert_allclose([records[g] for g in metadata.LSTM_GATES], expected, rtol=1e-6)


@pytest.mark.parametrize("missing", ["[[0, 0]", "[[0]]", "[[0, 5]]", "[[true, 0]]", "{}"])
def test_a_bad_missing_entry_is_refused(missing):
    content = (
        '{"version": 2, "layer": "l", "cell": "lstm", "kind": "stats", "parts": ["input"], "stats": ["l2"], '
        '"gates": ["input"], "missing": %s}' % missing
    )
    with pytest.raises(ValueError, match="missing|JSON"):
        metadata.parse_plugin_content(content)


@pytest.mark.parametrize(
    "buckets, problem",
    [
        (np.array([[[0.0, 1.0, 1.0], [1.0, 3.0, 1.0]]]), "evenly spaced"),
        (np.array([[[0.0, 1.0, 1.0], [1.5, 2.5, 1.0]]]), "contiguous"),
        (np.array([[[0.0, 1.0, 0.5]]]), "whole numbers"),
        (np.array([[0.0, 1.0, 1.0]]), "shape"),
    ],
)
def test_histograms_that_cannot_be_packed_are_refused_with_the_reason(tmp_path, buckets, problem):
    writer = summary.GateSummaryWriter(tmp_path)
    with pytest.raises(ValueError, match=problem):
        writer.write_gate_histograms(LAYER, "lstm", "recurrent", ("input",), buckets)
    writer.close()
