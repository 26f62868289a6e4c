"""Per-unit saturation (Karpathy et al. 2015's plot): computed from the probe's
traces, logged by the callback, served by the `unit_saturation` route."""

import os

import numpy as np
import pytest
from tensorboard.backend import application
from tensorboard.backend.event_processing import data_provider as multiplexer_data_provider
from tensorboard.backend.event_processing import plugin_event_multiplexer
from tensorboard.plugins import base_plugin
from werkzeug import test as werkzeug_test

import tb_lstm_gates
from tb_lstm_gates.core import activations
from tb_lstm_gates.logs import metadata
from tb_lstm_gates.plugin.loader import LSTMGatesLoader

ROUTE = "/data/plugin/lstm_gates/unit_saturation"
UNITS = 5
EPOCHS = 2


def test_unit_fractions_count_each_units_valid_steps_and_average_to_the_gate_statistics():
    rng = np.random.default_rng(0)
    acts = rng.uniform(-1, 1, size=(3, 6, 2, UNITS)).astype(np.float32)
    acts[..., 0, :] = (acts[..., 0, :] + 1) / 2  # a sigmoid gate in [0, 1]
    valid = np.ones((3, 6), bool)
    valid[1, 4:] = False
    acts[1, 4:] = 0.95  # masked steps, saturated if they were counted
    trace = activations.Trace("lstm", ("forget", "cell"), ("sigmoid", "tanh"), acts, valid, None)
    got = activations.unit_saturation(trace)
    assert got.shape == (2, UNITS, 2) and got.dtype == np.float32
    kept = acts[valid]  # (16, 2, UNITS)
    np.testing.assert_allclose(got[0, :, 0], (kept[:, 0] < 0.1).mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(got[0, :, 1], (kept[:, 0] > 0.9).mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(got[1, :, 0], (kept[:, 1] < -0.9).mean(axis=0), rtol=1e-6)
    stats = activations.gate_statistics(trace)
    np.testing.assert_allclose(got[..., 0].mean(axis=1), stats[metadata.SATURATED_LOW], rtol=1e-6)
    np.testing.assert_allclose(got[..., 1].mean(axis=1), stats[metadata.SATURATED_HIGH], rtol=1e-6)


def test_no_valid_step_gives_nan():
    trace = activations.Trace(
        "gru", ("update",), ("sigmoid",), np.zeros((1, 2, 1, 3), np.float32), np.zeros((1, 2), bool), None
    )
    assert np.isnan(activations.unit_saturation(trace)).all()


@pytest.fixture(scope="module")
def logdir(tmp_path_factory):
    """A probed LSTM whose forget bias is +10 on its first three units and -10 on the others."""
    import keras

    root = tmp_path_factory.mktemp("unit_saturation")
    keras.utils.set_random_seed(0)
    lstm = keras.layers.LSTM(UNITS)
    model = keras.Sequential([keras.Input((7, 2)), lstm, keras.layers.Dense(1)])
    bias = np.array(lstm.cell.bias.numpy())
    bias[UNITS : 2 * UNITS] = [10, 10, 10, -10, -10]
    lstm.cell.bias.assign(bias)
    model.compile(keras.optimizers.Adam(1e-3), "mse")
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(16, 7, 2)), rng.normal(size=(16, 1))
    callback = tb_lstm_gates.LSTMGatesCallback(os.fspath(root), probe=x[:8], histogram_freq=0)
    model.fit(x, y, epochs=EPOCHS, verbose=0, callbacks=[callback])
    return root


def test_callback_logs_each_gates_unit_fractions_at_every_step(logdir):
    records = [r for r in tb_lstm_gates.load(logdir) if r.stat == metadata.UNIT_SATURATION]
    assert {(r.part, r.gate) for r in records} == {(metadata.ACTIVATION, g) for g in metadata.LSTM_GATES}
    assert {r.step for r in records} == set(range(EPOCHS + 1))
    forget = next(r.value for r in records if r.gate == "forget" and r.step == EPOCHS)
    assert forget.shape == (UNITS, 2) and forget.dtype == np.float32
    np.testing.assert_array_equal(forget, [[0, 1]] * 3 + [[1, 0]] * 2)


def make_client(logdir):
    """A client of the plugin's routes over `logdir`, read by TensorBoard's Python loader."""
    path = os.fspath(logdir)
    multiplexer = plugin_event_multiplexer.EventMultiplexer(tensor_size_guidance={metadata.PLUGIN_NAME: 0})
    multiplexer.AddRunsFromDirectory(path)
    multiplexer.Reload()
    provider = multiplexer_data_provider.MultiplexerDataProvider(multiplexer, path)
    plugin = LSTMGatesLoader().load(base_plugin.TBContext(data_provider=provider))
    return werkzeug_test.Client(application.TensorBoardWSGI([plugin], data_provider=provider))


@pytest.fixture(scope="module")
def client(logdir):
    return make_client(logdir)


def test_route_serves_each_runs_points_at_the_step_asked_or_the_last(client):
    (layer,) = client.get("/data/plugin/lstm_gates/runs").get_json()["runs"][0]["layers"]
    assert layer["unit_saturation"] is True
    body = client.get(ROUTE, query_string={"layer": layer["layer"], "gate": "forget"}).get_json()
    (run,) = body["runs"]
    assert (run["run"], run["steps"], run["step"]) == ("train", list(range(EPOCHS + 1)), EPOCHS)
    assert run["units"] == [[0, 1]] * 3 + [[1, 0]] * 2
    early = client.get(
        ROUTE, query_string={"layer": layer["layer"], "gate": "forget", "step": "0"}
    ).get_json()
    assert early["runs"][0]["step"] == 0


def test_route_answers_404_for_a_gate_without_points_and_400_without_a_layer(client):
    assert client.get(ROUTE, query_string={"layer": "nope", "gate": "forget"}).status_code == 404
    assert client.get(ROUTE, query_string={"gate": "forget"}).status_code == 400


def test_route_names_each_gates_activation_so_the_tab_labels_relu_as_dead(tmp_path):
    """The scatter's axes follow the logged definition: bounds for sigmoid gates, the slope rule for relu."""
    import keras

    keras.utils.set_random_seed(3)
    model = keras.Sequential(
        [keras.Input((6, 3)), keras.layers.LSTM(4, activation="relu"), keras.layers.Dense(1)]
    )
    model.compile("adam", "mse")
    x = np.random.default_rng(3).random((8, 6, 3), dtype=np.float32)
    model.fit(
        x,
        x[:, 0, :1],
        epochs=1,
        verbose=0,
        callbacks=[tb_lstm_gates.LSTMGatesCallback(tmp_path, probe=x[:4])],
    )
    client = make_client(tmp_path)
    (layer,) = client.get("/data/plugin/lstm_gates/runs").get_json()["runs"][0]["layers"]
    functions = {
        gate: client.get(ROUTE, query_string={"layer": layer["layer"], "gate": gate}).get_json()["function"]
        for gate in metadata.LSTM_GATES
    }
    assert functions == {"input": "sigmoid", "forget": "sigmoid", "cell": "relu", "output": "sigmoid"}
    # The Text view orders units by the same fractions: the relu gate's zeros count as saturated there too.
    scatter = client.get(
        ROUTE, query_string={"layer": layer["layer"], "gate": "cell", "step": "0"}
    ).get_json()
    dead = scatter["runs"][0]["units"]
    assert any(low > 0 for low, _ in dead)
    sequences = "/data/plugin/lstm_gates/probe_sequences"
    query = {"run": "train", "layer": layer["layer"], "step": "0"}
    text = client.get(sequences, query_string={**query, "gate": "cell"}).get_json()
    assert text["step"] == 0 and text["unit_saturation"] == dead
    assert client.get(sequences, query_string={**query, "gate": "c_t"}).get_json()["unit_saturation"] is None
