"""tf1.gate_blocks and per-block tf1_gate_penalty on the seed's model (run with TF_USE_LEGACY_KERAS=1).

The seed's model: `bidirectional_dynamic_rnn(LSTMCell(100), LSTMCell(100))`
over inputs of depth 200 in scope `doc_word`, whose `doc_word/fw/lstm_cell/kernel`
(300, 400) holds Wxi, Whi, Wxj, Whj, Wxf, Whf, Wxo, Who. Expected blocks are
cut by hand from the checkpoint: rows [:200] / [200:], columns in TF1's order
i, j, f, o.
"""

import numpy as np
import pytest
import tensorflow as tf

import tb_lstm_gates
from tb_lstm_gates import tf1
from tb_lstm_gates.keras import regularizers
from tb_lstm_gates.tf1 import penalty as tf1_penalty

v1 = tf.compat.v1
rnn_cell = v1.nn.rnn_cell
DEPTH, UNITS = 200, 100
TF1_LSTM = ("input", "cell", "forget", "output")  # i, j, f, o
FW = "doc_word/fw/lstm_cell"


def hand_slices(kernel, bias, depth, order):
    units = kernel.shape[1] // len(order)
    out = {}
    for k, gate in enumerate(order):
        cols = slice(k * units, (k + 1) * units)
        out["input", gate] = kernel[:depth, cols]
        out["recurrent", gate] = kernel[depth:, cols]
        out["bias", gate] = bias[cols]
    return out


def seed_graph(c):
    """The seed's model with c * sum(Whf ** 2) of the forward cell in its loss."""
    x = v1.placeholder(tf.float32, [8, 5, DEPTH])
    outputs, _ = v1.nn.bidirectional_dynamic_rnn(
        rnn_cell.LSTMCell(UNITS), rnn_cell.LSTMCell(UNITS), x, dtype=tf.float32, scope="doc_word"
    )
    with v1.variable_scope(FW, reuse=True):
        kernel, bias = v1.get_variable("kernel"), v1.get_variable("bias")
    penalty = tf1.tf1_gate_penalty(kernel, DEPTH, l2={"recurrent/forget": c})
    loss = tf.reduce_mean(tf.square(tf.concat(outputs, -1) - 0.3)) + penalty
    step = v1.train.get_or_create_global_step()
    train = v1.train.GradientDescentOptimizer(0.1).minimize(loss, global_step=step)
    feed = {x: np.random.default_rng(0).normal(size=(8, 5, DEPTH)).astype(np.float32)}
    return kernel, bias, penalty, train, feed


@pytest.fixture(scope="module")
def seed_run(tmp_path_factory):
    """Trains the seed's model with a penalty on Whf alone, logged by LSTMGatesHook, and checkpoints it."""
    root = tmp_path_factory.mktemp("seed")
    log_dir, ckpt_dir = str(root / "logs"), str(root / "ckpt")
    c = 2.0
    with tf.Graph().as_default():
        kernel, bias, penalty, train, feed = seed_graph(c)
        blocks = tf1.gate_blocks(kernel, DEPTH, bias=bias)
        (gradient,) = tf.gradients(penalty, [kernel])
        hooks = [
            tb_lstm_gates.tf1.LSTMGatesHook(log_dir, every_n_steps=3),
            v1.train.CheckpointSaverHook(ckpt_dir, save_steps=100),
        ]
        with v1.train.MonitoredTrainingSession(
            hooks=hooks, save_summaries_steps=None, save_checkpoint_steps=None
        ) as sess:
            for _ in range(6):
                sess.run(train, feed)
            values = sess.run({"blocks": blocks, "penalty": penalty, "gradient": gradient, "kernel": kernel})
    checkpoint = tf.train.latest_checkpoint(ckpt_dir)
    assert checkpoint.endswith("-6")
    return dict(values, c=c, log_dir=log_dir, checkpoint=checkpoint)


def test_the_eight_seed_blocks_equal_hand_slices_of_the_checkpointed_kernel(seed_run):
    reader = tf.train.load_checkpoint(seed_run["checkpoint"])
    kernel, bias = reader.get_tensor(FW + "/kernel"), reader.get_tensor(FW + "/bias")
    assert kernel.shape == (300, 400)
    expected = hand_slices(kernel, bias, DEPTH, TF1_LSTM)
    blocks = seed_run["blocks"]
    assert set(blocks) == set(expected)
    assert sum(part != "bias" for part, _ in blocks) == 8
    for key, block in expected.items():
        np.testing.assert_array_equal(blocks[key], block, err_msg=str(key))
    np.testing.assert_array_equal(blocks["recurrent", "forget"], kernel[200:, 200:300])  # Whf


def test_penalty_on_recurrent_forget_is_c_sum_whf_squared_with_gradient_only_on_whf(seed_run):
    c, kernel = seed_run["c"], seed_run["kernel"].astype(np.float64)
    whf = kernel[200:, 200:300]
    assert seed_run["penalty"] == pytest.approx(c * np.square(whf).sum(), rel=1e-5)
    expected = np.zeros_like(kernel)
    expected[200:, 200:300] = 2 * c * whf
    np.testing.assert_allclose(seed_run["gradient"], expected, rtol=1e-5, atol=1e-7)
    assert not np.delete(seed_run["gradient"], np.s_[200:300], axis=1).any()
    assert not seed_run["gradient"][:200].any()


def test_hook_logs_the_penalized_whf_shrinking_against_the_other_blocks(seed_run):
    logged = {}
    for r in tb_lstm_gates.load(seed_run["log_dir"]):
        if r.stat == "l2" and r.layer == FW:
            logged.setdefault(r.step, {})[r.part, r.gate] = r.value
    assert sorted(logged) == [0, 3, 6]
    kernel = tf.train.load_checkpoint(seed_run["checkpoint"]).get_tensor(FW + "/kernel")
    assert logged[6]["recurrent", "forget"] == pytest.approx(np.linalg.norm(kernel[200:, 200:300]), rel=1e-5)
    ratio = {key: logged[6][key] / logged[0][key] for key in logged[0] if key[0] != "bias"}
    assert ratio["recurrent", "forget"] < 0.5
    assert min(v for k, v in ratio.items() if k != ("recurrent", "forget")) > 0.9


def test_blocks_are_differentiable_slices_in_eager_mode():
    rng = np.random.default_rng(0)
    kernel = tf.Variable(rng.normal(size=(7, 16)).astype(np.float32))
    bias = tf.Variable(rng.normal(size=16).astype(np.float32))
    with tf.GradientTape() as tape:
        blocks = tf1.gate_blocks(kernel, 3, bias=bias)
        loss = tf.reduce_sum(blocks["recurrent", "forget"]) + 2 * tf.reduce_sum(blocks["bias", "cell"])
    kernel_grad, bias_grad = tape.gradient(loss, [kernel, bias])
    expected = np.zeros((7, 16), np.float32)
    expected[3:, 8:12] = 1  # recurrent rows, TF1's f columns
    np.testing.assert_array_equal(kernel_grad.numpy(), expected)
    np.testing.assert_array_equal(bias_grad.numpy(), np.repeat([0, 2, 0, 0], 4))  # TF1's j
    np.testing.assert_array_equal(blocks["input", "output"].numpy(), kernel.numpy()[:3, 12:])
    with tf.GradientTape() as tape:
        penalty = tf1.tf1_gate_penalty(kernel, 3, l1={"recurrent/forget": 0.5})
    assert float(penalty) == pytest.approx(0.5 * np.abs(kernel.numpy()[3:, 8:12]).sum(), rel=1e-6)
    expected[3:, 8:12] = 0.5 * np.sign(kernel.numpy()[3:, 8:12])
    np.testing.assert_array_equal(tape.gradient(penalty, kernel).numpy(), expected)


def test_gru_kernels_biases_and_lstm_peepholes_in_a_session():
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [2, 4, 3])
        v1.nn.dynamic_rnn(rnn_cell.GRUCell(4), x, dtype=tf.float32, scope="gru")
        peephole_cell = rnn_cell.LSTMCell(5, use_peepholes=True, num_proj=2)
        v1.nn.dynamic_rnn(peephole_cell, x, dtype=tf.float32, scope="peep")
        variables = {v.name[:-2]: v for v in v1.global_variables()}
        gru = "gru/gru_cell/"
        gates = tf1.gate_blocks(variables[gru + "gates/kernel"], 3, "gru", bias=variables[gru + "gates/bias"])
        candidate = tf1.gate_blocks(
            variables[gru + "candidate/kernel"], 3, "gru", bias=variables[gru + "candidate/bias"]
        )
        peep = "peep/lstm_cell/"
        lstm = tf1.gate_blocks(
            variables[peep + "kernel"],
            3,
            peepholes=[variables[peep + "w_%s_diag" % g] for g in "ifo"],
        )
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            values, blocks = sess.run((variables, (gates, candidate, lstm)))
    expected = hand_slices(values[gru + "gates/kernel"], values[gru + "gates/bias"], 3, ("reset", "update"))
    candidate_kernel, candidate_bias = values[gru + "candidate/kernel"], values[gru + "candidate/bias"]
    expected.update(hand_slices(candidate_kernel, candidate_bias, 3, ("candidate",)))
    got = {**blocks[0], **blocks[1]}
    assert set(got) == set(expected)
    for key, block in expected.items():
        np.testing.assert_array_equal(got[key], block, err_msg=str(key))
    lstm = blocks[2]
    assert lstm["recurrent", "forget"].shape == (2, 5)  # num_proj recurrent rows
    np.testing.assert_array_equal(lstm["recurrent", "forget"], values[peep + "kernel"][3:, 10:15])
    for gate in ("input", "forget", "output"):
        np.testing.assert_array_equal(lstm["peephole", gate], values[peep + "w_%s_diag" % gate[0]])
    assert ("bias", "forget") not in lstm


def test_gru_block_penalty_applies_to_the_kernel_that_holds_the_block():
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [2, 4, 3])
        v1.nn.dynamic_rnn(rnn_cell.GRUCell(4), x, dtype=tf.float32)
        variables = {v.name[:-2]: v for v in v1.global_variables()}
        gates, candidate = variables["rnn/gru_cell/gates/kernel"], variables["rnn/gru_cell/candidate/kernel"]
        l1 = {"input/update": 0.5, "recurrent/candidate": 0.25, "reset": 0.1}
        penalties = [tf1.tf1_gate_penalty(k, 3, "gru", l1=l1) for k in (gates, candidate)]
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            (on_gates, on_candidate), g, cand = sess.run((penalties, gates, candidate))
    g, cand = g.astype(np.float64), cand.astype(np.float64)
    assert on_gates == pytest.approx(0.5 * np.abs(g[:3, 4:]).sum() + 0.1 * np.abs(g[:, :4]).sum(), rel=1e-5)
    assert on_candidate == pytest.approx(0.25 * np.abs(cand[3:]).sum(), rel=1e-5)


def test_bad_keys_and_weights_raise_naming_the_valid_keys():
    kernel = tf.zeros((300, 400))
    with pytest.raises(ValueError, match=r"unknown key 'bias/forget'.*input/input, .*recurrent/output$"):
        tf1.tf1_gate_penalty(kernel, DEPTH, l2={"bias/forget": 1.0})
    with pytest.raises(ValueError, match=r"unknown key 'recurrent/j'"):
        tf1.tf1_gate_penalty(kernel, DEPTH, l2={"recurrent/j": 1.0})
    with pytest.raises(ValueError, match=r"orthogonal applies to square recurrent blocks only, got 'input/f"):
        tf1.tf1_gate_penalty(kernel, DEPTH, orthogonal={"input/forget": 1.0})
    with pytest.raises(ValueError, match=r"bias of a lstm kernel .*must have shape \(400,\).*got \(100,\)"):
        tf1.gate_blocks(kernel, DEPTH, bias=tf.zeros(100))
    with pytest.raises(ValueError, match=r"a gru cell has no peepholes"):
        tf1.gate_blocks(tf.zeros((7, 8)), 3, "gru", peepholes=[tf.zeros(4)] * 3)
    with pytest.raises(ValueError, match=r"must be \(w_i_diag, w_f_diag, w_o_diag\), each of shape \(100"):
        tf1.gate_blocks(kernel, DEPTH, peepholes=[tf.zeros(100)] * 2)
    with pytest.raises(ValueError, match=r"input_depth must be an int between 1 and 299"):
        tf1.gate_blocks(kernel, 300)
    with pytest.raises(ValueError, match=r"cell must be 'lstm' or 'gru'"):
        tf1.gate_blocks(kernel, DEPTH, cell="rnn")


def test_tf1_gate_penalty_lives_in_the_tf1_wing_and_not_in_the_keras_one():
    # Wings never import each other: the Keras regularizers no longer hand out the TF1 penalty.
    assert not hasattr(regularizers, "tf1_gate_penalty")
    assert tf1.tf1_gate_penalty is tf1_penalty.tf1_gate_penalty


def penalties_at(log_dir, step):
    return {
        (r.layer, r.part, r.gate): r.value
        for r in tb_lstm_gates.load(log_dir)
        if r.stat == "penalty" and r.step == step
    }


def test_hook_logs_the_penalty_of_each_block_for_the_tabs_regularization_section(seed_run):
    logged = penalties_at(seed_run["log_dir"], 6)
    kernel = tf.train.load_checkpoint(seed_run["checkpoint"]).get_tensor(FW + "/kernel").astype(np.float64)
    whf = seed_run["c"] * np.square(kernel[200:, 200:300]).sum()
    # Only the block a key names: the seven others have no penalty to show.
    series = [(FW, "recurrent", "forget"), (FW, "total", "total"), ("model", "total", "total")]
    expected = dict.fromkeys(series, whf)
    assert logged == {k: pytest.approx(v, rel=1e-5) for k, v in expected.items()}
    steps = {r.step for r in tb_lstm_gates.load(seed_run["log_dir"]) if r.stat == "penalty"}
    assert sorted(steps) == [0, 3, 6]


def test_log_session_adds_up_penalties_of_both_gru_kernels_and_of_repeated_calls(tmp_path):
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [2, 4, 3])
        v1.nn.dynamic_rnn(rnn_cell.GRUCell(4), x, dtype=tf.float32)
        variables = {v.name[:-2]: v for v in v1.global_variables()}
        gates, candidate = variables["rnn/gru_cell/gates/kernel"], variables["rnn/gru_cell/candidate/kernel"]
        l2 = {"recurrent/reset": 0.5, "input/candidate": 0.25}
        for k in (gates, candidate):
            tf1.tf1_gate_penalty(k, 3, "gru", l2=l2)
        tf1.tf1_gate_penalty(gates, 3, "gru", l1={"recurrent/reset": 0.1})
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            tf1.log_session(sess, str(tmp_path), step=7)
            g, cand = (v.astype(np.float64) for v in sess.run((gates, candidate)))
    logged = penalties_at(str(tmp_path), 7)
    reset = 0.5 * np.square(g[3:, :4]).sum() + 0.1 * np.abs(g[3:, :4]).sum()
    layer = "rnn/gru_cell"
    assert logged[layer, "recurrent", "reset"] == pytest.approx(reset, rel=1e-5)
    assert logged[layer, "input", "candidate"] == pytest.approx(0.25 * np.square(cand[:3]).sum(), rel=1e-5)
    assert (layer, "recurrent", "update") not in logged
    assert {k for k in logged if k[0] == layer} == {
        (layer, "recurrent", "reset"),
        (layer, "input", "candidate"),
        (layer, "total", "total"),
    }
    assert logged[layer, "total", "total"] == pytest.approx(
        logged[layer, "recurrent", "reset"] + logged[layer, "input", "candidate"], rel=1e-6
    )
