"""The probe's self-check (issue 26): the gates recomputed from the logged weights must give the model's outputs.

Core: the difference, its scale and its NaN rules. Keras: a planted custom
cell whose `call` computes with other weights or inputs than those logged
gets the `self_check` stat past the tolerance, one RuntimeWarning at the
user's line, the `weights_mismatch` finding in `report`; healthy models
(the demo's, beside it) none. The generator of Keras structures asserts the
check on every structure (tests/test_every_cell_keras.py).
"""

import dataclasses
import importlib.util
import os
import warnings

import keras
import numpy as np
import pytest

import tb_lstm_gates
from tb_lstm_gates import cli, findings
from tb_lstm_gates.core import activations, layouts, selfcheck
from tb_lstm_gates.logs import metadata

RNG = np.random.default_rng(26)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# Core.


def test_difference_is_absolute_within_one_and_relative_beyond():
    valid = np.ones((1, 2), bool)
    ours = np.array([[[0.5], [0.2]]])
    assert selfcheck.difference(ours, ours + [[[0.0], [0.01]]], valid) == pytest.approx(0.01)
    big = ours * 100
    assert selfcheck.difference(big * 1.01, big, valid) == pytest.approx(0.01)


def test_masked_steps_are_left_out_and_no_valid_step_is_no_value():
    ours = np.zeros((2, 3, 1))
    theirs = ours.copy()
    theirs[1, 2] = 0.5
    valid = np.ones((2, 3), bool)
    assert selfcheck.difference(ours, theirs, valid) == 0.5
    valid[1, 2] = False
    assert selfcheck.difference(ours, theirs, valid) == 0.0
    value = selfcheck.difference(ours, theirs, np.zeros((2, 3), bool))
    assert np.isnan(value) and not selfcheck.mismatched(value)


def test_non_finite_on_both_sides_is_no_mismatch_on_one_side_is():
    valid = np.ones((1, 2), bool)
    ours = np.array([[[np.nan, 0.1], [np.inf, 0.2]]])
    assert selfcheck.difference(ours, ours.copy(), valid) == 0.0
    one_side = ours.copy()
    one_side[0, 0, 0] = 0.3
    assert selfcheck.difference(ours, one_side, valid) == np.inf
    assert selfcheck.difference(one_side, ours, valid) == np.inf
    flipped = ours.copy()
    flipped[0, 1, 0] = -np.inf
    assert selfcheck.difference(ours, flipped, valid) == np.inf
    assert selfcheck.mismatched(np.inf)


def test_check_of_a_trace_without_reference_is_none_and_a_bad_shape_says_so():
    shapes = {"kernel": (2, 12), "recurrent_kernel": (3, 12), "bias": (12,)}
    arrays = {name: RNG.normal(size=shape).astype("float32") for name, shape in shapes.items()}
    trace = activations.lstm(layouts.keras_lstm(), arrays, RNG.normal(size=(2, 4, 2)))
    assert selfcheck.check(trace) is None
    assert selfcheck.check(dataclasses.replace(trace, reference_outputs=trace.outputs.copy())) == 0.0
    with pytest.raises(ValueError, match="reference_outputs"):
        selfcheck.check(dataclasses.replace(trace, reference_outputs=trace.outputs[:, :2]))


def test_a_backwards_trace_reads_its_valid_steps_in_the_outputs_order():
    # go_backwards: outputs run from the input's last step, `valid` stays in input order. A sequence
    # masked at its last two input steps has its outputs' first two steps masked.
    shapes = {"kernel": (2, 12), "recurrent_kernel": (3, 12), "bias": (12,)}
    arrays = {name: RNG.normal(size=shape).astype("float32") for name, shape in shapes.items()}
    mask = np.ones((1, 5), bool)
    mask[0, 3:] = False
    trace = activations.lstm(
        layouts.keras_lstm(), arrays, RNG.normal(size=(1, 5, 2)), mask, go_backwards=True
    )
    assert trace.outputs_backwards
    reference = trace.outputs.copy()
    reference[0, :2] += 0.5  # masked steps, in the outputs' order: left out
    assert selfcheck.check(dataclasses.replace(trace, reference_outputs=reference)) == 0.0
    reference[0, 4] += 0.5  # the input's first step, valid
    assert selfcheck.check(dataclasses.replace(trace, reference_outputs=reference)) == pytest.approx(0.5)


# Keras: planted cells that compute with what the logger cannot see.


@keras.saving.register_keras_serializable("tb_lstm_gates_tests")
class HalvedInputCell(keras.layers.LSTMCell):
    """Feeds its gates half its inputs: a custom `call` that changes the inputs."""

    def call(self, inputs, states, training=False):
        return super().call(inputs * 0.5, states, training=training)


@keras.saving.register_keras_serializable("tb_lstm_gates_tests")
class WeightDropCell(keras.layers.LSTMCell):
    """Computes with a copy of its recurrent kernel missing one weight in ten, as weight drop does."""

    def call(self, inputs, states, training=False):
        kept = keras.ops.convert_to_tensor(
            np.arange(self.units * 4 * self.units) % 10 != 0, self.compute_dtype
        )
        trained = self.recurrent_kernel
        object.__setattr__(self, "recurrent_kernel", trained * keras.ops.reshape(kept, trained.shape))
        try:
            return super().call(inputs, states, training=training)
        finally:
            object.__setattr__(self, "recurrent_kernel", trained)


def planted_model(cell_class):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6, 3))
    healthy = keras.layers.LSTM(4, return_sequences=True, name="healthy")(inputs)
    planted = keras.layers.RNN(cell_class(4, name="planted_cell"), name="planted")(healthy)
    model = keras.Model(inputs, keras.layers.Dense(1)(planted))
    model.compile("adam", "mse")
    return model


@pytest.mark.parametrize("cell_class", [HalvedInputCell, WeightDropCell], ids=["inputs", "weights"])
def test_a_custom_cell_computing_with_what_the_logger_cannot_see_is_found(cell_class, tmp_path, capsys):
    model = planted_model(cell_class)
    x, y = RNG.normal(size=(16, 6, 3)).astype("float32"), RNG.normal(size=(16, 1)).astype("float32")
    callback = tb_lstm_gates.LSTMGatesCallback(tmp_path, probe=x[:4])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(x, y, epochs=3, batch_size=8, verbose=0, callbacks=[callback])
    ours = [w for w in caught if issubclass(w.category, RuntimeWarning) and "tb-lstm-gates" in str(w.message)]
    # One warning for the layer, over four logged steps, at the user's `fit` line.
    assert len(ours) == 1, [str(w.message) for w in ours]
    message = str(ours[0].message)
    assert "planted/planted_cell" in message and "custom `call`" in message and "healthy" not in message
    assert ours[0].filename == __file__
    records = tb_lstm_gates.load(tmp_path)
    checked = {}
    for r in records:
        if r.stat == metadata.SELF_CHECK:
            assert (r.part, r.gate) == (metadata.TOTAL, metadata.TOTAL)
            checked.setdefault(r.layer, []).append(r.value)
    assert sorted(checked) == ["healthy/lstm_cell", "planted/planted_cell"]
    assert len(checked["planted/planted_cell"]) == 4
    assert min(checked["planted/planted_cell"]) > 10 * selfcheck.TOLERANCE
    assert max(checked["healthy/lstm_cell"]) < 1e-5
    found = [f for f in findings.check(records) if f["rule"] == "weights_mismatch"]
    assert [(f["layer"], f["severity"], f["step"]) for f in found] == [("planted/planted_cell", "error", 0)]
    assert cli.main(["report", str(tmp_path), "--fail-on", "error"]) == 1
    out = capsys.readouterr().out
    assert "weights_mismatch" in out and "planted/planted_cell" in out


def test_the_self_check_threshold_can_be_set_like_every_other():
    rule = findings.RULES_BY_NAME["weights_mismatch"]
    assert rule.severity == "error" and rule.stat == metadata.SELF_CHECK
    assert findings.parse_settings(["weights_mismatch.max=0.5"]) == {("weights_mismatch", "max"): 0.5}


# Healthy models raise none.


def test_the_demos_model_passes_its_self_check_with_warnings_as_errors(tmp_path):
    spec = importlib.util.spec_from_file_location("demo_run", os.path.join(ROOT, "demo", "run.py"))
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    x, y, vocab = demo.text_dataset()
    model = demo.build_model(len(vocab))
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
    callback = tb_lstm_gates.LSTMGatesCallback(tmp_path, update_freq=5, probe=x[:256:8], probe_tokens=vocab)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        model.fit(x[:1280], y[:1280], batch_size=128, epochs=1, verbose=0, callbacks=[callback])
    records = tb_lstm_gates.load(tmp_path)
    values = [r.value for r in records if r.stat == metadata.SELF_CHECK]
    assert len(values) == 2 * 3  # two layers, at steps 0, 5 and 10
    assert max(values) < selfcheck.TOLERANCE / 10, max(values)
    assert not [f for f in findings.check(records) if f["rule"] == "weights_mismatch"]
