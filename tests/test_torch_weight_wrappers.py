"""Weights behind wrappers and calls that bypass hooks (issue 26, the PyTorch half).

The AWD-LSTM models are written here after the published structures:
salesforce `awd-lstm-lm`'s `WeightDrop` (raw parameter on the LSTM, a
direct `self.module.forward(...)` call) and fastai's `WeightDropout` (raw
parameter on the wrapper). Logged values are read back with `load()` from
real event files and compared with torch's own weights and outputs.
"""

import copy
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrizations, parametrize

from tb_lstm_gates import findings
from tb_lstm_gates import torch as tg
from tb_lstm_gates.logs import metadata, reader

H = 4


class SalesforceWeightDrop(nn.Module):
    """After `awd-lstm-lm/weight_drop.py`: the raw weight is a parameter of the LSTM itself."""

    def __init__(self, module, weights, dropout=0.0):
        super().__init__()
        self.module, self.weights, self.dropout = module, weights, dropout
        self.module.flatten_parameters = self.widget_demagnetizer_y2k_edition
        for name_w in self.weights:
            w = getattr(self.module, name_w)
            del self.module._parameters[name_w]
            self.module.register_parameter(name_w + "_raw", nn.Parameter(w.data))

    def widget_demagnetizer_y2k_edition(*args, **kwargs):
        return

    def _setweights(self):
        for name_w in self.weights:
            raw_w = getattr(self.module, name_w + "_raw")
            setattr(self.module, name_w, F.dropout(raw_w, p=self.dropout, training=self.training))

    def forward(self, *args):
        self._setweights()
        return self.module.forward(*args)  # forward hooks never fire


class FastaiWeightDropout(nn.Module):
    """After fastai's `WeightDropout`: the raw weight is a parameter of the wrapper."""

    def __init__(self, module, weight_p, layer_names=("weight_hh_l0",)):
        super().__init__()
        self.module, self.weight_p, self.layer_names = module, weight_p, list(layer_names)
        for layer in self.layer_names:
            w = getattr(self.module, layer)
            delattr(self.module, layer)
            self.register_parameter(f"{layer}_raw", nn.Parameter(w.data))
            setattr(self.module, layer, w.clone())
            self.module.flatten_parameters = self._do_nothing

    def _setweights(self):
        for layer in self.layer_names:
            raw_w = getattr(self, f"{layer}_raw")
            w = F.dropout(raw_w, p=self.weight_p) if self.training else raw_w.clone()
            setattr(self.module, layer, w)

    def forward(self, *args):
        self._setweights()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=UserWarning)
            return self.module(*args)

    def _do_nothing(self):
        pass


class AWDLSTM(nn.Module):
    """Embedding, stacked one-layer LSTMs each behind weight drop, a decoder; returns each layer's output."""

    def __init__(self, wrapper, layers=2, vocab=11):
        super().__init__()
        self.encoder = nn.Embedding(vocab, 3)
        sizes = [3] + [H] * layers
        self.rnns = nn.ModuleList(wrapper(nn.LSTM(sizes[k], sizes[k + 1])) for k in range(layers))
        self.decoder = nn.Linear(H, vocab)

    def forward(self, tokens):
        x, raw_outputs = self.encoder(tokens), []
        for rnn in self.rnns:
            x, _ = rnn(x)
            raw_outputs.append(x)
        return self.decoder(x), raw_outputs


WRAPPERS = {
    "salesforce": lambda lstm: SalesforceWeightDrop(lstm, ["weight_hh_l0"], dropout=0.5),
    "fastai": lambda lstm: FastaiWeightDropout(lstm, 0.5),
}
TOKENS = torch.randint(0, 11, (6, 5, 3), generator=torch.Generator().manual_seed(1))  # batches, time, batch


def raw(model, k):
    wrapper = model.rnns[k]
    owner = wrapper.module if isinstance(wrapper, SalesforceWeightDrop) else wrapper
    return owner.weight_hh_l0_raw


def train(style, logger=None, steps=4, snapshots=None):
    torch.manual_seed(0)
    model = AWDLSTM(WRAPPERS[style])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    if logger:
        logger.log(model, 0)  # before any forward
    for step in range(1, steps + 1):
        logits, _ = model(TOKENS[step])
        loss = F.cross_entropy(logits.reshape(-1, 11), TOKENS[step + 1].reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if logger:
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # no torch warning from our own reads
                logger.log(model, step)
        if snapshots is not None:
            snapshots[step] = [raw(model, k).detach().clone() for k in range(2)]
    return model


def assert_agrees(trace):
    """Torch's own output (every layer's, every step) equals the recomputation."""
    np.testing.assert_allclose(trace.reference_outputs, trace.outputs, atol=1e-5)


def recurrent_l2(records, layer, step):
    return {
        r.gate: r.value
        for r in records
        if (r.layer, r.part, r.stat, r.step) == (layer, "recurrent", "l2", step)
    }


def gate_norms(weight):
    return dict(
        zip(metadata.LSTM_GATES, np.linalg.norm(weight.detach().numpy().reshape(4, H, -1), axis=(1, 2)))
    )


@pytest.mark.parametrize("style", sorted(WRAPPERS))
def test_weight_drop_logs_the_raw_parameter_from_step_zero_and_trains_bit_identical(tmp_path, style):
    plain = train(style)
    snapshots = {}
    with tg.GateLogger(tmp_path, probe=TOKENS[0]) as logger:
        logged = train(style, logger, snapshots=snapshots)
    for a, b in zip(plain.state_dict().values(), logged.state_dict().values()):
        assert torch.equal(a, b)
    records = reader.load(tmp_path)
    torch.manual_seed(0)
    initial = AWDLSTM(WRAPPERS[style])
    snapshots[0] = [raw(initial, k) for k in range(2)]
    for step, weights in snapshots.items():
        for k, weight in enumerate(weights):
            assert recurrent_l2(records, "rnns/%d/module/l0" % k, step) == pytest.approx(
                gate_norms(weight), rel=1e-6
            ), (step, k)


@pytest.mark.parametrize("style", sorted(WRAPPERS))
def test_weight_drop_names_its_origin_and_reads_the_raw_parameters_grad(style):
    model = train(style, steps=1)
    cells = tg.find_cells(model)
    origin = "weight drop: weight_hh_l0_raw" + (
        "" if style == "salesforce" else " on its FastaiWeightDropout"
    )
    assert [c.origins["weight_hh"] for c in cells] == [origin, origin]
    assert {c.origins["weight_ih"] for c in cells} == {"parameter"}
    assert [c.grad_params["weight_hh"] for c in cells] == [raw(model, 0), raw(model, 1)]
    assert tg.unlogged_weights(model, cells) == []


@pytest.mark.parametrize("style", sorted(WRAPPERS))
def test_weight_drop_probe_equals_the_models_eval_mode_computation(style):
    model = train(style, steps=2)
    traces = tg.probe_traces(model, tg.find_cells(model), TOKENS[0])
    with torch.no_grad():  # the last use of the model: eval mode may change it (salesforce's does)
        _, expected = model.eval()(TOKENS[0])
    assert [c.layer for c, _ in traces] == ["rnns/0/module/l0", "rnns/1/module/l0"]
    for (_, trace), out in zip(traces, expected):
        np.testing.assert_allclose(trace.outputs, out.transpose(0, 1).numpy(), atol=1e-5)
        assert_agrees(trace)


def test_a_wrapper_calling_forward_directly_is_probed_and_a_normal_call_counted_once():
    torch.manual_seed(0)

    class Direct(nn.Module):
        def __init__(self):
            super().__init__()
            self.direct, self.called = nn.LSTM(3, H), nn.GRU(H, H)

        def forward(self, x):
            return self.called(self.direct.forward(x)[0])

    model, x = Direct(), torch.randn(5, 2, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "never called" warning
        traces = dict((c.layer, t) for c, t in tg.probe_traces(model, tg.find_cells(model), x))
    assert traces["direct/l0"].activations.shape[:2] == (2, 5)
    assert traces["called/l0"].activations.shape[:2] == (2, 5)  # not twice the steps
    assert "forward" not in vars(model.direct) and "forward" not in vars(model.called)
    for trace in traces.values():
        assert_agrees(trace)


class Halved(nn.Module):
    """A custom parametrization with a buffer its forward reads."""

    def __init__(self):
        super().__init__()
        self.register_buffer("scale", torch.tensor(0.5))

    def forward(self, w):
        return w * self.scale


def parametrized(kind):
    torch.manual_seed(0)
    lstm = nn.LSTM(3, H, num_layers=2, bidirectional=True)
    if kind == "orthogonal":
        parametrizations.orthogonal(lstm, "weight_hh_l0")
    elif kind == "spectral_norm":
        parametrizations.spectral_norm(lstm, "weight_hh_l1_reverse")
    elif kind == "custom":
        parametrize.register_parametrization(lstm, "weight_hh_l0", Halved())
    elif kind == "old weight_norm":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            nn.utils.weight_norm(lstm, "weight_hh_l0")
    elif kind == "old spectral_norm":
        nn.utils.spectral_norm(lstm, "weight_hh_l0")
    return lstm


ORIGINS = {
    "orthogonal": ("l0", "parametrized: orthogonal"),
    "spectral_norm": ("l1_reverse", "parametrized: spectral_norm"),
    "custom": ("l0", "parametrized: halved"),
    "old weight_norm": ("l0", "weight_norm hook: weight_hh_l0_g, weight_hh_l0_v"),
    "old spectral_norm": ("l0", "spectral_norm hook: weight_hh_l0_orig"),
}


def train_parametrized(kind, logger=None, probe=None):
    lstm = parametrized(kind)
    optimizer = torch.optim.SGD(lstm.parameters(), lr=0.1)
    data = torch.randn(4, 5, 2, 3, generator=torch.Generator().manual_seed(1))
    for step, x in enumerate(data):
        out, _ = lstm(x)
        optimizer.zero_grad()
        out.square().mean().backward()
        optimizer.step()
        if logger:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                logger.log(lstm, step)
    return lstm


@pytest.mark.parametrize("kind", sorted(ORIGINS))
def test_a_parametrized_weight_logs_its_effective_value_and_changes_nothing(tmp_path, kind):
    plain = train_parametrized(kind)
    probe = torch.randn(5, 2, 3)
    with tg.GateLogger(tmp_path, probe=probe) as logger:
        logged = train_parametrized(kind, logger)
    # Bit for bit: parameters and buffers (a spectral norm's u and v) alike.
    for (name, a), b in zip(plain.state_dict().items(), logged.state_dict().values()):
        assert torch.equal(a, b), name
    suffix, origin = ORIGINS[kind]
    cells = {c.layer: c for c in tg.find_cells(logged)}
    assert cells["lstm/" + suffix].origins["weight_hh"] == origin
    assert "weight_hh" not in cells["lstm/" + suffix].grad_params
    assert cells["lstm/l0_reverse"].origins["weight_hh"] == "parameter"
    assert tg.unlogged_weights(logged, tg.find_cells(logged)) == []
    for _, trace in tg.probe_traces(logged, tg.find_cells(logged), probe):
        assert_agrees(trace)
    # Effective: what eval mode computes with, read without the logger (last: eval mode may change buffers).
    with torch.no_grad():
        logged.eval()(probe)  # the old hooks set the weight before each forward
        effective = getattr(logged, "weight_hh_" + suffix)
    assert recurrent_l2(reader.load(tmp_path), "lstm/" + suffix, 3) == pytest.approx(
        gate_norms(effective), rel=1e-5
    )


def test_reading_a_spectral_norm_in_training_mode_leaves_its_vectors_untouched():
    lstm = parametrized("spectral_norm")
    lstm(torch.randn(5, 2, 3))
    state = copy.deepcopy(lstm.state_dict())
    versions = {name: value._version for name, value in lstm.state_dict().items()}
    rng = torch.random.get_rng_state()
    cells = tg.find_cells(lstm)
    assert lstm.training and all(m.training for m in lstm.modules())
    for name, value in lstm.state_dict().items():
        # Not even written in place and put back: the power iteration never ran.
        assert torch.equal(value, state[name]) and value._version == versions[name], name
    # What eval mode computes with: sigma from the stored u and v.
    with torch.no_grad():
        expected = lstm.eval().weight_hh_l1_reverse
    assert torch.equal(cells[3].params["weight_hh"].detach(), expected)
    assert torch.equal(torch.random.get_rng_state(), rng)


def test_a_wrapper_feeding_a_weight_the_logger_cannot_see_makes_the_reference_differ(tmp_path):
    torch.manual_seed(0)

    class Planted(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(3, H, num_layers=2)

        def forward(self, x):
            swapped = {"weight_hh_l0": self.lstm.weight_hh_l0 * 1.5}
            return torch.func.functional_call(self.lstm, swapped, (x,))[0]

    model = Planted()
    traces = dict((c.layer, t) for c, t in tg.probe_traces(model, tg.find_cells(model), torch.randn(5, 2, 3)))
    assert tg.find_cells(model)[0].origins["weight_hh"] == "parameter"
    # The lower layer's reference is torch's own computation with the weight the call really had.
    for layer in ("lstm/l0", "lstm/l1"):
        assert np.abs(traces[layer].reference_outputs - traces[layer].outputs).max() > 1e-3, layer
    # Through the logger: the self_check stat, one warning per layer at the user's line, the finding.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with tg.GateLogger(tmp_path, histogram_freq=0, probe=torch.randn(5, 2, 3)) as gates:
            gates.log(model, 0)
            gates.log(model, 1)
    ours = [w for w in caught if issubclass(w.category, RuntimeWarning) and "tb-lstm-gates" in str(w.message)]
    assert sorted(m for w in ours for m in ("lstm/l0", "lstm/l1") if m in str(w.message)) == [
        "lstm/l0",
        "lstm/l1",
    ]
    assert len(ours) == 2 and all(w.filename == __file__ for w in ours)
    records = reader.load(tmp_path)
    checks = [r.value for r in records if r.stat == metadata.SELF_CHECK]
    assert len(checks) == 4 and min(checks) > 1e-3
    found = [f for f in findings.check(records) if f["rule"] == "weights_mismatch"]
    assert sorted(f["layer"] for f in found) == ["lstm/l0", "lstm/l1"]
    assert all(f["severity"] == "error" for f in found)


def test_a_quantized_lstm_gets_one_warning_naming_it_never_an_exception(tmp_path):
    torch.manual_seed(0)

    class Tagger(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm, self.gru = nn.LSTM(3, H), nn.GRU(3, H)

        def forward(self, x):
            return self.lstm(x)[0] + self.gru(x)[0]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's own deprecations of quantization
        model = torch.ao.quantization.quantize_dynamic(Tagger(), {nn.LSTM}, dtype=torch.qint8)
    with tg.GateLogger(tmp_path, probe=torch.randn(5, 2, 3)) as logger:
        with pytest.warns(UserWarning, match="lstm: a quantized LSTM") as caught:
            logger.log(model, 0)
        logger.log(model, 1)
    assert len([w for w in caught if "quantized" in str(w.message)]) == 1
    assert {r.layer for r in reader.load(tmp_path)} == {"gru/l0"}


def test_a_module_missing_its_weight_is_named_in_a_warning_and_left_out(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.LSTM(3, H), nn.GRU(3, H))
    del model[0]._parameters["weight_hh_l0"]  # a wrapper that sets it in forward, unknown to us
    assert [c.layer for c in tg.find_cells(model)] == ["1/l0"]
    with tg.GateLogger(tmp_path) as logger:
        with pytest.warns(UserWarning, match=r"0: its weights cannot be split: it has no weight_hh_l0"):
            logger.log(model, 0)
    assert {r.layer for r in reader.load(tmp_path)} == {"1/l0"}


def test_each_weights_origin_is_in_the_layers_metadata_for_readers_and_the_tab(tmp_path):
    from tensorboard.backend.event_processing import data_ingester, plugin_event_multiplexer
    from tensorboard.backend.event_processing import data_provider as multiplexer_data_provider
    from tensorboard.context import RequestContext
    from tensorboard.plugins import base_plugin

    from tb_lstm_gates.logs.origins import weight_origins
    from tb_lstm_gates.plugin.loader import LSTMGatesLoader

    model = train("salesforce", steps=1)
    model.extra = parametrized("orthogonal")
    with tg.GateLogger(tmp_path / "run") as logger:
        logger.log(model, 0)
        logger.log(model, 1)
    dropped = {"recurrent": "weight drop: weight_hh_l0_raw"}
    expected = {
        "rnns/0/module/l0": dropped,
        "rnns/1/module/l0": dropped,
        "extra/l0": {"recurrent": "parametrized: orthogonal"},
    }
    assert weight_origins(tmp_path) == {"run": expected}
    multiplexer = plugin_event_multiplexer.EventMultiplexer(size_guidance=data_ingester.DEFAULT_SIZE_GUIDANCE)
    multiplexer.AddRunsFromDirectory(str(tmp_path))
    multiplexer.Reload()
    provider = multiplexer_data_provider.MultiplexerDataProvider(multiplexer, str(tmp_path))
    plugin = LSTMGatesLoader().load(base_plugin.TBContext(data_provider=provider))
    [run] = plugin.runs_impl(RequestContext(), "")["runs"]
    listed = {layer["layer"]: layer["origins"] for layer in run["layers"]}
    assert listed == {**expected, "extra/l0_reverse": {}, "extra/l1": {}, "extra/l1_reverse": {}}


def test_a_parametrization_that_fails_is_named_in_a_warning_never_raised(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.LSTM(3, H), nn.GRU(3, H))
    parametrize.register_parametrization(model[0], "weight_hh_l0", Halved())

    def broken(w):
        raise RuntimeError("needs a batch statistic")

    model[0].parametrizations.weight_hh_l0[0].forward = broken
    with tg.GateLogger(tmp_path) as logger:
        with pytest.warns(
            UserWarning, match=r"0: its weights cannot be split: computing its weight_hh_l0 raised"
        ):
            logger.log(model, 0)
    assert {r.layer for r in reader.load(tmp_path)} == {"1/l0"}


@pytest.mark.parametrize("style", sorted(WRAPPERS))
def test_a_weight_drop_checkpoint_imports_the_raw_weights_under_the_live_names(style):
    from tb_lstm_gates.torch.state_dict import cells_from_state_dict, state_arrays

    model = train(style, steps=1)
    live = {c.layer: c.arrays() for c in tg.find_cells(model)}
    with torch.no_grad():
        model.eval()(TOKENS[0])  # salesforce's eval forward registers the raw weight again as weight_hh_l0
    state = model.state_dict()
    imported = cells_from_state_dict({k: tuple(v.shape) for k, v in state.items()})
    assert [layer for layer, _, _ in imported] == sorted(live)
    for layer, _, keys in imported:
        assert keys["weight_hh"].endswith("weight_hh_l0_raw")
        arrays = state_arrays(state, keys.values())
        for weight, key in keys.items():
            np.testing.assert_array_equal(arrays[key], live[layer][weight])
