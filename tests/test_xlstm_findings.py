"""Planted xLSTM runs, one per exponential-gating finding: the rule fires on the planted head and nowhere else."""

import pytest
import torch

xlstm = pytest.importorskip(
    "xlstm", reason="the xlstm package is not installed (pip install tb-lstm-gates[xlstm])"
)

import tb_lstm_gates  # noqa: E402
from tb_lstm_gates import findings  # noqa: E402
from tb_lstm_gates import torch as tg  # noqa: E402

HEADS, WIDTH, TIME, STEPS = 2, 8, 32, 4
EXPONENTIAL_RULES = {"stabilizer_dominates", "exponent_growing", "input_gate_closed", "forget_pinned"}
PLANTED = "slstm/head1"  # the head each run plants its condition in; head0 stays as initialised


def stack():
    torch.manual_seed(0)
    return xlstm.xLSTMBlockStack(
        xlstm.xLSTMBlockStackConfig(
            slstm_block=xlstm.sLSTMBlockConfig(
                slstm=xlstm.sLSTMLayerConfig(backend="vanilla", num_heads=HEADS, conv1d_kernel_size=0),
                feedforward=xlstm.FeedForwardConfig(proj_factor=1.3, act_fn="gelu"),
            ),
            context_length=TIME,
            num_blocks=1,
            embedding_dim=WIDTH,
            slstm_at=[0],
        )
    )


class Run(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.slstm = stack().blocks[0].xlstm

    def forward(self, x):
        return self.slstm(x)


def _input_gate(layer):
    return layer.fgate.weight  # the module feeding the cell's input gate (see tb_lstm_gates.torch.xlstm)


def _bias(layer, gate, value):
    """Sets head 1's bias of one gate (0 input, 1 forget)."""
    with torch.no_grad():
        layer.slstm_cell.bias[1, gate, :] = value


def plant_underflow(layer, step):
    # Large input-gate weights: i_t swings by hundreds, m keeps the running maximum (forget near 1),
    # and most steps sit more than 87 below it.
    with torch.no_grad():
        _input_gate(layer)[1] *= 400.0 / _input_gate(layer)[1].norm()
    _bias(layer, 1, 10.0)


def plant_growing_exponent(layer, step):
    _bias(layer, 0, 15.0 * (step + 1))  # a constant shift: exp(i - m) unchanged, m grows with it


def plant_closed_input_gate(layer, step):
    # From the zero state i_0 = b sets m; z, o and f near 1 make y near 1 from then on, and the
    # recurrent input-gate block pulls every later i_t 50 below m: exp(i - m) = 2e-22, closed, not underflowing.
    d = WIDTH // HEADS
    with torch.no_grad():
        _input_gate(layer)[1] = 0.0
        layer.slstm_cell.recurrent_kernel[1, :, 0, :] = -50.0 / d
    for gate in (1, 2, 3):
        _bias(layer, gate, 10.0)


def plant_pinned_forget_gate(layer, step):
    with torch.no_grad():
        _input_gate(layer)[1] = 0.0  # i constant: m_t = i and f' = sigmoid(f)
    _bias(layer, 1, 12.0)


def run(tmp_path, name, plant):
    model = Run()
    x = torch.randn(8, TIME, WIDTH, generator=torch.Generator().manual_seed(2))
    with tg.GateLogger(tmp_path / name, probe=x, histogram_freq=0, strict=True) as logger:
        for step in range(STEPS):
            if plant:
                plant(model.slstm, step)
            logger.log(model, step)
    records = tb_lstm_gates.load(tmp_path / name)
    stabilizer = {(r.layer, r.step) for r in records if r.gate == "stabilizer" and r.stat == "act_mean"}
    assert stabilizer == {("slstm/head%d" % h, s) for h in range(HEADS) for s in range(STEPS)}
    return {(f["layer"], f["gate"], f["rule"]) for f in findings.check(records)}


@pytest.mark.parametrize(
    "plant, rule",
    [
        (plant_underflow, "stabilizer_dominates"),
        (plant_growing_exponent, "exponent_growing"),
        (plant_closed_input_gate, "input_gate_closed"),
        (plant_pinned_forget_gate, "forget_pinned"),
    ],
)
def test_each_planted_head_gets_its_finding_and_the_other_head_none(tmp_path, plant, rule):
    found = run(tmp_path, rule, plant)
    assert rule in {r for layer, _, r in found if layer == PLANTED}, found
    assert not {f for f in found if f[0] == "slstm/head0" and f[2] in EXPONENTIAL_RULES}, found
    # The generic saturation rule leaves the exponential input gate to these rules.
    assert not {f for f in found if f[1:] == ("input", "saturated")}, found


def test_an_unplanted_run_gets_no_exponential_finding(tmp_path):
    found = run(tmp_path, "healthy", None)
    assert not {f for f in found if f[2] in EXPONENTIAL_RULES}, found
