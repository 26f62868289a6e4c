"""The plugin's routes over real event files, read by both TensorBoard loaders."""

import argparse
import os
import time
import uuid

import numpy as np
import plugin_logs
import pytest
from hypothesis import given
from hypothesis import strategies as st
from tensorboard.backend import application
from tensorboard.backend.event_processing import data_ingester, plugin_event_multiplexer
from tensorboard.backend.event_processing import data_provider as multiplexer_data_provider
from tensorboard.context import RequestContext
from tensorboard.data import server_ingester
from tensorboard.plugins import base_plugin
from tensorboard.util import grpc_util
from werkzeug import test as werkzeug_test

from tb_lstm_gates.logs import metadata
from tb_lstm_gates.plugin import plugin as plugin_module
from tb_lstm_gates.plugin import unpack
from tb_lstm_gates.plugin.loader import LSTMGatesLoader

ROUTE = "/data/plugin/lstm_gates/"
LSTM_GATES = list(metadata.LSTM_GATES)
GRU_GATES = list(metadata.GRU_GATES)


@pytest.fixture(scope="session")
def logdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("logs")
    weights = plugin_logs.train_keras_run(root)
    plugin_logs.write_penalized_run(os.fspath(root / plugin_logs.PENALIZED_RUN))
    plugin_logs.write_long_run(os.fspath(root / plugin_logs.LONG_RUN))
    plugin_logs.write_malformed_run(os.fspath(root / plugin_logs.MALFORMED_RUN))
    plugin_logs.write_probe_run(os.fspath(root / plugin_logs.PROBE_RUN))
    return root, weights


@pytest.fixture(scope="session")
def weights(logdir):
    return logdir[1]


def _sampling_flags():
    """`--samples_per_plugin` as TensorBoard hands it to the loaders, after our `fix_flags`."""
    flags = argparse.Namespace(samples_per_plugin={})
    LSTMGatesLoader().fix_flags(flags)
    return flags.samples_per_plugin


def _python_provider(path):
    multiplexer = plugin_event_multiplexer.EventMultiplexer(
        size_guidance=data_ingester.DEFAULT_SIZE_GUIDANCE,
        tensor_size_guidance={**data_ingester.DEFAULT_TENSOR_SIZE_GUIDANCE, **_sampling_flags()},
    )
    multiplexer.AddRunsFromDirectory(path)
    multiplexer.Reload()
    return multiplexer_data_provider.MultiplexerDataProvider(multiplexer, path)


def _listing(provider):
    ctx = RequestContext()
    listing = {}
    for read in (provider.list_scalars, provider.list_tensors):
        for run, tags in read(ctx, experiment_id="", plugin_name=metadata.PLUGIN_NAME).items():
            for tag, series in tags.items():
                listing[run, tag] = series.max_step
    return listing


@pytest.fixture(scope="session")
def python_provider(logdir):
    return _python_provider(os.fspath(logdir[0]))


@pytest.fixture(scope="session")
def rust_provider(logdir, python_provider):
    ingester = server_ingester.SubprocessServerDataIngester(
        server_binary=server_ingester.get_server_binary(),
        logdir=os.fspath(logdir[0]),
        reload_interval=0,
        channel_creds_type=grpc_util.ChannelCredsType.LOCAL,
        samples_per_plugin=_sampling_flags(),
    )
    ingester.start()
    provider = ingester.data_provider
    # The data server loads in the background: wait until it lists what
    # the Python loader read synchronously.
    expected = _listing(python_provider)
    deadline = time.time() + 60
    while _listing(provider) != expected:
        assert time.time() < deadline, "RustBoard did not load the log directory"
        time.sleep(0.2)
    return provider


@pytest.fixture(scope="session", params=["python", "rust"])
def provider(request):
    return request.getfixturevalue(request.param + "_provider")


def _plugin(provider):
    return LSTMGatesLoader().load(base_plugin.TBContext(data_provider=provider))


@pytest.fixture(scope="session")
def plugin(provider):
    return _plugin(provider)


@pytest.fixture(scope="session")
def client(plugin, provider):
    return werkzeug_test.Client(application.TensorBoardWSGI([plugin], data_provider=provider))


def get_json(client, path, **params):
    response = client.get(ROUTE + path, query_string=params)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    return response.get_json()


def _layers(client, run):
    (entry,) = [r for r in get_json(client, "runs")["runs"] if r["run"] == run]
    return entry


def _layer_name(client, cell):
    (layer,) = [layer["layer"] for layer in _layers(client, "train")["layers"] if layer["cell"] == cell]
    return layer


# runs


def test_runs_lists_every_run_with_data_and_the_layers_it_holds(client):
    runs = get_json(client, "runs")["runs"]
    assert [r["run"] for r in runs] == sorted(
        [
            "train",
            plugin_logs.PENALIZED_RUN,
            plugin_logs.LONG_RUN,
            plugin_logs.MALFORMED_RUN,
            plugin_logs.PROBE_RUN,
        ]
    )
    train = _layers(client, "train")
    assert train["regularization"] is False
    by_cell = {layer["cell"]: layer for layer in train["layers"]}
    assert set(by_cell) == {"lstm", "gru"}
    assert by_cell["lstm"]["parts"] == ["input", "recurrent", "bias"]
    assert by_cell["lstm"]["gates"] == LSTM_GATES
    assert by_cell["gru"]["parts"] == ["input", "recurrent", "input_bias", "recurrent_bias"]
    assert by_cell["gru"]["gates"] == GRU_GATES
    for layer in by_cell.values():
        assert layer["stats"] == list(metadata.SCALAR_STATS)
        assert layer["histograms"] is True
        assert layer["activation_maps"] is False
        assert layer["penalties"] is False


def test_runs_lists_penalties_but_not_the_model_as_a_layer(client):
    penalized = _layers(client, plugin_logs.PENALIZED_RUN)
    assert penalized["regularization"] is True
    (layer,) = penalized["layers"]
    assert layer["layer"] == plugin_logs.PENALIZED_LAYER
    assert layer["penalties"] is True
    assert layer["histograms"] is False
    assert layer["stats"] == ["l2"]
    assert layer["parts"] == ["input", "recurrent"]
    assert layer["gates"] == ["input", "forget"]


def test_runs_lists_probe_statistics_after_the_weight_statistics_and_the_activation_maps(client):
    (layer,) = _layers(client, plugin_logs.PROBE_RUN)["layers"]
    assert layer["layer"] == plugin_logs.PROBE_LAYER
    assert layer["parts"] == ["recurrent", "activation"]
    assert layer["gates"] == LSTM_GATES
    assert layer["stats"] == list(metadata.PROBE_STATS)
    assert layer["activation_maps"] is True
    assert layer["histograms"] is False


def test_runs_skips_series_with_malformed_metadata(client):
    malformed = _layers(client, plugin_logs.MALFORMED_RUN)
    assert [layer["layer"] for layer in malformed["layers"]] == [plugin_logs.MALFORMED_LAYER]


# series


def _lstm_blocks(kernel, recurrent_kernel, bias):
    units = recurrent_kernel.shape[0]
    for part, weight in (("input", kernel), ("recurrent", recurrent_kernel), ("bias", bias)):
        for k, gate in enumerate(LSTM_GATES):
            yield part, gate, weight[..., k * units : (k + 1) * units]


def _gru_blocks(kernel, recurrent_kernel, bias):
    units = recurrent_kernel.shape[0]
    pieces = (
        ("input", kernel),
        ("recurrent", recurrent_kernel),
        ("input_bias", bias[0]),
        ("recurrent_bias", bias[1]),
    )
    for part, weight in pieces:
        for k, gate in enumerate(GRU_GATES):
            yield part, gate, weight[..., k * units : (k + 1) * units]


@pytest.mark.parametrize("cell, blocks", [("lstm", _lstm_blocks), ("gru", _gru_blocks)])
def test_series_l2_is_the_norm_of_each_block_of_the_trained_weights(client, weights, cell, blocks):
    layer = _layer_name(client, cell)
    body = get_json(client, "series", layer=layer, stat="l2", run="train")
    assert body["layer"] == layer and body["stat"] == "l2"
    steps = sorted(weights[cell])
    assert steps == [0, 1, 2, 3]
    expected = {}
    for step in steps:
        for part, gate, block in blocks(*weights[cell][step]):
            expected.setdefault((part, gate), []).append(np.linalg.norm(block))
    assert [(s["part"], s["gate"]) for s in body["series"]] == list(expected)
    for series in body["series"]:
        assert series["run"] == "train"
        assert series["steps"] == steps
        assert len(series["wall_times"]) == len(steps)
        np.testing.assert_allclose(series["values"], expected[series["part"], series["gate"]], rtol=1e-5)


def test_series_sends_nonfinite_values_as_null(client):
    body = get_json(
        client, "series", layer=plugin_logs.PENALIZED_LAYER, stat="l2", run=plugin_logs.PENALIZED_RUN
    )
    (series,) = body["series"]
    assert series["steps"] == [0, 1, 2, 3, 4]
    assert series["values"] == [0.0, 1.0, None, None, 4.0]


def test_series_reads_only_the_requested_runs(client):
    layer = plugin_logs.PENALIZED_LAYER
    body = get_json(client, "series", layer=layer, stat="penalty", run=plugin_logs.PENALIZED_RUN)
    assert [(s["run"], s["part"], s["gate"]) for s in body["series"]] == [
        (plugin_logs.PENALIZED_RUN, "input", "input"),
        (plugin_logs.PENALIZED_RUN, "recurrent", "forget"),
        (plugin_logs.PENALIZED_RUN, "total", "total"),
    ]
    response = client.get(
        ROUTE + "series", query_string={"layer": layer, "stat": "penalty", "run": [plugin_logs.LONG_RUN]}
    )
    assert response.status_code == 404


def test_series_serves_every_step_of_a_long_run(client):
    body = get_json(client, "series", layer=plugin_logs.LONG_LAYER, stat="l2")
    (series,) = body["series"]
    assert series["steps"] == list(range(plugin_logs.LONG_STEPS))
    assert series["values"] == [plugin_logs.long_value(s) for s in range(plugin_logs.LONG_STEPS)]


def test_series_downsamples_evenly_keeping_first_and_last(client):
    body = get_json(client, "series", layer=plugin_logs.LONG_LAYER, stat="l2", samples="10")
    (series,) = body["series"]
    assert series["steps"] == [0, 111, 222, 333, 444, 555, 666, 777, 888, 999]
    assert series["values"] == [plugin_logs.long_value(s) for s in series["steps"]]


@pytest.mark.parametrize("stat", [s for s in metadata.ACTIVATION_STATS if s != metadata.RETENTION])
def test_series_serves_each_activation_statistic_of_every_gate(client, stat):
    body = get_json(client, "series", layer=plugin_logs.PROBE_LAYER, stat=stat, run=plugin_logs.PROBE_RUN)
    assert [(s["part"], s["gate"]) for s in body["series"]] == [("activation", g) for g in LSTM_GATES]
    for series in body["series"]:
        assert series["steps"] == list(range(plugin_logs.PROBE_STEPS))
        expected = [plugin_logs.probe_value(series["gate"], stat, step) for step in series["steps"]]
        np.testing.assert_allclose(series["values"], expected, rtol=1e-6)


def test_series_serves_retention_of_the_forget_gate_and_gradient_norms_per_block(client):
    body = get_json(
        client, "series", layer=plugin_logs.PROBE_LAYER, stat="retention", run=plugin_logs.PROBE_RUN
    )
    (series,) = body["series"]
    assert (series["part"], series["gate"]) == ("activation", "forget")
    np.testing.assert_allclose(
        series["values"], [plugin_logs.probe_value("forget", "retention", s) for s in range(3)]
    )
    body = get_json(
        client, "series", layer=plugin_logs.PROBE_LAYER, stat="grad_norm", run=plugin_logs.PROBE_RUN
    )
    assert [(s["part"], s["gate"]) for s in body["series"]] == [("recurrent", g) for g in LSTM_GATES]
    np.testing.assert_allclose(body["series"][0]["values"], [1.0, 0.5, 1.0 / 3], rtol=1e-6)


# activation maps


def _map_rows(gate, step):
    return [[None if np.isnan(x) else float(x) for x in row] for row in plugin_logs.probe_map(gate, step)]


def test_activation_map_defaults_to_the_last_step_and_lists_the_steps_with_maps(client):
    body = get_json(
        client, "activation_map", run=plugin_logs.PROBE_RUN, layer=plugin_logs.PROBE_LAYER, gate="forget"
    )
    assert (body["run"], body["layer"], body["gate"]) == (
        plugin_logs.PROBE_RUN,
        plugin_logs.PROBE_LAYER,
        "forget",
    )
    assert body["steps"] == list(plugin_logs.PROBE_MAP_STEPS)
    assert body["step"] == 2
    assert (body["time_steps"], body["units"]) == (4, 3)
    assert isinstance(body["wall_time"], float)
    assert body["values"] == _map_rows("forget", 2)
    assert body["values"][-1] == [None, None, None]  # the masked time step


def test_activation_map_of_a_chosen_step_and_gate(client):
    params = dict(run=plugin_logs.PROBE_RUN, layer=plugin_logs.PROBE_LAYER)
    body = get_json(client, "activation_map", gate="cell", step="0", **params)
    assert body["step"] == 0
    assert body["values"] == _map_rows("cell", 0)


def test_activation_map_impl_takes_plain_values(plugin):
    body = plugin.activation_map_impl(
        RequestContext(), "", run=plugin_logs.PROBE_RUN, layer=plugin_logs.PROBE_LAYER, gate="input", step=0
    )
    assert body["values"] == _map_rows("input", 0)


def test_histograms_do_not_serve_activation_maps(client):
    params = dict(run=plugin_logs.PROBE_RUN, layer=plugin_logs.PROBE_LAYER, part="activation", gate="forget")
    assert client.get(ROUTE + "histograms", query_string=params).status_code == 404


# histograms


def test_histograms_of_one_block_count_its_weights(client):
    layer = _layer_name(client, "lstm")
    body = get_json(client, "histograms", run="train", layer=layer, part="recurrent", gate="forget")
    assert (body["run"], body["layer"], body["part"], body["gate"]) == ("train", layer, "recurrent", "forget")
    assert [h["step"] for h in body["histograms"]] == [0, 1, 2, 3]
    for histogram in body["histograms"]:
        buckets = np.array(histogram["buckets"])
        assert buckets.shape[1] == 3
        assert buckets[:, 2].sum() == 4 * 4  # a (units, units) block
        assert np.all(buckets[:, 0] <= buckets[:, 1])


def test_histograms_downsample_keeping_first_and_last(client):
    params = dict(run=plugin_logs.LONG_RUN, layer=plugin_logs.LONG_LAYER, part="recurrent", gate="forget")
    body = get_json(client, "histograms", **params)
    assert [h["step"] for h in body["histograms"]] == list(range(plugin_logs.LONG_STEPS))
    body = get_json(client, "histograms", samples="4", **params)
    assert [h["step"] for h in body["histograms"]] == [0, 333, 666, 999]
    assert body["histograms"][1]["buckets"] == [[0.0, 1.0, 333.0], [1.0, 2.0, 1.0]]


# regularization


def test_regularization_returns_block_layer_and_model_penalties_and_the_loss(client):
    body = get_json(client, "regularization", run=plugin_logs.PENALIZED_RUN)
    keys = [(s["run"], s["layer"], s["cell"], s["part"], s["gate"], s["stat"]) for s in body["series"]]
    run, layer = plugin_logs.PENALIZED_RUN, plugin_logs.PENALIZED_LAYER
    assert keys == [
        (run, layer, "lstm", "input", "input", "penalty"),
        (run, layer, "lstm", "recurrent", "forget", "penalty"),
        (run, layer, "lstm", "total", "total", "penalty"),
        (run, "model", "model", "total", "total", "loss"),
        (run, "model", "model", "total", "total", "penalty"),
    ]
    steps = [0, 1, 2, 3, 4]
    for series in body["series"]:
        assert series["steps"] == steps
        if series["layer"] == "model":
            expected = [100.0 - s if series["stat"] == "loss" else 10.0 + s for s in steps]
        else:
            expected = [plugin_logs.penalty_value(series["part"], series["gate"], s) for s in steps]
        np.testing.assert_allclose(series["values"], expected, rtol=1e-6)


def test_regularization_of_all_runs_holds_only_runs_with_penalties(client):
    body = get_json(client, "regularization")
    assert {s["run"] for s in body["series"]} == {plugin_logs.PENALIZED_RUN}
    assert get_json(client, "regularization", run="train") == {"series": []}


# errors


@pytest.mark.parametrize(
    "path, params",
    [
        ("series", {"stat": "l2"}),
        ("series", {"layer": plugin_logs.LONG_LAYER}),
        ("series", {"layer": "", "stat": "l2"}),
        ("series", {"layer": [plugin_logs.LONG_LAYER, "x"], "stat": "l2"}),
        ("series", {"layer": plugin_logs.LONG_LAYER, "stat": "l2", "samples": "abc"}),
        ("series", {"layer": plugin_logs.LONG_LAYER, "stat": "l2", "samples": "1"}),
        ("series", {"layer": plugin_logs.LONG_LAYER, "stat": "l2", "samples": "0"}),
        ("series", {"layer": plugin_logs.LONG_LAYER, "stat": "l2", "samples": "-5"}),
        ("series", {"layer": plugin_logs.LONG_LAYER, "stat": "l2", "samples": "2.5"}),
        ("series", {"layer": plugin_logs.LONG_LAYER, "stat": "l2", "samples": "10001"}),
        ("series", {"layer": plugin_logs.LONG_LAYER, "stat": "l2", "samples": ["5", "6"]}),
        ("histograms", {"run": "long", "layer": plugin_logs.LONG_LAYER, "part": "recurrent"}),
        (
            "histograms",
            {
                "run": ["long", "train"],
                "layer": plugin_logs.LONG_LAYER,
                "part": "recurrent",
                "gate": "forget",
            },
        ),
        ("regularization", {"samples": ""}),
        ("activation_map", {"run": "probe", "layer": plugin_logs.PROBE_LAYER}),
        ("activation_map", {"run": "probe", "layer": plugin_logs.PROBE_LAYER, "gate": "forget", "step": "x"}),
        (
            "activation_map",
            {"run": "probe", "layer": plugin_logs.PROBE_LAYER, "gate": "forget", "step": "-1"},
        ),
        (
            "activation_map",
            {"run": "probe", "layer": plugin_logs.PROBE_LAYER, "gate": "forget", "step": ["0", "2"]},
        ),
    ],
)
def test_malformed_parameters_answer_400(client, path, params):
    response = client.get(ROUTE + path, query_string=params)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.mimetype == "text/plain"


@pytest.mark.parametrize(
    "path, params",
    [
        ("series", {"layer": "nope", "stat": "l2"}),
        ("series", {"layer": plugin_logs.LONG_LAYER, "stat": "nope"}),
        ("series", {"layer": plugin_logs.LONG_LAYER, "stat": "histogram"}),
        ("series", {"layer": plugin_logs.LONG_LAYER, "stat": "l2", "run": "nope"}),
        ("series", {"layer": "../../etc/passwd", "stat": "l2"}),
        (
            "histograms",
            {"run": "nope", "layer": plugin_logs.LONG_LAYER, "part": "recurrent", "gate": "forget"},
        ),
        ("histograms", {"run": "long", "layer": "nope", "part": "recurrent", "gate": "forget"}),
        ("histograms", {"run": "long", "layer": plugin_logs.LONG_LAYER, "part": "input", "gate": "forget"}),
        ("histograms", {"run": "long", "layer": plugin_logs.LONG_LAYER, "part": "recurrent", "gate": "nope"}),
        ("regularization", {"run": ["penalized", "nope"]}),
        ("activation_map", {"run": "nope", "layer": plugin_logs.PROBE_LAYER, "gate": "forget"}),
        ("activation_map", {"run": "probe", "layer": "nope", "gate": "forget"}),
        ("activation_map", {"run": "probe", "layer": plugin_logs.PROBE_LAYER, "gate": "update"}),
        ("activation_map", {"run": "probe", "layer": plugin_logs.PROBE_LAYER, "gate": "forget", "step": "1"}),
        ("activation_map", {"run": "train", "layer": plugin_logs.PROBE_LAYER, "gate": "forget"}),
    ],
)
def test_unknown_runs_layers_and_blocks_answer_404(client, path, params):
    response = client.get(ROUTE + path, query_string=params)
    assert response.status_code == 404, response.get_data(as_text=True)


# *_impl without HTTP


def test_series_impl_takes_plain_values(plugin):
    body = plugin.series_impl(
        RequestContext(), "", layer=plugin_logs.LONG_LAYER, stat="l2", runs=[plugin_logs.LONG_RUN], samples=3
    )
    (series,) = body["series"]
    assert series["steps"] == [0, 500, 999]


def test_histograms_impl_takes_plain_values(plugin):
    body = plugin.histograms_impl(
        RequestContext(),
        "",
        run=plugin_logs.LONG_RUN,
        layer=plugin_logs.LONG_LAYER,
        part="recurrent",
        gate="forget",
        samples=2,
    )
    assert [h["step"] for h in body["histograms"]] == [0, 999]


def test_regularization_impl_takes_plain_values(plugin):
    body = plugin.regularization_impl(RequestContext(), "", runs=[plugin_logs.PENALIZED_RUN], samples=2)
    assert {tuple(s["steps"]) for s in body["series"]} == {(0, 4)}


def test_runs_impl_takes_plain_values(plugin):
    runs = plugin.runs_impl(RequestContext(), "")["runs"]
    assert plugin_logs.LONG_RUN in [r["run"] for r in runs]


def test_is_active_with_data_and_not_without(plugin, tmp_path):
    assert plugin.is_active() is True
    assert _plugin(_python_provider(os.fspath(tmp_path))).is_active() is False


def test_frontend_metadata_points_at_the_static_module():
    meta = _plugin(None).frontend_metadata()
    assert meta.es_module_path == "/static/index.js"
    assert meta.tab_name == "LSTM Gates"


class _Datum:
    def __init__(self, step, wall_time=0.0, value=0.0):
        self.step = step
        self.wall_time = wall_time
        self.value = value


def test_downsample_of_plain_points_is_even_and_keeps_the_ends():
    datums = [_Datum(s) for s in range(100, 0, -1)]
    assert [d.step for d in unpack.downsample(datums, 5)] == [1, 26, 51, 75, 100]
    assert [d.step for d in unpack.downsample(datums[-3:], 5)] == [1, 2, 3]


def test_downsample_keeps_one_point_per_step_the_last_written():
    rewritten = _Datum(3, wall_time=20.0)
    datums = [_Datum(s, wall_time=10.0 + s) for s in range(5)] + [rewritten, _Datum(5, wall_time=21.0)]
    kept = unpack.downsample(datums, 100)
    assert [d.step for d in kept] == [0, 1, 2, 3, 4, 5]
    assert kept[3] is rewritten


def test_series_of_a_run_end_at_the_step_all_of_them_have():
    def series(run, tag):
        return unpack.Series(run, tag, None, (), None, 1, tag)

    def table(steps):
        return unpack.scalar_table(np.array([(step, 0.0, 1.0) for step in steps]).reshape(-1, 3))

    read = [
        (series("a", "x"), table([0, 1, 2])),
        (series("a", "y"), table([0, 1])),
        (series("b", "x"), table([0, 1, 2])),
    ]
    kept = unpack.loaded_steps(read)
    assert [list(t[:, 0]) for _, t in kept] == [[0, 1], [0, 1], [0, 1, 2]]


def test_scalar_table_orders_by_step_and_keeps_the_last_written_point_of_a_step():
    rows = np.array([(2, 5.0, 20.0), (0, 1.0, 0.0), (1, 2.0, 10.0), (1, 9.0, 11.0)])
    np.testing.assert_array_equal(unpack.scalar_table(rows), [[0, 1.0, 0.0], [1, 9.0, 11.0], [2, 5.0, 20.0]])


@given(n=st.integers(0, 3000), samples=st.integers(2, plugin_module.MAX_SAMPLES))
def test_downsample_keeps_min_n_samples_points_in_order_with_both_ends(n, samples):
    steps = [d.step for d in unpack.downsample([_Datum(3 * s) for s in range(n)], samples)]
    assert len(steps) == min(n, samples)
    assert steps == sorted(set(steps))
    if n:
        assert (steps[0], steps[-1]) == (0, 3 * (n - 1))


# static


@pytest.fixture
def static_files():
    """Two files written into the package's static folder, removed afterwards."""
    folder = plugin_module.STATIC_DIR
    created_folder = not os.path.isdir(folder)
    os.makedirs(folder, exist_ok=True)
    stem = "test-%s" % uuid.uuid4().hex
    files = {stem + ".js": b"export function render() {}\n", stem + ".css": b"body { color: red; }\n"}
    for name, content in files.items():
        with open(os.path.join(folder, name), "wb") as f:
            f.write(content)
    yield files
    for name in files:
        os.remove(os.path.join(folder, name))
    if created_folder:
        os.rmdir(folder)


def test_static_serves_js_and_css_with_their_types(client, static_files):
    types = {".js": "text/javascript", ".css": "text/css"}
    for name, content in static_files.items():
        response = client.get(ROUTE + "static/" + name)
        assert response.status_code == 200
        assert response.mimetype == types[os.path.splitext(name)[1]]
        assert response.get_data() == content


def test_static_impl_returns_content_and_type(plugin, static_files):
    name = next(n for n in static_files if n.endswith(".js"))
    assert plugin.static_impl(name) == (static_files[name], "text/javascript")


@pytest.mark.parametrize(
    "path",
    [
        "static/missing-file.js",
        "static/",
        "static/../plugin.py",
        "static/%2e%2e/plugin.py",
        "static/..%2fplugin.py",
        "static/%2E%2E%2Fplugin.py",
        "static//etc/passwd",
        "static/%2fetc%2fpasswd",
        "static/..%5cplugin.py",
        "static/%00",
        "static/%252e%252e%252fplugin.py",
        "static/%25252e%25252e/plugin.py",
        "static/..\\plugin.py",
        "static/..%5c..%5cplugin.py",
        "static/....//plugin.py",
        "static/%c0%ae%c0%ae/plugin.py",
        "static/index.js%00.png",
        "static/%00/../../plugin.py",
        "static/C:%5cWindows%5cwin.ini",
        "static/" + "a" * 5000,
        "static/" + "../" * 200 + "etc/passwd",
    ],
)
def test_static_answers_404_outside_the_folder_and_for_missing_files(client, path):
    assert client.get(ROUTE + path).status_code == 404


def test_static_does_not_follow_a_link_out_of_the_folder(client, static_files):
    link = os.path.join(plugin_module.STATIC_DIR, "test-link-%s.js" % uuid.uuid4().hex)
    os.symlink(os.path.abspath(plugin_module.__file__), link)
    try:
        assert client.get(ROUTE + "static/" + os.path.basename(link)).status_code == 404
    finally:
        os.remove(link)
