"""Gate layouts, proven by recomputing one step of Keras's own cells."""

import subprocess
import sys

import keras
import numpy as np
import pytest
from cellmath import conv_lstm_step, gru_step, lstm_step

from tb_lstm_gates.core import layouts

RNG = np.random.default_rng(0)


def randomize(layer):
    """Random weights everywhere (biases too), so a wrong gate order shows."""
    layer.set_weights([RNG.normal(scale=0.5, size=w.shape).astype("float32") for w in layer.get_weights()])


def split_all(layout, arrays):
    out = {}
    for name, pieces in layout.weights.items():
        for piece in pieces:
            out[piece.part] = layouts.split(arrays[name], piece, name)
    return out


def weights_of(cell):
    return {v.name: np.asarray(v.numpy()) for v in cell.weights}


def test_keras_lstm_step_equals_numpy_step_from_blocks():
    cell = keras.layers.LSTMCell(5)
    cell.build((None, 3))
    randomize(cell)
    x = RNG.normal(size=(2, 3)).astype("float32")
    h, c = RNG.normal(size=(2, 5)).astype("float32"), RNG.normal(size=(2, 5)).astype("float32")
    out, (h_keras, c_keras) = cell(x, [h, c])
    blocks = split_all(layouts.keras_lstm(), weights_of(cell))
    h_np, c_np = lstm_step(x, h, c, blocks["input"], blocks["recurrent"], blocks["bias"])
    np.testing.assert_allclose(np.asarray(h_keras), h_np, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(c_keras), c_np, rtol=1e-5, atol=1e-6)


def test_wrong_gate_order_is_caught_by_the_step():
    cell = keras.layers.LSTMCell(4)
    cell.build((None, 3))
    randomize(cell)
    x = RNG.normal(size=(2, 3)).astype("float32")
    h = c = np.zeros((2, 4), "float32")
    _, (h_keras, _) = cell(x, [h, c])
    wrong = layouts.Layout(
        "lstm",
        {
            name: (layouts.Piece(part, layouts.TF1_LSTM_ORDER),)
            for name, part in [("kernel", "input"), ("recurrent_kernel", "recurrent"), ("bias", "bias")]
        },
    )
    blocks = split_all(wrong, weights_of(cell))
    h_np, _ = lstm_step(x, h, c, blocks["input"], blocks["recurrent"], blocks["bias"])
    assert not np.allclose(np.asarray(h_keras), h_np, atol=1e-3)


@pytest.mark.parametrize("reset_after", [True, False])
def test_keras_gru_step_equals_numpy_step_from_blocks(reset_after):
    cell = keras.layers.GRUCell(5, reset_after=reset_after)
    cell.build((None, 3))
    randomize(cell)
    x = RNG.normal(size=(2, 3)).astype("float32")
    h = RNG.normal(size=(2, 5)).astype("float32")
    out, _ = cell(x, [h])
    blocks = split_all(layouts.keras_gru(reset_after), weights_of(cell))
    if reset_after:
        h_np = gru_step(
            x, h, blocks["input"], blocks["recurrent"], blocks["input_bias"], blocks["recurrent_bias"], True
        )
    else:
        h_np = gru_step(x, h, blocks["input"], blocks["recurrent"], blocks["bias"], None, False)
    np.testing.assert_allclose(np.asarray(out), h_np, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "layer_class, spatial, kernel_size, padding",
    [
        (keras.layers.ConvLSTM1D, (7,), 3, "valid"),
        (keras.layers.ConvLSTM1D, (7,), 3, "same"),
        (keras.layers.ConvLSTM2D, (5, 4), (3, 2), "same"),
        (keras.layers.ConvLSTM3D, (4, 3, 3), 2, "valid"),
    ],
)
def test_keras_conv_lstm_step_equals_numpy_step_from_blocks(layer_class, spatial, kernel_size, padding):
    layer = layer_class(3, kernel_size, padding=padding, return_state=True)
    x = RNG.normal(size=(2, 1) + spatial + (2,)).astype("float32")
    layer(x)
    randomize(layer)
    out, h_keras, c_keras = layer(x)
    cell = layer.cell
    blocks = split_all(layouts.keras_conv_lstm(), weights_of(cell))
    out_shape = np.asarray(h_keras).shape
    zeros = np.zeros(out_shape, "float32")
    h_np, c_np = conv_lstm_step(
        x[:, 0], zeros, zeros, blocks["input"], blocks["recurrent"], blocks["bias"], padding
    )
    np.testing.assert_allclose(np.asarray(h_keras), h_np, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(c_keras), c_np, rtol=1e-4, atol=1e-5)


def test_cudnn_bias_halves_act_as_summed_lstm_bias():
    # CuDNNLSTM runs only on a GPU; cuDNN's LSTM adds its two biases, so a
    # standard LSTM with bias = input_bias + recurrent_bias computes the same
    # step. Check that the split of the (8u) bias gives exactly those halves.
    units = 4
    cell = keras.layers.LSTMCell(units)
    cell.build((None, 3))
    randomize(cell)
    kernel, recurrent, _ = cell.get_weights()
    b_in = RNG.normal(size=4 * units).astype("float32")
    b_rec = RNG.normal(size=4 * units).astype("float32")
    cell.set_weights([kernel, recurrent, b_in + b_rec])
    arrays = {"kernel": kernel, "recurrent_kernel": recurrent, "bias": np.concatenate([b_in, b_rec])}
    blocks = split_all(layouts.cudnn_lstm(units), arrays)
    summed = {g: blocks["input_bias"][g] + blocks["recurrent_bias"][g] for g in blocks["input_bias"]}
    x = RNG.normal(size=(2, 3)).astype("float32")
    h = c = RNG.normal(size=(2, units)).astype("float32")
    _, (h_keras, _) = cell(x, [h, c])
    h_np, _ = lstm_step(x, h, c, blocks["input"], blocks["recurrent"], summed)
    np.testing.assert_allclose(np.asarray(h_keras), h_np, rtol=1e-5, atol=1e-6)


def test_cudnn_gru_bias_halves():
    units = 3
    bias = np.arange(6 * units, dtype="float32")
    layout = layouts.cudnn_gru(units)
    pieces = layout.weights["bias"]
    input_bias = layouts.split(bias, pieces[0])
    recurrent_bias = layouts.split(bias, pieces[1])
    np.testing.assert_array_equal(input_bias["reset"], bias[units : 2 * units])
    np.testing.assert_array_equal(recurrent_bias["candidate"], bias[5 * units : 6 * units])


def test_split_returns_views_not_copies():
    kernel = np.zeros((6, 12), "float32")
    for layout in (layouts.keras_lstm(), layouts.tf1_lstm(input_depth=3)):
        for piece in layout.weights["kernel"]:
            for block in layouts.split(kernel, piece).values():
                assert np.shares_memory(block, kernel)
    gru_bias = np.zeros((2, 9), "float32")
    for piece in layouts.keras_gru(True).weights["bias"]:
        for block in layouts.split(gru_bias, piece).values():
            assert np.shares_memory(block, gru_bias)


def test_tf1_layout_puts_input_rows_first_and_orders_gates_i_j_f_o():
    depth, units = 3, 2
    kernel = np.arange((depth + units) * 4 * units, dtype="float32").reshape(depth + units, 4 * units)
    input_piece, recurrent_piece = layouts.tf1_lstm(depth).weights["kernel"]
    inp = layouts.split(kernel, input_piece)
    rec = layouts.split(kernel, recurrent_piece)
    np.testing.assert_array_equal(inp["cell"], kernel[:depth, units : 2 * units])
    np.testing.assert_array_equal(rec["forget"], kernel[depth:, 2 * units : 3 * units])


@pytest.mark.parametrize(
    "shape, match",
    [((3, 10), "does not split into 4 gates"), ((), "does not split into 4 gates")],
)
def test_shape_that_does_not_fit_gets_a_clear_error(shape, match):
    with pytest.raises(ValueError, match=match):
        layouts.gate_view(np.zeros(shape), layouts.keras_lstm().weights["kernel"][0], "kernel")


def test_rows_outside_the_weight_get_a_clear_error():
    with pytest.raises(ValueError, match="has no rows 0:7"):
        layouts.gate_view(np.zeros((5, 8)), layouts.tf1_lstm(7).weights["kernel"][0], "kernel")


def test_missing_weight_is_named():
    with pytest.raises(ValueError, match="no weight 'bias'"):
        list(layouts.keras_lstm().blocks({"kernel": np.zeros((2, 8)), "recurrent_kernel": np.zeros((2, 8))}))


NUMPY_ONLY_SCRIPT = """
import importlib.abc
import sys

import numpy as np


class Blocker(importlib.abc.MetaPathFinder):
    # The numeric core must not need any framework: importing one fails.
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorboard", "tensorflow", "keras", "torch", "jax"):
            raise ImportError("blocked: " + name)
        return None


sys.meta_path.insert(0, Blocker())
from tb_lstm_gates.core import activations, layouts, stats

layout = layouts.keras_lstm()
kernel = np.arange(24, dtype=np.float32).reshape(2, 12)
view = layouts.gate_view(kernel, layout.weights["kernel"][0], "kernel")
assert stats.gate_stats(view)["max"].tolist() == [14, 17, 20, 23]
assert activations.FUNCTIONS["tanh"] is np.tanh
print("ok")
"""


def test_numeric_core_imports_with_numpy_alone():
    result = subprocess.run(
        [sys.executable, "-c", NUMPY_ONLY_SCRIPT], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-3000:]
