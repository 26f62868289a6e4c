"""Starts `training_worker.py` in its own process and reads what it saved."""

import os
import subprocess
import sys

import numpy as np
from tensorboard.backend.event_processing import event_file_loader

from tb_lstm_gates.logs import metadata

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "training_worker.py")
REPO = os.path.dirname(os.path.dirname(WORKER))


def start(mode, logdir, out, epochs, env=None, **popen):
    """A `subprocess.Popen` of the worker; stdout is a text pipe unless `popen` says otherwise."""
    popen.setdefault("stdout", subprocess.PIPE)
    return subprocess.Popen(
        [sys.executable, WORKER, mode, os.fspath(logdir), os.fspath(out), str(epochs)],
        env=dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2", **(env or {})),
        stdin=subprocess.DEVNULL,
        stderr=popen.pop("stderr", subprocess.PIPE),
        text=True,
        **popen,
    )


def run(mode, logdir, out, epochs, timeout=300):
    """Runs the worker to the end; returns its stdout, fails with its stderr."""
    process = start(mode, logdir, out, epochs)
    stdout, stderr = process.communicate(timeout=timeout)
    assert process.returncode == 0, stderr[-5000:]
    return stdout


def recurrent_l2(out, step):
    """Per-gate norms of the saved recurrent kernel at `step`: `{gate: l2}`."""
    kernel = np.load(os.path.join(out, "step_%d.npy" % step)).astype(np.float64)
    units = kernel.shape[0]
    return {
        gate: np.linalg.norm(kernel[:, k * units : (k + 1) * units])
        for k, gate in enumerate(metadata.LSTM_GATES)
    }


def logged_recurrent_l2(records):
    """`{step: {gate: l2}}` of the recurrent part in `load()` records (one LSTM)."""
    logged = {}
    for r in records:
        if r.stat == "l2" and r.part == "recurrent":
            assert r.gate not in logged.setdefault(r.step, {}), "step %d written twice" % r.step
            logged[r.step][r.gate] = r.value
    return logged


def assert_logged_l2_is_saved_l2(logged, out):
    """Every step of `logged_recurrent_l2` equals numpy's norms of the kernel saved at that step."""
    for step, by_gate in logged.items():
        expected = recurrent_l2(out, step)
        np.testing.assert_allclose([by_gate[g] for g in expected], list(expected.values()), rtol=1e-6)


def written_steps(run_dir):
    """The step of every summary event in every event file of `run_dir`, in file order."""
    steps = []
    for name in sorted(os.listdir(run_dir)):
        for event in event_file_loader.EventFileLoader(os.path.join(run_dir, name)).Load():
            if event.HasField("summary"):
                steps.append(event.step)
    return steps
