"""Importing Keras 3 `.keras` and `.weights.h5` files: per-gate values equal hand-sliced norms."""

import os
import re
import subprocess
import sys

import keras
import numpy as np
import plugin_logs
import pytest

import tb_lstm_gates
from tb_lstm_gates import checkpoints, cli
from tb_lstm_gates.keras import discover

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

KERAS_LSTM = ("input", "forget", "cell", "output")
KERAS_GRU = ("update", "reset", "candidate")


def make_model(seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((5, 7)),
            keras.layers.Bidirectional(keras.layers.LSTM(4, return_sequences=True, name="enc"), name="bi"),
            keras.layers.LSTM(3, return_sequences=True, name="lstm"),
            keras.layers.GRU(2, name="gru"),
            keras.layers.Dense(1),
        ],
        name="seq",
    )
    model.compile("adam", "mse")
    return model


def train(model, epochs=1):
    rng = np.random.default_rng(0)
    model.fit(rng.normal(size=(8, 5, 7)), rng.normal(size=(8, 1)), epochs=epochs, verbose=0)


def hand_l2(model):
    """{(layer, part, gate): l2}, sliced by hand in Keras order (i, f, c, o; z, r, h)."""
    out = {}
    for cell in discover.find_cells(model):
        kernel, recurrent, bias = (
            np.asarray(cell.variables[n].numpy()) for n in ("kernel", "recurrent_kernel", "bias")
        )
        gates = KERAS_LSTM if cell.layout.cell == "lstm" else KERAS_GRU
        u = recurrent.shape[0]
        for k, gate in enumerate(gates):
            cols = slice(k * u, (k + 1) * u)
            out[cell.layer, "input", gate] = np.linalg.norm(kernel[:, cols])
            out[cell.layer, "recurrent", gate] = np.linalg.norm(recurrent[:, cols])
            if bias.ndim == 2:
                out[cell.layer, "input_bias", gate] = np.linalg.norm(bias[0, cols])
                out[cell.layer, "recurrent_bias", gate] = np.linalg.norm(bias[1, cols])
            else:
                out[cell.layer, "bias", gate] = np.linalg.norm(bias[cols])
    return out


def l2_by_step(records):
    out = {}
    for r in records:
        if r.stat == "l2":
            out.setdefault(r.step, {})[r.layer, r.part, r.gate] = r.value
    return out


def assert_l2_equal(logged, expected):
    assert set(logged) == set(expected)
    for key, value in expected.items():
        assert logged[key] == pytest.approx(value, rel=1e-5), key


@pytest.mark.parametrize("suffix", [".keras", ".weights.h5"])
def test_import_of_keras_file_logs_hand_sliced_norms_under_keras_variable_paths(tmp_path, suffix):
    model = make_model()
    train(model)
    path = str(tmp_path / ("model-7" + suffix))
    model.save(path) if suffix == ".keras" else model.save_weights(path)
    logdir = tmp_path / "logs"
    assert cli.main(["import", path, "--logdir", str(logdir), "--run", "imported"]) == 0
    logged = l2_by_step(tb_lstm_gates.load(str(logdir / "imported")))
    assert list(logged) == [7]
    expected = hand_l2(model)
    # The same layer names the Keras callback writes, so live and imported runs line up.
    assert {k[0] for k in expected} == {
        "bi/forward_enc/lstm_cell",
        "bi/backward_enc/lstm_cell",
        "lstm/lstm_cell",
        "gru/gru_cell",
    }
    assert_l2_equal(logged[7], expected)


def test_import_of_stacked_cells_and_gru_without_reset_after(tmp_path):
    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [
            keras.Input((5, 7)),
            keras.layers.RNN(
                keras.layers.StackedRNNCells(
                    [keras.layers.LSTMCell(3), keras.layers.GRUCell(2, reset_after=False)]
                ),
                name="rnn",
            ),
        ],
        name="stack",
    )
    path = str(tmp_path / "stacked.weights.h5")
    model.save_weights(path)
    (ckpt,) = checkpoints.find_checkpoints([path], step=0)
    assert {c.layer: c.layout.cell for c in ckpt.cells} == {
        "rnn/stacked_rnn_cells/lstm_cell": "lstm",
        "rnn/stacked_rnn_cells/gru_cell": "gru",
    }
    checkpoints.import_checkpoints([ckpt], str(tmp_path / "run"))
    assert_l2_equal(l2_by_step(tb_lstm_gates.load(str(tmp_path / "run")))[0], hand_l2(model))


def test_directory_import_gives_one_step_per_checkpoint_in_order_and_reimport_adds_nothing(tmp_path):
    model = make_model()
    ckpt_dir = tmp_path / "ckpts"
    ckpt_dir.mkdir()
    expected = {}
    for epoch in (1, 2, 10):  # 10 sorts before 2 as text
        train(model)
        model.save_weights(
            str(ckpt_dir / ("weights.%02d.weights.h5" % epoch))
            if epoch < 10
            else str(ckpt_dir / "weights.10.weights.h5")
        )
        expected[epoch] = hand_l2(model)
    logdir = tmp_path / "logs"
    assert cli.main(["import", str(ckpt_dir), "--logdir", str(logdir)]) == 0
    records = tb_lstm_gates.load(str(logdir))
    assert {r.run for r in records} == {"ckpts"}
    logged = l2_by_step(records)
    assert list(logged) == [1, 2, 10]
    assert plugin_logs.step_units(logdir) == {"epoch"}, (
        "ModelCheckpoint names hold the epoch: the tab says so"
    )
    for epoch in expected:
        assert_l2_equal(logged[epoch], expected[epoch])
    # update_ratio runs from each checkpoint to the next, in step order.
    assert {r.step for r in records if r.stat == "update_ratio"} == {2, 10}
    files = sorted(os.listdir(logdir / "ckpts"))

    assert cli.main(["import", str(ckpt_dir), "--logdir", str(logdir)]) == 0
    assert sorted(os.listdir(logdir / "ckpts")) == files
    again = tb_lstm_gates.load(str(logdir))
    assert len(again) == len(records)

    # A new checkpoint is added as one new step.
    train(model)
    model.save_weights(str(ckpt_dir / "weights.11.weights.h5"))
    assert cli.main(["import", str(ckpt_dir), "--logdir", str(logdir)]) == 0
    assert list(l2_by_step(tb_lstm_gates.load(str(logdir)))) == [1, 2, 10, 11]


def snapshot(directory):
    out = {}
    for root, _, files in os.walk(directory):
        for name in files:
            full = os.path.join(root, name)
            with open(full, "rb") as f:
                out[os.path.relpath(full, directory)] = f.read()
    return out


@pytest.fixture
def logdir_with_a_run(tmp_path):
    model = make_model()
    path = str(tmp_path / "good.weights.h5")
    model.save_weights(path)
    logdir = tmp_path / "logs"
    assert cli.main(["import", path, "--logdir", str(logdir), "--run", "r"]) == 0
    return logdir


def garbage(tmp_path):
    path = tmp_path / "garbage.keras"
    path.write_bytes(b"this is not a zip archive")
    return str(path)


def garbage_index(tmp_path):
    (tmp_path / "ckpt-1.index").write_bytes(b"\x00garbage" * 10)
    (tmp_path / "ckpt-1.data-00000-of-00001").write_bytes(b"\x00" * 10)
    return str(tmp_path / "ckpt-1")


def dense_only(tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    path = str(tmp_path / "dense.weights.h5")
    model.save_weights(path)
    return path


def tf_checkpoint_without_rnn(tmp_path):
    import tensorflow as tf

    ckpt = tf.train.Checkpoint(w=tf.Variable(np.ones((3, 4), np.float32)))
    return ckpt.write(str(tmp_path / "plain" / "ckpt-1"))


def empty_directory(tmp_path):
    (tmp_path / "empty").mkdir()
    return str(tmp_path / "empty")


@pytest.mark.parametrize(
    "make_path, message",
    [
        (lambda t: str(t / "missing" / "ckpt-3"), "no such file or directory"),
        (lambda t: str(t / "missing.keras"), "no such file"),
        (garbage, "cannot read Keras weights"),
        (garbage_index, "cannot read TF checkpoint"),
        (lambda t: str(t / "logs" / "r" / os.listdir(t / "logs" / "r")[0]), "is a TensorBoard event file"),
        (dense_only, "holds no recurrent cell"),
        (tf_checkpoint_without_rnn, "holds no recurrent cell"),
        (empty_directory, "no checkpoint in directory"),
    ],
    ids=[
        "missing-prefix",
        "missing-keras",
        "garbage-keras",
        "garbage-tf",
        "event-file",
        "dense-h5",
        "tf-no-rnn",
        "empty-dir",
    ],
)
def test_cli_errors_are_one_line_non_zero_and_leave_the_logdir_untouched(
    tmp_path, logdir_with_a_run, capsys, make_path, message
):
    path = make_path(tmp_path)
    before = snapshot(logdir_with_a_run)
    capsys.readouterr()
    code = cli.main(["import", path, "--logdir", str(logdir_with_a_run), "--run", "r"])
    err = capsys.readouterr().err
    assert code != 0
    assert err.startswith("tb-lstm-gates: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert snapshot(logdir_with_a_run) == before


def test_a_bad_checkpoint_among_good_ones_stops_the_import_before_anything_is_written(tmp_path, capsys):
    good = str(tmp_path / "a-1.weights.h5")
    make_model().save_weights(good)
    logdir = tmp_path / "logs"
    assert cli.main(["import", good, garbage(tmp_path), "--logdir", str(logdir)]) == 1
    assert not logdir.exists()


def test_help_does_not_import_tensorflow():
    import subprocess
    import sys

    code = (
        "import sys, tb_lstm_gates.cli as c\n"
        "try:\n    c.main(['--help'])\nexcept SystemExit:\n    pass\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'heavy import'\n"
    )
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "import" in result.stdout


def run_cli_with_stderr(args, tty):
    """Runs the CLI in a child process, stderr a real terminal (pty) or a pipe; returns stderr."""
    import pty
    import subprocess
    import sys

    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    command = [sys.executable, "-m", "tb_lstm_gates.cli"] + args
    if not tty:
        result = subprocess.run(command, env=env, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        return result.stderr
    leader, follower = pty.openpty()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=follower)
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 4096)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    assert proc.wait() == 0
    os.close(leader)
    return b"".join(chunks).decode(errors="replace")


def test_progress_bar_on_a_terminal_and_quiet_otherwise(tmp_path):
    model = make_model()
    for epoch in (1, 2):
        model.save_weights(str(tmp_path / ("w-%d.weights.h5" % epoch)))
    quiet = run_cli_with_stderr(["import", str(tmp_path), "--logdir", str(tmp_path / "a")], tty=False)
    assert "0/2" not in quiet and "#" not in quiet
    bar = run_cli_with_stderr(["import", str(tmp_path), "--logdir", str(tmp_path / "b")], tty=True)
    assert "0/2" in bar and "1/2" in bar


def test_plugin_runs_route_lists_the_imported_run(tmp_path):
    from tensorboard.backend import application
    from tensorboard.backend.event_processing import data_ingester, data_provider, plugin_event_multiplexer
    from tensorboard.plugins import base_plugin
    from werkzeug import test as werkzeug_test

    from tb_lstm_gates.plugin.loader import LSTMGatesLoader

    path = str(tmp_path / "model-3.keras")
    make_model().save(path)
    logdir = str(tmp_path / "logs")
    assert cli.main(["import", path, "--logdir", logdir, "--run", "imported"]) == 0
    multiplexer = plugin_event_multiplexer.EventMultiplexer(
        tensor_size_guidance=data_ingester.DEFAULT_TENSOR_SIZE_GUIDANCE
    )
    multiplexer.AddRunsFromDirectory(logdir)
    multiplexer.Reload()
    provider = data_provider.MultiplexerDataProvider(multiplexer, logdir)
    plugin = LSTMGatesLoader().load(base_plugin.TBContext(data_provider=provider))
    client = werkzeug_test.Client(application.TensorBoardWSGI([plugin], data_provider=provider))
    response = client.get("/data/plugin/lstm_gates/runs")
    assert response.status_code == 200, response.get_data(as_text=True)
    (run,) = response.get_json()["runs"]
    assert run["run"] == "imported"
    layers = {layer["layer"]: layer for layer in run["layers"]}
    assert sorted(layers) == [
        "bi/backward_enc/lstm_cell",
        "bi/forward_enc/lstm_cell",
        "gru/gru_cell",
        "lstm/lstm_cell",
    ]
    assert layers["gru/gru_cell"]["gates"] == ["update", "reset", "candidate"]
    assert layers["lstm/lstm_cell"]["histograms"] is True


def fit_and_remember(model, epochs, callbacks=(), batch_size=4):
    """Trains on 8 fixed samples; returns `{epoch (1-based): hand_l2}` at each epoch's end."""
    expected = {}

    class Remember(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            expected[epoch + 1] = hand_l2(self.model)

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8, 5, 7)), rng.normal(size=(8, 1))
    model.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0, callbacks=list(callbacks) + [Remember()])
    return expected


def run_cli(args, **env):
    """The CLI as a child process, with TF_CPP_MIN_LOG_LEVEL only if given in `env`."""
    child_env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    child_env.update(env, PYTHONPATH=ROOT)
    return subprocess.run(
        [sys.executable, "-m", "tb_lstm_gates.cli"] + args, env=child_env, capture_output=True, text=True
    )


@pytest.mark.parametrize(
    "name, step",
    [
        ("epoch_03.weights.h5", 3),
        ("model.10.keras", 10),
        ("weights.05-0.32.weights.h5", 5),  # ModelCheckpoint's {epoch:02d}-{val_loss:.2f}
        ("weights.05--0.32-0.91.weights.h5", 5),
        ("epoch_03_loss_0.12.keras", 3),
        ("lstm_v2.07.keras", 7),
        ("ckpt-1000", 1000),
        ("model.ckpt-1000", 1000),
        ("s2s_model.keras", None),
        ("model.keras", None),
        ("model2.keras", None),
        ("2024_model.keras", None),
        ("run_2024-01-05.keras", None),
    ],
)
def test_only_recognised_checkpoint_names_give_a_step(name, step):
    assert checkpoints.step_from_name(os.path.join("a1", name)) == step


def test_steps_come_from_model_checkpoint_names_and_each_file_s_step_is_printed(tmp_path, capsys):
    model = make_model()
    ckpt_dir = tmp_path / "ckpt"
    saver = keras.callbacks.ModelCheckpoint(
        str(ckpt_dir / "weights.{epoch:02d}-{loss:.2f}.weights.h5"), save_weights_only=True
    )
    expected = fit_and_remember(model, 3, [saver])
    names = sorted(os.listdir(ckpt_dir))
    assert [re.match(r"weights\.0(\d)-\d+\.\d\d\.weights\.h5$", n).group(1) for n in names] == ["1", "2", "3"]
    capsys.readouterr()
    assert cli.main(["import", str(ckpt_dir), "--logdir", str(tmp_path / "logs")]) == 0
    out = capsys.readouterr().out
    for epoch, name in zip((1, 2, 3), names):
        assert "%s: step %d (from its file name)" % (ckpt_dir / name, epoch) in out
    logged = l2_by_step(tb_lstm_gates.load(str(tmp_path / "logs")))
    assert list(logged) == [1, 2, 3]
    for epoch in expected:
        assert_l2_equal(logged[epoch], expected[epoch])


def test_digits_in_a_name_without_a_step_pattern_are_ignored_for_the_optimizers_count(tmp_path, capsys):
    model = make_model()
    expected = fit_and_remember(model, 2)  # 8 samples in batches of 4: 4 optimizer steps
    path = str(tmp_path / "s2s_model.keras")
    model.save(path)
    capsys.readouterr()
    assert cli.main(["import", path, "--logdir", str(tmp_path / "logs"), "--run", "r"]) == 0
    assert "%s: step 4 (from its optimizer's iteration count)" % path in capsys.readouterr().out
    logged = l2_by_step(tb_lstm_gates.load(str(tmp_path / "logs")))
    assert list(logged) == [4]
    assert_l2_equal(logged[4], expected[2])


def uncompiled_lstm(path):
    model = keras.Sequential([keras.Input((5, 7)), keras.layers.LSTM(3, name="lstm")], name="m")
    model.save_weights(str(path))
    return model


def test_a_checkpoint_with_no_step_anywhere_needs_step_and_the_error_names_file_and_flag(tmp_path, capsys):
    path = tmp_path / "s2s_model.weights.h5"
    model = uncompiled_lstm(path)  # no optimizer: no iteration count either
    logdir = tmp_path / "logs"
    capsys.readouterr()
    assert cli.main(["import", str(path), "--logdir", str(logdir)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("tb-lstm-gates: error: cannot tell the step of %s" % path)
    assert "--step N" in err and err.count("\n") == 1
    assert not logdir.exists()

    # Among recognised names, the stepless file stops the import, before anything is written.
    model.save_weights(str(tmp_path / "epoch_01.weights.h5"))
    assert cli.main(["import", str(tmp_path), "--logdir", str(logdir)]) == 1
    assert "cannot tell the step of %s" % path in capsys.readouterr().err
    assert not logdir.exists()

    assert cli.main(["import", str(path), "--logdir", str(logdir), "--run", "r"]) == 1
    assert cli.main(["import", str(path), "--logdir", str(logdir), "--run", "r", "--step", "7"]) == 0
    assert "%s: step 7 (given with --step)" % path in capsys.readouterr().out
    logged = l2_by_step(tb_lstm_gates.load(str(logdir)))
    assert list(logged) == [7]
    assert_l2_equal(logged[7], hand_l2(model))


def test_other_weights_on_a_step_the_run_holds_are_an_error_naming_the_step(tmp_path, capsys):
    model = make_model()
    first = tmp_path / "a" / "epoch_01.weights.h5"
    first.parent.mkdir()
    model.save_weights(str(first))
    logdir = tmp_path / "logs"
    assert cli.main(["import", str(first), "--logdir", str(logdir), "--run", "r"]) == 0
    (tmp_path / "b").mkdir()
    train(model)
    model.save_weights(str(tmp_path / "b" / "epoch_01.weights.h5"))
    train(model)
    model.save_weights(str(tmp_path / "b" / "epoch_02.weights.h5"))
    before = snapshot(logdir)
    capsys.readouterr()

    assert cli.main(["import", str(tmp_path / "b"), "--logdir", str(logdir), "--run", "r"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(
        "tb-lstm-gates: error: step 1 of %s already holds other weights than %s: "
        % (logdir / "r", tmp_path / "b" / "epoch_01.weights.h5")
    )
    assert "in the run and" in err and "--run" in err and err.count("\n") == 1
    # Not even the new step 2 is written.
    assert snapshot(logdir) == before

    # The same checkpoint again is a silent no-op.
    assert cli.main(["import", str(first), "--logdir", str(logdir), "--run", "r"]) == 0
    captured = capsys.readouterr()
    assert "skipped 1 the run already holds (steps 1)" in captured.out and captured.err == ""
    assert snapshot(logdir) == before


def test_checkpoints_of_a_run_the_callback_logged_live_are_the_same_steps(tmp_path, capsys):
    model = make_model()
    logdir = tmp_path / "logs"
    callback = tb_lstm_gates.LSTMGatesCallback(str(logdir))
    saver = keras.callbacks.ModelCheckpoint(
        str(tmp_path / "ckpt" / "epoch_{epoch:02d}.weights.h5"), save_weights_only=True
    )
    fit_and_remember(model, 2, [callback, saver])
    before = snapshot(logdir)
    run = os.path.relpath(callback.run_dir, logdir)
    capsys.readouterr()
    assert cli.main(["import", str(tmp_path / "ckpt"), "--logdir", str(logdir), "--run", run]) == 0
    assert "skipped 2 the run already holds (steps 1, 2)" in capsys.readouterr().out
    assert snapshot(logdir) == before


def test_a_keras_tensorboard_log_is_refused_with_the_checkpoint_recipe(tmp_path):
    model = make_model()
    fit_and_remember(model, 1, [keras.callbacks.TensorBoard(str(tmp_path / "tb"), histogram_freq=1)])
    logdir = tmp_path / "logs"
    result = run_cli(["import", str(tmp_path / "tb"), "--logdir", str(logdir)])
    assert result.returncode == 1
    message = "tb-lstm-gates: error: %s holds TensorBoard event files, not checkpoints: " % (tmp_path / "tb")
    assert result.stderr.startswith(message), result.stderr
    for needed in (
        "fuse the gates of each weight and cannot be split",
        checkpoints.RECIPE,
        "tb-lstm-gates import ckpt --logdir",
    ):
        assert needed in result.stderr
    assert result.stderr.count("\n") == 1
    (event_file,) = os.listdir(tmp_path / "tb" / "train")
    result = run_cli(["import", str(tmp_path / "tb" / "train" / event_file), "--logdir", str(logdir)])
    assert result.returncode == 1
    assert "is a TensorBoard event file, not a checkpoint: " in result.stderr
    assert checkpoints.RECIPE in result.stderr
    assert not logdir.exists()


def test_the_past_runs_recipe_as_printed_and_in_the_docs_gives_one_step_per_epoch(tmp_path, monkeypatch):
    with open(os.path.join(ROOT, "docs", "checkpoints.md")) as f:
        assert checkpoints.RECIPE in f.read()
    monkeypatch.chdir(tmp_path)
    model = make_model()
    expected = fit_and_remember(model, 3, [eval(checkpoints.RECIPE, {"keras": keras})])
    assert cli.main(["import", "ckpt", "--logdir", "logs"]) == 0
    records = tb_lstm_gates.load("logs")
    assert {r.run for r in records} == {"ckpt"}
    logged = l2_by_step(records)
    assert list(logged) == [1, 2, 3]
    for epoch in expected:
        assert_l2_equal(logged[epoch], expected[epoch])


TF_LOG_LINE = re.compile(r"^[IWEF]\d{4} |absl::InitializeLog")


def test_the_cli_keeps_tensorflows_start_up_lines_quiet_unless_the_user_set_a_level(tmp_path):
    # A TF checkpoint needs TensorFlow, so the CLI loads it (Keras and torch files do not).
    import tensorflow as tf

    path = str(tmp_path / "saved")
    tf.train.Checkpoint(model=make_model()).write(os.path.join(path, "ckpt-3"))
    quiet = run_cli(["import", path, "--logdir", str(tmp_path / "a")])
    assert quiet.returncode == 0, quiet.stderr
    assert "ckpt-3: step 3 (from its file name)" in quiet.stdout
    assert [line for line in quiet.stderr.splitlines() if TF_LOG_LINE.search(line)] == []
    # A level the user set is kept: 0 lets TensorFlow's INFO lines through.
    loud = run_cli(["import", path, "--logdir", str(tmp_path / "b")], TF_CPP_MIN_LOG_LEVEL="0")
    assert loud.returncode == 0, loud.stderr
    assert any(re.match(r"^I\d{4} ", line) for line in loud.stderr.splitlines()), loud.stderr


def test_tf_log_lines_are_filtered_by_level_with_their_continuations():
    text = (
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
        "I0000 00:00:1.1 1 port.cc:153] oneDNN custom operations are on.\n"
        "I0000 00:00:1.2 1 cpu_feature_guard.cc:227] This TensorFlow binary is optimized\n"
        "To enable the following instructions: AVX2, rebuild TensorFlow.\n"
        "2025-09-17 14:44:05.176998: W external/x.cc:1] a warning\n"
        "E0000 00:00:1.3 1 cuda_dnn.cc:8579] Unable to register cuDNN factory\n"
    )
    lines = text.splitlines(keepends=True)
    assert cli.tf_log_at_level(text, 0) == text
    assert cli.tf_log_at_level(text, 1) == "".join([lines[0]] + lines[4:])
    assert cli.tf_log_at_level(text, 2) == lines[5]
    assert cli.tf_log_at_level(text, 3) == ""
    assert cli.tf_log_at_level("plain text\n", 3) == "plain text\n"
