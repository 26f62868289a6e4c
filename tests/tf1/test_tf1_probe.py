"""The TF1 probe: act_mean of every gate equals an independent numpy recurrence; training is unchanged."""

import warnings

import numpy as np
import pytest
import tensorflow as tf
from probe_models import (
    EMBED,
    GRU_GATES,
    LSTM_GATES,
    VOCAB,
    act_means,
    batch,
    logged,
    np_gru,
    np_lstm,
    rnn_cell,
    seed_model,
    v1,
)

import tb_lstm_gates
from tb_lstm_gates.logs.summary import GateSummaryWriter
from tb_lstm_gates.tf1 import LSTMGatesHook, graph_cells, log_session
from tb_lstm_gates.tf1.probe import TF1Probe

STEPS = (0, 2, 4)


def traces(sess, feed):
    """`{scope: trace}` of the probe on `feed`, now."""
    cells = graph_cells(sess.graph)
    probe = TF1Probe(sess.graph, cells, feed)
    fetches = {(i, w): v for i, c in enumerate(cells) for w, v in c.variables.items()}
    fetches.update(probe.fetches())
    values = sess.run(fetches, feed)
    arrays = {c.layer: {w: values[i, w] for w in c.variables} for i, c in enumerate(cells)}
    return {cell.layer: trace for cell, trace in probe.traces(values, arrays, sess)}


def assert_self_check(trace):
    """The recomputed outputs equal the graph's own on every valid step (and are zero past the ends)."""
    assert trace.reference_outputs is not None
    assert trace.reference_outputs.shape == trace.outputs.shape
    np.testing.assert_allclose(trace.outputs, trace.reference_outputs, atol=1e-5)


def train_and_log(tmp_path, build, probe_feed, train_feed, check):
    """Trains a few steps, logging with the probe at STEPS; `check(sess, step)` gets expected act_means."""
    writer = GateSummaryWriter(str(tmp_path), step_unit="step")
    expected = {}
    with tf.Graph().as_default():
        v1.set_random_seed(0)
        handles = build()
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            for i in range(max(STEPS) + 1):
                if i in STEPS:
                    log_session(sess, writer, step=i, probe=probe_feed(handles))
                    expected[i] = check(sess, handles)
                sess.run(handles[-1], train_feed(handles, i))
    writer.close()
    return tb_lstm_gates.load(str(tmp_path)), expected


def compare(records, expected, gates):
    for step, layers in expected.items():
        for layer, means in layers.items():
            got = logged(records, layer, step)
            assert sorted(got) == sorted(gates), (layer, step, got)
            np.testing.assert_allclose([got[g] for g in gates], means, rtol=1e-5, atol=1e-6, err_msg=layer)


def test_seed_model_each_gate_of_each_direction_equals_an_independent_recurrence(tmp_path):
    def check(sess, handles):
        ids, lengths, _ = handles
        feed = batch(ids, lengths, 0)
        emb = sess.run(v1.global_variables("embeddings")[0])[feed[ids]]
        out = {}
        for direction in ("fw", "bw"):
            scope = "doc_word/%s/lstm_cell" % direction
            kernel, bias = sess.run(
                [v1.global_variables(scope + "/kernel")[0], v1.global_variables(scope + "/bias")[0]]
            )
            out[scope] = act_means(
                lambda x, k=kernel, b=bias: np_lstm(x, k, b), emb, feed[lengths], direction == "bw"
            )
        for trace in traces(sess, feed).values():
            assert_self_check(trace)
        return out

    records, expected = train_and_log(
        tmp_path, seed_model, lambda h: batch(h[0], h[1], 0), lambda h, i: batch(h[0], h[1], i + 1), check
    )
    compare(records, expected, LSTM_GATES)
    assert {"retention", "unit_saturation", "activation_map", "probe_sequences"} <= {r.stat for r in records}


def _embedded():
    ids = v1.placeholder(tf.int32, [None, None], name="ids")
    lengths = v1.placeholder(tf.int32, [None], name="lengths")
    embeddings = v1.get_variable("embeddings", [VOCAB, EMBED])
    return ids, lengths, tf.nn.embedding_lookup(embeddings, ids)


def _train(*outputs):
    loss = sum(tf.reduce_mean(tf.square(o - 0.3)) for o in outputs)
    step = v1.train.get_or_create_global_step()
    return v1.train.GradientDescentOptimizer(0.5).minimize(loss, global_step=step)


def _values(sess, scope, names):
    return [sess.run(v1.global_variables(scope + "/" + n)[0]) for n in names]


def _emb(sess, feed, ids):
    return sess.run(v1.global_variables("embeddings")[0])[feed[ids]]


def test_peephole_projection_lstm_with_its_own_forget_bias(tmp_path):
    def build():
        ids, lengths, x = _embedded()
        cell = rnn_cell.LSTMCell(7, use_peepholes=True, num_proj=4, forget_bias=0.5)
        out, _ = v1.nn.dynamic_rnn(cell, x, sequence_length=lengths, dtype=tf.float32, scope="peep")
        return ids, lengths, _train(out)

    def check(sess, handles):
        ids, lengths, _ = handles
        feed = batch(ids, lengths, 0)
        k, b, wi, wf, wo, p = _values(
            sess,
            "peep/lstm_cell",
            ["kernel", "bias", "w_i_diag", "w_f_diag", "w_o_diag", "projection/kernel"],
        )
        assert_self_check(traces(sess, feed)["peep/lstm_cell"])
        run = lambda x: np_lstm(x, k, b, 0.5, (wi, wf, wo), p)  # noqa: E731
        return {"peep/lstm_cell": act_means(run, _emb(sess, feed, ids), feed[lengths])}

    records, expected = train_and_log(
        tmp_path, build, lambda h: batch(h[0], h[1], 0), lambda h, i: batch(h[0], h[1], i + 1), check
    )
    compare(records, expected, LSTM_GATES)


def _dropout_stack():
    ids, lengths, x = _embedded()
    keep = v1.placeholder_with_default(0.5, [], name="keep_prob")
    cells = [
        rnn_cell.DropoutWrapper(rnn_cell.LSTMCell(6), input_keep_prob=keep, output_keep_prob=keep),
        rnn_cell.DropoutWrapper(rnn_cell.BasicLSTMCell(5, forget_bias=0.5), output_keep_prob=keep),
        rnn_cell.DropoutWrapper(rnn_cell.GRUCell(4), output_keep_prob=keep),
    ]
    out, _ = v1.nn.dynamic_rnn(
        rnn_cell.MultiRNNCell(cells), x, sequence_length=lengths, dtype=tf.float32, scope="stack"
    )
    return ids, lengths, keep, out, _train(out)


STACK = (
    "stack/multi_rnn_cell/cell_0/lstm_cell",
    "stack/multi_rnn_cell/cell_1/basic_lstm_cell",
    "stack/multi_rnn_cell/cell_2/gru_cell",
)


def test_three_layer_multirnncell_with_dropout_probed_with_dropout_off(tmp_path):
    def check(sess, handles):
        ids, lengths, keep, out, _ = handles
        feed = batch(ids, lengths, 0)
        (k0, b0), (k1, b1) = (_values(sess, s, ["kernel", "bias"]) for s in STACK[:2])
        gk, gb, ck, cb = _values(
            sess, STACK[2], ["gates/kernel", "gates/bias", "candidate/kernel", "candidate/bias"]
        )
        runs = [
            lambda x: np_lstm(x, k0, b0),
            lambda x: np_lstm(x, k1, b1, 0.5),
            lambda x: np_gru(x, gk, gb, ck, cb),
        ]
        xs, result = list(_emb(sess, feed, ids)), {}
        for scope, run in zip(STACK, runs):
            result[scope] = act_means(run, np.array(xs), feed[lengths])
            # The layer above reads this one's outputs over the valid steps (padding is never read).
            outs = [run(x[:n].astype(np.float64))[1] for x, n in zip(xs, feed[lengths])]
            xs = [np.pad(o, ((0, 9 - len(o)), (0, 0))) for o in outs]
        got = traces(sess, {**feed, keep: 1.0})
        # A loop with dropout inside is not run by the probe: no reference, so the test checks it.
        assert got[STACK[2]].reference_outputs is None
        graph_out = sess.run(out, {**feed, keep: 1.0})
        np.testing.assert_allclose(got[STACK[2]].outputs, graph_out, atol=1e-5)
        return result

    records, expected = train_and_log(
        tmp_path,
        _dropout_stack,
        lambda h: {**batch(h[0], h[1], 0), h[2]: 1.0},
        lambda h, i: batch(h[0], h[1], i + 1),
        check,
    )
    compare(
        records, {s: {k: v for k, v in e.items() if "gru" not in k} for s, e in expected.items()}, LSTM_GATES
    )
    compare(records, {s: {k: v for k, v in e.items() if "gru" in k} for s, e in expected.items()}, GRU_GATES)


def _iterator_model():
    # Seeded initial weights: the cells' default initializers draw their own seeds.
    v1.get_variable_scope().set_initializer(v1.glorot_uniform_initializer(seed=1))
    rng = np.random.default_rng(3)
    data = tf.data.Dataset.from_tensor_slices(
        (rng.integers(0, VOCAB, (64, 9)).astype(np.int32), rng.integers(1, 10, 64).astype(np.int32))
    )
    ids, lengths = v1.data.make_one_shot_iterator(data.batch(4).repeat()).get_next()
    keep = v1.placeholder_with_default(0.5, [], name="keep_prob")
    embeddings = v1.get_variable("embeddings", [VOCAB, EMBED])
    x = tf.nn.dropout(tf.nn.embedding_lookup(embeddings, ids), rate=0.0)  # no random op: rate 0 is a constant
    cells = [rnn_cell.DropoutWrapper(rnn_cell.LSTMCell(6), output_keep_prob=keep), rnn_cell.GRUCell(4)]
    stacked, _ = v1.nn.dynamic_rnn(rnn_cell.MultiRNNCell(cells), x, sequence_length=lengths, dtype=tf.float32)
    (fw, bw), _ = v1.nn.bidirectional_dynamic_rnn(
        rnn_cell.LSTMCell(5),
        rnn_cell.LSTMCell(5),
        stacked,
        sequence_length=lengths,
        dtype=tf.float32,
        scope="bi",
    )
    return ids, lengths, keep, _train(fw, bw)


def _probe_feed(ids, lengths, keep):
    rng = np.random.default_rng(9)
    return {ids: rng.integers(0, VOCAB, (3, 9)), lengths: np.array([9, 5, 2]), keep: 1.0}


# One thread: TensorFlow's parallel reductions would otherwise add up in a different order each run.
CONFIG = v1.ConfigProto(intra_op_parallelism_threads=1, inter_op_parallelism_threads=1)


def _run_training(mode, tmp_path, steps=6):
    with tf.Graph().as_default():
        v1.set_random_seed(7)
        ids, lengths, keep, train = _iterator_model()
        probe = _probe_feed(ids, lengths, keep)
        if mode in ("hook", "monitored"):
            hooks = (
                [LSTMGatesHook(str(tmp_path / "hook"), every_n_steps=2, probe=probe)]
                if mode == "hook"
                else []
            )
            session = v1.train.MonitoredTrainingSession(
                hooks=hooks, save_summaries_steps=None, save_checkpoint_steps=None, config=CONFIG
            )
            with session as sess:
                for _ in range(steps):
                    sess.run(train)
                return _state(sess, ids)
        with v1.Session(config=CONFIG) as sess:
            sess.run(v1.global_variables_initializer())
            for i in range(steps):
                if mode == "log_session" and i % 2 == 0:
                    log_session(sess, str(tmp_path / "session"), step=i, probe=probe)
                sess.run(train)
            return _state(sess, ids)


def _state(sess, ids):
    variables = {v.name: v for v in v1.global_variables()}
    values = sess.run(variables)
    values["next batch"] = sess.run(ids)  # the iterator's position
    return values


def test_hook_and_log_session_with_a_probe_leave_training_bit_identical(tmp_path):
    for plain_mode, mode in (("monitored", "hook"), ("plain", "log_session")):
        plain = _run_training(plain_mode, tmp_path)
        assert plain["global_step:0"] == 6
        observed = _run_training(mode, tmp_path)
        assert sorted(observed) == sorted(plain)
        changed = [n for n in plain if np.asarray(plain[n]).tobytes() != np.asarray(observed[n]).tobytes()]
        assert changed == [], mode
    records = tb_lstm_gates.load(str(tmp_path / "hook"))
    assert {r.step for r in records if r.stat == "act_mean"} >= {0, 2, 4, 6}
    assert {r.layer for r in records if r.stat == "act_mean"} == {
        "rnn/multi_rnn_cell/cell_0/lstm_cell",
        "rnn/multi_rnn_cell/cell_1/gru_cell",
        "bi/fw/lstm_cell",
        "bi/bw/lstm_cell",
    }


def test_the_comparison_sees_a_probe_that_moves_dropout_on(tmp_path):
    # Running the loop with dropout inside (what the probe avoids) changes training: the test can fail.
    plain = _run_training("plain", tmp_path)
    with tf.Graph().as_default():
        v1.set_random_seed(7)
        ids, lengths, keep, train = _iterator_model()
        stacked = v1.get_default_graph().get_tensor_by_name("rnn/transpose_1:0")
        with v1.Session(config=CONFIG) as sess:
            sess.run(v1.global_variables_initializer())
            for i in range(6):
                if i % 2 == 0:
                    sess.run(stacked, _probe_feed(ids, lengths, keep))
                sess.run(train)
            meddled = _state(sess, ids)
    assert any(np.asarray(plain[n]).tobytes() != np.asarray(meddled[n]).tobytes() for n in plain)


def test_a_probe_that_would_read_the_iterator_is_refused(tmp_path):
    with tf.Graph().as_default():
        ids, lengths, keep, train = _iterator_model()
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            with pytest.raises(ValueError, match="IteratorGetNext.*feed the tensors"):
                log_session(sess, str(tmp_path), step=0, probe={keep: 1.0})


def test_probe_tokens_label_the_text_view(tmp_path):
    with tf.Graph().as_default():
        ids, lengths, train = seed_model(units=8)
        feed = batch(ids, lengths, 0)
        words = [["w%d" % t for t in row] for row in feed[ids]]
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            log_session(sess, str(tmp_path), step=0, probe=feed, probe_tokens=words)
    records = tb_lstm_gates.load(str(tmp_path))
    assert "probe_sequences" in {r.stat for r in records}
    with pytest.raises(ValueError, match="need probe="):
        LSTMGatesHook(str(tmp_path), probe_tokens=words)
    with pytest.raises(ValueError, match="feed dict"):
        LSTMGatesHook(str(tmp_path), probe=[1, 2])


def test_a_cell_no_loop_runs_is_named_and_probe_inputs_covers_it(tmp_path):
    with tf.Graph().as_default():
        x = v1.placeholder(tf.float32, [None, 5, 3])
        cell = rnn_cell.LSTMCell(4)
        state = cell.zero_state(tf.shape(x)[0], tf.float32)
        outputs = []
        with v1.variable_scope("decoder"):
            for t in range(5):  # a hand-written loop that feeds each step's input itself
                out, state = cell(x[:, t] * 2.0, state)
                outputs.append(out)
        feed = {x: np.random.default_rng(0).normal(size=(2, 5, 3))}
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            layer = graph_cells(sess.graph)[0].layer
            with pytest.warns(UserWarning, match="%s.*probe_inputs" % layer):
                log_session(sess, str(tmp_path / "a"), step=0, probe=feed)
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                log_session(sess, str(tmp_path / "b"), step=0, probe=feed, probe_inputs={layer: x * 2.0})
            kernel, bias = sess.run([cell.variables[0], cell.variables[1]])
            want, want_out = zip(*(np_lstm(row * 2.0, kernel, bias) for row in feed[x]))
            np.testing.assert_allclose(np.stack(want_out), np.stack(sess.run(outputs, feed), 1), atol=1e-5)
    got = logged(tb_lstm_gates.load(str(tmp_path / "b")), layer, 0)
    np.testing.assert_allclose([got[g] for g in LSTM_GATES], np.stack(want).mean(axis=(0, 1, 3)), rtol=1e-5)


def test_gru_under_static_bidirectional_rnn_is_named_then_probed_through_probe_inputs(tmp_path):
    fw_scope, bw_scope = "static/fw/gru_cell", "static/bw/gru_cell"
    with tf.Graph().as_default():
        ids, lengths, x = _embedded()
        steps = v1.unstack(tf.reshape(x, [-1, 9, EMBED]), 9, axis=1)
        outputs, _, _ = v1.nn.static_bidirectional_rnn(
            rnn_cell.GRUCell(5), rnn_cell.GRUCell(5), steps, dtype=tf.float32, scope="static"
        )
        train = _train(tf.stack(outputs, 1))
        feed = {ids: np.random.default_rng(4).integers(0, VOCAB, (3, 9))}
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            sess.run(train, feed)
            with pytest.warns(UserWarning, match="static/fw/gru_cell, static/bw/gru_cell.*probe_inputs"):
                log_session(sess, str(tmp_path / "a"), step=1, probe=feed)
            # Every step is valid here: the backward cell reads the sequence from its end.
            mapping = {fw_scope: x, bw_scope: tf.reverse(x, [1])}
            with warnings.catch_warnings():
                warnings.simplefilter("error", UserWarning)
                log_session(sess, str(tmp_path / "b"), step=1, probe=feed, probe_inputs=mapping)
            emb, expected = _emb(sess, feed, ids), {}
            for scope, backward in ((fw_scope, False), (bw_scope, True)):
                gk, gb, ck, cb = _values(
                    sess, scope, ["gates/kernel", "gates/bias", "candidate/kernel", "candidate/bias"]
                )
                run = lambda s, a=(gk, gb, ck, cb): np_gru(s, *a)  # noqa: E731
                expected[scope] = act_means(run, emb, [9, 9, 9], backward)
    records = tb_lstm_gates.load(str(tmp_path / "b"))
    assert not tb_lstm_gates.load(str(tmp_path / "a")) or not any(
        r.stat == "act_mean" for r in tb_lstm_gates.load(str(tmp_path / "a"))
    )
    compare(records, {1: expected}, GRU_GATES)
