"""GateRegularizer on real Keras models: the loss it adds, what it does in training,
saving, attaching to built models, what the callback logs, and its errors.

Expected penalties are recomputed here from blocks cut by hand with explicit
column slices and gate orders, not through `layouts`.
"""

import keras
import numpy as np
import pytest
from tensorboard.context import RequestContext
from test_plugin_routes import _plugin, _python_provider

import tb_lstm_gates
from tb_lstm_gates.keras import discover
from tb_lstm_gates.keras import penalties as keras_penalties
from tb_lstm_gates.keras.regularizers import GateRegularizer, attach_gate_regularizers
from tb_lstm_gates.logs import metadata

LSTM_ORDER = ["input", "forget", "cell", "output"]
GRU_ORDER = ["update", "reset", "candidate"]


def hand_penalty(weight, order, l1=None, l2=None, orthogonal=None):
    """Keras-convention penalty of `weight`, gate blocks cut by column slices."""
    l1, l2, orthogonal = l1 or {}, l2 or {}, orthogonal or {}
    units = weight.shape[-1] // len(order)
    total = 0.0
    for k, gate in enumerate(order):
        block = weight[..., k * units : (k + 1) * units].astype(np.float64)
        total += l1.get(gate, 0.0) * np.abs(block).sum()
        total += l2.get(gate, 0.0) * np.square(block).sum()
        if orthogonal.get(gate):
            m = block.reshape(-1, units)
            total += orthogonal[gate] * np.square(m.T @ m - np.eye(units)).sum()
    return total


# name -> (layer factory taking regularizer kwargs, input shape, cell, gate order)
CELLS = {
    "lstm": (lambda **kw: keras.layers.LSTM(5, **kw), (6, 3), "lstm", LSTM_ORDER),
    "gru_reset_after": (lambda **kw: keras.layers.GRU(5, reset_after=True, **kw), (6, 3), "gru", GRU_ORDER),
    "gru_reset_before": (lambda **kw: keras.layers.GRU(5, reset_after=False, **kw), (6, 3), "gru", GRU_ORDER),
    "conv_lstm1d": (
        lambda **kw: keras.layers.ConvLSTM1D(3, 3, padding="same", **kw),
        (4, 7, 2),
        "conv_lstm",
        LSTM_ORDER,
    ),
    "conv_lstm2d": (
        lambda **kw: keras.layers.ConvLSTM2D(3, (2, 3), padding="same", **kw),
        (4, 5, 5, 2),
        "conv_lstm",
        LSTM_ORDER,
    ),
}


def randomize(model, seed=0, scale=0.5):
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0, scale, w.shape).astype(w.dtype) for w in model.get_weights()])


def build(make, input_shape, **regularizers):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input(input_shape), make(**regularizers)])
    randomize(model)
    return model


def penalty_in_loss(model, input_shape):
    model(np.zeros((2,) + input_shape, dtype="float32"))
    return float(sum(keras.ops.convert_to_numpy(loss) for loss in model.losses))


@pytest.mark.parametrize("name", sorted(CELLS))
@pytest.mark.parametrize("term", ["l1", "l2", "orthogonal"])
def test_penalty_in_model_losses_equals_numpy_on_hand_split_blocks(name, term):
    make, input_shape, cell, order = CELLS[name]
    # Different coefficients per gate, and one gate left out, so a wrong gate
    # order or a dropped gate changes the sum.
    coefficients = {gate: 0.01 * (k + 1) for k, gate in enumerate(order[:-1])}
    # weight -> per-gate coefficients of `term` on it
    if term == "orthogonal":
        per_weight = {"recurrent_kernel": coefficients}
    else:
        per_weight = {
            "kernel": coefficients,
            "recurrent_kernel": dict(coefficients, **{order[0]: 0.5}),
            "bias": dict.fromkeys(order, 0.03),
        }
    attributes = {"kernel": "kernel", "recurrent_kernel": "recurrent", "bias": "bias"}
    on_weight = {w: GateRegularizer(cell, **{term: c}) for w, c in per_weight.items()}
    model = build(make, input_shape, **{attributes[w] + "_regularizer": r for w, r in on_weight.items()})
    expected = 0.0
    for weight_name, per_gate in per_weight.items():
        weight = getattr(model.layers[0].cell, weight_name).numpy()
        by_hand = hand_penalty(weight, order, **{term: per_gate})
        # The numpy path used for the log agrees with the same hand split.
        assert sum(on_weight[weight_name].gate_penalties(weight).values()) == pytest.approx(by_hand, rel=1e-9)
        expected += by_hand
    assert expected > 0
    assert penalty_in_loss(model, input_shape) == pytest.approx(expected, rel=1e-5)


def test_gru_reset_after_bias_penalty_covers_both_bias_rows():
    make, input_shape, cell, order = CELLS["gru_reset_after"]
    model = build(make, input_shape, bias_regularizer=GateRegularizer(cell, l1={"reset": 1.0}))
    bias = model.layers[0].cell.bias.numpy()
    assert bias.shape == (2, 15)
    expected = np.abs(bias[0, 5:10]).sum() + np.abs(bias[1, 5:10]).sum()
    assert penalty_in_loss(model, input_shape) == pytest.approx(expected, rel=1e-5)


def gate_norms(model):
    cell = model.get_layer("lstm").cell
    norms = {}
    for part, weight in (("input", cell.kernel), ("recurrent", cell.recurrent_kernel)):
        w = weight.numpy()
        units = w.shape[-1] // 4
        for k, gate in enumerate(LSTM_ORDER):
            norms[part, gate] = np.linalg.norm(w[:, k * units : (k + 1) * units])
    return norms


def train_twin(seed_data, **lstm_kwargs):
    rng = np.random.default_rng(seed_data)
    x = rng.normal(size=(128, 8, 4)).astype("float32")
    y = np.stack([x[:, :, 0].sum(1), x[:, -1, 1] * x[:, 0, 2]], axis=1).astype("float32")
    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [keras.Input((8, 4)), keras.layers.LSTM(8, name="lstm", **lstm_kwargs), keras.layers.Dense(2)]
    )
    model.compile(keras.optimizers.Adam(1e-2), "mse")
    model.fit(x, y, batch_size=32, epochs=8, verbose=0, shuffle=False)
    return model


def test_strong_l2_on_forget_gate_shrinks_only_that_gate():
    base = gate_norms(train_twin(0))
    strong = GateRegularizer("lstm", l2={"forget": 0.5})
    regularized = gate_norms(train_twin(0, kernel_regularizer=strong, recurrent_regularizer=strong))
    for part in ("input", "recurrent"):
        assert regularized[part, "forget"] / base[part, "forget"] < 0.5
        for gate in ("input", "cell", "output"):
            assert 0.7 < regularized[part, gate] / base[part, gate] < 1.3, (part, gate)


def test_keras_file_round_trip_keeps_regularizers_and_penalties(tmp_path):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((6, 3)),
            keras.layers.LSTM(
                5,
                return_sequences=True,
                kernel_regularizer=GateRegularizer("lstm", l1={"input": 1e-3}, l2={"forget": 1e-2}),
                recurrent_regularizer=GateRegularizer("lstm", orthogonal={"output": 1e-2, "cell": 2e-2}),
                bias_regularizer=GateRegularizer("lstm", l2=1e-3),
            ),
            keras.layers.GRU(4, recurrent_regularizer=GateRegularizer("gru", l2={"reset": 0.1})),
        ]
    )
    randomize(model)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    for layer, loaded_layer in zip(model.layers, loaded.layers):
        for attribute in ("kernel_regularizer", "recurrent_regularizer", "bias_regularizer"):
            original = getattr(layer.cell, attribute)
            restored = getattr(loaded_layer.cell, attribute)
            assert type(restored) is type(original)
            if original is not None:
                assert restored.get_config() == original.get_config()
    assert penalty_in_loss(loaded, (6, 3)) == pytest.approx(penalty_in_loss(model, (6, 3)), rel=1e-6)
    assert penalty_in_loss(model, (6, 3)) > 0


def one_batch_loss(model, x, y):
    """The loss `fit` reports for one step that does not move the weights."""
    model.compile(keras.optimizers.SGD(0.0), "mse")
    return model.fit(x, y, batch_size=len(x), epochs=1, verbose=0).history["loss"][0]


def test_attached_regularizers_enter_the_fit_loss_and_the_config():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(16, 6, 3)).astype("float32"), rng.normal(size=(16, 1)).astype("float32")

    def make():
        keras.utils.set_random_seed(0)
        model = keras.Sequential(
            [
                keras.Input((6, 3)),
                keras.layers.GRU(5, name="gru", return_sequences=True),
                keras.layers.LSTM(4, name="lstm"),
                keras.layers.Dense(1),
            ],
            name="twin",
        )
        randomize(model, scale=0.3)
        return model

    plain, attached = make(), make()
    result = attach_gate_regularizers(
        attached, kernel=dict(l2={"forget": 0.1}), recurrent=dict(orthogonal=0.05), layers=["lstm"]
    )
    assert sorted(result) == ["twin/lstm/lstm_cell/kernel", "twin/lstm/lstm_cell/recurrent_kernel"]
    cell = attached.get_layer("lstm").cell
    expected = hand_penalty(cell.kernel.numpy(), LSTM_ORDER, l2={"forget": 0.1}) + hand_penalty(
        cell.recurrent_kernel.numpy(), LSTM_ORDER, orthogonal=dict.fromkeys(LSTM_ORDER, 0.05)
    )
    assert one_batch_loss(attached, x, y) - one_batch_loss(plain, x, y) == pytest.approx(expected, rel=1e-4)
    config = attached.get_layer("lstm").get_config()
    assert config["kernel_regularizer"]["config"] == {
        "cell": "lstm",
        "l1": 0.0,
        "l2": {"forget": 0.1},
        "orthogonal": 0.0,
        "weight": "kernel",
    }
    assert config["bias_regularizer"] is None
    assert attached.get_layer("gru").get_config()["kernel_regularizer"] is None


def test_logged_penalties_add_up_to_layer_and_model_totals(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, 6, 3)).astype("float32"), rng.normal(size=(32, 1)).astype("float32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((6, 3)),
            keras.layers.LSTM(
                5,
                name="lstm",
                return_sequences=True,
                kernel_regularizer=GateRegularizer("lstm", l2={"forget": 1e-2, "input": 2e-3}),
                recurrent_regularizer=GateRegularizer("lstm", orthogonal=1e-2),
            ),
            keras.layers.GRU(4, name="gru", bias_regularizer=GateRegularizer("gru", l1=1e-2)),
            keras.layers.Dense(1),
        ],
        name="logged",
    )
    randomize(model, scale=0.3)
    model.compile("adam", "mse")
    callback = tb_lstm_gates.LSTMGatesCallback(str(tmp_path))
    history = model.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[callback])
    records = [r for r in tb_lstm_gates.load(str(tmp_path)) if r.stat in (metadata.PENALTY, metadata.LOSS)]
    by_step = {}
    for r in records:
        by_step.setdefault(r.step, []).append(r)
    assert sorted(by_step) == [0, 1, 2]
    for step, step_records in by_step.items():
        penalties = [r for r in step_records if r.stat == metadata.PENALTY]
        layers = {r.layer for r in penalties} - {metadata.MODEL_LAYER}
        assert layers == {"lstm/lstm_cell", "gru/gru_cell"}
        layer_totals = []
        for layer in layers:
            gates = [r for r in penalties if r.layer == layer and r.part != metadata.TOTAL]
            (total,) = [r.value for r in penalties if r.layer == layer and r.part == metadata.TOTAL]
            assert sum(r.value for r in gates) == pytest.approx(total, rel=1e-5)
            layer_totals.append(total)
        (model_total,) = [r.value for r in penalties if r.layer == metadata.MODEL_LAYER]
        assert sum(layer_totals) == pytest.approx(model_total, rel=1e-5)
        losses = [r.value for r in step_records if r.stat == metadata.LOSS]
        assert losses == ([] if step == 0 else [pytest.approx(history.history["loss"][step - 1], rel=1e-5)])
    last = {(r.layer, r.part, r.gate): r.value for r in by_step[2]}
    # The GRU's (2, 3u) bias is logged per row, as its statistics are.
    assert {(p, g) for (layer, p, g) in last if layer == "gru/gru_cell"} == {
        (part, gate) for part in ("input_bias", "recurrent_bias") for gate in GRU_ORDER
    } | {("total", "total")}
    lstm = model.get_layer("lstm").cell
    assert last["lstm/lstm_cell", "input", "forget"] == pytest.approx(
        hand_penalty(lstm.kernel.numpy(), LSTM_ORDER, l2={"forget": 1e-2}), rel=1e-5
    )
    assert last["lstm/lstm_cell", "recurrent", "output"] == pytest.approx(
        hand_penalty(lstm.recurrent_kernel.numpy()[:, 15:], ["output"], orthogonal={"output": 1e-2}), rel=1e-5
    )


def test_model_total_includes_other_regularizers_and_batch_logging_logs_batch_loss(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, 6, 3)).astype("float32"), rng.normal(size=(32, 1)).astype("float32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((6, 3)),
            keras.layers.LSTM(5, name="lstm", kernel_regularizer=GateRegularizer("lstm", l2={"cell": 1e-2})),
            keras.layers.Dense(1, name="dense", kernel_regularizer=keras.regularizers.L2(0.1)),
        ],
        name="batches",
    )
    model.compile("adam", "mse")
    model.fit(
        x,
        y,
        batch_size=8,
        epochs=1,
        verbose=0,
        callbacks=[tb_lstm_gates.LSTMGatesCallback(str(tmp_path), update_freq=2)],
    )
    records = tb_lstm_gates.load(str(tmp_path))
    model_penalty = {
        r.step: r.value for r in records if r.layer == metadata.MODEL_LAYER and r.stat == metadata.PENALTY
    }
    lstm = "lstm/lstm_cell"
    lstm_total = {r.step: r.value for r in records if r.layer == lstm and r.part == metadata.TOTAL}
    loss_steps = sorted(r.step for r in records if r.stat == metadata.LOSS)
    assert sorted(model_penalty) == [0, 2, 4]
    assert loss_steps == [2, 4]
    dense = 0.1 * np.square(model.get_layer("dense").kernel.numpy()).sum()
    assert model_penalty[4] == pytest.approx(lstm_total[4] + dense, rel=1e-5)


def test_no_gate_regularizer_means_no_regularization_series(tmp_path):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6, 3)), keras.layers.LSTM(5), keras.layers.Dense(1)])
    model.compile("adam", "mse")
    model.fit(
        np.zeros((8, 6, 3)),
        np.zeros((8, 1)),
        epochs=1,
        verbose=0,
        callbacks=[tb_lstm_gates.LSTMGatesCallback(str(tmp_path))],
    )
    stats = {r.stat for r in tb_lstm_gates.load(str(tmp_path))}
    assert "l2" in stats and not stats & {metadata.PENALTY, metadata.LOSS}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(l2={"forgot": 1e-3}), r"unknown key 'forgot'.*lstm cell here are input, forget, cell, output$"),
        (dict(cell="gru", l1={"forget": 1e-3}), r"unknown key 'forget'.*update, reset, candidate"),
        (dict(l2={"recurrent/forget": 1e-3}), r"block 'recurrent/forget': block keys need weight="),
        (
            dict(weight="recurrent_kernel", l2={"input/forget": 1e-3, "recurrent/forgot": 1.0}),
            r"unknown key 'input/forget', 'recurrent/forgot'.*are input, forget, cell, output, "
            r"recurrent/input, recurrent/forget, recurrent/cell, recurrent/output$",
        ),
        (dict(weight="kernels", l2=1e-3), r"weight must be None or one of 'kernel', 'recurrent_kernel'"),
        (dict(weight="kernel", l2={"input/forget": -1.0}), r"-1.0 for input/forget"),
        (dict(l2=-1e-3), r"l2 must be a float >= 0"),
        (dict(orthogonal={"input": -1.0}), r"orthogonal must be a float >= 0.*-1.0 for input"),
        (dict(l1="big"), r"l1 must be a float >= 0"),
        (dict(cell="rnn"), r"cell must be one of 'lstm', 'conv_lstm', 'gru'"),
    ],
)
def test_bad_coefficients_raise_at_construction(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GateRegularizer(**kwargs)


def test_regularizer_of_another_cell_raises_when_keras_applies_it():
    layer = keras.layers.GRU(5, kernel_regularizer=GateRegularizer("lstm", l2=1.0))
    model = keras.Sequential([keras.Input((6, 3)), layer])
    with pytest.raises(ValueError, match=r"shape \(3, 15\).*does not split into the 4 gates of a lstm cell"):
        _ = model.losses


def test_regularizer_of_another_cell_whose_width_divides_is_caught_when_logged():
    # 4 LSTM gates of 3 units = 12 columns = 3 GRU gates of 4: Keras cannot tell.
    layer = keras.layers.LSTM(3, kernel_regularizer=GateRegularizer("gru", l2=1.0))
    model = keras.Sequential([keras.Input((6, 3)), layer])
    (cell,) = discover.find_cells(model)
    message = r"kernel of .* \(a lstm cell\) has GateRegularizer\('gru'.*use GateRegularizer\(cell='lstm'\)"
    with pytest.raises(ValueError, match=message):
        keras_penalties.cell_penalties(cell, cell.arrays())


def test_orthogonal_on_a_non_square_block_raises():
    layer = keras.layers.LSTM(5, kernel_regularizer=GateRegularizer("lstm", orthogonal=1.0))
    model = keras.Sequential([keras.Input((6, 3)), layer])
    with pytest.raises(ValueError, match=r"needs square gate blocks.*\(3, 5\).*recurrent_regularizer"):
        _ = model.losses
    with pytest.raises(ValueError, match="needs square gate blocks"):
        GateRegularizer("lstm", orthogonal=1.0).gate_penalties(np.zeros(20))


def test_attach_rejects_bad_requests_and_attaches_nothing():
    model = keras.Sequential(
        [
            keras.Input((6, 3)),
            keras.layers.LSTM(
                5, name="lstm", use_bias=False, recurrent_regularizer=keras.regularizers.L2(0.1)
            ),
        ]
    )
    cell = model.get_layer("lstm").cell
    with pytest.raises(ValueError, match=r"unknown key 'forgot'"):
        attach_gate_regularizers(model, kernel=dict(l2={"forgot": 1.0}))
    with pytest.raises(ValueError, match=r"already has the regularizer.*overwrite=True"):
        attach_gate_regularizers(model, kernel=dict(l2=1.0), recurrent=dict(l2=1.0))
    with pytest.raises(ValueError, match=r"has no bias; leave bias=None"):
        attach_gate_regularizers(model, bias=dict(l2=1.0))
    with pytest.raises(ValueError, match=r"kernel of layer .*needs square gate blocks"):
        attach_gate_regularizers(model, kernel=dict(orthogonal=1.0))
    with pytest.raises(ValueError, match=r"no recurrent layer named gru"):
        attach_gate_regularizers(model, kernel=dict(l2=1.0), layers=["gru"])
    with pytest.raises(ValueError, match=r"kernel must be None or a dict"):
        attach_gate_regularizers(model, kernel=1e-3)
    assert cell.kernel.regularizer is None and cell.kernel_regularizer is None
    attach_gate_regularizers(model, recurrent=dict(l2={"forget": 1.0}), overwrite=True)
    assert isinstance(cell.recurrent_kernel.regularizer, GateRegularizer)


def test_block_keys_on_gru_bias_rows_enter_the_loss_the_log_and_the_keras_file(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(16, 6, 3)).astype("float32"), rng.normal(size=(16, 1)).astype("float32")
    # The block key wins over its gate's key on that block only.
    l2 = {"recurrent_bias/reset": 0.5, "reset": 0.1, "update": 0.2}
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((6, 3)),
            keras.layers.GRU(4, name="gru", bias_regularizer=GateRegularizer("gru", weight="bias", l2=l2)),
            keras.layers.Dense(1),
        ],
        name="blocks",
    )
    randomize(model, scale=0.3)
    bias = model.get_layer("gru").cell.bias.numpy().astype(np.float64)
    expected = {
        ("input_bias", "reset"): 0.1 * np.square(bias[0, 4:8]).sum(),
        ("recurrent_bias", "reset"): 0.5 * np.square(bias[1, 4:8]).sum(),
        ("input_bias", "update"): 0.2 * np.square(bias[0, :4]).sum(),
        ("recurrent_bias", "update"): 0.2 * np.square(bias[1, :4]).sum(),
    }
    assert penalty_in_loss(model, (6, 3)) == pytest.approx(sum(expected.values()), rel=1e-5)
    model.compile(keras.optimizers.SGD(0.0), "mse")
    model.fit(x, y, epochs=1, verbose=0, callbacks=[tb_lstm_gates.LSTMGatesCallback(str(tmp_path / "logs"))])
    logged = {
        (r.part, r.gate): r.value
        for r in tb_lstm_gates.load(str(tmp_path / "logs"))
        if (r.step, r.stat, r.layer) == (1, metadata.PENALTY, "gru/gru_cell") and r.part != metadata.TOTAL
    }
    # The candidate gate has no coefficient, hence no series.
    assert logged == {k: pytest.approx(v, rel=1e-5) for k, v in expected.items()}
    # The tab's regularization route unpacks the same penalties from the version 2 packing.
    provider = _python_provider(str(tmp_path / "logs"))
    contents = provider.list_tensors(RequestContext(), experiment_id="", plugin_name=metadata.PLUGIN_NAME)
    kinds = {
        metadata.parse_plugin_content(t.plugin_content).kind
        for tags in contents.values()
        for t in tags.values()
    }
    assert metadata.STATS_KIND in kinds and None not in kinds
    served = {
        (s["part"], s["gate"]): (s["steps"][-1], s["values"][-1])
        for s in _plugin(provider).regularization_impl(RequestContext(), "")["series"]
        if s["layer"] == "gru/gru_cell" and s["part"] != metadata.TOTAL
    }
    assert served == {k: (1, pytest.approx(v, rel=1e-5)) for k, v in expected.items()}
    path = str(tmp_path / "model.keras")
    model.save(path)
    restored = keras.saving.load_model(path).get_layer("gru").cell.bias_regularizer
    assert restored.get_config() == {"cell": "gru", "weight": "bias", "l1": 0.0, "l2": l2, "orthogonal": 0.0}
    assert restored.gate_penalties(bias) == pytest.approx(
        {g: sum(expected.get((part, g), 0.0) for part in ("input_bias", "recurrent_bias")) for g in GRU_ORDER}
    )


def test_attach_takes_block_keys_of_each_weight():
    model = build(CELLS["lstm"][0], (6, 3))
    cell = model.layers[0].cell
    attach_gate_regularizers(
        model, kernel=dict(l1={"input/output": 0.2}), recurrent=dict(l2={"recurrent/forget": 0.3})
    )
    kernel, recurrent = (w.numpy().astype(np.float64) for w in (cell.kernel, cell.recurrent_kernel))
    expected = 0.2 * np.abs(kernel[:, 15:20]).sum() + 0.3 * np.square(recurrent[:, 5:10]).sum()
    assert penalty_in_loss(model, (6, 3)) == pytest.approx(expected, rel=1e-5)
    assert cell.recurrent_regularizer.weight == "recurrent_kernel"
    with pytest.raises(ValueError, match=r"recurrent of .*unknown key 'input/forget'.*recurrent/forget"):
        attach_gate_regularizers(model, recurrent=dict(l2={"input/forget": 1.0}), overwrite=True)


def test_block_the_weight_lacks_or_the_wrong_weight_raise():
    # A GRU with reset_after=False has one (3u,) bias: no recurrent_bias rows.
    model = build(CELLS["gru_reset_before"][0], (6, 3))
    message = r"bias of layer .*gru.*no block 'recurrent_bias/reset'; its keys are .*bias/reset"
    with pytest.raises(ValueError, match=message):
        attach_gate_regularizers(model, bias=dict(l2={"recurrent_bias/reset": 1.0}))
    assert model.layers[0].cell.bias.regularizer is None
    # A recurrent-kernel regularizer on a kernel of another shape fails when Keras applies it ...
    recurrent_only = GateRegularizer("lstm", weight="recurrent_kernel", l2=1.0)
    wrong = keras.layers.LSTM(5, kernel_regularizer=recurrent_only)
    with pytest.raises(ValueError, match=r"'recurrent_kernel'\) got a weight of shape \(3, 20\).*\(5, 20\)"):
        _ = keras.Sequential([keras.Input((6, 3)), wrong]).losses
    # ... and, when the shapes agree, when its penalties are logged.
    same = keras.layers.LSTM(5, kernel_regularizer=recurrent_only)
    (cell,) = discover.find_cells(keras.Sequential([keras.Input((6, 5)), same]))
    with pytest.raises(ValueError, match=r"the kernel of .* made for its recurrent_kernel"):
        keras_penalties.cell_penalties(cell, cell.arrays())


def test_block_keys_on_a_conv_lstm_recurrent_kernel_take_every_tap_of_the_gate():
    make, input_shape, _, _ = CELLS["conv_lstm2d"]
    model = build(make, input_shape)
    attach_gate_regularizers(model, recurrent=dict(l1={"recurrent/cell": 0.2}))
    recurrent = model.layers[0].cell.recurrent_kernel.numpy().astype(np.float64)
    assert recurrent.shape == (2, 3, 3, 12)
    assert penalty_in_loss(model, input_shape) == pytest.approx(
        0.2 * np.abs(recurrent[..., 6:9]).sum(), rel=1e-5
    )
