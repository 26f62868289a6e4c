"""Proves the TF1 splits: one step of TF1's own cell equals numpy's step built from our blocks."""

import numpy as np
import pytest
import tensorflow as tf

from tb_lstm_gates import tf1

v1 = tf.compat.v1
rnn_cell = v1.nn.rnn_cell


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def blocks_of(cell, arrays):
    """{(part, gate): block} from the layout tb-lstm-gates found for `cell`."""
    out = {}
    for part, gates, view in cell.layout.blocks(arrays):
        for g, gate in enumerate(gates):
            out[part, gate] = view[..., g, :]
    return out


def run_one_step(make_cell, depth, state_of, seed=0):
    """Builds `make_cell()` in a fresh graph, sets every variable to random values, runs one step.

    Returns the one cell tb-lstm-gates finds, its weights, the inputs, the
    state in and TF's output and state out.
    """
    rng = np.random.default_rng(seed)
    graph = tf.Graph()
    with graph.as_default():
        cell = make_cell()
        x = v1.placeholder(tf.float32, [3, depth])
        state = state_of(cell)
        out, new_state = cell(x, state)
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            for v in v1.global_variables():
                v.load(rng.normal(size=v.shape.as_list()).astype(np.float32) * 0.5, sess)
            (found,) = tf1.graph_cells(graph)
            arrays = sess.run(found.variables)
            x_value = rng.normal(size=(3, depth)).astype(np.float32)
            feed = {x: x_value}
            state_values = []
            for t in tf.nest.flatten(state):
                value = rng.normal(size=t.shape.as_list()).astype(np.float32)
                feed[t] = value
                state_values.append(value)
            out_v, new_state_v = sess.run((out, new_state), feed)
    return found, arrays, x_value, state_values, out_v, new_state_v


def lstm_state(units, h):
    def make(cell):
        return rnn_cell.LSTMStateTuple(
            v1.placeholder(tf.float32, [3, units]), v1.placeholder(tf.float32, [3, h])
        )

    return make


def gates_pre(b, x, h, names, bias="bias"):
    return {g: x @ b["input", g] + h @ b["recurrent", g] + b[bias, g] for g in names}


@pytest.mark.parametrize("peepholes", [False, True])
@pytest.mark.parametrize("num_proj", [None, 3])
def test_lstm_cell_step_recomputed_from_blocks(peepholes, num_proj):
    units, depth, forget_bias = 5, 4, 0.7
    h_dim = num_proj or units
    found, arrays, x, (c, h), out, (new_c, new_h) = run_one_step(
        lambda: rnn_cell.LSTMCell(units, use_peepholes=peepholes, num_proj=num_proj, forget_bias=forget_bias),
        depth,
        lstm_state(units, h_dim),
    )
    assert found.layer == "lstm_cell" and found.layout.cell == "lstm"
    b = blocks_of(found, arrays)
    z = gates_pre(b, x, h, ("input", "forget", "cell", "output"))
    if peepholes:
        i = sigmoid(z["input"] + b["peephole", "input"] * c)
        f = sigmoid(z["forget"] + forget_bias + b["peephole", "forget"] * c)
    else:
        i, f = sigmoid(z["input"]), sigmoid(z["forget"] + forget_bias)
    c_next = f * c + i * np.tanh(z["cell"])
    o = sigmoid(z["output"] + (b["peephole", "output"] * c_next if peepholes else 0))
    m = o * np.tanh(c_next)
    if num_proj:
        m = m @ b["projection", "all"]
    np.testing.assert_allclose(new_c, c_next, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(new_h, m, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out, m, rtol=1e-5, atol=1e-5)


def test_basic_lstm_cell_step_recomputed_from_blocks():
    units, depth, forget_bias = 4, 6, 1.0
    found, arrays, x, (c, h), out, (new_c, new_h) = run_one_step(
        lambda: rnn_cell.BasicLSTMCell(units, forget_bias=forget_bias),
        depth,
        lstm_state(units, units),
    )
    assert found.layer == "basic_lstm_cell"
    b = blocks_of(found, arrays)
    z = gates_pre(b, x, h, ("input", "forget", "cell", "output"))
    c_next = sigmoid(z["forget"] + forget_bias) * c + sigmoid(z["input"]) * np.tanh(z["cell"])
    np.testing.assert_allclose(new_c, c_next, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(new_h, sigmoid(z["output"]) * np.tanh(c_next), rtol=1e-5, atol=1e-5)


def test_gru_cell_step_recomputed_from_blocks():
    units, depth = 5, 3
    found, arrays, x, (h,), out, new_h = run_one_step(
        lambda: rnn_cell.GRUCell(units),
        depth,
        lambda cell: v1.placeholder(tf.float32, [3, units]),
    )
    assert found.layer == "gru_cell" and found.layout.cell == "gru"
    b = blocks_of(found, arrays)
    z = gates_pre(b, x, h, ("reset", "update"))
    r, u = sigmoid(z["reset"]), sigmoid(z["update"])
    candidate = np.tanh(
        x @ b["input", "candidate"] + (r * h) @ b["recurrent", "candidate"] + b["bias", "candidate"]
    )
    np.testing.assert_allclose(new_h, u * h + (1 - u) * candidate, rtol=1e-5, atol=1e-5)
