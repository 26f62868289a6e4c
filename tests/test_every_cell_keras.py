"""Every recurrent cell of a Keras 3 model, however the model holds it and however it calls it (issue 19).

A property-based generator (`keras_structures`) draws models: functional,
sequential and subclassed, nesting 0-3 deep through custom layers (cells as
attributes, in lists, in dicts), nested Sequential and functional models,
Bidirectional, TimeDistributed, stacked cells, shared cells, cells stepped
in Python loops, random activations. For each: every recurrent weight is
logged exactly once, the logged l2 is numpy's, and the probe reproduces
every call of every cell as Keras computes it. Named tests cover each
pattern of the issue.
"""

import os
import subprocess
import sys
import tempfile
import warnings

import keras
import keras_structures
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tb_lstm_gates
from tb_lstm_gates.core import activations, layouts, selfcheck
from tb_lstm_gates.keras import discover, probe
from tb_lstm_gates.keras.probe_calls import to_numpy

RNG = np.random.default_rng(19)
T, F = keras_structures.T, keras_structures.FEATURES

units = st.integers(1, 3)
acts = st.sampled_from(keras_structures.ACTIVATIONS)
rnn_spec = st.tuples(st.sampled_from(["lstm", "gru"]), units, acts, acts, st.booleans())
leaf = st.one_of(
    rnn_spec,
    st.tuples(st.just("stacked"), units, acts),
    st.tuples(st.just("loop"), units, acts),
    st.tuples(st.just("shared"), units, acts),
    st.tuples(st.just("bidirectional"), rnn_spec),
    st.tuples(st.just("time_distributed"), rnn_spec),
)


def blocks(depth):
    if depth == 0:
        return leaf
    containers = st.tuples(
        st.sampled_from(["attribute", "list", "dict", "sequential", "functional"]),
        st.lists(blocks(depth - 1), min_size=1, max_size=2),
    )
    return st.one_of(leaf, containers)


model_specs = st.tuples(
    st.sampled_from(["functional", "sequential", "subclassed"]), st.lists(blocks(3), min_size=1, max_size=2)
)


@pytest.fixture(autouse=True)
def fresh_keras_names():
    keras.backend.clear_session()


def framework_steps(model, cells, x):
    """`{id(cell): [h of each step, in call order]}`: each cell's own outputs, from Keras, step by step."""
    steps = {id(cell.obj): [] for cell in cells}
    # Keras's TensorFlow `rnn` runs the first step once before its loop, to
    # learn the output's shape, and discards it: each recurrent layer's call
    # makes its cells skip their next call.
    shape_call = set()
    wrapped = []

    def wrap(obj, before, after):
        original = obj.call

        def call(*args, **kwargs):
            before()
            out = original(*args, **kwargs)
            after(out, [to_numpy(a) for a in keras.tree.flatten((args, kwargs)) if hasattr(a, "shape")])
            return out

        object.__setattr__(obj, "call", call)
        wrapped.append(obj)

    last = {}

    def record(key):
        def after(out, given):
            # `StackedRNNCells` also runs each cell once more on the first
            # step's inputs and states: the same call again.
            if key in shape_call:
                shape_call.discard(key)
                return
            repeat = key in last and all(np.array_equal(a, b) for a, b in zip(last[key], given))
            last[key] = given
            if not repeat:
                steps[key].append(to_numpy(out[0]))

        return after

    for cell in cells:
        wrap(cell.obj, lambda: None, record(id(cell.obj)))
    for rnn, stack in {id(o[0]): o for cell in cells for o in cell.owners}.values():
        wrap(rnn, lambda stack=stack: shape_call.update(id(c) for c in stack), lambda out, given: None)
    try:
        model(x, training=False)  # eagerly: Keras's recurrent loop calls each cell once per step
    finally:
        for obj in wrapped:
            object.__delattr__(obj, "call")
    return steps


def probe_steps(traces):
    """A cell's call traces as the outputs of each step, in processing order."""
    return [trace.outputs[:, k] for trace in traces for k in range(trace.outputs.shape[1])]


def expected_l2(cells):
    expected = {}
    for cell in cells:
        arrays = cell.arrays()
        for name, pieces in cell.layout.weights.items():
            for piece in pieces:
                for gate, block in layouts.split(arrays[name], piece, name).items():
                    expected[cell.layer, piece.part, gate] = np.linalg.norm(block.astype(np.float64))
    return expected


def log_one_step(model, log_dir, x):
    """The callback's first step, through its hooks as `fit` calls them."""
    callback = tb_lstm_gates.LSTMGatesCallback(log_dir, probe=x)
    callback.set_model(model)
    callback.on_train_begin()
    callback.on_epoch_begin(0)
    callback._close()
    return tb_lstm_gates.load(log_dir)


def assert_every_cell_logged_once_as_keras_computes_it(model, x):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cells = discover.find_cells(model)
        traces = probe.ProbeLogger(model, cells, x).call_traces()
    assert [str(w.message) for w in caught if "tb-lstm-gates" in str(w.message)] == []
    # Every recurrent weight belongs to exactly one logged cell.
    recurrent = {id(v) for v in model.weights if discover.variable_path(v).endswith("recurrent_kernel")}
    logged = [id(cell.variables["recurrent_kernel"]) for cell in cells]
    assert sorted(logged) == sorted(recurrent)
    assert len({cell.layer for cell in cells}) == len(cells)
    # The probe reproduces every call of every cell.
    expected = framework_steps(model, cells, x)
    for cell, calls in traces:
        got, want = probe_steps(calls), expected[id(cell.obj)]
        assert len(got) == len(want) > 0, cell.layer
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4, err_msg=cell.layer)
    # The self-check runs on every call and finds no mismatch.
    for cell, calls in traces:
        for trace in calls:
            assert trace.reference_outputs is not None, cell.layer
            difference = selfcheck.check(trace)
            assert not selfcheck.mismatched(difference), (cell.layer, difference)
    # The logged l2 is numpy's.
    with tempfile.TemporaryDirectory() as log_dir:
        records = log_one_step(model, log_dir, x)
    l2 = {(r.layer, r.part, r.gate): r.value for r in records if r.stat == "l2" and r.step == 0}
    want_l2 = expected_l2(cells)
    assert sorted(l2) == sorted(want_l2)
    checked = {r.layer: r.value for r in records if r.stat == "self_check" and r.step == 0}
    assert sorted(checked) == sorted({cell.layer for cell, calls in traces if calls})
    assert all(value <= selfcheck.TOLERANCE for value in checked.values()), checked
    for key, value in want_l2.items():
        assert value == pytest.approx(l2[key], rel=1e-5, abs=1e-6), key
    return cells, traces


@settings(
    max_examples=50,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(spec=model_specs)
def test_every_generated_structure_logs_each_cell_once_as_keras_computes_it(spec):
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    model = keras_structures.model(spec)
    x = RNG.normal(size=(2, T, F)).astype("float32")
    assert_every_cell_logged_once_as_keras_computes_it(model, x)


WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "every_cell_training_worker.py")
# Generated structures trained with and without the callback: every pattern at least once.
TRAINED_SPECS = [
    (
        "subclassed",
        [
            ("dict", [("bidirectional", ("gru", 2, "relu", "hard_sigmoid", False)), ("shared", 2, "gelu")]),
            ("list", [("time_distributed", ("lstm", 2, "custom", "sigmoid", True)), ("stacked", 2, "elu")]),
        ],
    ),
    (
        "functional",
        [
            (
                "functional",
                [
                    (
                        "attribute",
                        [("loop", 2, "silu"), ("sequential", [("lstm", 2, "tanh", "sigmoid", False)])],
                    )
                ],
            )
        ],
    ),
]


@pytest.mark.parametrize("spec", TRAINED_SPECS, ids=["subclassed", "functional"])
def test_generated_structures_train_bit_identical_with_and_without_the_callback(spec, tmp_path):
    saved = {}
    for mode in ("plain", "callback"):
        out = tmp_path / (mode + ".npz")
        result = subprocess.run(
            [sys.executable, WORKER, mode, repr(spec), str(out)],
            env=dict(
                os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(WORKER)), TF_CPP_MIN_LOG_LEVEL="2"
            ),
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, result.stderr[-5000:]
        with np.load(out) as arrays:
            saved[mode] = {name: arrays[name] for name in arrays.files}
    plain, observed = saved["plain"], saved["callback"]
    assert sorted(plain) == sorted(observed)
    assert [n for n in plain if plain[n].tobytes() != observed[n].tobytes()] == []
    records = tb_lstm_gates.load(tmp_path / "logs")
    assert {r.stat for r in records} >= {"l2", "act_mean", "activation_map"}


# --- One test per pattern of issue 19 ---------------------------------------------------------------


class Encoder(keras.layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.rnn = keras.layers.Bidirectional(keras.layers.GRU(3, return_sequences=True, name="gru"))

    def call(self, x):
        return self.rnn(x)


class Decoder(keras.layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.gru = keras.layers.GRU(2, name="gru")

    def call(self, x):
        return self.gru(x)


class EncoderDecoder(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.encoder = Encoder(name="encoder")
        self.decoder = Decoder(name="decoder")
        self.head = keras.layers.Dense(1)

    def call(self, x):
        return self.head(self.decoder(self.encoder(x)))


def test_rnn_inside_a_custom_layer_is_logged(tmp_path):
    model = EncoderDecoder()
    model.compile("adam", "mse")
    x, y = RNG.normal(size=(4, T, F)).astype("float32"), np.zeros((4, 1), "float32")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "logs nothing", no deprecation
        model.fit(
            x, y, epochs=1, verbose=0, callbacks=[tb_lstm_gates.LSTMGatesCallback(tmp_path, probe=x[:2])]
        )
    layers = {r.layer for r in tb_lstm_gates.load(tmp_path)}
    assert layers == {
        "encoder/bidirectional/forward_gru/gru_cell",
        "encoder/bidirectional/backward_gru/gru_cell",
        "decoder/gru/gru_cell",
    }
    assert_every_cell_logged_once_as_keras_computes_it(model, x[:2])


@keras.saving.register_keras_serializable("tb_lstm_gates_tests")
class TwoPaths(keras.Model):
    """Holds one cell as an attribute and through an RNN, and also steps it by hand."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.lstm_cell = keras.layers.LSTMCell(3, name="lstm_cell")
        self.lstm_rnn = keras.layers.RNN(self.lstm_cell, return_sequences=True, name="lstm_rnn")
        self.head = keras.layers.Dense(1)

    def call(self, x):
        y = self.lstm_rnn(x)
        return self.head(y[:, -1])


def test_cell_reachable_by_two_paths_is_logged_once_under_its_rnn_path(tmp_path):
    model = TwoPaths()
    x = RNG.normal(size=(2, T, F)).astype("float32")
    model(x)
    model.compile("adam", "mse")
    cells, traces = assert_every_cell_logged_once_as_keras_computes_it(model, x)
    assert [c.layer for c in cells] == ["lstm_rnn/lstm_cell"]
    assert len(traces[0][1]) == 1  # probed through its RNN, with no warning
    path = str(tmp_path / "model.keras")
    model.save(path)
    restored = keras.models.load_model(path)
    assert [c.layer for c in discover.find_cells(restored)] == ["lstm_rnn/lstm_cell"]


class SteppedDecoder(keras.Model):
    """An autoregressive decoder: its cell is called once per step in a Python loop, its output fed back."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.lstm_cell = keras.layers.LSTMCell(F)
        self.head = keras.layers.Dense(1)

    def call(self, x):
        state = [keras.ops.zeros((keras.ops.shape(x)[0], F))] * 2
        h = x[:, 0]
        for _ in range(5):
            h, state = self.lstm_cell(h, states=state)
        return self.head(h)


def test_cell_called_step_by_step_in_a_python_loop_is_probed_on_every_step(tmp_path):
    model = SteppedDecoder()
    x = RNG.normal(size=(3, T, F)).astype("float32")
    model(x)
    cells, traces = assert_every_cell_logged_once_as_keras_computes_it(model, x)
    ((cell, calls),) = traces
    assert len(calls) == 5
    joined = activations.concatenate(calls)
    assert joined.activations.shape == (3, 5, 4, F)  # the map spans all five calls
    callback = tb_lstm_gates.LSTMGatesCallback(tmp_path, probe=x)
    model.compile("adam", "mse")
    model.fit(x, np.zeros((3, 1)), epochs=1, verbose=0, callbacks=[callback])
    maps = [r for r in tb_lstm_gates.load(tmp_path) if r.stat == "activation_map"]
    assert maps and all(m.value.shape == (5, F) for m in maps)


def test_cell_called_several_times_per_pass_gets_every_call_in_order():
    keras.utils.set_random_seed(1)
    inp = keras.Input((T, F))
    rnn = keras.layers.LSTM(2, return_sequences=True)
    out = keras.layers.Concatenate()([rnn(inp), rnn(inp[:, ::-1] * 2.0)])
    model = keras.Model(inp, out)
    x = RNG.normal(size=(2, T, F)).astype("float32")
    cells, traces = assert_every_cell_logged_once_as_keras_computes_it(model, x)
    ((cell, calls),) = traces
    assert len(calls) == 2
    np.testing.assert_allclose(
        activations.concatenate(calls).outputs[:, T:], np.asarray(rnn(x[:, ::-1] * 2.0)), atol=1e-5
    )


@pytest.mark.parametrize("name", keras_structures.ACTIVATIONS)
@pytest.mark.parametrize("layer", ["LSTM", "GRU"])
def test_every_keras_activation_is_probed_as_keras_computes_it(name, layer):
    keras.utils.set_random_seed(2)
    act = keras_structures.activation(name)
    kwargs = {"unit_forget_bias": False} if layer == "LSTM" else {}
    recurrent = getattr(keras.layers, layer)(
        3, activation=act, recurrent_activation=act, return_sequences=True, **kwargs
    )
    model = keras.Sequential([keras.Input((T, F)), recurrent])
    if name == "exponential":
        # Exponential gates compound over the steps: small weights keep them
        # finite, so every value is compared, none is inf or NaN.
        for v in recurrent.weights:
            v.assign(v * 0.1)
    _, traces = assert_every_cell_logged_once_as_keras_computes_it(
        model, RNG.normal(scale=0.3, size=(3, T, F)).astype("float32")
    )
    assert all(np.isfinite(trace.outputs).all() for _, calls in traces for trace in calls)


@pytest.mark.parametrize("name", sorted(activations.FUNCTIONS))
def test_numpy_twins_equal_keras_activations(name):
    z = np.concatenate([np.linspace(-8, 8, 2001), [0.0, -0.0, 1e-7, -1e-7, 30.0, -30.0]]).astype("float32")
    want = to_numpy(keras.activations.get(name)(z))
    got = activations.FUNCTIONS[name](z)
    # sigmoid's twin is exact in float64 terms; Keras rounds in float32.
    np.testing.assert_allclose(got, want, rtol=2e-7 if name != "sigmoid" else 1e-6, atol=1e-7)


def test_unbounded_activations_count_flat_slopes_as_saturated_and_relu_as_dead_at_exactly_zero():
    z = RNG.normal(scale=3.0, size=(1000,)).astype("float32")
    relu = activations.function("relu")
    low, high = relu.saturated(z, relu(z))
    assert np.array_equal(low, relu(z) == 0) and not high.any()
    relu6 = probe._function(keras.activations.relu6)
    low, high = relu6.saturated(z, relu6(z))
    assert np.array_equal(low, z < 0) and np.array_equal(high, z >= 6)
    linear = activations.function("linear")
    assert not np.any(linear.saturated(z, z))
    exponential = probe._function(keras.activations.exponential)
    low, high = exponential.saturated(z, exponential(z))
    # The slope over 0.01 towards minus infinity; away from the 0.1 boundary, where float32 decides.
    slope = np.exp(z.astype(np.float64)) * (1 - np.exp(-0.01)) / 0.01
    clear = np.abs(slope - 0.1) > 1e-4
    assert np.array_equal(low[clear], (slope < 0.1)[clear] & (z[clear] < 0)) and low.any()
    assert not high.any()


def test_conv_lstm_with_relu_is_probed_and_dead_units_read_as_saturated(tmp_path):
    keras.utils.set_random_seed(3)
    model = keras.Sequential(
        [
            keras.Input((T, 5, 5, 1)),
            keras.layers.ConvLSTM2D(2, 3, padding="same", activation="relu", return_sequences=True),
            keras.layers.GlobalAveragePooling3D(),
            keras.layers.Dense(1),
        ]
    )
    x = RNG.normal(size=(2, T, 5, 5, 1)).astype("float32")
    model.compile("adam", "mse")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.fit(
            x,
            np.zeros((2, 1)),
            epochs=1,
            verbose=0,
            callbacks=[tb_lstm_gates.LSTMGatesCallback(tmp_path, probe=x)],
        )
    records = tb_lstm_gates.load(tmp_path)
    (cell,) = discover.find_cells(model)
    ((_, trace),) = probe.ProbeLogger(model, [cell], x).traces()
    np.testing.assert_allclose(trace.outputs, model.layers[0](x), rtol=1e-4, atol=1e-5)
    dead = (trace.activations[:, :, 2] == 0).mean()  # the relu cell candidate at exactly zero
    logged = {
        r.gate: r.value
        for r in records
        if r.stat == "saturated_low" and r.part == "activation" and r.step == 1
    }
    assert logged["cell"] == pytest.approx(dead)


def test_recurrent_weight_no_splittable_cell_holds_is_named_in_one_warning():
    model = keras.Sequential(
        [keras.Input((T, F)), keras.layers.SimpleRNN(2, return_sequences=True), keras.layers.LSTM(2)]
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cells = discover.find_cells(model)
    ours = [str(w.message) for w in caught if "tb-lstm-gates" in str(w.message)]
    assert len(ours) == 1 and "simple_rnn/simple_rnn_cell (SimpleRNNCell)" in ours[0]
    assert [c.layer for c in cells] == ["lstm/lstm_cell"]


# --- Item 9, Keras: hooks in any order, no deprecation warnings -----------------------------------


def small_model():
    model = keras.Sequential([keras.Input((T, F)), keras.layers.LSTM(2), keras.layers.Dense(1)])
    model.compile("adam", "mse")
    return model


@pytest.mark.parametrize(
    "hooks",
    [
        ["on_epoch_end"],
        ["on_train_end"],
        ["on_train_batch_end", "on_epoch_end"],
        ["on_epoch_begin", "on_epoch_end", "on_epoch_end"],
        ["on_train_end", "on_train_begin", "on_epoch_end"],
        ["on_train_batch_begin", "on_train_batch_end", "on_train_end"],
    ],
    ids=lambda hooks: "-".join(h[3:] for h in hooks),
)
@pytest.mark.parametrize("update_freq", ["epoch", 1])
def test_hooks_in_any_order_of_a_hand_written_loop_never_raise(hooks, update_freq, tmp_path):
    model = small_model()
    callback = tb_lstm_gates.LSTMGatesCallback(tmp_path, update_freq=update_freq)
    callback.set_model(model)
    callback.set_params({"epochs": 1, "steps": 1})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for hook in hooks:
            if "batch" in hook or "epoch" in hook:
                getattr(callback, hook)(0, {"loss": 1.0})
            else:
                getattr(callback, hook)({"loss": 1.0})
    callback._close()
    if (
        "on_epoch_end" in hooks
        and update_freq == "epoch"
        or "on_train_batch_end" in hooks
        and update_freq == 1
    ):
        assert {r.stat for r in tb_lstm_gates.load(tmp_path)} >= {"l2"}


def test_epoch_end_through_a_callback_list_without_epoch_begin_logs(tmp_path):
    model = small_model()
    callback = tb_lstm_gates.LSTMGatesCallback(tmp_path)
    callbacks = keras.callbacks.CallbackList([callback], model=model, epochs=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        callbacks.on_epoch_end(0, {"loss": 1.0})
        # The step is written on the writer's thread; the end of training waits for it
        # (Keras's CallbackList refuses on_train_end without on_train_begin, so it is called on ours).
        callback.on_train_end()
    # The weights before the epoch are gone: step 0 is not logged, step 1 is.
    assert {r.step for r in tb_lstm_gates.load(tmp_path)} == {1}


def test_hooks_without_a_model_do_nothing(tmp_path):
    callback = tb_lstm_gates.LSTMGatesCallback(tmp_path)
    callback.on_epoch_end(0)
    callback.on_train_batch_end(0)
    assert not os.path.exists(tmp_path / "train")


def test_fit_with_the_callback_raises_no_deprecation_warning(tmp_path):
    model = small_model()
    x = RNG.normal(size=(4, T, F)).astype("float32")
    callback = tb_lstm_gates.LSTMGatesCallback(
        tmp_path, update_freq=1, probe=(x, np.zeros((4, 1))), probe_gradients=True
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        model.fit(x, np.zeros((4, 1)), batch_size=2, epochs=2, verbose=0, callbacks=[callback])
        model.fit(x, np.zeros((4, 1)), batch_size=2, epochs=1, verbose=0, callbacks=[callback])
    assert max(r.step for r in tb_lstm_gates.load(tmp_path)) == 6
