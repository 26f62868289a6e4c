"""LSTMGatesCallback under tf.distribute, each strategy in processes of its own.

Logical devices must be configured before TensorFlow initialises them, and a
multi-worker cluster needs one process per worker, so the training runs in
`training_worker.py` processes; the test process only reads the results.
"""

import json
import os
import socket

import numpy as np
import worker_process

import tb_lstm_gates

EPOCHS = 3


def _assert_logged_values_are_the_saved_weights(logdir, out):
    run_dir = os.path.join(logdir, "train")
    steps = worker_process.written_steps(run_dir)
    assert steps == list(range(EPOCHS + 1)), "each step written once, in order"
    logged = worker_process.logged_recurrent_l2(tb_lstm_gates.load(logdir))
    assert sorted(logged) == list(range(EPOCHS + 1))
    worker_process.assert_logged_l2_is_saved_l2(logged, out)


def test_mirrored_strategy_over_two_logical_cpus_logs_the_replicated_weights(tmp_path):
    logdir, out = tmp_path / "logs", tmp_path / "out"
    stdout = worker_process.run("mirrored", logdir, out, EPOCHS)
    assert "CHIEF True" in stdout and "DONE" in stdout
    _assert_logged_values_are_the_saved_weights(logdir, out)


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_multi_worker_mirrored_strategy_only_worker_0_writes_each_step_once(tmp_path):
    logdir = tmp_path / "logs"
    cluster = {"worker": ["127.0.0.1:%d" % port for port in _free_ports(2)]}
    workers = [
        worker_process.start(
            "mwms",
            logdir,
            tmp_path / ("out%d" % index),
            EPOCHS,
            env={"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})},
        )
        for index in range(2)
    ]
    outputs = []
    try:
        for worker in workers:
            stdout, stderr = worker.communicate(timeout=300)
            assert worker.returncode == 0, stderr[-5000:]
            outputs.append(stdout)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    # Keras 3 runs the callbacks on every worker; only worker 0 may write.
    assert ["CHIEF True" in s for s in outputs] == [True, False]
    assert all("DONE" in s for s in outputs)
    (event_file,) = os.listdir(logdir / "train")
    assert ".%d." % workers[0].pid in event_file
    # Synchronous training: both workers end with the same weights.
    for step in range(EPOCHS + 1):
        np.testing.assert_array_equal(
            np.load(tmp_path / "out0" / ("step_%d.npy" % step)),
            np.load(tmp_path / "out1" / ("step_%d.npy" % step)),
        )
    _assert_logged_values_are_the_saved_weights(logdir, tmp_path / "out0")
