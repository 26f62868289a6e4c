"""Test helpers for the TF1 probe: the seed's model and others, and an independent numpy recurrence.

The recurrences here are written from TF1's cell equations, per sequence
over its valid steps only, in float64: they share nothing with the
package's `core.tf1_cells`.
"""

import numpy as np
import tensorflow as tf

v1 = tf.compat.v1
rnn_cell = v1.nn.rnn_cell

VOCAB, EMBED = 60, 16
LENGTHS = np.array([9, 4, 1, 7])


def seed_model(units=150):
    """The seed's model as docs/getting-started/tf1.md builds it: embeddings into a bidirectional LSTM."""
    ids = v1.placeholder(tf.int32, [None, None], name="ids")
    lengths = v1.placeholder(tf.int32, [None], name="lengths")
    embeddings = v1.get_variable("embeddings", [VOCAB, EMBED])
    x = tf.nn.embedding_lookup(embeddings, ids)
    (fw, bw), _ = v1.nn.bidirectional_dynamic_rnn(
        rnn_cell.LSTMCell(units),
        rnn_cell.LSTMCell(units),
        x,
        sequence_length=lengths,
        dtype=tf.float32,
        scope="doc_word",
    )
    logits = tf.compat.v1.layers.dense(tf.concat([fw, bw], -1)[:, 0], 2)
    labels = tf.cast(ids[:, 0] % 2, tf.int32)
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))
    step = v1.train.get_or_create_global_step()
    train = v1.train.AdamOptimizer(1e-2).minimize(loss, global_step=step)
    return ids, lengths, train


def batch(ids, lengths, seed, n=4):
    rng = np.random.default_rng(seed)
    lens = LENGTHS[:n] if seed == 0 else rng.integers(1, 10, n)
    return {ids: rng.integers(0, VOCAB, (n, 9)), lengths: lens}


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def np_lstm(x, kernel, bias, forget_bias=1.0, peep=None, proj=None):
    """Gates (steps, 4, units) in the order i, f, j, o and outputs of a TF1 LSTMCell over `x` (steps, in)."""
    units = bias.size // 4
    h = np.zeros(units if proj is None else proj.shape[1])
    c = np.zeros(units)
    gates, outputs = [], []
    for xt in x:
        z = np.concatenate([xt, h]) @ kernel + bias
        i, j, f, o = z[:units], z[units : 2 * units], z[2 * units : 3 * units], z[3 * units :]
        if peep is not None:
            i, f = i + peep[0] * c, f + peep[1] * c
        ig, fg, jg = sigmoid(i), sigmoid(f + forget_bias), np.tanh(j)
        c = fg * c + ig * jg
        if peep is not None:
            o = o + peep[2] * c
        og = sigmoid(o)
        h = og * np.tanh(c)
        if proj is not None:
            h = h @ proj
        gates.append([ig, fg, jg, og])
        outputs.append(h)
    return np.array(gates), np.array(outputs)


def np_gru(x, gate_kernel, gate_bias, cand_kernel, cand_bias):
    """Gates (steps, 3, units) in the order update, reset, candidate and outputs of a TF1 GRUCell."""
    units = cand_bias.size
    h = np.zeros(units)
    gates, outputs = [], []
    for xt in x:
        ru = sigmoid(np.concatenate([xt, h]) @ gate_kernel + gate_bias)
        r, u = ru[:units], ru[units:]
        cand = np.tanh(np.concatenate([xt, r * h]) @ cand_kernel + cand_bias)
        h = u * h + (1 - u) * cand
        gates.append([u, r, cand])
        outputs.append(h)
    return np.array(gates), np.array(outputs)


def act_means(run, xs, lengths, backward=False):
    """Mean of each gate over every valid step of every sequence; `run(x) -> (gates, outputs)`."""
    per_gate = []
    for x, n in zip(xs, lengths):
        steps = x[:n][::-1] if backward else x[:n]
        per_gate.append(run(steps.astype(np.float64))[0])
    joined = np.concatenate(per_gate)  # (all valid steps, gates, units)
    return joined.mean(axis=(0, 2))


LSTM_GATES = ("input", "forget", "cell", "output")
GRU_GATES = ("update", "reset", "candidate")


def logged(records, layer, step):
    """{gate: act_mean} logged for `layer` at `step`."""
    return {
        r.gate: r.value
        for r in records
        if r.layer == layer and r.step == step and r.stat == "act_mean" and r.part == "activation"
    }
