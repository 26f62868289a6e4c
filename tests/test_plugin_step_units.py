"""What the tab learns beside the data: the unit its steps count and the data contract's values.

Real event files (a Keras fit logging every 2 batches, writers of each unit,
a series from a newer version) read through TensorBoard's Python loader and
the plugin's routes, and through `load()`.
"""

import logging
import os
import warnings

import numpy as np
import pytest
from tensorboard.backend import application
from test_plugin_routes import _plugin, _python_provider, get_json
from werkzeug import test as werkzeug_test

import tb_lstm_gates
from tb_lstm_gates.core import layouts
from tb_lstm_gates.logs import metadata, summary
from tb_lstm_gates.plugin import unpack

LAYER = "lstm/lstm_cell"


def _write(run_dir, step_unit=None, layer=LAYER, steps=2):
    kwargs = {} if step_unit is None else {"step_unit": step_unit}
    writer = summary.GateSummaryWriter(run_dir, **kwargs)
    logger = summary.CellLogger(writer, bins=4)
    for step in range(steps):
        arrays = {
            "kernel": np.full((2, 12), step + 1.0, np.float32),
            "recurrent_kernel": np.ones((3, 12), np.float32),
            "bias": np.zeros(12, np.float32),
        }
        logger.log_cell(layer, layouts.keras_lstm(), arrays)
        writer.end_step(step)
    writer.close()


def _write_newer(run_dir):
    """A valid run beside a series whose metadata says a version this tb-lstm-gates does not read."""
    _write(run_dir)
    writer = summary.GateSummaryWriter(run_dir)
    newer = metadata.create_summary_metadata(
        "future/lstm_cell", metadata.STATS_KIND, "lstm", ["input"], ["l2"], ["input"]
    )
    newer.plugin_data.content = newer.plugin_data.content.replace(
        b'"version": %d' % metadata.PROTOCOL_VERSION, b'"version": %d' % (metadata.PROTOCOL_VERSION + 1)
    )
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.util import tensor_util

    value = summary_pb2.Summary.Value(
        tag="lstm_gates/future",
        metadata=newer,
        tensor=tensor_util.make_tensor_proto(np.ones((1, 1, 1), np.float32)),
    )
    writer._write(event_pb2.Event(step=0, wall_time=1.0, summary=summary_pb2.Summary(value=[value])))
    writer.close()


@pytest.fixture(scope="module")
def logdir(tmp_path_factory):
    import keras

    root = tmp_path_factory.mktemp("units")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((5, 2)), keras.layers.LSTM(3), keras.layers.Dense(1)])
    model.compile("adam", "mse")
    rng = np.random.default_rng(0)
    callback = tb_lstm_gates.LSTMGatesCallback(os.fspath(root / "batches"), update_freq=2)
    model.fit(
        rng.normal(size=(32, 5, 2)),
        rng.normal(size=(32, 1)),
        epochs=1,
        batch_size=4,
        verbose=0,
        callbacks=[callback],
    )
    _write(os.fspath(root / "global"), "global step")
    _write(os.fspath(root / "unknown"))
    # One run, two writers: a layer logged per epoch, another per batch.
    _write(os.fspath(root / "mixed"), "epoch", layer="a/lstm_cell")
    _write(os.fspath(root / "mixed"), "batch", layer="b/lstm_cell")
    _write_newer(os.fspath(root / "newer"))
    return root


@pytest.fixture(scope="module")
def client(logdir):
    provider = _python_provider(os.fspath(logdir))
    return werkzeug_test.Client(application.TensorBoardWSGI([_plugin(provider)], data_provider=provider))


def test_runs_reports_the_step_unit_of_each_run_and_layer(client):
    runs = {r["run"]: r for r in get_json(client, "runs")["runs"]}
    batches = runs["batches/train"]
    assert batches["step_unit"] == "batch", "update_freq=2 logs every 2 batches: the steps are batches"
    assert [layer["step_unit"] for layer in batches["layers"]] == ["batch"]
    assert runs["global"]["step_unit"] == "global step"
    assert runs["unknown"]["step_unit"] == "step", "a writer that does not say gives plain steps"
    mixed = runs["mixed"]
    assert {layer["layer"]: layer["step_unit"] for layer in mixed["layers"]} == {
        "a/lstm_cell": "epoch",
        "b/lstm_cell": "batch",
    }
    assert mixed["step_unit"] == "step", "a run whose layers disagree claims no unit"


def test_runs_sends_the_contract_the_tab_reads(client):
    contract = get_json(client, "runs")["contract"]
    assert contract == metadata.contract()
    for stat in metadata.SCALAR_STATS + metadata.PROBE_STATS:
        info = contract["stats"][stat]
        assert info["name"] and info["description"].endswith("."), stat
        assert info["scale"] in ("linear", "log"), stat
    assert contract["stats"]["update_ratio"]["scale"] == "log"
    assert contract["tanh_gates"] == ["cell", "candidate"]
    assert contract["saturation"] == {"sigmoid": [0.1, 0.9], "tanh": [-0.9, 0.9]}
    assert (contract["total"], contract["model_layer"], contract["activation"]) == (
        "total",
        "model",
        "activation",
    )
    assert "saturated" in contract["activation_stats"] and "saturated" not in contract["activation_rows"]


def test_newer_metadata_is_skipped_and_logged_once_per_process(logdir, caplog, monkeypatch):
    monkeypatch.setattr(unpack, "_warned", set())
    unpack._parse_content.cache_clear()
    provider = _python_provider(os.fspath(logdir))
    client = werkzeug_test.Client(application.TensorBoardWSGI([_plugin(provider)], data_provider=provider))
    with caplog.at_level(logging.WARNING, logger=unpack.logger.name):
        for _ in range(3):
            runs = {r["run"]: r for r in get_json(client, "runs")["runs"]}
    assert [layer["layer"] for layer in runs["newer"]["layers"]] == [LAYER], "the newer series is left out"
    warned = [r for r in caplog.records if r.name == unpack.logger.name]
    assert len(warned) == 1, [r.getMessage() for r in warned]
    assert "upgrade tb-lstm-gates" in warned[0].getMessage()


def test_load_warns_once_about_newer_metadata_and_reads_the_rest(logdir):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        records = tb_lstm_gates.load(os.fspath(logdir))
    newer = [w for w in caught if "newer version" in str(w.message)]
    assert len(newer) == 1, [str(w.message) for w in caught]
    assert "upgrade tb-lstm-gates" in str(newer[0].message)
    assert newer[0].filename == __file__, "the warning points at the caller of load()"
    assert {r.layer for r in records if r.run == "newer"} == {LAYER}


def test_the_writer_rejects_an_unknown_step_unit_naming_the_known_ones(tmp_path):
    with pytest.raises(ValueError, match="step_unit must be one of 'step', 'epoch', 'batch', 'global step'"):
        summary.GateSummaryWriter(tmp_path, step_unit="epochs")


def test_older_content_and_unknown_units_read_as_plain_steps():
    plain = metadata.create_summary_metadata(LAYER, metadata.STATS_KIND, "lstm", ["input"], ["l2"], ["input"])
    assert b"step_unit" not in plain.plugin_data.content, (
        "the default is not written: older readers see what they know"
    )
    assert metadata.parse_plugin_content(plain.plugin_data.content).step_unit == "step"
    future = plain.plugin_data.content.replace(b'"version"', b'"step_unit": "fortnight", "version"')
    assert metadata.parse_plugin_content(future).step_unit == "step"
    batch = metadata.create_summary_metadata(
        LAYER, metadata.STATS_KIND, "lstm", ["input"], ["l2"], ["input"], step_unit="batch"
    )
    assert metadata.parse_plugin_content(batch.plugin_data.content).step_unit == "batch"
