"""Version 1 and version 2 logs side by side in one log directory read the same.

Each scenario is written twice through the same writer API: under `v1/` as
tb-lstm-gates wrote it before the packed format (`plugin_logs.V1Writer`),
under `v2/` with today's `summary.GateSummaryWriter`; `mixed` is a run resumed
across the upgrade (steps 0..3 in version 1, 4..7 in version 2). `load()` and
every route, under both loaders, must not tell them apart.
"""

import os

import numpy as np
import plugin_logs
import pytest
from tensorboard.backend import application
from test_plugin_fuzz import rust_provider_of
from test_plugin_routes import _listing, _plugin, _python_provider, get_json
from werkzeug import test as werkzeug_test

import tb_lstm_gates
from tb_lstm_gates.core import layouts
from tb_lstm_gates.logs import metadata, summary

WRITERS = {"v1": plugin_logs.V1Writer, "v2": None}
SCENARIOS = {
    "cells": plugin_logs.write_cell_run,
    "penalized": plugin_logs.write_penalized_run,
    "probe": plugin_logs.write_probe_run,
}


SPECTRAL_RUN = "spectral"
SPECTRAL_LAYER = "lstm/lstm_cell"
SPECTRAL_STEPS = 3


def spectral_value(gate, step):
    """The spectral norm of `gate`'s recurrent block at `step` in the spectral run."""
    return (metadata.LSTM_GATES.index(gate) + 1.0) * (step + 1)


def _write_spectral_run(run_dir):
    """A Keras LSTM(3) whose recurrent block of gate g at step s is diag(g + 1, 0.5, 0.25) * (s + 1)."""
    writer = summary.GateSummaryWriter(run_dir)
    logger = summary.CellLogger(writer, bins=4)
    for step in range(SPECTRAL_STEPS):
        blocks = [np.diag([spectral_value(g, step), 0.5, 0.25]) for g in metadata.LSTM_GATES]
        arrays = {
            "kernel": np.ones((2, 12), np.float32),
            "recurrent_kernel": np.concatenate(blocks, axis=1).astype(np.float32),
            "bias": np.zeros(12, np.float32),
        }
        logger.log_cell(SPECTRAL_LAYER, layouts.keras_lstm(), arrays)
        writer.end_step(step)
    writer.close()


def _write(function, run_dir, writer_class, **kwargs):
    if writer_class is None:
        function(run_dir, **kwargs)
    else:
        function(run_dir, writer_class=writer_class, **kwargs)


@pytest.fixture(scope="module")
def logdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("versions")
    for version, writer_class in WRITERS.items():
        for name, function in SCENARIOS.items():
            _write(function, os.fspath(root / version / name), writer_class)
    _write_spectral_run(os.fspath(root / SPECTRAL_RUN))
    mixed = os.fspath(root / "mixed")
    plugin_logs.write_cell_run(mixed, writer_class=plugin_logs.V1Writer, steps=4)
    plugin_logs.write_cell_run(mixed, steps=4, first_step=4)
    return os.fspath(root)


def _key(record, run):
    return (run,) + tuple(record[1:6]) + (record.step,)


def _assert_same_values(a, b, where):
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        # Histogram edges are float32 in version 2, activation maps and unit saturations float16.
        np.testing.assert_allclose(
            np.asarray(a, np.float64), np.asarray(b, np.float64), rtol=1e-3, err_msg=where
        )
    else:
        assert a == b or (np.isnan(a) and np.isnan(b)), where


def test_load_reads_version_1_and_version_2_runs_the_same(logdir):
    records = tb_lstm_gates.load(logdir)
    by_version = {}
    for r in records:
        version, _, name = r.run.partition("/")
        if version in WRITERS:
            by_version.setdefault(version, {})[_key(r, name)] = r.value
    v1, v2 = by_version["v1"], by_version["v2"]
    assert sorted(v1) == sorted(v2)
    for key in v1:
        _assert_same_values(v1[key], v2[key], key)
    stats = {key[5] for key in v2}
    # The probe's sequences and tokens came after version 1, with their own kind versions.
    older = set(metadata.TENSOR_STATS) - {metadata.PROBE_SEQUENCES, metadata.PROBE_TOKENS}
    assert set(metadata.SCALAR_STATS) | older | {"penalty", "loss", "grad_norm"} <= stats
    # update_ratio starts at the second step, histograms every other step.
    ratio_steps = sorted({k[6] for k in v2 if k[0] == "cells" and k[5] == "update_ratio"})
    assert ratio_steps == [1, 2, 3]
    assert sorted({k[6] for k in v2 if k[0] == "cells" and k[5] == "histogram"}) == [0, 2]


def test_load_joins_a_run_resumed_across_the_upgrade(logdir):
    records = [r for r in tb_lstm_gates.load(logdir) if r.run == "mixed"]
    l2 = [
        r
        for r in records
        if (r.layer, r.part, r.gate, r.stat) == ("gru/gru_cell", "input_bias", "reset", "l2")
    ]
    assert [r.step for r in l2] == list(range(8))
    histograms = [
        r for r in records if r.stat == "histogram" and r.part == "recurrent" and r.gate == "forget"
    ]
    assert sorted({r.step for r in histograms}) == [0, 2, 4, 6]
    for r in histograms:
        assert r.value.shape == (5, 3) and r.value[:, 2].sum() == 9  # a (3, 3) block


@pytest.fixture(scope="module", params=["python", "rust"])
def client(request, logdir):
    provider = _python_provider(logdir)
    if request.param == "rust":
        provider = rust_provider_of(logdir, _listing(provider))
    return werkzeug_test.Client(application.TensorBoardWSGI([_plugin(provider)], data_provider=provider))


def _without_runs_and_times(body, run):
    """`body` with the run name `run` replaced by `R` and wall times dropped."""
    if isinstance(body, dict):
        return {
            k: _without_runs_and_times(v, run)
            for k, v in body.items()
            if k not in ("wall_time", "wall_times")
        }
    if isinstance(body, list):
        return [_without_runs_and_times(v, run) for v in body]
    return "R" if body == run else body


def _assert_same_json(a, b, where=""):
    if isinstance(a, dict):
        assert sorted(a) == sorted(b), where
        for k in a:
            _assert_same_json(a[k], b[k], where + "/" + k)
    elif isinstance(a, list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same_json(x, y, "%s[%d]" % (where, i))
    elif isinstance(a, float) and isinstance(b, float):
        assert np.isclose(a, b, rtol=1e-3, atol=1e-6), (where, a, b)
    else:
        assert a == b, (where, a, b)


def _pair(client, path, name, **params):
    """The route's answers for `v1/name` and `v2/name`, run names and wall times left out."""
    bodies = []
    for version in WRITERS:
        run = "%s/%s" % (version, name)
        body = get_json(client, path, **{k: (run if v == "RUN" else v) for k, v in params.items()})
        bodies.append(_without_runs_and_times(body, run))
    return bodies


def test_runs_lists_version_1_and_version_2_runs_the_same(client):
    runs = {r["run"]: r for r in get_json(client, "runs")["runs"]}
    for name in SCENARIOS:
        v1, v2 = (_without_runs_and_times(runs["%s/%s" % (v, name)], "%s/%s" % (v, name)) for v in WRITERS)
        assert v1 == v2, name
    (gru,) = [layer for layer in runs["v2/cells"]["layers"] if layer["cell"] == "gru"]
    assert gru["parts"] == ["input", "recurrent", "input_bias", "recurrent_bias"]
    assert gru["stats"] == list(metadata.SCALAR_STATS)
    assert runs["v2/cells"]["regularization"] is True
    (probe,) = runs["v2/probe"]["layers"]
    assert probe["unit_saturation"] is True and probe["activation_maps"] is True
    assert not any(layer["unit_saturation"] for layer in runs["v2/cells"]["layers"])


@pytest.mark.parametrize("stat", list(metadata.SCALAR_STATS) + ["penalty"])
@pytest.mark.parametrize("layer", ["bi/forward_lstm/lstm_cell", "gru/gru_cell"])
def test_series_serve_version_1_and_version_2_the_same(client, layer, stat):
    if stat == "penalty" and layer == "gru/gru_cell":
        return
    v1, v2 = _pair(client, "series", "cells", layer=layer, stat=stat, run="RUN")
    _assert_same_json(v1, v2)
    assert v2["series"] and all(s["steps"] for s in v2["series"])


@pytest.mark.parametrize("stat", list(metadata.PROBE_STATS))
def test_probe_series_serve_version_1_and_version_2_the_same(client, stat):
    v1, v2 = _pair(client, "series", "probe", layer=plugin_logs.PROBE_LAYER, stat=stat, run="RUN")
    _assert_same_json(v1, v2)


@pytest.mark.parametrize("part, gate", [("input", "input"), ("recurrent", "forget"), ("bias", "output")])
def test_histograms_serve_version_1_and_version_2_the_same(client, part, gate):
    v1, v2 = _pair(
        client, "histograms", "cells", run="RUN", layer="bi/backward_lstm/lstm_cell", part=part, gate=gate
    )
    _assert_same_json(v1, v2)
    assert [h["step"] for h in v2["histograms"]] == [0, 2]


@pytest.mark.parametrize("step", [None, "0", "2"])
@pytest.mark.parametrize("gate", list(metadata.LSTM_GATES))
def test_activation_maps_serve_version_1_and_version_2_the_same(client, gate, step):
    params = dict(run="RUN", layer=plugin_logs.PROBE_LAYER, gate=gate)
    if step is not None:
        params["step"] = step
    v1, v2 = _pair(client, "activation_map", "probe", **params)
    _assert_same_json(v1, v2)


@pytest.mark.parametrize("step", [None, "0", "2"])
@pytest.mark.parametrize("gate", list(metadata.LSTM_GATES))
def test_unit_saturation_serves_version_1_and_version_2_the_same(client, gate, step):
    params = dict(run="RUN", layer=plugin_logs.PROBE_LAYER, gate=gate)
    if step is not None:
        params["step"] = step
    v1, v2 = _pair(client, "unit_saturation", "probe", **params)
    _assert_same_json(v1, v2)
    (run,) = v2["runs"]
    assert run["steps"] == list(range(plugin_logs.PROBE_STEPS))
    assert run["step"] == (plugin_logs.PROBE_STEPS - 1 if step is None else int(step))


@pytest.mark.parametrize("name", ["cells", "penalized", "probe"])
def test_findings_serve_version_1_and_version_2_the_same(client, name):
    v1, v2 = _pair(client, "findings", name, run="RUN")
    _assert_same_json(v1, v2)
    assert [c["run"] for c in v2["counts"]] == ["R"]


@pytest.mark.parametrize("name", ["cells", "penalized"])
def test_regularization_serves_version_1_and_version_2_the_same(client, name):
    v1, v2 = _pair(client, "regularization", name, run="RUN")
    _assert_same_json(v1, v2)
    assert {s["stat"] for s in v2["series"]} == {"penalty", "loss"}


def test_a_run_resumed_across_the_upgrade_is_served_as_one(client):
    body = get_json(client, "series", layer="gru/gru_cell", stat="l2", run="mixed")
    assert len(body["series"]) == 12
    assert {tuple(s["steps"]) for s in body["series"]} == {tuple(range(8))}
    # A new process has no previous weights: no update_ratio at its first step.
    ratio = get_json(client, "series", layer="gru/gru_cell", stat="update_ratio", run="mixed")
    assert {tuple(s["steps"]) for s in ratio["series"]} == {(1, 2, 3, 5, 6, 7)}
    histograms = get_json(
        client, "histograms", run="mixed", layer="bi/forward_lstm/lstm_cell", part="recurrent", gate="cell"
    )
    assert [h["step"] for h in histograms["histograms"]] == [0, 2, 4, 6]
    penalties = get_json(client, "regularization", run="mixed")["series"]
    assert {tuple(s["steps"]) for s in penalties} == {tuple(range(8))}


def test_version_2_packs_a_layer_step_into_few_time_series(logdir):
    """What the packing buys: per LSTM layer, the first step's statistics, the later
    steps' statistics (with update_ratio), the histograms and the penalties."""
    provider = _python_provider(logdir)
    listing = _listing(provider)
    v2_tags = {tag for run, tag in listing if run == "v2/cells" and "/bi/forward_lstm/" in tag}
    v1_tags = {tag for run, tag in listing if run == "v1/cells" and "/bi/forward_lstm/" in tag}
    packings = {tag.split("/every_")[0] for tag in v2_tags}
    # Weight statistics without and with update_ratio (spectral_norm, on the recurrent part
    # only, in the same tensor), histograms, 2 penalty packings.
    assert len(packings) == 5
    # Each also in every stride, which holds the first step of its series.
    assert v2_tags == packings | {"%s/every_%d" % (p, s) for p in packings for s in metadata.STRIDES}
    # Version 1: per part and gate each statistic but spectral_norm and the histogram,
    # spectral_norm per recurrent gate, then 2 penalties and the layer's total.
    assert len(v1_tags) == 3 * 4 * (len(metadata.SCALAR_STATS) - 1 + 1) + 4 + 3


def test_version_2_round_trips_spectral_norm_and_unit_saturation_through_load(logdir):
    records = tb_lstm_gates.load(logdir)
    spectral = [r for r in records if r.run == SPECTRAL_RUN and r.stat == metadata.SPECTRAL_NORM]
    assert {(r.part, r.gate) for r in spectral} == {("recurrent", g) for g in metadata.LSTM_GATES}
    for r in spectral:
        assert r.value == pytest.approx(spectral_value(r.gate, r.step), rel=1e-6), r
    assert len(spectral) == 4 * SPECTRAL_STEPS
    saturation = [r for r in records if r.run == "v2/probe" and r.stat == metadata.UNIT_SATURATION]
    assert {(r.part, r.gate, r.step) for r in saturation} == {
        (metadata.ACTIVATION, g, s) for g in metadata.LSTM_GATES for s in range(plugin_logs.PROBE_STEPS)
    }
    for r in saturation:
        expected = plugin_logs.probe_unit_saturation(r.gate, r.step)
        assert r.value.dtype == np.float32 and r.value.shape == expected.shape
        # float16 keeps 11 significant bits; 0 and 1 come back exactly.
        np.testing.assert_allclose(r.value, expected, rtol=2**-11, atol=0)


def test_version_2_serves_spectral_norm_and_unit_saturation(client):
    body = get_json(client, "series", layer=SPECTRAL_LAYER, stat=metadata.SPECTRAL_NORM, run=SPECTRAL_RUN)
    assert [(s["part"], s["gate"]) for s in body["series"]] == [("recurrent", g) for g in metadata.LSTM_GATES]
    for s in body["series"]:
        assert s["steps"] == list(range(SPECTRAL_STEPS))
        np.testing.assert_allclose(s["values"], [spectral_value(s["gate"], t) for t in s["steps"]], rtol=1e-6)
    runs = {r["run"]: r for r in get_json(client, "runs")["runs"]}
    (layer,) = runs[SPECTRAL_RUN]["layers"]
    assert metadata.SPECTRAL_NORM in layer["stats"] and layer["unit_saturation"] is False
    for step in range(plugin_logs.PROBE_STEPS):
        body = get_json(
            client,
            "unit_saturation",
            layer=plugin_logs.PROBE_LAYER,
            gate="cell",
            run="v2/probe",
            step=str(step),
        )
        (run,) = body["runs"]
        assert run["step"] == step
        expected = plugin_logs.probe_unit_saturation("cell", step)
        np.testing.assert_allclose(run["units"], expected, rtol=2**-11, atol=0)
