"""PyTorch layouts, proven by recomputing one step of torch's own modules from the split blocks."""

import numpy as np
import pytest
import torch
from cellmath import gru_step, lstm_step
from torch import nn

from tb_lstm_gates import torch as tg
from tb_lstm_gates.core import layouts

torch.manual_seed(0)
RNG = np.random.default_rng(0)


def randomize(module):
    """Random weights everywhere (biases too), so a wrong gate order shows."""
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn_like(p) * 0.5)


def split_all(cell):
    out = {}
    arrays = cell.arrays()
    for name, pieces in cell.layout.weights.items():
        for piece in pieces:
            out[piece.part] = layouts.split(arrays[name], piece, name)
    return out


def numpy_step(cell, x, h, c):
    blocks = split_all(cell)
    if cell.layout.cell == "lstm":
        project = blocks["projection"][layouts.WHOLE] if "projection" in blocks else None
        bias = {g: blocks["input_bias"][g] + blocks["recurrent_bias"][g] for g in blocks["input_bias"]}
        return lstm_step(x, h, c, blocks["input"], blocks["recurrent"], bias, project=project)
    return gru_step(
        x, h, blocks["input"], blocks["recurrent"], blocks["input_bias"], blocks["recurrent_bias"], True
    ), None


@pytest.mark.parametrize(
    "kind, num_layers, bidirectional, proj_size",
    [
        ("lstm", 1, False, 0),
        ("lstm", 2, True, 0),
        ("lstm", 2, True, 3),
        ("gru", 1, False, 0),
        ("gru", 2, True, 0),
    ],
)
def test_every_layer_and_direction_steps_like_torch(kind, num_layers, bidirectional, proj_size):
    extra = {"proj_size": proj_size} if proj_size else {}
    module = (nn.LSTM if kind == "lstm" else nn.GRU)(
        4, 5, num_layers=num_layers, bidirectional=bidirectional, batch_first=True, **extra
    )
    randomize(module)
    directions = 2 if bidirectional else 1
    state_size = proj_size or 5
    x = torch.randn(2, 1, 4)
    h0 = torch.randn(num_layers * directions, 2, state_size)
    c0 = torch.randn(num_layers * directions, 2, 5)
    with torch.no_grad():
        out, state = module(x, (h0, c0) if kind == "lstm" else h0)
    h_torch = state[0] if kind == "lstm" else state
    cells = tg.find_cells(module)
    assert [c.layer for c in cells] == [
        "%s/l%d%s" % (kind, k, s) for k in range(num_layers) for s in ("", "_reverse")[:directions]
    ]
    layer_input = x[:, 0].numpy()
    for k in range(num_layers):
        outputs = []
        for cell in [c for c in cells if c.index == k]:
            slot = k * directions + int(cell.reverse)
            h_np, c_np = numpy_step(cell, layer_input, h0[slot].numpy(), c0[slot].numpy())
            np.testing.assert_allclose(h_np, h_torch[slot].numpy(), rtol=1e-5, atol=1e-5)
            if kind == "lstm":
                np.testing.assert_allclose(c_np, state[1][slot].numpy(), rtol=1e-5, atol=1e-5)
            outputs.append(h_np)
        layer_input = np.concatenate(outputs, axis=-1)
    np.testing.assert_allclose(layer_input, out[:, 0].numpy(), rtol=1e-5, atol=1e-5)


def test_cells_step_like_torch():
    lstm, gru = nn.LSTMCell(4, 5), nn.GRUCell(4, 5)
    randomize(lstm)
    randomize(gru)
    x, h, c = torch.randn(3, 4), torch.randn(3, 5), torch.randn(3, 5)
    with torch.no_grad():
        h_lstm, c_lstm = lstm(x, (h, c))
        h_gru = gru(x, h)
    (lstm_cell,) = tg.find_cells(lstm)
    (gru_cell,) = tg.find_cells(gru)
    h_np, c_np = numpy_step(lstm_cell, x.numpy(), h.numpy(), c.numpy())
    np.testing.assert_allclose(h_np, h_lstm.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(c_np, c_lstm.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        numpy_step(gru_cell, x.numpy(), h.numpy(), None)[0], h_gru.numpy(), rtol=1e-5, atol=1e-5
    )


def test_keras_gru_order_on_torch_weights_is_caught_by_the_step():
    gru = nn.GRUCell(4, 5)
    randomize(gru)
    x, h = torch.randn(3, 4), torch.randn(3, 5)
    with torch.no_grad():
        h_gru = gru(x, h).numpy()
    (cell,) = tg.find_cells(gru)
    wrong = layouts.Layout(
        "gru",
        {
            name: tuple(layouts.Piece(p.part, layouts.KERAS_GRU_ORDER) for p in pieces)
            for name, pieces in cell.layout.weights.items()
        },
    )
    wrong_cell = tg.TorchCell(cell.layer, wrong, gru, cell.params)
    assert not np.allclose(numpy_step(wrong_cell, x.numpy(), h.numpy(), None)[0], h_gru, atol=1e-3)


def test_bias_free_modules_have_no_bias_parts():
    (cell,) = tg.find_cells(nn.GRU(3, 4, bias=False))
    assert [part for part, _, _ in cell.layout.blocks(cell.arrays())] == ["input", "recurrent"]


def test_gate_blocks_are_differentiable_views_of_each_block():
    lstm = nn.LSTM(3, 4, num_layers=2, bidirectional=True, proj_size=2)
    blocks = tg.gate_blocks(lstm, layer=1, reverse=True)
    w_hh = lstm.weight_hh_l1_reverse  # (4 * 4, 2): rows i, f, g, o
    forget = blocks["recurrent", "forget"]
    assert forget.shape == (2, 4)
    assert forget.data_ptr() == w_hh[4:8].data_ptr()  # a view, no copy
    np.testing.assert_array_equal(forget.detach().numpy(), w_hh[4:8].T.detach().numpy())
    np.testing.assert_array_equal(
        blocks["input", "cell"].detach().numpy(), lstm.weight_ih_l1_reverse[8:12].T.detach().numpy()
    )
    np.testing.assert_array_equal(
        blocks["recurrent_bias", "output"].detach().numpy(), lstm.bias_hh_l1_reverse[12:16].detach().numpy()
    )
    assert blocks["projection", layouts.WHOLE].shape == (4, 2)
    forget.square().sum().backward()
    grad = w_hh.grad.numpy()
    assert np.abs(grad[4:8]).sum() > 0
    assert not grad[:4].any() and not grad[8:].any()
    assert lstm.weight_hh_l1.grad is None


def test_gru_gate_blocks_follow_r_z_n():
    gru = nn.GRU(3, 4)
    blocks = tg.gate_blocks(gru)
    for g, gate in enumerate(("reset", "update", "candidate")):
        np.testing.assert_array_equal(
            blocks["input", gate].detach().numpy(), gru.weight_ih_l0[4 * g : 4 * (g + 1)].T.detach().numpy()
        )


def test_gate_blocks_names_the_layers_a_module_has():
    with pytest.raises(ValueError, match="no layer=1"):
        tg.gate_blocks(nn.LSTM(3, 4), layer=1)
    with pytest.raises(ValueError, match="takes an nn.LSTM"):
        tg.gate_blocks(nn.Linear(3, 4))
