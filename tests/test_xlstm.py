"""xLSTM's sLSTM and mLSTM layers (the `xlstm` package, vanilla backend, CPU) under `GateLogger`."""

import numpy as np
import pytest
import torch
from torch import nn

xlstm = pytest.importorskip(
    "xlstm", reason="the xlstm package is not installed (pip install tb-lstm-gates[xlstm])"
)

from tb_lstm_gates import torch as tg  # noqa: E402
from tb_lstm_gates.logs import metadata, reader, summary  # noqa: E402
from tb_lstm_gates.torch import xlstm_probe  # noqa: E402
from tb_lstm_gates.torch.probe import probe_traces  # noqa: E402
from tb_lstm_gates.torch.xlstm import slstm_arrays  # noqa: E402

GATES = ("input", "forget", "cell", "output")
HEADS, WIDTH, TIME = 2, 16, 10


def stack_config(**slstm):
    return xlstm.xLSTMBlockStackConfig(
        mlstm_block=xlstm.mLSTMBlockConfig(
            mlstm=xlstm.mLSTMLayerConfig(conv1d_kernel_size=4, qkv_proj_blocksize=4, num_heads=HEADS)
        ),
        slstm_block=xlstm.sLSTMBlockConfig(
            slstm=xlstm.sLSTMLayerConfig(
                backend="vanilla",
                num_heads=HEADS,
                conv1d_kernel_size=4,
                bias_init="powerlaw_blockdependent",
                **slstm,
            ),
            feedforward=xlstm.FeedForwardConfig(proj_factor=1.3, act_fn="gelu"),
        ),
        context_length=TIME,
        num_blocks=3,
        embedding_dim=WIDTH,
        slstm_at=[1],
    )


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        # Random recurrent weights: the package's default is zeros, under which a wrong split would pass.
        self.stack = xlstm.xLSTMBlockStack(stack_config(recurrent_weight_init="standard"))
        self.head = nn.Linear(WIDTH, 1)

    def forward(self, x):
        return self.head(self.stack(x)[:, -1])


def data():
    g = torch.Generator().manual_seed(1)
    return torch.randn(6, TIME, WIDTH, generator=g), torch.randn(6, 1, generator=g)


def expected_l2(model):
    """{(layer, part, gate): l2} from numpy slices of the package's own parameters."""
    out = {}
    for b in (0, 2):
        layer = model.stack.blocks[b].xlstm
        cell = layer.mlstm_cell
        for gate, linear in (("input", cell.igate), ("forget", cell.fgate)):
            out["stack/blocks/%d/xlstm" % b, "input", gate] = np.linalg.norm(linear.weight.detach().numpy())
            out["stack/blocks/%d/xlstm" % b, "bias", gate] = np.linalg.norm(linear.bias.detach().numpy())
        for part in ("query", "key", "value"):
            w = getattr(layer, part[0] + "_proj").weight.detach().numpy()
            out["stack/blocks/%d/xlstm" % b, part, "all"] = np.linalg.norm(w)
    layer = model.stack.blocks[1].xlstm
    # What the package runs: the module named fgate feeds the input gate, igate the forget gate.
    inputs = dict(zip(GATES, (layer.fgate, layer.igate, layer.zgate, layer.ogate)))
    recurrent = layer.slstm_cell.recurrent_kernel.clone().detach().numpy()  # (heads, in, gates, out)
    bias = layer.slstm_cell.bias.clone().detach().numpy()  # (heads, gates, out)
    for h in range(HEADS):
        name = "stack/blocks/1/xlstm/head%d" % h
        for g, gate in enumerate(GATES):
            out[name, "input", gate] = np.linalg.norm(inputs[gate].weight.detach().numpy()[h])
            out[name, "recurrent", gate] = np.linalg.norm(recurrent[h, :, g, :])
            out[name, "bias", gate] = np.linalg.norm(bias[h, g])
    return out


def train(model, x, y, logger=None, steps=3):
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    expected = {0: expected_l2(model)}
    if logger:
        logger.log(model, 0)
    for step in range(1, steps + 1):
        model.train()
        optimizer.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        optimizer.step()
        expected[step] = expected_l2(model)
        if logger:
            logger.log(model, step)
    return [p.detach().clone() for p in model.parameters()], expected


def test_a_stack_logs_every_block_once_with_l2_of_the_package_slices_and_training_unchanged(tmp_path):
    x, y = data()
    torch.manual_seed(0)
    plain, _ = train(Model(), x, y)
    torch.manual_seed(0)
    model = Model()
    with tg.GateLogger(tmp_path, probe=x[:3]) as logger:
        logged, expected = train(model, x, y, logger)
    for a, b in zip(plain, logged):
        assert torch.equal(a, b)
    records = reader.load(tmp_path)
    layers = [c.layer for c in tg.find_cells(model)]
    assert layers == [
        "stack/blocks/0/xlstm",
        "stack/blocks/1/xlstm/head0",
        "stack/blocks/1/xlstm/head1",
        "stack/blocks/2/xlstm",
    ]
    assert sorted({r.layer for r in records}) == sorted(layers)
    l2 = {(r.step, r.layer, r.part, r.gate): r.value for r in records if r.stat == "l2"}
    for step, blocks in expected.items():
        for key, value in blocks.items():
            assert l2[(step, *key)] == pytest.approx(value, rel=1e-5), (step, key)
    assert {k[1:] for k in l2 if k[0] == 3} == set(expected[3])  # nothing else logged
    act = {(r.step, r.layer, r.gate) for r in records if r.stat == "act_mean"}
    for step in range(4):
        for h in range(HEADS):
            for gate in xlstm_probe.GATES:
                assert (step, "stack/blocks/1/xlstm/head%d" % h, gate) in act


def test_probe_gates_m_n_and_h_equal_the_package_forward_per_head():
    x, _ = data()
    torch.manual_seed(0)
    model = Model()
    cells = tg.find_cells(model)
    traces = {c.layer: t for c, t in probe_traces(model, cells, x)}
    assert list(traces) == [c.layer for c in cells]
    layer = model.stack.blocks[1].xlstm
    # The package's own vanilla forward of the same layer, on the input the stack gave it.
    inputs = []
    handle = layer.register_forward_pre_hook(lambda mod, args: inputs.append(args[0]))
    with torch.no_grad():
        model.eval()
        model(x)
    handle.remove()
    states, gates = xlstm_probe.package_forward(layer, inputs[0])
    d = WIDTH // HEADS
    for h in range(HEADS):
        trace = traces["stack/blocks/1/xlstm/head%d" % h]
        units = slice(h * d, (h + 1) * d)
        # gates: (time + 1, 4, batch, hidden): i', f', z, sigmoid o; the trace holds tanh z.
        package = gates[:-1, :, :, units].transpose(2, 0, 1, 3)
        package[:, :, 2] = np.tanh(package[:, :, 2])
        np.testing.assert_allclose(trace.activations[:, :, :4], package, rtol=1e-4, atol=1e-5)
        y, c, n, m = (s[1:, :, units].transpose(1, 0, 2) for s in states)
        np.testing.assert_allclose(trace.activations[:, :, 4], m, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(trace.activations[:, :, 5], n, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(trace.states, c, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(trace.outputs, y, rtol=1e-4, atol=1e-5)
        # The self-check's pair: the package's own h, captured at the probe's call.
        np.testing.assert_allclose(trace.outputs, trace.reference_outputs, rtol=1e-4, atol=1e-5)
        assert trace.saturated_high[:, 0, 0].all()  # from the zero state the input sets m at the first step


def test_mlstm_probe_gates_and_h_equal_the_package_forward_per_head():
    x, _ = data()
    torch.manual_seed(0)
    model = Model()
    # Gate weights away from the package's zero init, so the gates vary over heads and steps.
    with torch.no_grad():
        for b in (0, 2):
            for linear in (
                model.stack.blocks[b].xlstm.mlstm_cell.igate,
                model.stack.blocks[b].xlstm.mlstm_cell.fgate,
            ):
                linear.weight.normal_(0.0, 0.3)
    cells = tg.find_cells(model)
    traces = {c.layer: t for c, t in probe_traces(model, cells, x)}
    model.eval()
    for b in (0, 2):
        cell = model.stack.blocks[b].xlstm.mlstm_cell
        seen = {}

        def keep(name, seen=seen):
            return lambda mod, args, out=None: seen.__setitem__(
                name, (args[0] if out is None else out).numpy()
            )

        handles = [
            cell.igate.register_forward_hook(keep("i")),
            cell.fgate.register_forward_hook(keep("f")),
            cell.outnorm.register_forward_pre_hook(keep("h")),
        ]
        with torch.no_grad():
            model(x)
        for handle in handles:
            handle.remove()
        trace = traces["stack/blocks/%d/xlstm" % b]
        assert trace.gates == xlstm_probe.MLSTM_GATES
        # (batch, time, heads): the package's own pre-activations, through the gates' functions.
        np.testing.assert_allclose(
            trace.activations[:, :, 1], 1 / (1 + np.exp(-seen["f"])), rtol=1e-5, atol=1e-6
        )
        np.testing.assert_allclose(
            trace.activations[:, :, 0], np.exp(seen["i"] - trace.activations[:, :, 2]), rtol=1e-4, atol=1e-6
        )
        assert (trace.activations[:, :, 2] >= seen["i"] - 1e-5).all()  # m_t bounds the step's own input
        h = seen["h"].transpose(0, 2, 1, 3).reshape(x.shape[0], TIME, -1)
        np.testing.assert_allclose(trace.outputs, h, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(trace.reference_outputs, h, rtol=1e-6, atol=1e-7)


def test_the_split_follows_what_the_package_runs_not_its_names():
    """Logging `igate` as the input gate (its name) would recompute other gates than the package's."""
    x, _ = data()
    torch.manual_seed(0)
    layer = Model().stack.blocks[1].xlstm
    layer.eval()
    states, _ = xlstm_probe.package_forward(layer, x)
    per_head = slstm_arrays(layer)
    with torch.no_grad():
        x_conv = layer.conv_act_fn(layer.conv1d(x)).double().numpy()
    right = xlstm_probe.recompute(per_head, x.double().numpy(), x_conv)
    y = states[0, 1:].transpose(1, 0, 2).reshape(6, TIME, HEADS, -1)
    np.testing.assert_allclose(right["h"], y, rtol=1e-4, atol=1e-5)
    d = WIDTH // HEADS
    for arrays in per_head:  # swap the input and forget gates' input weights
        k = arrays["kernel"]
        k[:, :d], k[:, d : 2 * d] = k[:, d : 2 * d].copy(), k[:, :d].copy()
    wrong = xlstm_probe.recompute(per_head, x.double().numpy(), x_conv)
    assert np.abs(wrong["h"] - y).max() > 1e-2


def test_an_lm_model_built_from_the_readme_config_logs(tmp_path):
    yaml = pytest.importorskip("yaml")
    dacite = pytest.importorskip("dacite")
    config = yaml.safe_load(
        """
        vocab_size: 50
        mlstm_block:
          mlstm:
            conv1d_kernel_size: 4
            qkv_proj_blocksize: 4
            num_heads: 2
        slstm_block:
          slstm:
            backend: vanilla
            num_heads: 2
            conv1d_kernel_size: 4
            bias_init: powerlaw_blockdependent
          feedforward:
            proj_factor: 1.3
            act_fn: gelu
        context_length: 8
        num_blocks: 3
        embedding_dim: 16
        slstm_at: [1]
        """
    )
    cfg = dacite.from_dict(
        data_class=xlstm.xLSTMLMModelConfig, data=config, config=dacite.Config(strict=True)
    )
    torch.manual_seed(0)
    model = xlstm.xLSTMLMModel(cfg)
    tokens = torch.randint(0, 50, (2, 8))
    with tg.GateLogger(tmp_path, probe=tokens) as logger:
        logger.log(model, 0)
    records = reader.load(tmp_path)
    assert sorted({r.layer for r in records}) == [
        "xlstm_block_stack/blocks/0/xlstm",
        "xlstm_block_stack/blocks/1/xlstm/head0",
        "xlstm_block_stack/blocks/1/xlstm/head1",
        "xlstm_block_stack/blocks/2/xlstm",
    ]
    assert {r.gate for r in records if r.layer.endswith("head0") and r.stat == "act_mean"} == set(
        xlstm_probe.GATES
    )
    heads = {}
    for path in tmp_path.iterdir():
        for event in summary.read_events(str(path)):
            for value in event.summary.value:
                if value.metadata.plugin_data.content:
                    content = metadata.parse_plugin_content(value.metadata.plugin_data.content)
                    heads.setdefault(content.blocks[0].layer, set()).add(repr(content.heads))
    assert heads == {
        "xlstm_block_stack/blocks/0/xlstm": {repr({"count": 2, "head": None})},
        "xlstm_block_stack/blocks/1/xlstm/head0": {repr({"count": 2, "head": 0})},
        "xlstm_block_stack/blocks/1/xlstm/head1": {repr({"count": 2, "head": 1})},
        "xlstm_block_stack/blocks/2/xlstm": {repr({"count": 2, "head": None})},
    }


def test_gate_penalty_names_the_xlstm_layers_it_cannot_penalize():
    torch.manual_seed(0)
    with pytest.raises(ValueError, match="does not penalize xLSTM layers .*stack/blocks/1/xlstm/head0"):
        tg.GatePenalty(l2=1e-3)(Model())
