"""The numpy recurrences equal Keras's own layers; per-gate activation statistics."""

import keras
import numpy as np
import pytest
from cellmath import sigmoid

from tb_lstm_gates.core import activations
from tb_lstm_gates.keras import discover
from tb_lstm_gates.logs import metadata

RNG = np.random.default_rng(5)
# Right padding, left padding, a hole in the middle, no padding, all padding.
TOKENS = np.array(
    [
        [3, 1, 4, 1, 5, 0, 0],
        [0, 0, 2, 6, 5, 3, 5],
        [8, 9, 0, 0, 7, 9, 3],
        [2, 3, 8, 4, 6, 2, 6],
        [0, 0, 0, 0, 0, 0, 0],
    ]
)
VALID = TOKENS != 0


def randomize(layer):
    """Random weights everywhere, biases too, large enough that gates differ."""
    layer.set_weights([RNG.normal(scale=0.6, size=w.shape).astype("float32") for w in layer.get_weights()])


def embedded():
    embedding = keras.layers.Embedding(10, 3)
    return np.asarray(embedding(TOKENS)) * 2.0


def trace_of(layer, x, go_backwards=None):
    (cell,) = discover.find_cells(layer)
    kwargs = {}
    if cell.layout.cell == "gru":
        kwargs["reset_after"] = cell.obj.reset_after
        run = activations.gru
    else:
        run = activations.lstm
    backwards = layer.go_backwards if go_backwards is None else go_backwards
    return run(cell.layout, cell.arrays(), x, VALID, backwards, **kwargs)


def assert_valid_steps_equal(keras_sequences, numpy_sequences, valid=VALID):
    keras_sequences = np.asarray(keras_sequences)
    np.testing.assert_allclose(keras_sequences[valid], numpy_sequences[valid], rtol=1e-4, atol=1e-5)


LAYERS = {
    "lstm": lambda **kw: keras.layers.LSTM(4, **kw),
    "gru_reset_after": lambda **kw: keras.layers.GRU(4, reset_after=True, **kw),
    "gru_reset_before": lambda **kw: keras.layers.GRU(4, reset_after=False, **kw),
}


@pytest.mark.parametrize("kind", sorted(LAYERS))
@pytest.mark.parametrize("go_backwards", [False, True])
def test_recurrence_equals_the_keras_layer_on_masked_sequences(kind, go_backwards):
    x = embedded()
    layer = LAYERS[kind](return_sequences=True, go_backwards=go_backwards)
    layer.build(x.shape)
    randomize(layer)
    trace = trace_of(layer, x)
    # go_backwards returns the outputs in processing order, the last input step first.
    valid = VALID[:, ::-1] if go_backwards else VALID
    assert_valid_steps_equal(layer(x, mask=VALID), trace.outputs, valid)
    # Without return_sequences: the output after the last valid step.
    last = keras.layers.RNN(layer.cell, go_backwards=go_backwards)(x, mask=VALID)
    np.testing.assert_allclose(np.asarray(last), trace.outputs[:, -1], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", ["lstm", "gru_reset_after"])
def test_bidirectional_layers_equal_forward_and_reversed_backward_recurrences(kind):
    x = embedded()
    layer = keras.layers.Bidirectional(LAYERS[kind](return_sequences=True), merge_mode=None)
    layer.build(x.shape)
    randomize(layer)
    forward, backward = layer(x, mask=VALID)
    fw = trace_of(layer.forward_layer, x)
    bw = trace_of(layer.backward_layer, x)
    assert layer.backward_layer.go_backwards
    assert_valid_steps_equal(forward, fw.outputs)
    # Bidirectional puts the backward outputs back in the input's time order.
    assert_valid_steps_equal(backward, bw.outputs[:, ::-1])


def test_stacked_cells_chain_the_first_cells_outputs_into_the_second():
    x = embedded()
    layer = keras.layers.RNN(
        keras.layers.StackedRNNCells([keras.layers.LSTMCell(4), keras.layers.GRUCell(3, reset_after=False)]),
        return_sequences=True,
    )
    layer.build(x.shape)
    randomize(layer)
    first, second = discover.find_cells(layer)
    t1 = activations.lstm(first.layout, first.arrays(), x, VALID)
    t2 = activations.gru(second.layout, second.arrays(), t1.outputs, VALID, reset_after=False)
    assert_valid_steps_equal(layer(x, mask=VALID), t2.outputs)


def test_lstm_gates_are_the_cells_own_gate_values_at_each_step():
    x = embedded()[:, :2]
    layer = keras.layers.LSTM(4, return_sequences=True)
    layer.build(x.shape)
    randomize(layer)
    (cell,) = discover.find_cells(layer)
    trace = activations.lstm(cell.layout, cell.arrays(), x)
    kernel, recurrent, bias = cell.arrays().values()
    z = x[:, 0] @ kernel + bias
    gates = np.split(z, 4, axis=-1)
    expected = [sigmoid(gates[0]), sigmoid(gates[1]), np.tanh(gates[2]), sigmoid(gates[3])]
    np.testing.assert_allclose(trace.activations[:, 0], np.stack(expected, axis=1), rtol=1e-5, atol=1e-6)


def test_hard_sigmoid_gates_follow_keras():
    x = embedded()
    layer = keras.layers.LSTM(4, return_sequences=True, recurrent_activation="hard_sigmoid")
    layer.build(x.shape)
    randomize(layer)
    (cell,) = discover.find_cells(layer)
    trace = activations.lstm(cell.layout, cell.arrays(), x, VALID, recurrent_activation="hard_sigmoid")
    assert_valid_steps_equal(layer(x, mask=VALID), trace.outputs)


def test_unknown_activation_name_is_named_with_the_fix():
    layer = keras.layers.LSTM(2)
    layer.build((1, 3, 2))
    (cell,) = discover.find_cells(layer)
    with pytest.raises(ValueError, match="'gelu' is not one of .*pass other activations as callables"):
        activations.lstm(cell.layout, cell.arrays(), np.zeros((1, 3, 2)), activation="gelu")


def hand_trace(cell, a, valid, functions):
    gates = metadata.LSTM_GATES if cell == "lstm" else metadata.GRU_GATES
    return activations.Trace(cell, gates, functions, a, valid, None)


def test_statistics_leave_out_masked_steps_and_count_saturation_by_function():
    # batch 2, time 3, gates i f c o, 2 units; sequence 1's last step is masked.
    a = np.full((2, 3, 4, 2), 0.5, np.float32)
    a[:, :, 1] = [0.95, 0.5]  # forget: one unit in 20 steps, one in 2
    a[:, :, 2] = [-0.95, 0.95]  # cell: both saturated, one each way
    a[:, :, 0, 0] = 0.05
    a[1, 2] = 7.0  # masked: would break every statistic
    valid = np.array([[True, True, True], [True, True, False]])
    trace = hand_trace("lstm", a, valid, ("sigmoid", "sigmoid", "tanh", "sigmoid"))
    s = activations.gate_statistics(trace)
    np.testing.assert_allclose(s["act_mean"], [0.275, 0.725, 0.0, 0.5], rtol=1e-6)
    np.testing.assert_allclose(s["saturated_low"], [0.5, 0.0, 0.5, 0.0])
    np.testing.assert_allclose(s["saturated_high"], [0.0, 0.5, 0.5, 0.0])
    np.testing.assert_allclose(s["saturated"], [0.5, 0.5, 1.0, 0.0])
    gate, horizon = activations.retention(trace)
    assert gate == "forget"
    np.testing.assert_allclose(horizon, (20 + 2) / 2, rtol=1e-5)


def test_retention_is_capped_where_the_gate_is_fully_open():
    a = np.ones((1, 2, 3, 1), np.float32)  # GRU update gate at exactly 1
    a[0, 1] = 0.0
    trace = hand_trace("gru", a, np.ones((1, 2), bool), ("sigmoid", "sigmoid", "tanh"))
    assert activations.retention(trace) == ("update", (metadata.RETENTION_CAP + 1.0) / 2)


def test_statistics_of_a_fully_masked_batch_are_nan():
    trace = hand_trace("gru", np.zeros((1, 2, 3, 1)), np.zeros((1, 2), bool), ("sigmoid", "sigmoid", "tanh"))
    assert all(np.isnan(v).all() for v in activations.gate_statistics(trace).values())
    assert np.isnan(activations.retention(trace)[1])


def test_activation_map_is_gate_time_units_with_nan_at_masked_steps():
    a = RNG.random((2, 3, 4, 5)).astype(np.float32)
    valid = np.array([[True, False, True], [True, True, True]])
    m = activations.activation_map(hand_trace("lstm", a, valid, ("sigmoid",) * 4))
    assert m.shape == (4, 3, 5) and m.dtype == np.float32
    np.testing.assert_array_equal(m[:, 0], a[0, 0])
    np.testing.assert_array_equal(m[:, 2], a[0, 2])
    assert np.isnan(m[:, 1]).all()
