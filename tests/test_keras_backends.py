"""Keras on torch and JAX: the core suite in its own processes, and the same logs as on TensorFlow.

A Keras backend is chosen once per process, so each backend runs in a
subprocess started with KERAS_BACKEND set (as tests/test_tf1_suite.py does
for TF1); this process is Keras on TensorFlow.
"""

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from subprocess_suite import Suite, node_ids

import tb_lstm_gates
from tb_lstm_gates.logs import metadata

SUITE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "keras_backends")
BACKENDS = ["torch", "jax"]
IN_BACKEND_PROCESS = os.environ.get("KERAS_BACKEND") in BACKENDS

# Builds a model from fixed numpy weights, so every backend starts from the
# same ones, and fits one epoch with the callback (probe, gradients, gate
# regularizer); then asserts that TensorFlow was never imported. Run as a script under each backend, and imported here for
# TensorFlow.
SCRIPT = textwrap.dedent(
    """
    import sys

    import keras
    import numpy as np

    import tb_lstm_gates
    from tb_lstm_gates.keras.regularizers import GateRegularizer


    def fit(log_dir):
        rng = np.random.default_rng(11)
        x = rng.normal(size=(8, 6, 3)).astype("float32")
        y = rng.normal(size=(8, 1)).astype("float32")
        inp = keras.Input((6, 3))
        # No Bidirectional here: Keras 3.15's own Bidirectional constructor imports
        # TensorFlow whenever it is installed (its serialization checks for
        # tf.TensorShape); the core suite covers Bidirectional on each backend.
        h = keras.layers.LSTM(4, return_sequences=True)(inp)
        h = keras.layers.GRU(3, kernel_regularizer=GateRegularizer("gru", l2={"reset": 0.05}))(h)
        model = keras.Model(inp, keras.layers.Dense(1)(h))
        model.compile(keras.optimizers.SGD(1e-2), "mse")
        model.set_weights([rng.normal(scale=0.4, size=w.shape).astype("float32") for w in model.get_weights()])
        callback = tb_lstm_gates.LSTMGatesCallback(log_dir, probe=(x[:4], y[:4]), probe_gradients=True)
        model.fit(x, y, epochs=1, batch_size=8, verbose=0, callbacks=[callback])


    if __name__ == "__main__":
        fit(sys.argv[1])
        assert keras.backend.backend() == sys.argv[2], keras.backend.backend()
        imported = sorted(m for m in sys.modules if m == "tensorflow" or m.startswith("tensorflow."))
        assert not imported, "Keras on %s imported TensorFlow: %s" % (sys.argv[2], imported[:5])
    """
)


def _env(backend):
    return dict(os.environ, KERAS_BACKEND=backend)


@pytest.fixture(scope="module")
def suites(tmp_path_factory):
    """Each backend's run of the core suite, started on first use."""
    runs = {}

    def suite(backend):
        if backend not in runs:
            xml_path = str(tmp_path_factory.mktemp(backend) / "junit.xml")
            runs[backend] = Suite(SUITE_DIR, _env(backend), xml_path)
        return runs[backend]

    return suite


@pytest.mark.skipif(IN_BACKEND_PROCESS, reason="already a backend process")
@pytest.mark.parametrize(
    "backend, test_id",
    [] if IN_BACKEND_PROCESS else [(b, t) for b in BACKENDS for t in node_ids(SUITE_DIR, _env(b))],
)
def test_keras_core_suite_on_backend(suites, backend, test_id):
    status, details = suites(backend).outcome(test_id)
    if status == "skipped":
        pytest.skip(details.strip().splitlines()[0] if details.strip() else "skipped on %s" % backend)
    assert status == "passed", "%s %s on Keras %s:\n%s" % (test_id, status, backend, details)


@pytest.mark.skipif(IN_BACKEND_PROCESS, reason="already a backend process")
@pytest.mark.parametrize("backend", BACKENDS)
def test_backend_logs_what_tensorflow_logs_without_importing_it(backend, tmp_path):
    script = tmp_path / "fit_model.py"
    script.write_text(SCRIPT)
    result = subprocess.run(
        [sys.executable, str(script), str(tmp_path / backend), backend],
        env=dict(os.environ, KERAS_BACKEND=backend),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-5000:]

    assert keras.backend.backend() == "tensorflow"
    keras.backend.clear_session()
    namespace = {}
    exec(compile(SCRIPT, "fit_model.py", "exec"), namespace)
    namespace["fit"](str(tmp_path / "tensorflow"))

    def step0(run):
        return {
            (r.layer, r.part, r.gate, r.stat): r.value
            for r in tb_lstm_gates.load(tmp_path / run / "train")
            if r.step == 0 and r.stat not in metadata.TENSOR_STATS
        }

    theirs, ours = step0(backend), step0("tensorflow")
    assert theirs.keys() == ours.keys()
    stats = {key[3] for key in ours}
    assert {"l2", "act_mean", "retention", metadata.GRAD_NORM, metadata.PENALTY, "update_ratio"} - stats == {
        "update_ratio"
    }  # no previous step at step 0
    for key, value in ours.items():
        assert theirs[key] == pytest.approx(value, rel=1e-4, abs=1e-6), key
    grad_norms = [v for k, v in ours.items() if k[3] == metadata.GRAD_NORM]
    assert len(grad_norms) == 3 * 4 + 4 * 3 and np.all(np.array(grad_norms) > 0)


def test_probe_gradients_on_a_backend_without_gradients_is_refused_by_name():
    script = textwrap.dedent(
        """
        import numpy as np
        import tb_lstm_gates

        x = np.zeros((2, 3, 1), "float32")
        try:
            tb_lstm_gates.LSTMGatesCallback("logs", probe=(x, x[:, 0]), probe_gradients=True)
        except ValueError as e:
            print(e)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=dict(os.environ, KERAS_BACKEND="numpy"),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "probe_gradients=True needs Keras on tensorflow, torch, jax; Keras runs on numpy" in result.stdout
