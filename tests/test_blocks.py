"""tb_lstm_gates.gate_blocks on real Keras layers: the blocks, losses built from them, their errors.

Expected blocks are cut by hand with explicit column slices and Keras's gate
orders (LSTM i, f, c, o; GRU z, r, h), not through `layouts`; one step of
Keras's own cell recomputed from the blocks proves the keys name the right
gates.
"""

import importlib.util
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from cellmath import gru_step, lstm_step

import tb_lstm_gates
from tb_lstm_gates.keras.regularizers import GateRegularizer

LSTM_ORDER = ["input", "forget", "cell", "output"]
GRU_ORDER = ["update", "reset", "candidate"]


def built(layer, input_shape, seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input(input_shape), layer])
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0, 0.5, w.shape).astype(w.dtype) for w in model.get_weights()])
    return model


def hand_blocks(cell, order):
    """{(part, gate): array} cut by hand from a Keras cell's weights."""
    kernel, recurrent, bias = (w.numpy() for w in (cell.kernel, cell.recurrent_kernel, cell.bias))
    units = kernel.shape[-1] // len(order)
    out = {}
    for k, gate in enumerate(order):
        cols = slice(k * units, (k + 1) * units)
        out["input", gate] = kernel[..., cols]
        out["recurrent", gate] = recurrent[..., cols]
        if bias.ndim == 2:
            out["input_bias", gate] = bias[0, cols]
            out["recurrent_bias", gate] = bias[1, cols]
        else:
            out["bias", gate] = bias[cols]
    return out


def as_numpy(blocks):
    return {k: keras.ops.convert_to_numpy(v) for k, v in blocks.items()}


@pytest.mark.parametrize(
    "make, input_shape, order",
    [
        (lambda: keras.layers.LSTM(5, name="rnn"), (6, 3), LSTM_ORDER),
        (lambda: keras.layers.GRU(5, reset_after=True, name="rnn"), (6, 3), GRU_ORDER),
        (lambda: keras.layers.GRU(5, reset_after=False, name="rnn"), (6, 3), GRU_ORDER),
        (lambda: keras.layers.ConvLSTM2D(3, (2, 3), padding="same", name="rnn"), (4, 5, 5, 2), LSTM_ORDER),
    ],
    ids=["lstm", "gru_reset_after", "gru_reset_before", "conv_lstm2d"],
)
def test_blocks_of_layer_and_cell_equal_hand_slices(make, input_shape, order):
    layer = built(make(), input_shape).get_layer("rnn")
    expected = hand_blocks(layer.cell, order)
    for target in (layer, layer.cell):
        blocks = as_numpy(tb_lstm_gates.gate_blocks(target))
        assert set(blocks) == set(expected)
        for key, block in expected.items():
            np.testing.assert_array_equal(blocks[key], block, err_msg=str(key))


def test_lstm_step_recomputed_from_the_blocks_equals_keras():
    cell = built(keras.layers.LSTM(4, name="rnn"), (1, 3)).get_layer("rnn").cell
    b = as_numpy(tb_lstm_gates.gate_blocks(cell))
    rng = np.random.default_rng(1)
    x, h, c = (rng.normal(size=s).astype("float32") for s in ((2, 3), (2, 4), (2, 4)))
    out, (h_new, c_new) = cell(x, [h, c])
    w, u, bias = ({g: b[part, g] for g in LSTM_ORDER} for part in ("input", "recurrent", "bias"))
    h_ref, c_ref = lstm_step(x, h, c, w, u, bias)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(h_new), h_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(c_new), c_ref, rtol=1e-5, atol=1e-6)


def test_gru_reset_after_step_recomputed_from_the_blocks_equals_keras():
    cell = built(keras.layers.GRU(4, name="rnn"), (1, 3)).get_layer("rnn").cell
    b = as_numpy(tb_lstm_gates.gate_blocks(cell))
    rng = np.random.default_rng(1)
    x, h = rng.normal(size=(2, 3)).astype("float32"), rng.normal(size=(2, 4)).astype("float32")
    out, _ = cell(x, [h])
    w, u, b_in, b_rec = (
        {g: b[part, g] for g in GRU_ORDER} for part in ("input", "recurrent", "input_bias", "recurrent_bias")
    )
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(out), gru_step(x, h, w, u, b_in, b_rec, True), rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize(
    "make, order, gate",
    [
        (lambda: keras.layers.LSTM(5, name="rnn"), LSTM_ORDER, "forget"),
        (lambda: keras.layers.GRU(5, name="rnn"), GRU_ORDER, "reset"),
    ],
    ids=["lstm", "gru"],
)
def test_penalty_on_one_recurrent_block_has_gradient_only_there(make, order, gate):
    c = 0.3
    cell = built(make(), (6, 3)).get_layer("rnn").cell
    with tf.GradientTape() as tape:
        block = tb_lstm_gates.gate_blocks(cell)["recurrent", gate]
        penalty = c * keras.ops.sum(block**2)
    kernel_grad, recurrent_grad = tape.gradient(penalty, [cell.kernel, cell.recurrent_kernel])
    recurrent = cell.recurrent_kernel.numpy()
    cols = slice(order.index(gate) * 5, (order.index(gate) + 1) * 5)
    by_hand = c * np.square(recurrent[:, cols].astype(np.float64)).sum()
    assert float(penalty) == pytest.approx(by_hand, rel=1e-5)
    expected = np.zeros_like(recurrent)
    expected[:, cols] = 2 * c * recurrent[:, cols]
    np.testing.assert_allclose(recurrent_grad.numpy(), expected, rtol=1e-6)
    assert kernel_grad is None
    # The same block through GateRegularizer's block key, in the model's losses.
    regularizer = GateRegularizer(cell_kind(order), weight="recurrent_kernel", l2={"recurrent/" + gate: c})
    assert float(regularizer(cell.recurrent_kernel)) == pytest.approx(float(penalty), rel=1e-6)


def cell_kind(order):
    return "lstm" if order == LSTM_ORDER else "gru"


def test_loss_written_by_hand_in_compute_loss_trains_with_fit():
    c = 0.5

    class Regularized(keras.Sequential):
        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
            w_hf = tb_lstm_gates.gate_blocks(self.get_layer("lstm"))["recurrent", "forget"]
            loss = super().compute_loss(x, y, y_pred, sample_weight, training)
            return loss + c * keras.ops.sum(w_hf**2)

    keras.utils.set_random_seed(0)
    model = Regularized([keras.Input((6, 3)), keras.layers.LSTM(4, name="lstm"), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.0), "mse")
    x, y = np.ones((8, 6, 3), "float32"), np.zeros((8, 1), "float32")
    mse = float(np.mean(model.predict(x, verbose=0) ** 2))
    w_hf = model.get_layer("lstm").cell.recurrent_kernel.numpy()[:, 4:8]
    loss = model.fit(x, y, batch_size=8, verbose=0).history["loss"][0]
    assert loss == pytest.approx(mse + c * np.square(w_hf).sum(), rel=1e-5)


def test_bidirectional_and_other_layers_raise_clear_errors():
    model = keras.Sequential(
        [
            keras.Input((6, 3)),
            keras.layers.Bidirectional(keras.layers.LSTM(4), name="bi"),
            keras.layers.Dense(2, name="dense"),
        ]
    )
    with pytest.raises(ValueError, match=r"Bidirectional.*gate_blocks\(layer.forward_layer\)"):
        tb_lstm_gates.gate_blocks(model.get_layer("bi"))
    forward = tb_lstm_gates.gate_blocks(model.get_layer("bi").forward_layer)
    assert forward["recurrent", "forget"].shape == (4, 4)
    with pytest.raises(ValueError, match=r"holds 2 recurrent cells .*forward_lstm.*backward_lstm"):
        tb_lstm_gates.gate_blocks(model)
    with pytest.raises(ValueError, match=r"no recurrent layer"):
        tb_lstm_gates.gate_blocks(model.get_layer("dense"))
    with pytest.raises(ValueError, match=r"layer 'lazy' is not built"):
        tb_lstm_gates.gate_blocks(keras.layers.LSTM(4, name="lazy"))
    with pytest.raises(ValueError, match=r"takes a Keras LSTM.*tf1.gate_blocks"):
        tb_lstm_gates.gate_blocks(np.zeros((3, 16)))


TORCH_SCRIPT = r"""
import numpy as np, keras
import tb_lstm_gates
from tb_lstm_gates.keras.regularizers import GateRegularizer

assert keras.backend.backend() == "torch"
model = keras.Sequential([keras.Input((5, 3)), keras.layers.GRU(4, name="gru")])
rng = np.random.default_rng(0)
model.set_weights([rng.normal(size=w.shape).astype("float32") for w in model.get_weights()])
cell = model.get_layer("gru").cell
recurrent, bias = cell.recurrent_kernel.numpy(), cell.bias.numpy()
blocks = tb_lstm_gates.gate_blocks(cell)
np.testing.assert_array_equal(keras.ops.convert_to_numpy(blocks["recurrent", "reset"]), recurrent[:, 4:8])
np.testing.assert_array_equal(keras.ops.convert_to_numpy(blocks["recurrent_bias", "update"]), bias[1, :4])
loss = 0.3 * keras.ops.sum(blocks["recurrent", "reset"] ** 2)
loss = loss + keras.ops.sum(blocks["recurrent_bias", "update"])
loss.backward()
expected = np.zeros_like(recurrent)
expected[:, 4:8] = 0.6 * recurrent[:, 4:8]
np.testing.assert_allclose(cell.recurrent_kernel.value.grad.numpy(), expected, rtol=1e-6)
expected = np.zeros_like(bias)
expected[1, :4] = 1
np.testing.assert_array_equal(cell.bias.value.grad.numpy(), expected)
penalty = GateRegularizer("gru", weight="bias", l2={"recurrent_bias/reset": 0.5})(cell.bias)
np.testing.assert_allclose(float(penalty.detach()), 0.5 * np.square(bias[1, 4:8]).sum(), rtol=1e-5)
print("ok")
"""


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs torch for KERAS_BACKEND=torch")
def test_blocks_and_block_penalties_on_the_torch_backend():
    env = dict(os.environ, KERAS_BACKEND="torch")
    result = subprocess.run(
        [sys.executable, "-c", TORCH_SCRIPT], env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr[-3000:]
