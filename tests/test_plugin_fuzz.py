"""Every route's parameters fuzzed over both loaders; hostile run, layer and tag names.

Whatever the request, a route answers 200 (JSON that parses), 400 or 404
(plain text, so no name in a message is ever read as HTML), never 500.
"""

import json
import os
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tensorboard.backend import application
from tensorboard.data import server_ingester
from tensorboard.util import grpc_util
from test_plugin_routes import ROUTE, _listing, _plugin, _python_provider, _sampling_flags
from werkzeug import test as werkzeug_test

from tb_lstm_gates.logs import metadata, summary
from tb_lstm_gates.plugin import plugin as plugin_module

# Valid directory names a user (or an attacker sharing a log directory) can create.
HOSTILE_RUNS = [
    "<script>alert(1)</script>",
    "\"quoted\" 'run'",
    "ünïcødé ☃ 日本語",
    "with space",
    "..hidden",
    "...",
    "a..b",
    '{"json": [1, 2]}',
    "&amp;<b>&#x27;",
]
HOSTILE_LAYERS = [
    "<img src=x onerror=alert(1)>/lstm_cell",
    '{"layer": "x"}/"q"/gru_cell',
    "ünï/çødé ☃",
    "../../etc/passwd",
    "a" * 300,
]
STEPS = 3


def write_hostile_run(run_dir, index):
    writer = summary.GateSummaryWriter(run_dir)
    layer = HOSTILE_LAYERS[index % len(HOSTILE_LAYERS)]
    for step in range(STEPS):
        for gate in metadata.LSTM_GATES:
            writer.write_scalar(layer, "lstm", "recurrent", gate, "l2", step + index)
        writer.write_scalar(layer, "lstm", "total", "total", "penalty", float(step))
        writer.write_gate_histograms(layer, "lstm", "recurrent", ("forget",), np.array([[[0.0, 1.0, 4.0]]]))
        writer.end_step(step)
    writer.close()


@pytest.fixture(scope="module")
def hostile_logdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    for index, run in enumerate(HOSTILE_RUNS):
        write_hostile_run(os.fspath(root / run), index)
    return os.fspath(root)


def rust_provider_of(logdir, expected):
    """A RustBoard data provider of `logdir`, once it lists every series of `expected` (a `_listing`) as given."""
    ingester = server_ingester.SubprocessServerDataIngester(
        server_binary=server_ingester.get_server_binary(),
        logdir=logdir,
        reload_interval=0,
        channel_creds_type=grpc_util.ChannelCredsType.LOCAL,
        samples_per_plugin=_sampling_flags(),
    )
    ingester.start()
    deadline = time.time() + 60
    while any(_listing(ingester.data_provider).get(key) != step for key, step in expected.items()):
        assert time.time() < deadline, "RustBoard did not load %s" % logdir
        time.sleep(0.2)
    return ingester.data_provider


@pytest.fixture(scope="module", params=["python", "rust"])
def client(request, hostile_logdir):
    provider = _python_provider(hostile_logdir)
    if request.param == "rust":
        provider = rust_provider_of(hostile_logdir, _listing(provider))
    return werkzeug_test.Client(application.TensorBoardWSGI([_plugin(provider)], data_provider=provider))


def check(response):
    """200 with JSON that parses, or 400/404 in plain text; returns the JSON or None."""
    assert response.status_code in (200, 400, 404), (response.status_code, response.get_data()[:500])
    if response.status_code == 200:
        assert response.mimetype == "application/json"
        return json.loads(response.get_data(as_text=True))
    assert response.mimetype == "text/plain"
    return None


def test_hostile_run_and_layer_names_round_trip(client):
    runs = check(client.get(ROUTE + "runs"))["runs"]
    assert [r["run"] for r in runs] == sorted(HOSTILE_RUNS)
    for index, run in enumerate(HOSTILE_RUNS):
        (entry,) = [r for r in runs if r["run"] == run]
        (layer,) = [layer["layer"] for layer in entry["layers"]]
        assert layer == HOSTILE_LAYERS[index % len(HOSTILE_LAYERS)]
        body = check(client.get(ROUTE + "series", query_string={"layer": layer, "stat": "l2", "run": run}))
        assert [s["values"] for s in body["series"]] == [[float(s + index) for s in range(STEPS)]] * 4
        body = check(
            client.get(
                ROUTE + "histograms",
                query_string={"run": run, "layer": layer, "part": "recurrent", "gate": "forget"},
            )
        )
        assert [h["step"] for h in body["histograms"]] == list(range(STEPS))
        body = check(client.get(ROUTE + "regularization", query_string={"run": run}))
        assert [s["layer"] for s in body["series"]] == [layer]


names = st.one_of(
    st.sampled_from(HOSTILE_RUNS + HOSTILE_LAYERS + ["", "recurrent", "forget", "l2", "histogram", "total"]),
    st.text(max_size=40),
    st.text(alphabet="./\\%<>\"'{}&;:\x00", max_size=40),
    st.builds(lambda c, n: c * n, st.sampled_from("a./%é"), st.integers(1000, 20000)),
)
maybe = lambda strategy: st.one_of(st.none(), strategy)  # noqa: E731
multi = st.one_of(st.none(), names, st.lists(names, max_size=3))
samples = st.one_of(
    st.none(), names, st.integers(-5, 20000).map(str), st.lists(st.integers(0, 30).map(str), max_size=3)
)
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def query(**params):
    return {k: v for k, v in params.items() if v is not None}


@FUZZ
@given(junk=maybe(names), value=maybe(names))
def test_fuzz_runs(client, junk, value):
    check(client.get(ROUTE + "runs", query_string=query(**{junk or "x": value})))


@FUZZ
@given(layer=multi, stat=multi, run=multi, samples=samples)
def test_fuzz_series(client, layer, stat, run, samples):
    body = check(
        client.get(ROUTE + "series", query_string=query(layer=layer, stat=stat, run=run, samples=samples))
    )
    if body is not None:
        for series in body["series"]:
            assert series["steps"] == sorted(set(series["steps"]))


@FUZZ
@given(run=multi, layer=multi, part=multi, gate=multi, samples=samples)
def test_fuzz_histograms(client, run, layer, part, gate, samples):
    check(
        client.get(
            ROUTE + "histograms",
            query_string=query(run=run, layer=layer, part=part, gate=gate, samples=samples),
        )
    )


@FUZZ
@given(run=multi, samples=samples)
def test_fuzz_regularization(client, run, samples):
    check(client.get(ROUTE + "regularization", query_string=query(run=run, samples=samples)))


@FUZZ
@given(path=st.one_of(names, st.text(alphabet="./\\%2535eEcfFaA0", max_size=60)))
def test_fuzz_static_never_serves_a_file_outside_its_folder(client, path):
    response = client.get(ROUTE + "static/" + path)
    assert response.status_code in (200, 404), response.status_code
    if response.status_code == 200:
        # Only possible for a real file of the static folder (a built frontend).
        served = os.path.realpath(os.path.join(plugin_module.STATIC_DIR, path))
        assert served.startswith(os.path.realpath(plugin_module.STATIC_DIR) + os.sep)
