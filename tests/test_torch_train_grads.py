"""`GateLogger` writes each block's training gradient (`.grad`) as `train_grad_norm` when called after
backward(), and the probe's tokens; Lightning's callback passes them on."""

import numpy as np
import pytest
import torch
from torch import nn

from tb_lstm_gates import torch as tg
from tb_lstm_gates.logs import metadata, reader

PARTS = {"weight_ih": "input", "weight_hh": "recurrent", "bias_ih": "input_bias", "bias_hh": "recurrent_bias"}


def train_grads(records):
    return {
        (r.layer, r.part, r.gate): r.value
        for r in records
        if r.stat == metadata.TRAIN_GRAD_NORM and r.step == 1
    }


@pytest.mark.parametrize(
    "rnn, gates",
    [
        (nn.LSTM(3, 5, num_layers=2, bidirectional=True, batch_first=True), metadata.LSTM_GATES),
        (nn.GRU(3, 4, batch_first=True), ("reset", "update", "candidate")),
    ],
)
def test_train_grad_norm_equals_the_norms_of_torchs_grad_slices(tmp_path, rnn, gates):
    torch.manual_seed(0)
    rnn.zero_grad()
    out, _ = rnn(torch.randn(4, 6, 3))
    out.pow(2).sum().backward()
    with tg.GateLogger(tmp_path, histogram_freq=0) as logger:
        logger.log(rnn, 1)
    logged = train_grads(reader.load(tmp_path))
    units = rnn.hidden_size
    root = "lstm" if isinstance(rnn, nn.LSTM) else "gru"
    expected = {}
    directions = ("", "_reverse") if rnn.bidirectional else ("",)
    for k in range(rnn.num_layers):
        for suffix in directions:
            for name, part in PARTS.items():
                grad = getattr(rnn, "%s_l%d%s" % (name, k, suffix)).grad.numpy()
                for g, gate in enumerate(gates):
                    block = grad[g * units : (g + 1) * units]
                    expected["%s/l%d%s" % (root, k, suffix), part, gate] = np.linalg.norm(block)
    assert set(logged) == set(expected)
    for key, value in expected.items():
        assert logged[key] == pytest.approx(value, rel=1e-5), key


def test_no_train_grad_norm_and_no_failure_when_the_grads_are_gone(tmp_path):
    torch.manual_seed(0)
    rnn = nn.LSTM(3, 4, batch_first=True)
    optimizer = torch.optim.SGD(rnn.parameters(), lr=0.1)
    with tg.GateLogger(tmp_path, histogram_freq=0, strict=True) as logger:
        logger.log(rnn, 0)  # before any backward: every .grad is None
        rnn(torch.randn(2, 5, 3))[0].sum().backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        logger.log(rnn, 1)
    records = reader.load(tmp_path)
    assert not [r for r in records if r.stat == metadata.TRAIN_GRAD_NORM]
    assert {r.step for r in records if r.stat == "l2"} == {0, 1}


def test_train_grad_norm_leaves_out_only_the_weights_without_grad(tmp_path):
    torch.manual_seed(0)
    rnn = nn.LSTM(3, 4, batch_first=True)
    rnn.bias_hh_l0.requires_grad_(False)
    rnn(torch.randn(2, 5, 3))[0].sum().backward()
    with tg.GateLogger(tmp_path, histogram_freq=0) as logger:
        logger.log(rnn, 1)
    parts = {part for (_, part, _) in train_grads(reader.load(tmp_path))}
    assert parts == {"input", "recurrent", "input_bias"}


def test_gate_logger_writes_the_probes_tokens_once_from_a_vocabulary(tmp_path):
    torch.manual_seed(0)
    embedding, rnn = nn.Embedding(4, 3), nn.GRU(3, 2, batch_first=True)
    ids = torch.tensor([[0, 1, 2], [3, 2, 1]])

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding, self.rnn = embedding, rnn

        def forward(self, x):
            return self.rnn(self.embedding(x))[0]

    model = Model()
    with tg.GateLogger(tmp_path, probe=ids, probe_tokens=["a", "b", "c", "d"]) as logger:
        logger.log(model, 0)
        logger.log(model, 1)
    records = reader.load(tmp_path)
    tokens = [r for r in records if r.stat == metadata.PROBE_TOKENS]
    assert [(r.step, r.value) for r in tokens] == [(0, [["a", "b", "c"], ["d", "c", "b"]])]
    states = [r for r in records if r.stat == metadata.PROBE_SEQUENCES and r.gate == "h_t" and r.step == 1]
    np.testing.assert_allclose(states[0].value, model(ids).detach().numpy(), atol=2e-3)


def test_lightning_callback_checks_probe_tokens_at_construction():
    from tb_lstm_gates.lightning import LSTMGatesCallback

    with pytest.raises(ValueError, match=r"probe_tokens\[0\] has 2 tokens but the probe has 3 time steps"):
        LSTMGatesCallback(probe=torch.zeros(1, 3, dtype=torch.long), probe_tokens=[["a", "b"]])


def test_a_cell_called_per_step_writes_its_state_over_all_its_calls(tmp_path):
    torch.manual_seed(0)

    class Decoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.cell = nn.LSTMCell(2, 3)

        def forward(self, x):
            h = c = torch.zeros(x.shape[0], 3)
            states = []
            for t in range(x.shape[1]):
                h, c = self.cell(x[:, t], (h, c))
                states.append(c)
            return torch.stack(states, dim=1)

    model, x = Decoder(), torch.randn(2, 4, 2)
    with tg.GateLogger(tmp_path, probe=x, strict=True) as logger:
        logger.log(model, 0)
    (state,) = [
        r.value for r in reader.load(tmp_path) if r.stat == metadata.PROBE_SEQUENCES and r.gate == "c_t"
    ]
    np.testing.assert_allclose(state, model(x).detach().numpy(), atol=2e-3)


def test_probe_tokens_with_a_mapping_of_probes_fails_naming_why():
    with pytest.raises(ValueError, match="probe_tokens labels one probe"):
        tg.GateLogger("unused", probe={"encoder": torch.zeros(1, 3)}, probe_tokens=["a"])
