"""Training patterns of published PyTorch code that `GateLogger` must cover (issue 19, items 5-9).

Each test is named after the pattern; values are read back with `load()`
from real event files and compared with torch's own outputs or numpy.
"""

import importlib.util
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from tb_lstm_gates import torch as tg
from tb_lstm_gates.core import activations
from tb_lstm_gates.logs import metadata, reader


class Seq2Seq(nn.Module):
    """A GRU encoder and a GRU decoder called once per output token, fed its own state scaled."""

    def __init__(self, tokens=5):
        super().__init__()
        self.encoder = nn.GRU(3, 4, batch_first=True)
        self.decoder = nn.GRU(4, 4, batch_first=True)
        self.tokens = tokens

    def forward(self, x):
        _, h = self.encoder(x)
        y, outputs = h.transpose(0, 1), []
        for _ in range(self.tokens):
            y, h = self.decoder(y, 0.5 * h)  # the state given is not the last one returned
            outputs.append(y)
        return torch.cat(outputs, 1)


def test_gru_decoder_called_once_per_token_is_probed_over_every_call(tmp_path):
    torch.manual_seed(0)
    model = Seq2Seq()
    x = torch.randn(2, 3, 3)
    with torch.no_grad():
        expected = model(x)
    traces = dict((c.layer, t) for c, t in tg.probe_traces(model, tg.find_cells(model), x))
    decoder = traces["decoder/l0"]
    assert decoder.activations.shape[1] == 5  # one step per call, every call
    np.testing.assert_allclose(decoder.outputs, expected.numpy(), rtol=1e-5, atol=1e-6)
    with tg.GateLogger(tmp_path, probe=x) as logger:
        logger.log(model, 0)
    records = reader.load(tmp_path)
    act_mean = {r.gate: r.value for r in records if r.layer == "decoder/l0" and r.stat == metadata.ACT_MEAN}
    assert act_mean == pytest.approx(
        dict(zip(decoder.gates, activations.gate_statistics(decoder)[metadata.ACT_MEAN])), rel=1e-6
    )
    maps = [r.value for r in records if r.layer == "decoder/l0" and r.stat == metadata.ACTIVATION_MAP]
    assert maps and all(m.shape == (5, 4) for m in maps)  # the map spans all five calls


def test_one_module_called_from_two_places_is_one_layer_over_both_calls_in_order():
    torch.manual_seed(0)

    class Shared(nn.Module):
        def __init__(self):
            super().__init__()
            self.cell = nn.LSTMCell(3, 4)

        def forward(self, a, b):
            h, c = self.cell(a)
            return self.cell(b[:1], (h[:1], c[:1]))  # a second place, fewer sequences

    model = Shared()
    a, b = torch.randn(3, 3), torch.randn(3, 3)
    with torch.no_grad():
        first = model.cell(a)[0]
        second = model(a, b)[0]
    [(cell, trace)] = tg.probe_traces(model, tg.find_cells(model), (a, b))
    assert cell.layer == "cell" and trace.valid.tolist() == [[True, True], [True, False], [True, False]]
    np.testing.assert_allclose(trace.outputs[:, 0], first.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(trace.outputs[:1, 1], second.numpy(), rtol=1e-5, atol=1e-6)


class Tagger(nn.Module):
    """The PyTorch tutorial's tagger pattern: state kept on `self` across batches, set in `forward`."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(3, 4, batch_first=True)
        self.head = nn.Linear(4, 2)
        self.hidden = None
        self.seen = []
        self.register_buffer("calls", torch.zeros(()))

    def forward(self, x):
        out, hidden = self.lstm(x, self.hidden)
        self.hidden = tuple(h.detach() for h in hidden)
        self.seen.append(x.shape[0])
        self.calls += 1
        return self.head(out[:, -1])


def train_tagger(logger=None, probe=None):
    torch.manual_seed(0)
    model = Tagger()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    data = torch.randn(6, 4, 5, 3, generator=torch.Generator().manual_seed(1))
    for step, x in enumerate(data):
        loss = model(x).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if logger:
            hidden, seen, calls = model.hidden, list(model.seen), model.calls.clone()
            logger.log(model, step)
            assert model.hidden is hidden and model.seen == seen and torch.equal(model.calls, calls)
    with torch.no_grad():
        return model(data[0]), model


def test_tagger_storing_hidden_in_forward_trains_bit_identical_with_the_logger(tmp_path):
    plain, _ = train_tagger()
    # The tagger runs the probe from its stored state too, so the probe has the training batch size.
    probe = torch.randn(4, 5, 3)
    with tg.GateLogger(tmp_path, probe=probe) as logger:
        logged, model = train_tagger(logger)
    assert torch.equal(plain, logged)
    assert model.seen == [4] * 7 and model.calls.item() == 7
    assert {r.step for r in reader.load(tmp_path) if r.stat == metadata.ACT_MEAN} == set(range(6))


def test_two_models_one_logger_log_under_their_names_and_a_shared_name_is_an_error(tmp_path):
    torch.manual_seed(0)
    encoder, decoder = nn.Sequential(nn.GRU(3, 4)), nn.Sequential(nn.GRU(3, 4))
    with tg.GateLogger(tmp_path / "both", probe={"encoder": torch.randn(5, 2, 3)}) as logger:
        logger.log({"encoder": encoder, "decoder": decoder}, 0)
    records = reader.load(tmp_path / "both")
    l2 = {r.layer: r.value for r in records if (r.part, r.gate, r.stat) == ("recurrent", "reset", "l2")}
    assert l2 == pytest.approx(
        {
            name + "/0/l0": np.linalg.norm(m[0].weight_hh_l0.detach().numpy()[:4])
            for name, m in (("encoder", encoder), ("decoder", decoder))
        }
    )
    assert {r.layer for r in records if r.stat == metadata.ACT_MEAN} == {"encoder/0/l0"}

    with tg.GateLogger(tmp_path / "bad", probe={"encoder": torch.randn(5, 2, 3)}) as logger:
        with pytest.raises(
            ValueError, match="probe names 'encoder', which log.. was not given; the models are 'enc'"
        ):
            logger.log({"enc": encoder}, 0)
        with pytest.raises(ValueError, match="give one probe per model"):
            logger.log(encoder, 0)
    with tg.GateLogger(tmp_path / "clash") as logger:
        logger.log(encoder, 0)
        with pytest.raises(ValueError, match=r"two different modules would log as '0/l0': GRU\(3, 4\)"):
            logger.log(decoder, 0)
    with tg.GateLogger(tmp_path / "shapes") as logger:
        logger.log(encoder, 0)
        del encoder  # even once the first is gone, other shapes mean another layer, not a new weight
        with pytest.raises(ValueError, match=r"GRU\(5, 4\) now \(weights of other shapes\)"):
            logger.log(nn.Sequential(nn.GRU(5, 4)), 1)


def test_a_module_shared_by_two_paths_is_logged_once_under_its_first_path(tmp_path):
    torch.manual_seed(0)
    model = nn.Module()
    model.encoder, model.decoder = nn.Module(), nn.Module()
    model.encoder.rnn = model.decoder.rnn = nn.LSTM(3, 4)
    model.decoder.own = nn.GRUCell(3, 4)
    assert [c.layer for c in tg.find_cells(model)] == ["encoder/rnn/l0", "decoder/own"]
    assert [c.layer for c in tg.find_cells({"a": model.encoder, "b": model.decoder})] == ["a/rnn/l0", "b/own"]


def test_every_recurrent_weight_left_out_is_named_in_one_warning_each(tmp_path):
    class Handmade(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight_hh = nn.Parameter(torch.zeros(4, 4))

    model = nn.Module()
    model.lstm, model.rnn, model.mine = nn.LSTM(3, 4), nn.RNN(3, 4), Handmade()
    model.plain = [nn.GRU(3, 4)]
    with tg.GateLogger(tmp_path) as logger, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        logger.log(model, 0)
        logger.log(model, 1)  # named once, not at every step
    ours = [w for w in caught if "logs no gates" in str(w.message)]
    assert {w.filename for w in ours} == {__file__}  # the user's `log` line, not ours
    messages = sorted(str(w.message) for w in ours)
    assert len(messages) == 3
    assert "mine.weight_hh: it belongs to a Handmade" in messages[0]
    assert "plain: a plain Python list" in messages[1] and "nn.ModuleList" in messages[1]
    assert "rnn.weight_hh_l0: an nn.RNN has one activation" in messages[2]


def test_penalty_series_only_for_blocks_with_a_coefficient(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.LSTM(3, 4))
    with tg.GateLogger(tmp_path, penalty=tg.GatePenalty(l2={"recurrent/forget": 0.1})) as logger:
        logger.log(model, 0)
    blocks = {(r.layer, r.part, r.gate) for r in reader.load(tmp_path) if r.stat == metadata.PENALTY}
    assert blocks == {
        ("0/l0", "recurrent", "forget"),
        ("0/l0", "total", "total"),
        ("model", "total", "total"),
    }


def test_torch_logging_emits_no_deprecation_warning(tmp_path):
    torch.manual_seed(0)
    model = Seq2Seq()
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        with tg.GateLogger(tmp_path, probe=torch.randn(2, 3, 3), penalty=tg.GatePenalty(l2=0.1)) as logger:
            logger.log(model, 0, loss=1.0)
        assert reader.load(tmp_path)


def test_load_keeps_the_whole_records_before_a_damaged_tail(tmp_path):
    model = nn.GRU(3, 4)
    with tg.GateLogger(tmp_path) as logger:
        for step in range(3):
            logger.log(model, step)
    [name] = os.listdir(tmp_path)
    path = tmp_path / name
    data = path.read_bytes()
    whole = {r.step for r in reader.load(tmp_path)}
    path.write_bytes(data[:-10])  # a write cut short
    assert {r.step for r in reader.load(tmp_path)} == whole - {2}
    damaged = bytearray(data)
    damaged[-20] ^= 0xFF  # a flipped bit in the last record's data: its CRC no longer matches
    path.write_bytes(bytes(damaged))
    assert {r.step for r in reader.load(tmp_path)} == whole - {2}


def test_load_report_and_torch_import_never_import_tensorflow(tmp_path):
    script = textwrap.dedent(
        """
        import os
        import sys
        import torch
        from tb_lstm_gates import cli, load
        from tb_lstm_gates.torch import GateLogger

        logdir, pt = sys.argv[1], sys.argv[2]
        model = torch.nn.GRU(3, 4)
        with GateLogger(logdir + "/live", probe=torch.randn(5, 2, 3)) as logger:
            logger.log(model, 0)
        assert "tensorflow" not in sys.modules, "GateLogger.log imported tensorflow"
        assert load(logdir), "nothing loaded"
        assert "tensorflow" not in sys.modules, "load() imported tensorflow"
        assert cli.main(["report", logdir]) == 0
        assert "tensorflow" not in sys.modules, "report imported tensorflow"
        torch.save(model.state_dict(), pt)
        assert cli.main(["import", pt, "--logdir", logdir, "--step", "3", "--run", "imported"]) == 0
        assert "tensorflow" not in sys.modules, "import of a .pt file imported tensorflow"
        os.makedirs(logdir + "/ckpts")
        for epoch in (1, 2):
            torch.save(model.state_dict(), "%s/ckpts/epoch_%02d.pt" % (logdir, epoch))
        assert cli.main(["import", logdir + "/ckpts", "--logdir", logdir, "--run", "dir"]) == 0
        assert "tensorflow" not in sys.modules, "import of a directory of .pt files imported tensorflow"
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "logs"), str(tmp_path / "model.pt")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert importlib.util.find_spec("tensorflow") is not None  # the test means something only with it
    assert {r.run for r in reader.load(tmp_path / "logs")} == {"live", "imported", "dir"}
