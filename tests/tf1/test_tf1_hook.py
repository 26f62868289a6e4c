"""LSTMGatesHook and log_session write the hand-sliced per-gate norms at the global step."""

import warnings

import pytest
import tensorflow as tf
from tf1_model import CELLS, TRAIN_STEPS, build_model, expected_l2, feed, l2_by_step

import tb_lstm_gates
from tb_lstm_gates import tf1
from tb_lstm_gates.core import scopes
from tb_lstm_gates.logs import metadata, summary

v1 = tf.compat.v1


def step_units(logdir):
    """The `step_unit`s the summary metadata under `logdir` records (what the tab names its axes by)."""
    from tensorboard.backend.event_processing import plugin_event_multiplexer

    multiplexer = plugin_event_multiplexer.EventMultiplexer()
    multiplexer.AddRunsFromDirectory(str(logdir))
    multiplexer.Reload()
    contents = multiplexer.PluginRunToTagToContent(metadata.PLUGIN_NAME).values()
    return {metadata.parse_plugin_content(c).step_unit for tags in contents for c in tags.values()}


def test_find_cells_names_every_cell_by_its_scope():
    with tf.Graph().as_default() as graph:
        build_model()
        cells = tf1.graph_cells(graph)
    assert {c.layer: c.layout.cell for c in cells} == {k: v[0] for k, v in CELLS.items()}
    peep = next(c for c in cells if c.layer == "peep/lstm_cell")
    assert sorted(peep.layout.weights) == sorted(
        ["kernel", "bias", "w_i_diag", "w_f_diag", "w_o_diag", "projection/kernel"]
    )


def test_hook_l2_equals_hand_sliced_norms_of_each_checkpoint(trained):
    logged = l2_by_step(tb_lstm_gates.load(trained["log_dir"]))
    # Logged at creation (0), every 2 steps, and at the end.
    assert sorted(logged) == [0, 2, 4, TRAIN_STEPS]
    checked = 0
    for step, prefix in trained["checkpoints"]:
        reader = tf.train.load_checkpoint(prefix)
        expected = expected_l2(reader.get_tensor)
        assert set(logged[step]) == set(expected)
        for key, value in expected.items():
            assert logged[step][key] == pytest.approx(value, rel=1e-5), (step, key)
        checked += 1
    assert checked == 4
    # Training moved the weights: the steps differ.
    assert logged[0] != logged[TRAIN_STEPS]


def test_hook_every_n_steps_logs_each_step_once(tmp_path):
    with tf.Graph().as_default():
        x, train = build_model()
        hook = tf1.LSTMGatesHook(str(tmp_path), every_n_steps=1, histogram_freq=0)
        with v1.train.MonitoredTrainingSession(hooks=[hook]) as sess:
            for _ in range(3):
                sess.run(train, feed(x))
    records = tb_lstm_gates.load(str(tmp_path))
    assert sorted(l2_by_step(records)) == [0, 1, 2, 3]
    assert step_units(tmp_path) == {"global step"}
    assert not [r for r in records if r.stat == "histogram"]
    ratios = [r for r in records if r.stat == "update_ratio"]
    assert ratios and {r.step for r in ratios} == {1, 2, 3}


def test_hook_warns_once_and_training_goes_on_when_log_dir_is_unwritable(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with tf.Graph().as_default():
        x, train = build_model()
        hook = tf1.LSTMGatesHook(str(blocker / "run"), every_n_steps=1)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with v1.train.MonitoredTrainingSession(hooks=[hook]) as sess:
                for _ in range(3):
                    sess.run(train, feed(x))
                step = sess.run(v1.train.get_global_step())
    assert step == 3
    ours = [w for w in caught if "LSTMGatesHook stopped logging" in str(w.message)]
    assert len(ours) == 1


def test_hook_rejects_bad_arguments_all_at_once():
    with pytest.raises(ValueError) as e:
        tf1.LSTMGatesHook("", every_n_steps=0, histogram_bins=-1)
    assert "log_dir" in str(e.value) and "every_n_steps" in str(e.value) and "histogram_bins" in str(e.value)


def test_log_session_in_a_plain_session_loop(tmp_path):
    with tf.Graph().as_default():
        x, train = build_model()
        writer = summary.GateSummaryWriter(str(tmp_path))
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            assert tf1.log_session(sess, writer) == 0
            sess.run(train, feed(x))
            values = {v.op.name: v for v in v1.global_variables()}
            assert tf1.log_session(sess, writer) == 1
            snapshot = sess.run(values)
        writer.close()
    records = tb_lstm_gates.load(str(tmp_path))
    logged = l2_by_step(records)
    expected = expected_l2(lambda name: snapshot[name])
    assert sorted(logged) == [0, 1]
    for key, value in expected.items():
        assert logged[1][key] == pytest.approx(value, rel=1e-5)
    # The writer's logger kept step 0's weights, so step 1 has update ratios.
    assert {r.step for r in records if r.stat == "update_ratio"} == {1}


def test_cell_in_an_unusual_scope_needs_a_layout_and_the_error_says_how():
    from tb_lstm_gates.core import layouts

    with tf.Graph().as_default() as graph:
        k = v1.get_variable("enc/my_cell/kernel", [9, 12])
        v1.get_variable("enc/my_cell/bias", [12])
        with pytest.raises(ValueError, match=r"layouts=\{'scope/of/cell'"):
            tf1.graph_cells(graph)
        (cell,) = tf1.graph_cells(graph, layouts={"enc/my_cell": layouts.tf1_lstm(6)})
    assert cell.layer == "enc/my_cell" and cell.variables["kernel"] is k


def test_input_depth_override_moves_the_split_and_bad_shapes_say_which_override():
    shapes = {"a/lstm_cell/kernel:0": (10, 12), "a/lstm_cell/bias:0": (12,)}
    (cell,) = scopes.find_cells_by_name(shapes)
    assert cell.layout.weights["kernel"][0].rows == slice(0, 7)
    (cell,) = scopes.find_cells_by_name(shapes, input_depth={"a/lstm_cell": 5})
    assert cell.layout.weights["kernel"][0].rows == slice(0, 5)
    with pytest.raises(ValueError, match=r"input_depth=\{'b/lstm_cell': N\}"):
        scopes.find_cells_by_name({"b/lstm_cell/kernel": (3, 12), "b/lstm_cell/bias": (12,)})
    with pytest.raises(ValueError, match="no cell variables under scope 'typo'"):
        scopes.find_cells_by_name(shapes, input_depth={"typo": 3})
    # Optimizer slots and moving averages are not weights of the cell.
    shapes["a/lstm_cell/kernel/Adam"] = (10, 12)
    shapes["a/lstm_cell/kernel/ExponentialMovingAverage"] = (10, 12)
    (cell,) = scopes.find_cells_by_name(shapes)
    assert cell.variables == {"kernel": "a/lstm_cell/kernel:0", "bias": "a/lstm_cell/bias:0"}
