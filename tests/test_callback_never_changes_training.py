"""The callback never changes training: the same seeded run with and without it ends bit-identical.

Each run is a process of its own (`identical_training_worker.py`), on a model
with stateful stacked LSTMs, dropout and recurrent dropout, and a
BatchNormalization layer before the LSTMs; the callback probes with another
batch size than the model's and logs gradient norms between batches. A
third run, whose callback runs the model between batches as a naive probe
would, shows that the comparison sees such a change.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

import tb_lstm_gates

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "identical_training_worker.py")
REPO = os.path.dirname(os.path.dirname(WORKER))


def train(mode, tmp_path):
    out = tmp_path / mode / "run.npz"
    out.parent.mkdir()
    result = subprocess.run(
        [sys.executable, WORKER, mode, str(out)],
        env=dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-5000:]
    with np.load(out) as saved:
        return {name: saved[name] for name in saved.files}


def differing(a, b):
    assert sorted(a) == sorted(b)
    return [name for name in a if a[name].dtype != b[name].dtype or a[name].tobytes() != b[name].tobytes()]


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    return train("plain", tmp_path_factory.mktemp("plain"))


def test_training_with_the_callback_ends_bit_identical_to_training_without_it(plain, tmp_path):
    observed = train("callback", tmp_path)
    kinds = {name.split("/")[0] for name in plain}
    assert kinds == {"loss", "model", "optimizer", "metric", "state"}
    assert any("seed_generator" in name for name in plain)  # dropout's random state is compared too
    assert any("moving_mean" in name for name in plain)
    assert differing(plain, observed) == []
    # The callback did log, probe and gradients included, between batches.
    records = tb_lstm_gates.load(tmp_path / "callback" / "logs")
    assert sorted({r.step for r in records}) == [0, 2, 4, 6, 8, 10, 12, 14, 16, 18]
    assert {r.stat for r in records} >= {"l2", "act_mean", "activation_map", "grad_norm"}


def test_the_comparison_sees_a_callback_that_runs_the_model_between_batches(plain, tmp_path):
    meddled = train("meddling", tmp_path)
    changed = differing(plain, meddled)
    assert any(name.startswith("state/") for name in changed)
    assert any(name.startswith("model/") and "kernel" in name for name in changed)
