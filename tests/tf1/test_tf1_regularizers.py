"""tf1_gate_penalty in real TF1 graphs and sessions (run with TF_USE_LEGACY_KERAS=1).

Expected values come from blocks cut by hand with explicit TF1 gate orders:
LSTMCell kernel columns i, j, f, o; GRUCell gates/kernel r, u.
"""

import numpy as np
import pytest
import tensorflow as tf

from tb_lstm_gates.tf1 import tf1_gate_penalty

v1 = tf.compat.v1
TF1_LSTM = ["input", "cell", "forget", "output"]  # i, j, f, o


def hand_penalty(kernel, input_depth, order, l1=None, l2=None, orthogonal=None):
    l1, l2, orthogonal = l1 or {}, l2 or {}, orthogonal or {}
    units = kernel.shape[1] // len(order)
    total = 0.0
    for k, gate in enumerate(order):
        block = kernel[:, k * units : (k + 1) * units].astype(np.float64)
        total += l1.get(gate, 0.0) * np.abs(block).sum() + l2.get(gate, 0.0) * np.square(block).sum()
        if orthogonal.get(gate):
            recurrent = block[input_depth:]
            total += orthogonal[gate] * np.square(recurrent.T @ recurrent - np.eye(units)).sum()
    return total


def rnn_graph(cell_factory, input_depth=3, time=5):
    graph = tf.Graph()
    with graph.as_default():
        v1.set_random_seed(0)
        inputs = v1.placeholder(tf.float32, (None, time, input_depth))
        v1.nn.dynamic_rnn(cell_factory(), inputs, dtype=tf.float32)
    return graph


def kernel_variable(graph, suffix):
    (variable,) = [v for v in graph.get_collection(v1.GraphKeys.GLOBAL_VARIABLES) if v.name.endswith(suffix)]
    return variable


def test_lstm_penalty_matches_hand_split_blocks_in_a_session():
    graph = rnn_graph(lambda: v1.nn.rnn_cell.LSTMCell(4))
    with graph.as_default():
        kernel = kernel_variable(graph, "lstm_cell/kernel:0")
        coefficients = dict(
            l1={"input": 0.01}, l2={"forget": 0.1, "cell": 0.02}, orthogonal={"output": 0.3, "cell": 0.05}
        )
        penalty = tf1_gate_penalty(kernel, 3, **coefficients)
        v1.add_to_collection(v1.GraphKeys.REGULARIZATION_LOSSES, penalty)
        total = v1.losses.get_regularization_loss()
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            value, collected, kernel_value = session.run([penalty, total, kernel])
    assert kernel_value.shape == (7, 16)
    assert value == pytest.approx(hand_penalty(kernel_value, 3, TF1_LSTM, **coefficients), rel=1e-5)
    assert collected == pytest.approx(value)


def test_lstm_forget_l2_gradient_touches_only_forget_columns():
    graph = rnn_graph(lambda: v1.nn.rnn_cell.LSTMCell(4))
    with graph.as_default():
        kernel = kernel_variable(graph, "lstm_cell/kernel:0")
        (gradient,) = tf.gradients(tf1_gate_penalty(kernel, 3, l2={"forget": 1.0}), [kernel])
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            gradient_value, kernel_value = session.run([gradient, kernel])
    forget = slice(8, 12)  # TF1 order i, j, f, o
    np.testing.assert_allclose(gradient_value[:, forget], 2 * kernel_value[:, forget], rtol=1e-6)
    assert not np.delete(gradient_value, np.arange(8, 12), axis=1).any()


def test_gru_gates_and_candidate_kernels_are_told_apart_by_shape():
    graph = rnn_graph(lambda: v1.nn.rnn_cell.GRUCell(4))
    with graph.as_default():
        gates = kernel_variable(graph, "gru_cell/gates/kernel:0")
        candidate = kernel_variable(graph, "gru_cell/candidate/kernel:0")
        coefficients = dict(l2={"reset": 0.1, "candidate": 0.2}, orthogonal={"update": 0.3, "candidate": 0.4})
        penalties = [tf1_gate_penalty(k, 3, cell="gru", **coefficients) for k in (gates, candidate)]
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            (gates_penalty, candidate_penalty), gates_value, candidate_value = session.run(
                [penalties, gates, candidate]
            )
    expected_gates = hand_penalty(gates_value, 3, ["reset", "update"], **coefficients)
    expected_candidate = hand_penalty(candidate_value, 3, ["candidate"], **coefficients)
    assert gates_penalty == pytest.approx(expected_gates, rel=1e-5)
    assert candidate_penalty == pytest.approx(expected_candidate, rel=1e-5)


def test_bad_inputs_raise_clear_errors():
    graph = rnn_graph(lambda: v1.nn.rnn_cell.LSTMCell(4, num_proj=2))
    with graph.as_default():
        kernel = kernel_variable(graph, "lstm_cell/kernel:0")  # (3 + 2, 16)
        with pytest.raises(ValueError, match=r"orthogonal needs square recurrent blocks.*projection"):
            tf1_gate_penalty(kernel, 3, orthogonal=0.1)
        with pytest.raises(ValueError, match=r"unknown key 'j'"):
            tf1_gate_penalty(kernel, 3, l2={"j": 0.1})
        with pytest.raises(ValueError, match=r"l1 must be a float >= 0"):
            tf1_gate_penalty(kernel, 3, l1=-1.0)
        with pytest.raises(ValueError, match=r"input_depth must be an int between 1 and 4"):
            tf1_gate_penalty(kernel, 5, l2=0.1)
        with pytest.raises(ValueError, match=r"GRU kernel of shape \(5, 16\)"):
            tf1_gate_penalty(kernel, 3, cell="gru", l2=0.1)
        assert tf1_gate_penalty(kernel, 3, l2={"forget": 0.1}).shape == ()
