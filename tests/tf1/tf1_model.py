"""Test helpers: a small TF1 model with every kind of cell, trained with LSTMGatesHook and checkpoints."""

import os

import numpy as np
import tensorflow as tf

v1 = tf.compat.v1
rnn_cell = v1.nn.rnn_cell

DEPTH = 200  # the input depth of DESIGN.md's doc_word example
UNITS = 6
TRAIN_STEPS = 5

# Scope of each cell -> (kind, input depth, h), to slice the weights by hand.
CELLS = {
    "doc_word/fw/lstm_cell": ("lstm", DEPTH, UNITS),
    "doc_word/bw/lstm_cell": ("lstm", DEPTH, UNITS),
    "stack/multi_rnn_cell/cell_0/lstm_cell": ("lstm", 2 * UNITS, UNITS),
    "stack/multi_rnn_cell/cell_1/basic_lstm_cell": ("lstm", UNITS, UNITS),
    "peep/lstm_cell": ("lstm", 2 * UNITS, 3),
    "gru/gru_cell": ("gru", 2 * UNITS, 4),
}


def build_model():
    """Builds the model in the default graph; returns (inputs placeholder, train op)."""
    x = v1.placeholder(tf.float32, [4, 7, DEPTH])
    (fw, bw), _ = v1.nn.bidirectional_dynamic_rnn(
        rnn_cell.LSTMCell(UNITS), rnn_cell.LSTMCell(UNITS), x, dtype=tf.float32, scope="doc_word"
    )
    seq = tf.concat([fw, bw], -1)
    stacked, _ = v1.nn.dynamic_rnn(
        rnn_cell.MultiRNNCell([rnn_cell.LSTMCell(UNITS), rnn_cell.BasicLSTMCell(UNITS)]),
        seq,
        dtype=tf.float32,
        scope="stack",
    )
    peep, _ = v1.nn.dynamic_rnn(
        rnn_cell.LSTMCell(UNITS, use_peepholes=True, num_proj=3), seq, dtype=tf.float32, scope="peep"
    )
    gru, _ = v1.nn.dynamic_rnn(rnn_cell.GRUCell(4), seq, dtype=tf.float32, scope="gru")
    loss = sum(tf.reduce_mean(tf.square(t - 0.5)) for t in (stacked, peep, gru))
    step = v1.train.get_or_create_global_step()
    train = v1.train.GradientDescentOptimizer(0.5).minimize(loss, global_step=step)
    return x, train


def feed(x):
    return {x: np.random.default_rng(1).normal(size=x.shape.as_list()).astype(np.float32)}


def hand_blocks(kind, depth, units, values):
    """{(part, gate): block} of one cell, sliced by hand in TF1's order (i, j, f, o; r, u)."""
    out = {}
    if kind == "lstm":
        kernel, bias = values["kernel"], values["bias"]
        u = bias.shape[0] // 4
        for k, gate in enumerate(("input", "cell", "forget", "output")):
            cols = slice(k * u, (k + 1) * u)
            out["input", gate] = kernel[:depth, cols]
            out["recurrent", gate] = kernel[depth:, cols]
            out["bias", gate] = bias[cols]
        for gate in ("input", "forget", "output"):
            if "w_%s_diag" % gate[0] in values:
                out["peephole", gate] = values["w_%s_diag" % gate[0]]
        if "projection/kernel" in values:
            out["projection", "all"] = values["projection/kernel"]
    else:
        kernel, bias = values["gates/kernel"], values["gates/bias"]
        u = bias.shape[0] // 2
        for k, gate in enumerate(("reset", "update")):
            cols = slice(k * u, (k + 1) * u)
            out["input", gate] = kernel[:depth, cols]
            out["recurrent", gate] = kernel[depth:, cols]
            out["bias", gate] = bias[cols]
        out["input", "candidate"] = values["candidate/kernel"][:depth]
        out["recurrent", "candidate"] = values["candidate/kernel"][depth:]
        out["bias", "candidate"] = values["candidate/bias"]
    return out


def expected_l2(reader):
    """{(layer, part, gate): l2} from `reader(name) -> array`, sliced by hand."""
    out = {}
    for layer, (kind, depth, units) in CELLS.items():
        names = (
            ("kernel", "bias", "w_i_diag", "w_f_diag", "w_o_diag", "projection/kernel")
            if kind == "lstm"
            else ("gates/kernel", "gates/bias", "candidate/kernel", "candidate/bias")
        )
        values = {}
        for n in names:
            try:
                values[n] = reader(layer + "/" + n)
            except (KeyError, ValueError, tf.errors.NotFoundError):
                pass
        for key, block in hand_blocks(kind, depth, units, values).items():
            out[(layer,) + key] = float(np.linalg.norm(block))
    return out


def l2_by_step(records, run=None):
    """{step: {(layer, part, gate): l2}} of the `l2` records."""
    out = {}
    for r in records:
        if r.stat == "l2" and (run is None or r.run == run):
            out.setdefault(r.step, {})[r.layer, r.part, r.gate] = r.value
    return out


def train_with_hook_and_checkpoints(root):
    """Trains TRAIN_STEPS steps with LSTMGatesHook (every 2 steps) and a checkpoint every 2 steps."""
    from tb_lstm_gates.tf1 import LSTMGatesHook

    log_dir, ckpt_dir = str(root / "logs" / "hook"), str(root / "ckpt")
    with tf.Graph().as_default():
        x, train = build_model()
        hook = LSTMGatesHook(log_dir, every_n_steps=2)
        saver = v1.train.CheckpointSaverHook(ckpt_dir, save_steps=2, saver=v1.train.Saver(max_to_keep=None))
        with v1.train.MonitoredTrainingSession(
            hooks=[hook, saver], save_summaries_steps=None, save_checkpoint_steps=None
        ) as sess:
            for _ in range(TRAIN_STEPS):
                sess.run(train, feed(x))
    prefixes = sorted(
        (int(f.split("-")[1].split(".")[0]), os.path.join(ckpt_dir, f[: -len(".index")]))
        for f in os.listdir(ckpt_dir)
        if f.endswith(".index")
    )
    return {"log_dir": log_dir, "ckpt_dir": ckpt_dir, "checkpoints": prefixes, "root": root}
