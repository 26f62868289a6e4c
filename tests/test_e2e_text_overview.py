"""The Text and Overview views end to end: real Keras training, a real TensorBoard, headless Chromium.

Logs: a char-level LSTM whose weights make one unit's forget gate close (and
its input gate open) on the letter "q", with the probe's characters as
tokens; a model of 3 bidirectional LSTM layers; and version 1 logs without
tokens, probe sequences or layer order.
"""

import os

import numpy as np
import plugin_logs
import pytest
from test_e2e_browser import CHROMIUM, Page, choose, tensorboard, texts

from tb_lstm_gates.logs import metadata, reader

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)"
)

TEXT = "the quick brown fox jumps over a lazy dog; quiet squids quote quills. "
SEQ_LEN = 24
VOCAB = sorted(set(TEXT))
PLANTED_UNIT = 2
UNITS = 5
CHAR_RUN = "char/train"
DEEP_RUN = "deep/train"
OLD_RUN = "old"
CHAR_LAYER = "lstm/lstm_cell"
DEEP_LAYERS = [
    "%s/%s_lstm_%d/lstm_cell" % (wrapper, direction, i)
    for i, wrapper in enumerate(["bi_1", "bi_2", "bi_3"], 1)
    for direction in ("forward", "backward")
]
# Viridis stops of the tab (frontend/src/colors.js), for sigmoid gates on 0..1.
VIRIDIS = [(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)]


def viridis(t):
    """The tab's `ramp(t, VIRIDIS)` as `rgb(r, g, b)`, the way the browser reports a background."""
    x = min(1.0, max(0.0, t)) * (len(VIRIDIS) - 1)
    i = min(len(VIRIDIS) - 2, int(np.floor(x)))
    f = x - i
    c = [int(np.floor(a + f * (b - a) + 0.5)) for a, b in zip(VIRIDIS[i], VIRIDIS[i + 1])]
    return "rgb(%d, %d, %d)" % tuple(c)


def train_planted(run_dir):
    """A char-level LSTM (one-hot embedding) whose unit PLANTED_UNIT forgets and writes on "q"; learning rate 0."""
    import keras

    import tb_lstm_gates

    keras.utils.set_random_seed(0)
    ids = np.array([VOCAB.index(c) for c in TEXT], dtype=np.int32)
    x = np.stack([ids[s : s + SEQ_LEN] for s in range(0, len(ids) - SEQ_LEN, SEQ_LEN // 2)])
    model = keras.Sequential(
        [
            keras.Input((SEQ_LEN,), dtype="int32"),
            keras.layers.Embedding(len(VOCAB), len(VOCAB), name="embedding"),
            keras.layers.LSTM(UNITS, name="lstm"),
            keras.layers.Dense(len(VOCAB)),
        ]
    )
    rng = np.random.default_rng(0)
    model.get_layer("embedding").set_weights([np.eye(len(VOCAB), dtype=np.float32)])
    kernel = rng.normal(scale=1.0, size=(len(VOCAB), 4 * UNITS)).astype(np.float32)
    q = VOCAB.index("q")
    kernel[q] = 0.0  # only the planted unit reacts to "q"
    kernel[:, [PLANTED_UNIT, UNITS + PLANTED_UNIT]] = 0.0
    kernel[q, PLANTED_UNIT] = 12.0  # input gate: opens on "q"
    kernel[q, UNITS + PLANTED_UNIT] = -6.0  # forget gate: closes on "q"
    bias = np.zeros(4 * UNITS, np.float32)
    # Input gates shut (saturated: a finding), forget gates open, elsewhere.
    bias[:UNITS], bias[UNITS : 2 * UNITS] = -6.0, 3.0
    lstm = model.get_layer("lstm")
    lstm.set_weights([kernel, np.zeros((UNITS, 4 * UNITS), np.float32), bias])
    model.compile(keras.optimizers.SGD(0.0), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    callback = tb_lstm_gates.LSTMGatesCallback(run_dir, probe=x[:4], probe_tokens=VOCAB)
    model.fit(x, ids[SEQ_LEN : SEQ_LEN + len(x)], epochs=2, batch_size=4, verbose=0, callbacks=[callback])
    return [[VOCAB[i] for i in row] for row in x[:4]]


def train_deep(run_dir):
    """Three bidirectional LSTM layers: six cells."""
    import keras

    import tb_lstm_gates

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((5, 2))]
        + [
            keras.layers.Bidirectional(
                keras.layers.LSTM(3, return_sequences=i < 3, name="lstm_%d" % i), name="bi_%d" % i
            )
            for i in (1, 2, 3)
        ]
        + [keras.layers.Dense(1)]
    )
    model.compile("adam", "mse")
    rng = np.random.default_rng(0)
    model.fit(
        rng.normal(size=(16, 5, 2)),
        rng.normal(size=(16, 1)),
        epochs=3,
        batch_size=8,
        verbose=0,
        callbacks=[tb_lstm_gates.LSTMGatesCallback(run_dir)],
    )


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    root = tmp_path_factory.mktemp("text_logs")
    tokens = train_planted(os.fspath(root / "char"))
    train_deep(os.fspath(root / "deep"))
    plugin_logs.write_probe_run(os.fspath(root / OLD_RUN), writer_class=plugin_logs.V1Writer)
    plugin_logs.write_cell_run(os.fspath(root / (OLD_RUN + "_cells")), writer_class=plugin_logs.V1Writer)
    return root, tokens


@pytest.fixture(scope="module")
def url(logs):
    with tensorboard(logs[0]) as url:
        yield url


@pytest.fixture
def page(browser):
    p = Page(browser)
    yield p
    p.close()
    assert p.errors == [], "browser console errors: %s" % p.errors
    assert p.dialogs == [], "dialogs fired: %s" % p.dialogs


def open_view(page, url, view, run_filter):
    """Opens the tab with only the runs matching `run_filter` shown, on `view`."""
    frame = page.open_tab(url)
    frame.locator(".run-filter").fill(run_filter)
    frame.locator(".view-switch button[data-view=%s]" % view).click()
    return frame


def shown_tokens(frame):
    return frame.evaluate(
        """() => [...document.querySelectorAll('.text-sequence')].map((line) =>
             [...line.querySelectorAll('.token')].map((t) => ({
               text: t.textContent, value: t.dataset.value, color: t.style.backgroundColor})))"""
    )


def first_unit(frame):
    return int(frame.locator(".text-unit").first.get_attribute("data-unit"))


def test_text_view_shows_the_tokens_coloured_by_the_logged_gate_values(page, url, logs):
    frame = open_view(page, url, "text", "char")
    choose(frame, ".text-gate", "forget")
    choose(frame, ".text-order", "unit")
    frame.locator(".text-unit[data-unit='%d']" % PLANTED_UNIT).click()
    frame.wait_for_function("() => document.querySelectorAll('.text-sequence').length === 4")
    assert texts(frame, ".text-gate option") == list(metadata.LSTM_GATES) + ["c_t"]
    shown = shown_tokens(frame)
    _, tokens = logs
    assert [[t["text"] for t in line] for line in shown] == [
        [c.replace(" ", "\u00a0") for c in row] for row in tokens
    ]
    logged = {
        r.step: r.value
        for r in reader.load(logs[0])
        if (r.run, r.layer, r.gate, r.stat) == (CHAR_RUN, CHAR_LAYER, "forget", metadata.PROBE_SEQUENCES)
    }
    values = logged[max(logged)][:, :, PLANTED_UNIT]
    for s, line in enumerate(shown):
        for t, token in enumerate(line):
            assert float(token["value"]) == pytest.approx(values[s, t], abs=1e-6)
            assert token["color"] == viridis(values[s, t]), (s, t)
    # The planted forget gate closes on "q": its colour there is the scale's bottom.
    q = [(s, t) for s, row in enumerate(tokens) for t, c in enumerate(row) if c == "q"]
    assert q and all(values[s, t] < 0.1 for s, t in q)
    page.screenshot("text_view.png")


def test_selecting_a_span_puts_the_planted_unit_first(page, url, logs):
    frame = open_view(page, url, "text", "char")
    choose(frame, ".text-gate", "forget")
    frame.wait_for_function("() => document.querySelectorAll('.text-sequence').length === 4")
    _, tokens = logs
    s, t = next((s, t) for s, row in enumerate(tokens) for t, c in enumerate(row) if c == "q")
    token = frame.locator(".text-sequence[data-sequence='%d'] .token[data-t='%d']" % (s, t))
    # A drag over one token selects it as the span; the units are then ordered by their match.
    token.hover()
    page.page.mouse.down()
    token.hover()
    page.page.mouse.up()
    frame.wait_for_function("() => document.querySelectorAll('.token.in-span').length === 1")
    assert frame.locator(".text-order").input_value() == "span"
    choose(frame, ".text-order", "span_low")
    frame.wait_for_function(
        "(u) => document.querySelector('.text-unit').dataset.unit === String(u)", arg=PLANTED_UNIT
    )
    assert frame.locator(".token.in-span").count() == 1, "the span is kept across orders"
    # Its input gate opens there: high there, low elsewhere.
    choose(frame, ".text-gate", "input")
    choose(frame, ".text-order", "span")
    frame.wait_for_function(
        "() => document.querySelector('.text-view .message').textContent.startsWith('input')"
    )
    assert first_unit(frame) == PLANTED_UNIT
    # The cell state as well: unit by unit, tanh(c_t) on a diverging scale.
    choose(frame, ".text-gate", "c_t")
    frame.wait_for_function(
        "() => document.querySelector('.text-view .message').textContent.startsWith('c_t')"
    )
    assert frame.locator(".text-sequence").count() == 4


def test_activation_map_labels_its_time_axis_with_the_tokens(page, url, logs):
    frame = open_view(page, url, "activations", "char")
    frame.wait_for_function(
        "() => { const c = document.querySelector('.map-canvas'); return c && !c.hidden && "
        "window.canvasTexts(c).some((t) => t.text === 'token →'); }"
    )
    labels = frame.evaluate(
        "() => window.canvasTexts(document.querySelector('.map-canvas')).map((t) => t.text)"
    )
    _, tokens = logs
    shown = [c.replace(" ", "␣") for c in tokens[0]]
    assert labels[: len(shown)] == shown


def test_overview_shows_every_cell_of_three_bidirectional_layers_in_model_order(page, url):
    frame = open_view(page, url, "overview", "deep")
    frame.wait_for_function("() => document.querySelectorAll('.overview-row').length === 6")
    rows = frame.evaluate(
        "() => [...document.querySelectorAll('.overview-row')].map((r) => [r.dataset.layer, "
        "[...r.querySelectorAll('.overview-cell')].map((c) => [c.dataset.gate, c.dataset.lines])])"
    )
    assert [layer for layer, _ in rows] == DEEP_LAYERS
    assert all(cells == [[g, "1"] for g in metadata.LSTM_GATES] for _, cells in rows)
    frame.wait_for_function(
        "() => [...document.querySelectorAll('.overview-cell canvas')].every((c) => "
        "c.getContext('2d').getImageData(0, 0, c.width, c.height).data.some((v) => v > 0))"
    )
    page.screenshot("overview.png")
    # A click opens the layer in the Weights view.
    frame.locator(".overview-row[data-layer='%s'] .overview-cell[data-gate=forget]" % DEEP_LAYERS[3]).click()
    frame.locator(".gates .chart .u-over").first.wait_for()
    assert frame.locator(".layer-select").input_value() == DEEP_LAYERS[3]
    assert frame.locator(".view-switch button.active").text_content() == "Weights"


def test_overview_outlines_the_cells_with_findings_in_their_severity(page, url):
    frame = open_view(page, url, "overview", "char")
    frame.wait_for_function(
        "() => !document.querySelector('.findings-headline').textContent.includes('checking')"
    )
    found = page.page.evaluate(
        "async (u) => (await (await fetch(u + 'data/plugin/lstm_gates/findings?run="
        + CHAR_RUN
        + "')).json()).findings",
        url,
    )
    expected = {}
    for f in found:
        if f["layer"] == CHAR_LAYER:
            rank = ["error", "warning", "info"].index(f["severity"])
            expected[f["gate"]] = min(expected.get(f["gate"], 9), rank)
    assert expected, "the planted run's input gates, shut by their bias, are a finding"
    frame.wait_for_function("() => document.querySelectorAll('.overview-cell.finding').length > 0")
    outlined = frame.evaluate(
        "() => Object.fromEntries([...document.querySelectorAll('.overview-cell.finding')].map((c) => "
        "[c.dataset.gate, [...c.classList].find((k) => k.startsWith('sev-outline-')).slice(12)]))"
    )
    assert outlined == {g: ["error", "warning", "info"][r] for g, r in expected.items()}


@pytest.mark.parametrize("view", ["overview", "weights", "activations", "text"])
def test_old_logs_without_tokens_or_order_open_in_every_view(page, url, view):
    frame = open_view(page, url, view, "^old")
    if view in ("activations", "text"):
        choose(frame, ".layer-select", plugin_logs.PROBE_LAYER)
    selector = {
        "overview": ".overview-cell canvas",
        "weights": ".gates .chart .u-over",
        "activations": ".map-canvas",
        "text": ".text-sequence .token",
    }[view]
    frame.locator(selector).first.wait_for(timeout=60000)
    if view == "text":
        # No tokens: the steps' numbers; no probe sequences: the activation map's sequence.
        assert frame.locator(".text-sequence").count() == 1
        assert frame.locator(".token.no-token").first.text_content() == "0"
        assert "first sequence only" in frame.locator(".text-view .message").text_content()
