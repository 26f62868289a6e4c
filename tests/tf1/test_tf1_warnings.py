"""A warning of LSTMGatesHook names the user's line that created the session, not TensorFlow's or ours."""

import inspect
import warnings

import tensorflow as tf
from tf1_model import build_model, feed

from tb_lstm_gates import tf1

v1 = tf.compat.v1


def test_the_hooks_failure_warning_names_the_users_session_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with tf.Graph().as_default():
        x, train = build_model()
        hook = tf1.LSTMGatesHook(str(blocker / "run"), every_n_steps=1)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            line = inspect.currentframe().f_lineno + 1
            with v1.train.MonitoredTrainingSession(hooks=[hook]) as sess:
                sess.run(train, feed(x))
    (warning,) = [w for w in caught if "LSTMGatesHook stopped logging" in str(w.message)]
    assert (warning.filename, warning.lineno) == (__file__, line)
