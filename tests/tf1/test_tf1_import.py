"""Importing TF1 and tf_keras checkpoints: per-gate l2 equals hand-sliced norms, steps from global_step."""

import os

import numpy as np
import pytest
import tensorflow as tf
import tf_keras
from tf1_model import CELLS, expected_l2, l2_by_step

import tb_lstm_gates
from tb_lstm_gates import checkpoints, cli


def test_import_of_a_tf1_checkpoint_directory_matches_hand_slices_and_the_hook(trained, tmp_path):
    logdir = str(tmp_path / "logs")
    assert cli.main(["import", trained["ckpt_dir"], "--logdir", logdir, "--run", "imported"]) == 0
    imported = l2_by_step(tb_lstm_gates.load(logdir))
    steps = [s for s, _ in trained["checkpoints"]]
    assert list(imported) == steps == [0, 2, 4, 5]
    hook = l2_by_step(tb_lstm_gates.load(trained["log_dir"]))
    for step, prefix in trained["checkpoints"]:
        expected = expected_l2(tf.train.load_checkpoint(prefix).get_tensor)
        assert set(imported[step]) == set(expected)
        assert {k[0] for k in expected} == set(CELLS)
        for key, value in expected.items():
            assert imported[step][key] == pytest.approx(value, rel=1e-5)
            assert imported[step][key] == pytest.approx(hook[step][key], rel=1e-6)


def test_step_comes_from_global_step_not_the_file_name(trained, tmp_path):
    step, prefix = trained["checkpoints"][-1]
    renamed = str(tmp_path / "final")
    for name in os.listdir(trained["ckpt_dir"]):
        if name.startswith(os.path.basename(prefix) + "."):
            with open(os.path.join(trained["ckpt_dir"], name), "rb") as src:
                (tmp_path / name.replace(os.path.basename(prefix), "final")).write_bytes(src.read())
    (ckpt,) = checkpoints.find_checkpoints([renamed])
    assert ckpt.step == step
    # Naming one of the checkpoint's own files names the checkpoint.
    (ckpt,) = checkpoints.find_checkpoints([renamed + ".data-00000-of-00001"])
    assert ckpt.path == renamed


def test_import_of_a_tf_keras_object_checkpoint(tmp_path):
    tf_keras.utils.set_random_seed(0)
    model = tf_keras.Sequential(
        [
            tf_keras.Input((5, 7)),
            tf_keras.layers.Bidirectional(tf_keras.layers.LSTM(4, return_sequences=True)),
            tf_keras.layers.GRU(3),
        ]
    )
    model.save_weights(str(tmp_path / "ckpt" / "weights-12"))
    logdir = str(tmp_path / "logs")
    assert cli.main(["import", str(tmp_path / "ckpt"), "--logdir", logdir]) == 0
    logged = l2_by_step(tb_lstm_gates.load(logdir))
    assert list(logged) == [12]
    fw_kernel = model.layers[0].forward_layer.cell.kernel.numpy()
    gru_bias = model.layers[1].cell.bias.numpy()
    # Keras order: i, f, c, o; GRU z, r, h with a (2, 3u) bias.
    assert logged[12]["layer_with_weights-0/forward_layer/cell", "input", "forget"] == pytest.approx(
        np.linalg.norm(fw_kernel[:, 4:8]), rel=1e-5
    )
    assert logged[12]["layer_with_weights-1/cell", "recurrent_bias", "reset"] == pytest.approx(
        np.linalg.norm(gru_bias[1, 3:6]), rel=1e-5
    )
    assert {k[0] for k in logged[12]} == {
        "layer_with_weights-0/forward_layer/cell",
        "layer_with_weights-0/backward_layer/cell",
        "layer_with_weights-1/cell",
    }


def copy_tree(src, dst):
    import shutil

    shutil.copytree(src, dst)
    return str(dst)


def snapshot(directory):
    out = {}
    for root, _, files in os.walk(directory):
        for name in files:
            with open(os.path.join(root, name), "rb") as f:
                out[os.path.relpath(os.path.join(root, name), directory)] = f.read()
    return out


def test_checkpoints_of_the_hooks_own_run_are_the_same_steps_and_others_an_error(trained, tmp_path, capsys):
    run_dir = copy_tree(trained["log_dir"], tmp_path / "logs" / "hook")
    before = snapshot(run_dir)
    capsys.readouterr()
    args = ["import", trained["ckpt_dir"], "--logdir", str(tmp_path / "logs"), "--run", "hook"]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "skipped 4 the run already holds (steps 0, 2, 4, 5)" in out
    for step, prefix in trained["checkpoints"]:
        assert "%s: step %d (from its global_step)" % (prefix, step) in out
    assert snapshot(run_dir) == before

    # The last checkpoint put on step 2, which holds other weights.
    _, last = trained["checkpoints"][-1]
    assert cli.main(["import", last, "--logdir", str(tmp_path / "logs"), "--run", "hook", "--step", "2"]) == 1
    assert capsys.readouterr().err.startswith(
        "tb-lstm-gates: error: step 2 of %s already holds other weights than %s" % (run_dir, last)
    )
    assert snapshot(run_dir) == before


def test_a_trained_tf_keras_checkpoint_without_a_step_name_takes_the_optimizers_iterations(tmp_path, capsys):
    tf_keras.utils.set_random_seed(0)
    model = tf_keras.Sequential([tf_keras.Input((5, 7)), tf_keras.layers.LSTM(3), tf_keras.layers.Dense(1)])
    model.compile("adam", "mse")
    rng = np.random.default_rng(0)
    model.fit(rng.normal(size=(12, 5, 7)), rng.normal(size=(12, 1)), batch_size=4, epochs=1, verbose=0)
    prefix = str(tmp_path / "ckpt" / "final_weights")
    model.save_weights(prefix)
    logdir = str(tmp_path / "logs")
    capsys.readouterr()
    assert cli.main(["import", prefix, "--logdir", logdir]) == 0
    assert "%s: step 3 (from its optimizer's iteration count)" % prefix in capsys.readouterr().out
    logged = l2_by_step(tb_lstm_gates.load(logdir))
    assert list(logged) == [3]
    kernel = model.layers[0].cell.kernel.numpy()
    assert logged[3]["layer_with_weights-0/cell", "input", "output"] == pytest.approx(
        np.linalg.norm(kernel[:, 9:12]), rel=1e-5
    )
