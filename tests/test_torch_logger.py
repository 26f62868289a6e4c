"""`tb_lstm_gates.torch.GateLogger` and `GatePenalty` on real PyTorch models and real event files."""

import os
import subprocess
import sys
import textwrap
import time
import traceback

import numpy as np
import pytest
import torch
from plugin_logs import step_units
from torch import nn

from tb_lstm_gates import torch as tg
from tb_lstm_gates.core import activations
from tb_lstm_gates.logs import metadata, reader


class Model(nn.Module):
    """An encoder with a stacked bidirectional projected LSTM, a GRU and a cell decoder."""

    def __init__(self, dropout=0.0):
        super().__init__()
        self.encoder = nn.Module()
        self.encoder.rnn = nn.LSTM(
            3, 6, num_layers=2, bidirectional=True, proj_size=4, batch_first=True, dropout=dropout
        )
        self.gru = nn.GRU(8, 5)
        self.cell = nn.GRUCell(5, 5)
        self.head = nn.Linear(5, 1)

    def forward(self, x):
        y, _ = self.encoder.rnn(x)
        y, h = self.gru(y.transpose(0, 1))
        state = h[0]
        for t in range(y.shape[0]):
            state = self.cell(y[t], state)
        return self.head(state)


def block_l2(records, layer, part, gate):
    values = {
        r.step: r.value for r in records if (r.layer, r.part, r.gate, r.stat) == (layer, part, gate, "l2")
    }
    assert values, (layer, part, gate)
    return values


def test_logged_l2_equals_numpy_of_torch_weights_for_every_layout(tmp_path):
    torch.manual_seed(0)
    model = Model()
    with tg.GateLogger(tmp_path) as logger:
        logger.log(model, 0)
    records = reader.load(tmp_path)
    layers = sorted({r.layer for r in records})
    assert layers == [
        "cell",
        "encoder/rnn/l0",
        "encoder/rnn/l0_reverse",
        "encoder/rnn/l1",
        "encoder/rnn/l1_reverse",
        "gru/l0",
    ]
    rnn = model.encoder.rnn
    for k in range(2):
        for suffix in ("", "_reverse"):
            layer = "encoder/rnn/l%d%s" % (k, suffix)
            for part, name in [
                ("input", "weight_ih"),
                ("recurrent", "weight_hh"),
                ("input_bias", "bias_ih"),
                ("recurrent_bias", "bias_hh"),
            ]:
                weight = getattr(rnn, "%s_l%d%s" % (name, k, suffix)).detach().numpy()
                for g, gate in enumerate(("input", "forget", "cell", "output")):
                    expected = np.linalg.norm(weight[6 * g : 6 * (g + 1)])
                    assert block_l2(records, layer, part, gate)[0] == pytest.approx(expected, rel=1e-6)
            projection = getattr(rnn, "weight_hr_l%d%s" % (k, suffix)).detach().numpy()
            assert block_l2(records, layer, "projection", "all")[0] == pytest.approx(
                np.linalg.norm(projection), rel=1e-6
            )
    for layer, module, suffix in [("gru/l0", model.gru, "_l0"), ("cell", model.cell, "")]:
        weight = getattr(module, "weight_hh" + suffix).detach().numpy()
        for g, gate in enumerate(("reset", "update", "candidate")):
            assert block_l2(records, layer, "recurrent", gate)[0] == pytest.approx(
                np.linalg.norm(weight[5 * g : 5 * (g + 1)]), rel=1e-6
            )
    assert {r.cell for r in records if r.layer == "gru/l0"} == {"gru"}


def test_wrappers_log_the_same_names_and_values(tmp_path):
    torch.manual_seed(0)
    model = Model()
    runs = {"plain": model, "data_parallel": nn.DataParallel(model), "compiled": torch.compile(model)}
    for run, wrapped in runs.items():
        with tg.GateLogger(tmp_path / run, histogram_freq=0) as logger:
            logger.log(wrapped, 3)
    records = reader.load(tmp_path)
    by_run = {}
    for r in records:
        by_run.setdefault(r.run, {})[r.layer, r.part, r.gate, r.stat, r.step] = r.value
    assert by_run["plain"] and by_run["plain"] == by_run["data_parallel"] == by_run["compiled"]


def test_layers_select_modules_by_path_and_unknown_names_are_named():
    model = Model()
    assert [c.layer for c in tg.find_cells(model, ["encoder.rnn"])] == [
        "encoder/rnn/l0",
        "encoder/rnn/l0_reverse",
        "encoder/rnn/l1",
        "encoder/rnn/l1_reverse",
    ]
    assert [c.layer for c in tg.find_cells(model, ["encoder", "cell"])][-1] == "cell"
    with pytest.raises(
        ValueError,
        match="'decoder' match no recurrent module; the recurrent modules are 'encoder/rnn', 'gru', 'cell'",
    ):
        tg.find_cells(model, ["decoder"])
    with pytest.raises(ValueError, match="Linear holds no nn.LSTM"):
        tg.find_cells(nn.Linear(2, 2))


def test_bad_arguments_are_all_named_at_once(tmp_path):
    with pytest.raises(ValueError) as error:
        tg.GateLogger(tmp_path, histogram_freq=-1, layers="rnn", penalty=0.1, probe=[1, 2])
    message = str(error.value)
    for name in ("histogram_freq", "layers", "penalty", "probe"):
        assert name in message


def train(model, x, y, logger=None, steps=6):
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    if logger:
        logger.log(model, 0)
    for step in range(1, steps + 1):
        model.train()
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()
        if logger:
            logger.log(model, step, loss=loss.item())
    return [p.detach().clone() for p in model.parameters()]


def test_training_with_the_logger_and_probe_is_bit_identical(tmp_path):
    x, y = torch.randn(8, 7, 3, generator=torch.Generator().manual_seed(1)), torch.randn(8, 1)
    torch.manual_seed(0)
    plain = train(Model(dropout=0.5), x, y)
    torch.manual_seed(0)
    model = Model(dropout=0.5)
    penalty = tg.GatePenalty(l2={"forget": 1e-3})
    with tg.GateLogger(tmp_path, probe=x[:4], penalty=penalty) as logger:
        logged = train(model, x, y, logger)
    assert model.training  # the probe's eval pass left the mode as it was
    for a, b in zip(plain, logged):
        assert torch.equal(a, b)
    records = reader.load(tmp_path)
    steps = {r.step for r in records if r.stat == "act_mean"}
    assert steps == set(range(7))
    ratios = [r.value for r in records if r.stat == "update_ratio" and r.step == 6]
    assert ratios and all(v > 0 for v in ratios)
    # The GRUs have no forget gate: the penalty leaves them out of the regularization series.
    assert {r.layer for r in records if r.stat == metadata.PENALTY} == {
        "model",
        "encoder/rnn/l0",
        "encoder/rnn/l0_reverse",
        "encoder/rnn/l1",
        "encoder/rnn/l1_reverse",
    }


def probe_outputs(model, cells, x):
    traces = dict((c.layer, t) for c, t in tg.probe_traces(model, cells, x))
    return traces


@pytest.mark.parametrize("packed", [False, True])
def test_probe_recurrence_reproduces_torch_outputs(packed):
    torch.manual_seed(0)
    lstm = nn.LSTM(3, 6, num_layers=2, bidirectional=True, proj_size=4, batch_first=True)
    x = torch.randn(3, 5, 3)
    h0, c0 = torch.randn(4, 3, 4), torch.randn(4, 3, 6)
    lengths = torch.tensor([5, 2, 4])
    inputs = (
        nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False) if packed else x
    )

    class Wrapper(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = lstm

        def forward(self, inputs):
            return self.lstm(inputs, (h0, c0))

    model = Wrapper()
    with torch.no_grad():
        out, (h_n, _) = model(inputs)
    if packed:
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True)
    traces = probe_outputs(model, tg.find_cells(model), inputs)
    assert list(traces) == ["lstm/l0", "lstm/l0_reverse", "lstm/l1", "lstm/l1_reverse"]
    forward, backward = traces["lstm/l1"], traces["lstm/l1_reverse"]
    valid = forward.valid
    expected_valid = np.arange(5)[None] < lengths.numpy()[:, None] if packed else np.ones((3, 5), bool)
    np.testing.assert_array_equal(valid, expected_valid)
    mine = np.concatenate([forward.outputs, backward.outputs[:, ::-1]], axis=-1)
    np.testing.assert_allclose(mine[valid], out.numpy()[valid], rtol=1e-5, atol=1e-5)
    # The final states: forward at each sequence's last valid step, backward at its first.
    np.testing.assert_allclose(forward.outputs[:, -1], h_n[2].numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(backward.outputs[:, -1], h_n[3].numpy(), rtol=1e-5, atol=1e-5)


def test_probe_of_a_cell_loop_reproduces_torch_and_is_logged(tmp_path):
    torch.manual_seed(0)
    model = Model()
    x = torch.randn(2, 4, 3)
    with torch.no_grad():
        expected = model(x)
    with tg.GateLogger(tmp_path, probe=x) as logger:
        logger.log(model, 0)
    traces = probe_outputs(model, tg.find_cells(model), x)
    cell_trace = traces["cell"]
    head = model.head
    mine = cell_trace.outputs[:, -1] @ head.weight.detach().numpy().T + head.bias.detach().numpy()
    np.testing.assert_allclose(mine, expected.numpy(), rtol=1e-5, atol=1e-5)
    records = reader.load(tmp_path)
    for layer, trace in traces.items():
        act_mean = {r.gate: r.value for r in records if r.layer == layer and r.stat == metadata.ACT_MEAN}
        expected_means = dict(zip(trace.gates, activations.gate_statistics(trace)[metadata.ACT_MEAN]))
        assert act_mean == pytest.approx(expected_means, rel=1e-6)
        maps = [r for r in records if r.layer == layer and r.stat == metadata.ACTIVATION_MAP]
        assert len(maps) == len(trace.gates) and maps[0].value.shape == (4, trace.activations.shape[-1])
        saturation = {
            r.gate: r.value for r in records if r.layer == layer and r.stat == metadata.UNIT_SATURATION
        }
        expected_fractions = dict(zip(trace.gates, activations.unit_saturation(trace)))
        assert saturation.keys() == expected_fractions.keys()
        for gate, fractions in expected_fractions.items():
            # float16 in the log: 0 and 1 exact, other fractions to 1 part in 2,000.
            np.testing.assert_allclose(saturation[gate], fractions, atol=5e-4)


def test_the_step_unit_given_reaches_the_log(tmp_path):
    torch.manual_seed(0)
    with tg.GateLogger(tmp_path, step_unit="batch") as logger:
        logger.log(Model(), 0)
    assert step_units(tmp_path) == {"batch"}
    with pytest.raises(ValueError, match="step_unit must be one of"):
        tg.GateLogger(tmp_path, step_unit="epochs")


def _log_then_change_shape(log_dir, strict):
    """Logs an LSTM, then again once its input kernel is wider: `update_ratio` fails on the writer's thread."""
    torch.manual_seed(0)
    lstm = nn.LSTM(3, 4)
    logger = tg.GateLogger(log_dir, strict=strict)
    logger.log(lstm, 0)
    lstm.weight_ih_l0 = nn.Parameter(torch.randn(16, 5))
    logger.log(lstm, 1)  # returns before the writer's thread fails
    return logger, lstm


def test_a_failure_on_the_writer_thread_surfaces_at_close_under_strict(tmp_path):
    logger, _ = _log_then_change_shape(tmp_path, strict=True)
    with pytest.raises(ValueError, match="changed shape") as raised:
        logger.close()
    frames = [
        (os.path.basename(f.filename), f.name) for f in traceback.extract_tb(raised.value.__traceback__)
    ]
    assert ("logger.py", "close") in frames and ("background.py", "_serve") in frames, frames
    assert {r.step for r in reader.load(tmp_path)} == {0}


def test_a_failure_on_the_writer_thread_is_one_warning_and_logging_stops(tmp_path):
    with pytest.warns(RuntimeWarning, match="GateLogger stopped logging.*changed shape"):
        logger, lstm = _log_then_change_shape(tmp_path, strict=False)
        logger.log(lstm, 2)  # the failure surfaces here, at the next step
    logger.log(lstm, 3)
    logger.close()
    assert {r.step for r in reader.load(tmp_path)} == {0}


def test_probe_restores_modes_and_rng():
    model = Model(dropout=0.5)
    model.train()
    model.gru.eval()
    x = torch.randn(2, 4, 3)
    state = torch.random.get_rng_state()
    tg.probe_traces(model, tg.find_cells(model), x)
    assert model.training and model.encoder.rnn.training and not model.gru.training
    assert torch.equal(torch.random.get_rng_state(), state)


def test_penalty_equals_the_formula_and_the_logged_penalties(tmp_path):
    torch.manual_seed(0)
    model = Model()
    penalty = tg.GatePenalty(
        l1={"recurrent/forget": 0.5},
        l2={"forget": 0.1, "input/forget": 2.0},
        orthogonal={"update": 0.3},
        layers=["encoder", "gru"],
    )
    value = penalty(model)
    rnn, gru = model.encoder.rnn, model.gru
    expected = 0.0
    for k in range(2):
        for suffix in ("", "_reverse"):

            def forget(name, k=k, suffix=suffix):
                return getattr(rnn, "%s_l%d%s" % (name, k, suffix))[6:12].detach().double()

            expected += 0.5 * forget("weight_hh").abs().sum() + 2.0 * forget("weight_ih").square().sum()
            expected += 0.1 * sum(forget(n).square().sum() for n in ("weight_hh", "bias_ih", "bias_hh"))
    u = gru.weight_hh_l0[5:10].detach().double()
    expected += 0.3 * (u @ u.T - torch.eye(5, dtype=torch.float64)).square().sum()
    assert value.item() == pytest.approx(expected.item(), rel=1e-5)
    value.backward()
    assert not rnn.weight_hh_l0.grad[:6].any() and rnn.weight_hh_l0.grad[6:12].abs().sum() > 0
    assert model.cell.weight_hh.grad is None

    with tg.GateLogger(tmp_path, penalty=penalty) as logger:
        logger.log(model, 0, loss=1.25)
    records = reader.load(tmp_path)
    penalties = {(r.layer, r.part, r.gate): r.value for r in records if r.stat == metadata.PENALTY}
    assert penalties["model", "total", "total"] == pytest.approx(expected.item(), rel=1e-5)
    assert penalties["gru/l0", "recurrent", "update"] == pytest.approx(
        0.3 * (u @ u.T - torch.eye(5, dtype=torch.float64)).square().sum().item(), rel=1e-6
    )
    # Only blocks with a coefficient have a series, as the Keras callback and the TF1 hook write them.
    assert {(part, gate) for layer, part, gate in penalties if layer == "encoder/rnn/l0"} == {
        ("recurrent", "forget"),
        ("input", "forget"),
        ("input_bias", "forget"),
        ("recurrent_bias", "forget"),
        ("total", "total"),
    }
    layer_total = sum(
        v for (layer, part, _), v in penalties.items() if layer == "encoder/rnn/l1" and part != "total"
    )
    assert penalties["encoder/rnn/l1", "total", "total"] == pytest.approx(layer_total)
    assert not any(layer == "cell" for layer, _, _ in penalties)
    losses = [r.value for r in records if r.stat == metadata.LOSS]
    assert losses == [1.25]


def test_penalty_keys_are_checked():
    with pytest.raises(ValueError, match="unknown key 'recurrent/forgt'"):
        tg.GatePenalty(l2={"recurrent/forgt": 1.0})
    with pytest.raises(ValueError, match="float >= 0"):
        tg.GatePenalty(l1=-1.0)
    with pytest.raises(ValueError, match="'update', which the penalized modules do not have"):
        tg.GatePenalty(l2={"update": 1.0})(nn.LSTM(2, 3))
    with pytest.raises(
        ValueError, match="orthogonal needs square blocks.*recurrent/input block has shape \\(2, 3\\)"
    ):
        tg.GatePenalty(orthogonal=1.0)(nn.LSTM(2, 3, proj_size=2))


def test_a_logging_process_never_imports_tensorflow(tmp_path):
    script = textwrap.dedent(
        """
        import sys
        import torch
        from tb_lstm_gates.torch import GateLogger, GatePenalty
        model = torch.nn.LSTM(3, 4, batch_first=True)
        with GateLogger(sys.argv[1], probe=torch.randn(2, 5, 3), penalty=GatePenalty(l2=0.1)) as logger:
            logger.log(model, 0, loss=1.0)
        assert "tensorflow" not in sys.modules, "tensorflow was imported"
        assert "keras" not in sys.modules, "keras was imported"
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert {r.stat for r in reader.load(tmp_path)} >= {"l2", "histogram", "act_mean", "penalty", "loss"}


def test_a_process_that_exits_without_closing_its_logger_writes_its_last_step(tmp_path):
    script = textwrap.dedent(
        """
        import sys
        import torch
        from tb_lstm_gates.torch import GateLogger
        logger = GateLogger(sys.argv[1])
        model = torch.nn.LSTM(64, 256)
        for step in range(3):
            logger.log(model, step)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert {r.step for r in reader.load(tmp_path)} == {0, 1, 2}


def test_load_right_after_log_reads_the_step_the_writers_thread_is_still_writing(tmp_path, monkeypatch):
    from tb_lstm_gates.logs import summary

    log_cell = summary.CellLogger.log_cell

    def slow_log_cell(*args, **kwargs):
        time.sleep(0.5)  # the writer's thread is still at it when load() is called
        return log_cell(*args, **kwargs)

    monkeypatch.setattr(summary.CellLogger, "log_cell", slow_log_cell)
    logger = tg.GateLogger(tmp_path)
    logger.log(nn.GRU(3, 4), 0)
    assert {r.step for r in reader.load(tmp_path)} == {0}
    logger.close()


def test_load_leaves_a_failure_on_the_writers_thread_to_its_logger(tmp_path, monkeypatch):
    from tb_lstm_gates.logs import summary

    def failing_log_cell(*args, **kwargs):
        raise OSError("disk gone")

    monkeypatch.setattr(summary.CellLogger, "log_cell", failing_log_cell)
    logger = tg.GateLogger(tmp_path, strict=True)
    logger.log(nn.GRU(3, 4), 0)
    reader.load(tmp_path)  # waits for the failed step, and does not take its error
    with pytest.raises(OSError, match="disk gone"):
        logger.close()
