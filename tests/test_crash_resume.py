"""A training run killed with SIGKILL, then resumed into the same log directory."""

import os
import signal

import pytest
import worker_process
from tensorboard.backend import application
from test_plugin_routes import ROUTE, _plugin, _python_provider
from werkzeug import test as werkzeug_test

import tb_lstm_gates

KILLED_AFTER = 3
EPOCHS = 5


def _kill_after_epoch(logdir, out, epoch):
    """Starts a `crash` worker, waits until it reports `epoch` done, SIGKILLs it."""
    worker = worker_process.start("crash", logdir, out, epoch)
    try:
        for line in worker.stdout:
            if line.strip() == "EPOCH %d" % epoch:
                break
        else:
            pytest.fail("worker ended early:\n" + worker.stderr.read()[-5000:])
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.communicate(timeout=60)
    assert worker.returncode == -signal.SIGKILL


@pytest.mark.parametrize(
    "checkpoint_lost", [False, True], ids=["resume_from_last_epoch", "resume_from_older"]
)
def test_killed_run_reads_to_its_last_step_and_resume_continues_it(tmp_path, checkpoint_lost):
    logdir, out = tmp_path / "logs", tmp_path / "out"
    _kill_after_epoch(logdir, out, KILLED_AFTER)
    steps = list(range(KILLED_AFTER + 1))
    logged = worker_process.logged_recurrent_l2(tb_lstm_gates.load(logdir))
    assert sorted(logged) == steps
    worker_process.assert_logged_l2_is_saved_l2(logged, out)
    client = werkzeug_test.Client(application.TensorBoardWSGI([_plugin(_python_provider(os.fspath(logdir)))]))
    (layer,) = [layer["layer"] for layer in client.get(ROUTE + "runs").get_json()["runs"][0]["layers"]]
    series = client.get(ROUTE + "series", query_string={"layer": layer, "stat": "l2"}).get_json()["series"]
    assert {tuple(s["steps"]) for s in series} == {tuple(steps)}

    resumed_from = KILLED_AFTER
    if checkpoint_lost:
        # Killed after the callback logged the last epoch but before that
        # epoch's checkpoint was saved: the resumed run logs that step again.
        resumed_from -= 1
        (out / "epoch").write_text(str(resumed_from))
    worker_process.run("resume", logdir, out, EPOCHS)
    written = worker_process.written_steps(logdir / "train")
    assert written == list(range(KILLED_AFTER + 1)) + list(range(resumed_from + 1, EPOCHS + 1))
    logged = worker_process.logged_recurrent_l2(tb_lstm_gates.load(logdir))
    assert sorted(logged) == list(range(EPOCHS + 1))
    # The resumed run overwrote the kernels it saved again: the last written
    # value of each step is the one read.
    worker_process.assert_logged_l2_is_saved_l2(logged, out)
    client = werkzeug_test.Client(application.TensorBoardWSGI([_plugin(_python_provider(os.fspath(logdir)))]))
    series = client.get(ROUTE + "series", query_string={"layer": layer, "stat": "l2"}).get_json()["series"]
    assert {tuple(s["steps"]) for s in series} == {tuple(range(EPOCHS + 1))}
