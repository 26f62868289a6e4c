"""LSTMGatesHook logs on its grid of global steps, whatever else the session runs (issue 26).

A real TF1 graph in a real MonitoredTrainingSession: evaluation runs between
train steps, a restored global step, a second train op per step, a train op
moving the step by more than one, and every_n_secs.
"""

import time

import numpy as np
import tensorflow as tf

import tb_lstm_gates
from tb_lstm_gates import tf1

v1 = tf.compat.v1


def build(increment=1):
    """A small LSTM graph: `(feed, train, evaluate, second)`, `second` a train op that leaves the step alone."""
    x = v1.placeholder(tf.float32, [2, 5, 3])
    out, _ = v1.nn.dynamic_rnn(v1.nn.rnn_cell.LSTMCell(4), x, dtype=tf.float32, scope="enc")
    loss = tf.reduce_mean(tf.square(out - 0.5))
    step = v1.train.get_or_create_global_step()
    optimizer = v1.train.GradientDescentOptimizer(0.1)
    if increment == 1:
        train = optimizer.minimize(loss, global_step=step)
    else:
        with tf.control_dependencies([optimizer.minimize(loss)]):
            train = v1.assign_add(step, increment)
    second = v1.train.GradientDescentOptimizer(0.01).minimize(loss)  # e.g. a GAN's other player
    values = np.random.default_rng(3).normal(size=(2, 5, 3)).astype(np.float32)
    return {x: values}, train, loss, second


def logged_steps(log_dir):
    return sorted({r.step for r in tb_lstm_gates.load(str(log_dir)) if r.stat == "l2"})


def test_evaluation_runs_between_train_steps_never_move_the_grid(tmp_path):
    with tf.Graph().as_default():
        feed, train, evaluate, _ = build()
        hook = tf1.LSTMGatesHook(str(tmp_path), every_n_steps=2, histogram_freq=0)
        with v1.train.MonitoredTrainingSession(hooks=[hook], save_checkpoint_steps=None) as sess:
            for _ in range(8):
                sess.run(train, feed)
                sess.run(evaluate, feed)  # the accuracy and loss of the published example
                sess.run(evaluate, feed)
    assert logged_steps(tmp_path) == [0, 2, 4, 6, 8]


def test_a_second_train_op_per_step_never_moves_the_grid(tmp_path):
    with tf.Graph().as_default():
        feed, train, _, second = build()
        hook = tf1.LSTMGatesHook(str(tmp_path), every_n_steps=3, histogram_freq=0)
        with v1.train.MonitoredTrainingSession(hooks=[hook], save_checkpoint_steps=None) as sess:
            for _ in range(7):
                sess.run(second, feed)
                sess.run(train, feed)
    assert logged_steps(tmp_path) == [0, 3, 6, 7]


def test_a_restored_global_step_keeps_the_grid_of_multiples(tmp_path):
    checkpoints = str(tmp_path / "ckpt")
    with tf.Graph().as_default():
        feed, train, _, _ = build()
        with v1.train.MonitoredTrainingSession(checkpoint_dir=checkpoints, save_summaries_steps=None) as sess:
            for _ in range(3):
                sess.run(train, feed)
    with tf.Graph().as_default():
        feed, train, evaluate, _ = build()
        hook = tf1.LSTMGatesHook(str(tmp_path / "logs"), every_n_steps=2, histogram_freq=0)
        with v1.train.MonitoredTrainingSession(
            checkpoint_dir=checkpoints, hooks=[hook], save_summaries_steps=None
        ) as sess:
            for _ in range(5):
                sess.run(evaluate, feed)
                sess.run(train, feed)
    # The restored step 3 at the start, the multiples of 2, the last step 8 at the end.
    assert logged_steps(tmp_path / "logs") == [3, 4, 6, 8]


def test_a_train_op_moving_the_step_by_several_logs_the_step_read_past_each_multiple(tmp_path):
    with tf.Graph().as_default():
        feed, train, evaluate, _ = build(increment=3)
        hook = tf1.LSTMGatesHook(str(tmp_path), every_n_steps=2, histogram_freq=0)
        with v1.train.MonitoredTrainingSession(hooks=[hook], save_checkpoint_steps=None) as sess:
            for _ in range(4):
                sess.run(train, feed)
                sess.run(evaluate, feed)
    # Steps read: 3, 6, 9, 12; each passes a multiple of 2.
    assert logged_steps(tmp_path) == [0, 3, 6, 9, 12]


def test_every_n_secs_logs_at_steps_read_and_never_at_evaluation_runs(tmp_path):
    with tf.Graph().as_default():
        feed, train, evaluate, _ = build()
        hook = tf1.LSTMGatesHook(str(tmp_path / "fast"), every_n_secs=1e-6, histogram_freq=0)
        with v1.train.MonitoredTrainingSession(hooks=[hook], save_checkpoint_steps=None) as sess:
            for _ in range(4):
                sess.run(train, feed)
                time.sleep(0.01)
                sess.run(evaluate, feed)
    # Each train step once; the evaluation runs, after the time elapsed, add none.
    assert logged_steps(tmp_path / "fast") == [0, 1, 2, 3, 4]
    with tf.Graph().as_default():
        feed, train, evaluate, _ = build()
        hook = tf1.LSTMGatesHook(str(tmp_path / "slow"), every_n_secs=3600, histogram_freq=0)
        with v1.train.MonitoredTrainingSession(hooks=[hook], save_checkpoint_steps=None) as sess:
            for _ in range(4):
                sess.run(train, feed)
                sess.run(evaluate, feed)
    assert logged_steps(tmp_path / "slow") == [0, 4]
