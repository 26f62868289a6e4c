"""The probe's tokens, its first sequences with the cell state, and the layer order, in real event files."""

import os

import keras
import numpy as np
import plugin_logs
import pytest
from tensorboard.backend import application
from test_plugin_routes import _plugin, _python_provider, get_json
from werkzeug import test as werkzeug_test

import tb_lstm_gates
from tb_lstm_gates.core import activations, layouts
from tb_lstm_gates.logs import metadata, reader, summary, tokens


def char_model():
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((7,), dtype="int32"),
            keras.layers.Embedding(5, 4),
            keras.layers.GRU(3, return_sequences=True, name="z_gru"),
            keras.layers.LSTM(4, name="a_lstm"),
            keras.layers.Dense(5),
        ]
    )


IDS = np.array([[0, 1, 2, 3, 4, 0, 1], [4, 3, 2, 1, 0, 4, 3]], dtype=np.int32)
VOCAB = ["a", "b", " ", "\n", "q"]


@pytest.mark.parametrize(
    "given",
    [VOCAB, dict(enumerate(VOCAB)), VOCAB.__getitem__, [[VOCAB[i] for i in row] for row in IDS]],
    ids=["vocabulary list", "vocabulary dict", "decode function", "token lists"],
)
def test_probe_tokens_become_one_string_per_step_of_each_sequence(given):
    assert tokens.check_probe_tokens(given, IDS) == [[VOCAB[i] for i in row] for row in IDS]


@pytest.mark.parametrize(
    "given, ids, message",
    [
        ([["a"] * 7], IDS, "has 1 token lists but the probe holds 2 sequences"),
        ([["a"] * 7, ["a"] * 6], IDS, r"probe_tokens\[1\] has 6 tokens but the probe has 7 time steps"),
        ([["a"] * 7, ["a"] * 6 + [3]], IDS, r"probe_tokens\[1\] holds 3, not a string"),
        (VOCAB[:3], IDS, "no token for id 3"),
        (VOCAB, IDS.astype(np.float32), "needs a probe of integer ids"),
        (lambda i: i, IDS, "gives 0 for id 0, not a string"),
        (VOCAB, None, "needs a probe"),
        (42, IDS, "must be a list of token lists"),
    ],
)
def test_bad_probe_tokens_fail_with_a_message_naming_the_problem(given, ids, message):
    with pytest.raises(ValueError, match=message):
        tokens.check_probe_tokens(given, ids)


def test_callback_rejects_probe_tokens_of_the_wrong_length_at_construction(tmp_path):
    with pytest.raises(ValueError, match=r"LSTMGatesCallback: probe_tokens\[0\] has 3 tokens"):
        tb_lstm_gates.LSTMGatesCallback(tmp_path, probe=IDS, probe_tokens=[["a"] * 3, ["b"] * 7])


def test_callback_writes_tokens_once_sequences_with_the_state_and_the_model_order(tmp_path):
    model = char_model()
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    callback = tb_lstm_gates.LSTMGatesCallback(tmp_path, probe=IDS, probe_tokens=VOCAB)
    model.fit(IDS, np.array([1, 2]), epochs=2, verbose=0, callbacks=[callback])
    records = reader.load(tmp_path)
    written = [r for r in records if r.stat == metadata.PROBE_TOKENS]
    assert [(r.layer, r.step, r.value) for r in written] == [
        (metadata.MODEL_LAYER, 0, [[VOCAB[i] for i in row] for row in IDS])
    ]
    sequences = {(r.layer, r.gate, r.step): r.value for r in records if r.stat == metadata.PROBE_SEQUENCES}
    assert {(layer, gate) for layer, gate, _ in sequences} == {
        ("z_gru/gru_cell", g) for g in metadata.GRU_GATES + ("h_t",)
    } | {("a_lstm/lstm_cell", g) for g in metadata.LSTM_GATES + ("c_t",)}
    assert {step for _, _, step in sequences} == {0, 1, 2}
    assert sequences["a_lstm/lstm_cell", "c_t", 2].shape == (2, 7, 4)
    # The GRU's state is its output: the layer's own return_sequences output.
    gru_out = keras.Model(model.inputs, model.get_layer("z_gru").output).predict(IDS, verbose=0)
    np.testing.assert_allclose(sequences["z_gru/gru_cell", "h_t", 2], gru_out, atol=2e-3)
    order = {}
    for path in (tmp_path / "train").iterdir():
        for event in summary.read_events(str(path)):
            for value in event.summary.value:
                if value.metadata.plugin_data.content:
                    content = metadata.parse_plugin_content(value.metadata.plugin_data.content)
                    order[content.blocks[0].layer] = content.index
    assert order == {"z_gru/gru_cell": 0, "a_lstm/lstm_cell": 1, metadata.MODEL_LAYER: None}


def test_lstm_trace_state_is_the_cell_state_the_recurrence_carries():
    rng = np.random.default_rng(0)
    units, depth = 3, 2
    arrays = {
        "kernel": rng.normal(size=(depth, 4 * units)),
        "recurrent_kernel": rng.normal(size=(units, 4 * units)),
        "bias": rng.normal(size=4 * units),
    }
    x = rng.normal(size=(2, 5, depth))
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
    trace = activations.lstm(layouts.keras_lstm(), arrays, x, mask)
    i, f, c, o = np.moveaxis(trace.activations, 2, 0)
    state = np.zeros((2, units))
    for t in range(5):
        new = f[:, t] * state + i[:, t] * c[:, t]
        state = np.where(mask[:, t, None], new, state)
        np.testing.assert_allclose(trace.states[:, t], state, rtol=1e-6)
    kept = activations.probe_sequences(trace)
    assert kept.shape == (5, 2, 5, units)
    assert np.isnan(kept[:, 0, 3:]).all() and not np.isnan(kept[:, 1]).any()


def test_probe_sequences_stay_within_their_bound():
    batch, time, units = 64, 300, 128
    trace = activations.Trace(
        "lstm",
        metadata.LSTM_GATES,
        ("sigmoid",) * 4,
        np.zeros((batch, time, 4, units), np.float32),
        np.ones((batch, time), bool),
        None,
        states=np.zeros((batch, time, units), np.float32),
    )
    kept = activations.probe_sequences(trace)
    assert kept.size <= activations.MAX_SEQUENCE_VALUES
    assert kept.shape == (5, 1, activations.MAX_SEQUENCE_VALUES // (5 * units), units)


def test_a_newer_kind_version_is_skipped_as_newer_not_misread():
    content = metadata.create_summary_metadata(
        "lstm", metadata.PROBE_TOKENS_KIND, metadata.MODEL_CELL, (metadata.ACTIVATION,), (), ()
    ).plugin_data.content
    newer = content.replace(b'"kind_version": 1', b'"kind_version": 2')
    with pytest.raises(metadata.NewerVersionError, match="kind_version 2"):
        metadata.parse_plugin_content(newer)


def _client(logdir):
    provider = _python_provider(os.fspath(logdir))
    return werkzeug_test.Client(application.TensorBoardWSGI([_plugin(provider)], data_provider=provider))


def test_routes_serve_tokens_sequences_and_layers_in_model_order(tmp_path):
    model = char_model()
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    callback = tb_lstm_gates.LSTMGatesCallback(tmp_path, probe=IDS, probe_tokens=VOCAB)
    model.fit(IDS, np.array([1, 2]), epochs=1, verbose=0, callbacks=[callback])
    client = _client(tmp_path)
    (run,) = get_json(client, "runs")["runs"]
    assert run["probe_tokens"] is True
    assert [(layer["layer"], layer["index"]) for layer in run["layers"]] == [
        ("z_gru/gru_cell", 0),
        ("a_lstm/lstm_cell", 1),
    ]
    assert run["layers"][1]["gates"] == list(metadata.LSTM_GATES)
    answer = get_json(client, "probe_sequences", run="train", layer="a_lstm/lstm_cell", gate="c_t", step="1")
    assert answer["tokens"] == [[VOCAB[i] for i in row] for row in IDS]
    assert (
        answer["source"],
        answer["steps"],
        answer["sequences"],
        answer["time_steps"],
        answer["units"],
    ) == (
        metadata.PROBE_SEQUENCES,
        [0, 1],
        2,
        7,
        4,
    )
    logged = [r for r in reader.load(tmp_path) if (r.layer, r.gate, r.step) == ("a_lstm/lstm_cell", "c_t", 1)]
    np.testing.assert_allclose(np.array(answer["values"], float), logged[0].value, rtol=1e-6)
    mapped = get_json(client, "activation_map", run="train", layer="a_lstm/lstm_cell", gate="forget")
    assert mapped["tokens"] == [VOCAB[i] for i in IDS[0]]


def test_old_logs_without_tokens_sequences_or_order_serve_the_activation_map_as_one_sequence(tmp_path):
    plugin_logs.write_probe_run(str(tmp_path / "v1"), writer_class=plugin_logs.V1Writer)
    client = _client(tmp_path)
    (run,) = get_json(client, "runs")["runs"]
    assert run["probe_tokens"] is False and all(layer["index"] is None for layer in run["layers"])
    answer = get_json(client, "probe_sequences", run="v1", layer=plugin_logs.PROBE_LAYER, gate="forget")
    mapped = get_json(client, "activation_map", run="v1", layer=plugin_logs.PROBE_LAYER, gate="forget")
    assert answer["source"] == metadata.ACTIVATION_MAP and answer["tokens"] is None
    assert answer["values"] == [mapped["values"]] and mapped["tokens"] is None


def test_probe_sequences_thin_out_as_the_run_goes_on_and_get_no_stride_copies(tmp_path):
    writer = summary.GateSummaryWriter(tmp_path)
    sequences = np.zeros((5, 1, 3, 2), np.float32)
    for step in range(300):
        writer.write_probe_sequences("lstm", "lstm", metadata.LSTM_GATES, sequences)
        writer.write_scalar("lstm", "lstm", "input", "input", "l2", 1.0)
        writer.end_step(step)
    writer.close()
    tags, kept = set(), []
    for event in summary.read_events(writer.path):
        for value in event.summary.value:
            if "/probe_sequences/" in value.tag:
                tags.add(value.tag)
                kept.append(event.step)
    assert len(tags) == 1 and "every_" not in tags.pop()
    # All of the first 64, then every 2nd up to 128, every 4th up to 256, every 8th after.
    expected = list(range(64)) + list(range(64, 128, 2)) + list(range(128, 256, 4)) + list(range(256, 300, 8))
    assert kept == expected
