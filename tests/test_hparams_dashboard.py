"""TensorBoard's own HParams dashboard shows each run's gate metrics beside its hyperparameters:
a Keras run whose hyperparameters come from `hp.KerasCallback`, a torch run with `GateLogger(hparams=)`,
read through the HParams plugin's `session_groups` route of a real TensorBoard process."""

import json
import os
import time
import urllib.request

import numpy as np
import pytest
from test_plugin_tensorboard import TensorBoardProcess, launcher  # noqa: F401 (a fixture)

from tb_lstm_gates.logs import hparams as hparams_summary
from tb_lstm_gates.logs import reader

UNITS = 6
STEPS = 3
GROUPS_REQUEST = {
    "startIndex": 0,
    "sliceSize": 100,
    "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"],
    "colParams": [],
}


def _keras_run(run_dir):
    import keras
    from tensorboard.plugins.hparams import api as hp

    import tb_lstm_gates

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((5, 3)), keras.layers.LSTM(UNITS, name="lstm"), keras.layers.Dense(1)]
    )
    model.compile("adam", "mse")
    x, y = np.random.rand(16, 5, 3), np.random.rand(16, 1)
    model.fit(
        x,
        y,
        epochs=STEPS,
        verbose=0,
        callbacks=[
            hp.KerasCallback(run_dir, {"optimizer": "adam", "units": UNITS}),
            tb_lstm_gates.LSTMGatesCallback(run_dir, probe=x[:4]),
        ],
    )


def _torch_run(run_dir, hparams):
    import torch

    from tb_lstm_gates.torch import GateLogger

    torch.manual_seed(0)
    lstm = torch.nn.LSTM(3, UNITS, batch_first=True)
    optimizer = torch.optim.SGD(lstm.parameters(), lr=hparams["lr"])
    x = torch.randn(8, 5, 3)
    with GateLogger(run_dir, probe=x[:4], hparams=hparams) as gates:
        for step in range(STEPS):
            gates.log(lstm, step)
            optimizer.zero_grad()
            lstm(x)[0].pow(2).mean().backward()
            optimizer.step()


@pytest.fixture(scope="module")
def logdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    _keras_run(os.fspath(root / "keras_adam"))
    _torch_run(os.fspath(root / "torch_lr_0.1"), {"lr": 0.1, "cell": "lstm"})
    _torch_run(os.fspath(root / "torch_lr_0.5"), {"lr": 0.5, "cell": "lstm"})
    return root


def _last(logdir, run, layer, part, stat):
    """The last logged value of the forget gate's `part`/`stat` in `run`, read back with `load()`."""
    records = [
        r
        for r in reader.load(logdir)
        if (r.run, r.layer, r.part, r.gate, r.stat) == (run, layer, part, "forget", stat)
    ]
    return max(records, key=lambda r: r.step).value


def _session_groups(tensorboard, count):
    """The HParams plugin's session groups, once it sees `count` of them with metric values."""
    deadline = time.time() + 90
    while True:
        request = urllib.request.Request(
            tensorboard.url + "data/plugin/hparams/session_groups",
            data=json.dumps(GROUPS_REQUEST).encode(),
            headers={"Content-Type": "text/plain"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            groups = json.load(response).get("sessionGroups", [])
        if len(groups) == count and all(g.get("metricValues") for g in groups):
            return groups
        assert time.time() < deadline, (groups, "".join(tensorboard.stderr))
        time.sleep(1)


@pytest.mark.parametrize("load_fast", ["false", "true"])
def test_session_groups_show_each_runs_gate_metrics_beside_its_hparams(launcher, logdir, load_fast):  # noqa: F811
    tensorboard = TensorBoardProcess(launcher, os.fspath(logdir), "--load_fast", load_fast)
    try:
        groups = _session_groups(tensorboard, 3)
    finally:
        tensorboard.stop()
    by_run = {}
    for group in groups:
        (session,) = group["sessions"]
        metrics = {
            (m["name"].get("group", ""), m["name"]["tag"]): m["value"] for m in session["metricValues"]
        }
        by_run[session["name"]] = (group["hparams"], metrics)
    assert set(by_run) == {"keras_adam", "torch_lr_0.1", "torch_lr_0.5"}

    hparams, metrics = by_run["keras_adam"]
    assert hparams == {"optimizer": "adam", "units": UNITS}
    # The Keras callback writes to `<log_dir>/train`, a subfolder of the session: the metric's group.
    tag = hparams_summary.metric_tag("lstm/lstm_cell", "forget", "recurrent_l2")
    expected = _last(logdir, "keras_adam/train", "lstm/lstm_cell", "recurrent", "l2")
    assert metrics[("train", tag)] == pytest.approx(expected, rel=1e-6)
    saturated = _last(logdir, "keras_adam/train", "lstm/lstm_cell", "activation", "saturated")
    assert metrics[("train", hparams_summary.metric_tag("lstm/lstm_cell", "forget", "saturated"))] == (
        pytest.approx(saturated, rel=1e-6)
    )

    l2 = {}
    for run, lr in (("torch_lr_0.1", 0.1), ("torch_lr_0.5", 0.5)):
        hparams, metrics = by_run[run]
        assert hparams == {"lr": lr, "cell": "lstm"}
        l2[run] = metrics[("", hparams_summary.metric_tag("lstm/l0", "forget", "recurrent_l2"))]
        assert l2[run] == pytest.approx(_last(logdir, run, "lstm/l0", "recurrent", "l2"), rel=1e-6)
        retention = metrics[("", hparams_summary.metric_tag("lstm/l0", "forget", "retention"))]
        assert retention == pytest.approx(_last(logdir, run, "lstm/l0", "activation", "retention"), rel=1e-6)
    # Same seed, different learning rates: the metric tells the runs apart.
    assert l2["torch_lr_0.1"] != l2["torch_lr_0.5"]


def test_bad_hparams_are_named_with_what_is_accepted(tmp_path):
    from tb_lstm_gates.torch import GateLogger

    with pytest.raises(
        ValueError, match=r"hparams must map str names to bool, int, float or str.*'lr': \[0.1\]"
    ):
        GateLogger(tmp_path, hparams={"lr": [0.1]})
    with pytest.raises(ValueError, match="hparams must be None or a non-empty dict"):
        GateLogger(tmp_path, hparams="lr=0.1")


def _session_hparams(run_dir):
    """The hyperparameters of the session start info in `run_dir`'s own event files (not its subfolders)."""
    from tensorboard.plugins.hparams import metadata as hparams_metadata

    from tb_lstm_gates.logs import summary

    found = []
    for name in sorted(os.listdir(run_dir)):
        if name.startswith("events.out.tfevents"):
            for event in summary.read_events(os.path.join(run_dir, name)):
                for value in event.summary.value:
                    if value.tag == hparams_metadata.SESSION_START_INFO_TAG:
                        info = hparams_metadata.parse_session_start_info_plugin_data(
                            value.metadata.plugin_data.content
                        )
                        found.append(
                            {
                                k: v.WhichOneof("kind") and getattr(v, v.WhichOneof("kind"))
                                for k, v in info.hparams.items()
                            }
                        )
    return found


def test_the_keras_callbacks_hparams_make_log_dir_the_session_above_its_train_run(tmp_path):
    import keras

    import tb_lstm_gates

    model = keras.Sequential([keras.Input((4, 2)), keras.layers.LSTM(3), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    log_dir = os.fspath(tmp_path / "units_3")
    callback = tb_lstm_gates.LSTMGatesCallback(log_dir, hparams={"units": 3, "optimizer": "sgd", "bn": False})
    model.fit(np.zeros((4, 4, 2)), np.zeros((4, 1)), epochs=1, verbose=0, callbacks=[callback])
    assert _session_hparams(log_dir) == [{"units": 3.0, "optimizer": "sgd", "bn": False}]
    assert _session_hparams(os.path.join(log_dir, "train")) == []
