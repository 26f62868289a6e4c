"""The LSTM Gates tab end to end: real Keras training, a real TensorBoard, headless Chromium.

Needs the built bundle and the registered entry point (`pip install -e .`), and
Debian's `chromium` (the tests skip without it). Screenshots go to
`test-artifacts/`.
"""

import contextlib
import importlib.metadata
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import urllib.request

import numpy as np
import plugin_logs
import pytest

from tb_lstm_gates.plugin import plugin as plugin_module

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)"
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARTIFACTS = os.path.join(ROOT, "test-artifacts")
XSS_RUN = "<img src=x onerror=alert(1)>"
KERAS_RUNS = {XSS_RUN: 0.01, "alpha": 0.03, "beta": 0.1}
# The run trained with a probe (and probe gradients): the Activations view's data.
PROBE_RUN = "alpha"
# Runs in the order the tab lists them (by name) and their colours
# (TensorBoard's palette, light mode).
RUN_COLORS = {
    XSS_RUN + "/train": "#425066",
    "alpha/train": "#12b5cb",
    "beta/train": "#e52592",
    plugin_logs.PENALIZED_RUN: "#f9ab00",
}
# Layer names differ from plugin_logs.PENALIZED_LAYER's, so the penalized
# run adds no line to these layers' charts.
GRU_LAYER = "decoder/gru_cell"
LSTM_LAYER = "encoder/lstm_cell"
STARTED = re.compile(r"TensorBoard \S+ at (http://127\.0\.0\.1:(\d+)\S*)")


def train_tiny_model(run_dir, learning_rate, probe=False):
    import keras

    import tb_lstm_gates

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((6, 3)),
            keras.layers.LSTM(4, return_sequences=True, name="encoder"),
            keras.layers.GRU(3, name="decoder"),
            keras.layers.Dense(1),
        ],
        name="tiny",
    )
    model.compile(keras.optimizers.Adam(learning_rate), "mse")
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, 6, 3)), rng.normal(size=(32, 1))
    options = dict(probe=(x[:4], y[:4]), probe_gradients=True) if probe else {}
    model.fit(
        x,
        y,
        epochs=3,
        batch_size=8,
        verbose=0,
        callbacks=[tb_lstm_gates.LSTMGatesCallback(run_dir, **options)],
    )


@pytest.fixture(scope="session")
def logdir(tmp_path_factory):
    """Three real Keras runs (one named with HTML, one with a probe) and a run with penalties."""
    root = tmp_path_factory.mktemp("e2e_logs")
    for name, learning_rate in KERAS_RUNS.items():
        train_tiny_model(os.fspath(root / name), learning_rate, probe=name == PROBE_RUN)
    plugin_logs.write_penalized_run(os.fspath(root / plugin_logs.PENALIZED_RUN))
    return root


@contextlib.contextmanager
def tensorboard(logdir, *flags):
    """A real `tensorboard` process on a free port; yields its base URL."""
    bundle = os.path.join(plugin_module.STATIC_DIR, "index.js")
    assert os.path.exists(bundle), (
        "no frontend bundle: run `pip install -e .` (or `npm run build` in frontend/)"
    )
    names = [e.name for e in importlib.metadata.entry_points(group="tensorboard_plugins")]
    assert "lstm_gates" in names, (
        "the tensorboard_plugins entry point is not registered: run `pip install -e .`"
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tensorboard.main",
            "--logdir",
            os.fspath(logdir),
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            *flags,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stderr], daemon=True).start()
    try:
        log = []
        while True:
            try:
                line = lines.get(timeout=120)
            except queue.Empty:
                raise AssertionError("TensorBoard did not start:\n" + "".join(log)) from None
            log.append(line)
            match = STARTED.search(line)
            if match:
                url = match.group(1).rstrip("/") + "/"
                # The server imports tb_lstm_gates through its entry point: make sure it is
                # this checkout's (PYTHONPATH first), serving the bundle checked above.
                with urllib.request.urlopen(url + "data/plugin/lstm_gates/static/index.js") as served:
                    assert served.read() == open(bundle, "rb").read(), (
                        "TensorBoard serves another checkout's tab"
                    )
                yield url
                return
            assert process.poll() is None, "TensorBoard exited:\n" + "".join(log)
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="session")
def tensorboard_url(logdir):
    with tensorboard(logdir) as url:
        yield url


# Records the text each canvas shows (tick labels are drawn, not in the DOM):
# every fillText since the canvas was last cleared from its corner, as uPlot
# and the tab's canvas charts do before each draw.
CANVAS_TEXT_RECORDER = """(() => {
  const proto = CanvasRenderingContext2D.prototype;
  const texts = new WeakMap();
  const fillText = proto.fillText;
  const clearRect = proto.clearRect;
  proto.fillText = function (text, x, y, ...rest) {
    const m = this.getTransform();
    if (!texts.has(this.canvas)) texts.set(this.canvas, []);
    texts.get(this.canvas).push({ text: String(text), x: Math.round(m.a * x + m.c * y + m.e), y: Math.round(m.b * x + m.d * y + m.f) });
    return fillText.call(this, text, x, y, ...rest);
  };
  proto.clearRect = function (x, y, ...rest) {
    if (x === 0 && y === 0) texts.set(this.canvas, []);
    return clearRect.call(this, x, y, ...rest);
  };
  window.canvasTexts = (canvas) => texts.get(canvas) || [];
})();"""


class Page:
    """A fresh browser page that records console errors, page errors and dialogs."""

    def __init__(self, browser, **context_options):
        self.context = browser.new_context(viewport={"width": 1400, "height": 1000}, **context_options)
        self.context.add_init_script(CANVAS_TEXT_RECORDER)
        self.page = self.context.new_page()
        self.errors = []
        self.dialogs = []
        self.requests = []
        self.page.on(
            "console",
            lambda m: m.type == "error" and self.errors.append("%s (%s)" % (m.text, m.location.get("url"))),
        )
        self.page.on("pageerror", lambda e: self.errors.append("pageerror: %s" % e))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on(
            "response", lambda r: r.status >= 400 and self.errors.append("%s %s" % (r.status, r.url))
        )

        def on_dialog(dialog):
            self.dialogs.append(dialog.message)
            dialog.dismiss()

        self.page.on("dialog", on_dialog)

    def open_tab(self, url):
        """Opens the LSTM Gates tab and returns its iframe once charts are drawn."""
        self.page.goto(url + "#lstm_gates")
        self.page.wait_for_selector("iframe", state="attached", timeout=60000)
        frame = self.page.frame_locator("iframe").locator(".gates .chart .u-over").first
        frame.wait_for(timeout=60000)
        return next(f for f in self.page.frames if "plugin_entry.html" in f.url)

    def screenshot(self, name):
        os.makedirs(ARTIFACTS, exist_ok=True)
        self.page.screenshot(path=os.path.join(ARTIFACTS, name))

    def close(self):
        self.context.close()


@pytest.fixture
def page(browser):
    p = Page(browser)
    yield p
    p.close()
    assert p.errors == [], "browser console errors: %s" % p.errors
    assert p.dialogs == [], "dialogs fired: %s" % p.dialogs


# Per canvas of the gate grid: pixels close to each run's colour, non-blank
# pixels, and a fingerprint of the whole image.
CANVAS_STATS = """([selector, colors]) => {
  const rgb = (hex) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
  return [...document.querySelectorAll(selector)].map((canvas) => {
    const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    const targets = Object.fromEntries(Object.entries(colors).map(([run, hex]) => [run, rgb(hex)]));
    const counts = Object.fromEntries(Object.keys(colors).map((run) => [run, 0]));
    let painted = 0;
    for (let i = 0; i < data.length; i += 4) {
      if (data[i + 3] === 0) continue;
      painted++;
      for (const [run, [r, g, b]] of Object.entries(targets)) {
        if (data[i + 3] > 200 && Math.abs(data[i] - r) + Math.abs(data[i + 1] - g) + Math.abs(data[i + 2] - b) < 30) counts[run]++;
      }
    }
    return { counts, painted, print: canvas.toDataURL() };
  });
}"""
GRID = ".gates .chart canvas"


def canvas_stats(frame, selector=GRID, colors=RUN_COLORS):
    return frame.evaluate(CANVAS_STATS, [selector, colors])


def texts(frame, selector):
    return frame.locator(selector).all_text_contents()


def choose(frame, selector, value):
    frame.locator(selector).select_option(value)


def wait_redrawn(frame, before, selector=GRID):
    """Waits until the canvases under `selector` differ from the fingerprints `before`."""
    frame.wait_for_function(
        "([sel, before]) => { const c = [...document.querySelectorAll(sel)]; "
        "return c.length > 0 && c.map((x) => x.toDataURL()).join() !== before; }",
        arg=[selector, before],
        timeout=20000,
    )


def prints(stats):
    return ",".join(s["print"] for s in stats)


def test_gate_grid_draws_one_line_per_run_for_every_block(page, tensorboard_url):
    frame = page.open_tab(tensorboard_url)
    choose(frame, ".layer-select", LSTM_LAYER)
    frame.wait_for_function("() => document.querySelectorAll('.gates .col-head').length === 4")
    assert texts(frame, ".gates .col-head") == ["input", "forget", "cell", "output"]
    assert texts(frame, ".gates .row-head") == ["input", "recurrent", "bias"]
    frame.wait_for_function("() => document.querySelectorAll('.gates .chart canvas').length === 12")
    stats = canvas_stats(frame)
    for block in stats:
        for run in KERAS_RUNS:
            assert block["counts"][run + "/train"] > 20, "run %r is not drawn in every chart" % run
        assert block["counts"][plugin_logs.PENALIZED_RUN] == 0
    page.screenshot("gate_grid.png")


def test_tab_opens_on_the_models_first_layer_though_a_gru_sorts_first_by_name(page, tensorboard_url):
    frame = page.open_tab(tensorboard_url)
    options = texts(frame, ".layer-select option")
    # In the model's order (the encoder LSTM, then the decoder GRU); logs without one after, by name.
    assert options[0].startswith(LSTM_LAYER) and options[1].startswith(GRU_LAYER), options
    assert frame.locator(".layer-select").input_value() == LSTM_LAYER
    assert texts(frame, ".gates .col-head") == ["input", "forget", "cell", "output"]


def test_switching_statistic_layer_and_runs_changes_the_charts(page, tensorboard_url):
    frame = page.open_tab(tensorboard_url)
    choose(frame, ".layer-select", GRU_LAYER)
    frame.wait_for_function("() => document.querySelectorAll('.gates .col-head').length === 3")
    assert texts(frame, ".gates .col-head") == ["update", "reset", "candidate"]
    assert texts(frame, ".gates .row-head") == ["input", "recurrent", "input_bias", "recurrent_bias"]
    before = prints(canvas_stats(frame))

    choose(frame, ".stat-select", "mean")
    wait_redrawn(frame, before)
    assert frame.locator(".gates .subtitle").text_content().endswith("mean")
    before = prints(canvas_stats(frame))

    frame.locator(".run-list label", has_text="alpha/train").locator("input").uncheck()
    wait_redrawn(frame, before)
    stats = canvas_stats(frame)
    assert all(block["counts"]["alpha/train"] == 0 for block in stats)
    assert all(block["counts"]["beta/train"] > 20 for block in stats)

    before = prints(stats)
    frame.locator(".run-filter").fill("^bet")
    wait_redrawn(frame, before)
    assert texts(frame, ".run-list .run-name") == ["beta/train"]
    stats = canvas_stats(frame)
    assert all(
        block["counts"]["beta/train"] > 20 and block["counts"][XSS_RUN + "/train"] == 0 for block in stats
    )


def axis_labels(frame, selector):
    """Per canvas under `selector`, its vertical axis's labels, top to bottom: texts drawn at one x (and several y)."""
    return frame.evaluate(
        """(sel) => [...document.querySelectorAll(sel)].map((canvas) => {
          const byX = new Map();
          for (const t of window.canvasTexts(canvas)) byX.set(t.x, [...(byX.get(t.x) || []), t]);
          const column = [...byX.values()].filter((ts) => new Set(ts.map((t) => t.y)).size > 1).sort((a, b) => b.length - a.length)[0] || [];
          return column.sort((a, b) => a.y - b.y).map((t) => t.text);
        })""",
        selector,
    )


def assert_round_ticks(labels):
    """Labels are distinct numbers, evenly spaced by 1, 2, 2.5 (uPlot's) or 5 times a power of ten, with no exponent padding."""
    assert len(labels) >= 2 and len(set(labels)) == len(labels), labels
    values = [float(label) for label in labels]
    gaps = {round(abs(b - a), 12) for a, b in zip(values, values[1:])}
    assert len(gaps) == 1, labels
    assert ("%.6e" % gaps.pop()).split("e")[0] in ("1.000000", "2.000000", "2.500000", "5.000000"), labels
    assert not any(re.search(r"\.\d*0e", label) for label in labels), labels


def test_tick_labels_are_distinct_and_round(page, tensorboard_url):
    frame = page.open_tab(tensorboard_url)
    frame.wait_for_function("() => document.querySelectorAll('.gates .chart canvas').length === 12")
    for labels in axis_labels(frame, GRID):
        assert_round_ticks(labels)
    frame.locator(".gates .chart[data-part=recurrent][data-gate=forget] .u-over").click()
    frame.locator(".histogram .hist-canvas").wait_for(state="visible")
    frame.wait_for_function("() => window.canvasTexts(document.querySelector('.hist-canvas')).length > 0")
    offset = frame.evaluate("() => window.canvasTexts(document.querySelector('.hist-canvas')).map((t) => t)")
    # The offset mode's value axis: the labels drawn on one line below the ridges.
    bottom = max(t["y"] for t in offset)
    assert_round_ticks([t["text"] for t in sorted(offset, key=lambda t: t["x"]) if t["y"] == bottom])
    choose(frame, ".hist-mode", "heatmap")
    frame.wait_for_function(
        "() => window.canvasTexts(document.querySelector('.hist-canvas')).some((t) => t.text.startsWith('density'))"
    )
    assert_round_ticks(axis_labels(frame, ".hist-canvas")[0][::-1])


def test_log_scale_labels_its_ticks_and_keeps_all_zero_charts_readable(page, tensorboard_url):
    frame = page.open_tab(tensorboard_url)
    frame.locator("label.check", has_text="Log scale").locator("input").check()
    frame.wait_for_function("() => document.querySelectorAll('.gates .chart canvas').length === 12")
    for labels in axis_labels(frame, GRID):
        assert len(labels) >= 2 and "–" not in labels, labels
    # Saturation is 0 everywhere in the tiny GRU: no positive value, so a linear 0..1 axis, not an empty 0..100.
    choose(frame, ".layer-select", GRU_LAYER)
    frame.locator(".view-switch button[data-view=activations]").click()
    zeros = ".activations .chart[data-stat=saturated_low] canvas"
    frame.locator(zeros).first.wait_for()
    assert (
        frame.locator(".activations .chart[data-stat=saturated_low] .chart-note").first.text_content()
        == "no positive values: linear scale"
    )
    for labels in axis_labels(frame, zeros):
        assert float(labels[0]) == 1 and float(labels[-1]) == 0, labels


def test_smoothing_log_scale_and_synced_hover(page, tensorboard_url):
    frame = page.open_tab(tensorboard_url)
    choose(frame, ".layer-select", GRU_LAYER)
    frame.wait_for_function("() => document.querySelectorAll('.gates .chart canvas').length === 12")
    before = prints(canvas_stats(frame))
    frame.locator(".slider input").fill("0")
    wait_redrawn(frame, before)
    assert frame.locator(".slider output").text_content() == "0.00"
    before = prints(canvas_stats(frame))
    frame.locator("label.check", has_text="Log scale").locator("input").check()
    wait_redrawn(frame, before)

    # Hovering one chart moves the cursor of every chart to the same step.
    charts = frame.locator(".gates .chart")
    charts.nth(0).locator(".u-over").hover(position={"x": 5, "y": 40})
    left = charts.nth(0).locator(".u-cursor-x").evaluate("e => e.style.transform")
    charts.nth(0).locator(".u-over").hover(position={"x": 150, "y": 40})
    moved = charts.nth(0).locator(".u-cursor-x").evaluate("e => e.style.transform")
    assert moved != left
    assert charts.nth(11).locator(".u-cursor-x").evaluate("e => e.style.transform") == moved
    rows = frame.locator(".tooltip:not([hidden]) tbody tr")
    assert rows.count() == len(KERAS_RUNS)


def test_download_csv_and_json_hold_what_is_shown(page, tensorboard_url):
    frame = page.open_tab(tensorboard_url)
    choose(frame, ".layer-select", LSTM_LAYER)
    # The GRU also has 12 charts: wait for the LSTM's 4 gate columns.
    frame.wait_for_function("() => document.querySelectorAll('.gates .col-head').length === 4")
    frame.wait_for_function("() => document.querySelectorAll('.gates .chart canvas').length === 12")
    with page.page.expect_download() as download:
        frame.locator("button", has_text="CSV").click()
    lines = open(download.value.path(), encoding="utf-8").read().splitlines()
    assert lines[0] == "section,run,layer,part,gate,stat,step,wall_time,value,smoothed"
    # 3 runs x 12 blocks x 4 steps (0 = before training, then 3 epochs).
    gate_rows = [line for line in lines[1:] if line.startswith("gates,")]
    assert len(gate_rows) == 3 * 12 * 4
    assert any(
        line.startswith("gates,%s/train,%s,recurrent,forget,l2,3," % (XSS_RUN, LSTM_LAYER))
        for line in gate_rows
    )
    # The charts load without wall times; the download asks for them.
    assert all(float(line.split(",")[-3]) > 1e9 for line in gate_rows)
    with page.page.expect_download() as download:
        frame.locator("button", has_text="JSON").click()
    shown = json.load(open(download.value.path(), encoding="utf-8"))
    runs = {s["run"] for s in shown["series"] if s["section"] == "gates"}
    assert runs == {name + "/train" for name in KERAS_RUNS}


def test_selections_survive_reload_and_page_reload(page, tensorboard_url):
    frame = page.open_tab(tensorboard_url)
    choose(frame, ".layer-select", LSTM_LAYER)
    choose(frame, ".stat-select", "max_abs")
    frame.locator(".parts input[data-part=bias]").uncheck()
    frame.wait_for_function("() => document.querySelectorAll('.gates .row-head').length === 2")
    frame.locator("button.reload").click()
    frame.wait_for_timeout(1000)
    assert frame.locator(".layer-select").input_value() == LSTM_LAYER
    assert frame.locator(".stat-select").input_value() == "max_abs"

    frame = page.open_tab(tensorboard_url)
    page.page.reload()
    frame = page.open_tab(tensorboard_url)
    assert frame.locator(".layer-select").input_value() == LSTM_LAYER
    assert frame.locator(".stat-select").input_value() == "max_abs"
    assert texts(frame, ".gates .row-head") == ["input", "recurrent"]


def test_clicking_a_chart_opens_its_histograms_in_both_modes(page, tensorboard_url):
    frame = page.open_tab(tensorboard_url)
    choose(frame, ".layer-select", LSTM_LAYER)
    frame.wait_for_function("() => document.querySelectorAll('.gates .col-head').length === 4")
    frame.locator(".gates .chart[data-part=recurrent][data-gate=forget] .u-over").click()
    frame.locator(".histogram .hist-canvas").wait_for(state="visible")
    assert frame.locator(".hist-part").input_value() == "recurrent"
    assert frame.locator(".hist-gate").input_value() == "forget"
    frame.wait_for_function(
        "() => { const c = document.querySelector('.hist-canvas'); "
        "return c.getContext('2d').getImageData(0, 0, c.width, c.height).data.some((v) => v > 0); }"
    )
    offset = canvas_stats(frame, ".hist-canvas", {})[0]
    assert offset["painted"] > 2000

    frame.locator(".hist-canvas").hover(position={"x": 300, "y": 200})
    # The Keras runs log once an epoch: the readout says so.
    assert re.fullmatch(r"epoch \d+ · value \S+ · count \S+", frame.locator(".hist-readout").text_content())

    choose(frame, ".hist-mode", "heatmap")
    wait_redrawn(frame, offset["print"], ".hist-canvas")
    heatmap = canvas_stats(frame, ".hist-canvas", {})[0]
    assert heatmap["painted"] > offset["painted"]

    before = heatmap["print"]
    choose(frame, ".hist-gate", "output")
    wait_redrawn(frame, before, ".hist-canvas")
    page.screenshot("histogram.png")

    frame.locator(".histogram button.close").click()
    frame.locator(".histogram").wait_for(state="hidden")
    frame.locator("button.open-histograms").click()
    frame.locator(".histogram .hist-canvas").wait_for(state="visible")
    assert [frame.locator(s).input_value() for s in (".hist-part", ".hist-gate")] == ["recurrent", "output"]


# Names of the tab's form controls that nothing names: inputs and selectors
# need a <label> with text or an aria-label, buttons their own text.
UNNAMED_CONTROLS = """() => [...document.querySelectorAll("input, select, button")]
  .filter((c) => !c.closest("[hidden]"))
  .filter((c) => {
    const label = (c.getAttribute("aria-label") || "").trim();
    const labels = c.labels ? [...c.labels].map((l) => l.textContent.trim()).join("") : "";
    const own = c.tagName === "BUTTON" ? c.textContent.trim() : "";
    return !(label || labels || own);
  })
  .map((c) => c.outerHTML.slice(0, 120))"""


def label_of(frame, selector):
    """The visible name of the control `selector`: the text of its <label>, without the control's own text."""
    return frame.locator(selector).evaluate("(c) => c.labels[0].querySelector('.label').textContent")


def test_every_control_has_a_label(page, tensorboard_url):
    frame = page.open_tab(tensorboard_url)
    frame.locator(".gates .chart[data-part=recurrent][data-gate=forget] .u-over").click()
    frame.locator(".histogram .hist-canvas").wait_for(state="visible")
    assert frame.evaluate(UNNAMED_CONTROLS) == []
    assert [label_of(frame, s) for s in (".hist-run", ".hist-part", ".hist-gate", ".hist-mode")] == [
        "Run",
        "Part",
        "Gate",
        "Mode",
    ]
    assert label_of(frame, ".slider input[type=range]") == "Smoothing"
    assert [label_of(frame, s) for s in (".layer-select", ".stat-select")] == ["Layer", "Statistic"]

    frame.locator(".view-switch button[data-view=activations]").click()
    wait_map_painted(frame)
    assert frame.evaluate(UNNAMED_CONTROLS) == []
    assert [label_of(frame, s) for s in (".map-run", ".map-gate", ".map-step")] == ["Run", "Gate", "Epoch"]
    page.screenshot("labels.png")


ACT_GRID = ".activations .chart canvas"
MAP = ".map-canvas"


def open_activations(page, url, layer=LSTM_LAYER):
    frame = page.open_tab(url)
    choose(frame, ".layer-select", layer)
    frame.locator(".view-switch button[data-view=activations]").click()
    return frame


def wait_map_painted(frame):
    frame.wait_for_function(
        "() => { const c = document.querySelector('.map-canvas'); return c && !c.hidden && "
        "c.getContext('2d').getImageData(0, 0, c.width, c.height).data.some((v) => v > 0); }"
    )


def test_activations_view_draws_probe_statistics_per_gate(page, tensorboard_url):
    frame = open_activations(page, tensorboard_url)
    # act_mean, saturated_low, saturated_high: every gate; retention: the forget gate only.
    frame.wait_for_function("() => document.querySelectorAll('.activations .chart canvas').length === 13")
    assert texts(frame, ".activations .col-head") == ["input", "forget", "cell", "output"]
    assert texts(frame, ".activations .row-head") == [
        "act_mean",
        "saturated_low",
        "saturated_high",
        "retention",
    ]
    assert frame.locator(".activations .chart[data-stat=retention][data-gate=forget] canvas").count() > 0
    assert frame.locator(".gates").is_hidden() and frame.locator(".stat-select").count() == 0
    for block in canvas_stats(frame, ACT_GRID):
        assert block["counts"][PROBE_RUN + "/train"] > 20, "the probe run is not drawn in every chart"
        assert all(block["counts"][run + "/train"] == 0 for run in KERAS_RUNS if run != PROBE_RUN)

    # Same chart settings as the weights grid.
    before = prints(canvas_stats(frame, ACT_GRID))
    frame.locator(".slider input").first.fill("0")
    wait_redrawn(frame, before, ACT_GRID)
    page.screenshot("activations.png")

    # The view is kept across a page reload.
    page.page.reload()
    page.page.frame_locator("iframe").locator(".activations .chart .u-over").first.wait_for(timeout=60000)
    frame = next(f for f in page.page.frames if "plugin_entry.html" in f.url)
    assert frame.locator(".view-switch button.active").text_content() == "Activations"


def test_activation_map_follows_step_and_gate_with_hover_readout(page, tensorboard_url):
    frame = open_activations(page, tensorboard_url, GRU_LAYER)
    wait_map_painted(frame)
    assert texts(frame, ".map-run option") == [PROBE_RUN + "/train"]
    assert texts(frame, ".map-gate option") == ["update", "reset", "candidate"]
    # Epoch logging: steps 0 (before training) to 3, the latest shown first.
    assert frame.locator(".map-step").get_attribute("max") == "3"
    assert frame.locator(".map-step-label").text_content() == "3"
    before = canvas_stats(frame, MAP, {})[0]
    assert before["painted"] > 5000

    frame.locator(".map-step").fill("0")
    wait_redrawn(frame, before["print"], MAP)
    assert frame.locator(".map-step-label").text_content() == "0"
    message = frame.locator(".activation-map .message").text_content()
    # The tiny model's probe has no padding: nothing is hatched, so nothing explains hatching.
    assert "at epoch 0" in message and "hatched" not in message

    before = canvas_stats(frame, MAP, {})[0]["print"]
    choose(frame, ".map-gate", "candidate")
    wait_redrawn(frame, before, MAP)
    assert frame.locator(".map-step-label").text_content() == "0", "the chosen step is kept across gates"

    box = frame.locator(MAP).bounding_box()
    frame.locator(MAP).hover(position={"x": 60, "y": 20})
    assert re.fullmatch(r"t \d+ · unit \d+ · -?\d\S*", frame.locator(".map-readout").text_content())
    assert box["width"] > 800
    page.screenshot("activation_map.png")


def test_activations_view_explains_the_probe_and_weights_view_shows_grad_norm(page, tensorboard_url):
    def without_probe(route):
        body = route.fetch().json()
        for run in body["runs"]:
            for layer in run["layers"]:
                layer["parts"] = [p for p in layer["parts"] if p != "activation"]
                layer["activation_maps"] = False
        route.fulfill(json=body)

    frame = page.open_tab(tensorboard_url)
    choose(frame, ".layer-select", LSTM_LAYER)
    frame.wait_for_function("() => document.querySelectorAll('.gates .col-head').length === 4")
    # The probe's statistics come last: its gradient norm, then its self-check (one series, part total).
    assert frame.locator(".stat-select option").all_inner_texts()[-2:] == [
        "gradient norm (probe)",
        "self-check difference",
    ]
    choose(frame, ".stat-select", "grad_norm")
    frame.wait_for_function(
        "() => document.querySelector('.gates .subtitle').textContent.endsWith('gradient norm (probe)')"
    )
    frame.wait_for_function("() => document.querySelectorAll('.gates .chart canvas').length === 12")
    stats = canvas_stats(frame)
    assert all(
        block["counts"][PROBE_RUN + "/train"] > 20 and block["counts"]["beta/train"] == 0 for block in stats
    )

    page.page.route("**/data/plugin/lstm_gates/runs", without_probe)
    page.page.reload()
    frame = page.open_tab(tensorboard_url)
    frame.locator(".view-switch button[data-view=activations]").click()
    note = frame.locator(".empty-probe")
    note.wait_for(state="visible")
    assert "LSTMGatesCallback(log_dir, probe=x[:32])" in note.text_content()
    assert frame.locator(".activation-map").is_hidden()


def test_html_run_name_is_shown_as_text(page, tensorboard_url):
    frame = page.open_tab(tensorboard_url)
    assert XSS_RUN + "/train" in texts(frame, ".run-list .run-name")
    choose(frame, ".layer-select", GRU_LAYER)
    # The LSTM's grid has 12 charts too: wait for the GRU's columns, so the hover lands on a chart that stays.
    frame.wait_for_function("() => document.querySelectorAll('.gates .col-head').length === 3")
    frame.wait_for_function("() => document.querySelectorAll('.gates .chart canvas').length === 12")
    frame.locator(".gates .chart .u-over").first.hover(position={"x": 150, "y": 60})
    tooltip = frame.locator(".tooltip:not([hidden])")
    tooltip.wait_for(state="visible")
    assert XSS_RUN + "/train" in tooltip.locator("td.name").all_text_contents()
    frame.locator(".gates .chart .u-over").first.click()
    frame.locator(".hist-run").wait_for()
    assert XSS_RUN + "/train" in texts(frame, ".hist-run option")
    assert frame.evaluate("() => document.querySelectorAll('img').length") == 0
    assert page.page.evaluate("() => document.querySelectorAll('img[src=x]').length") == 0
    page.screenshot("html_run_name.png")


def test_regularization_section_shows_penalties_next_to_the_loss(page, tensorboard_url):
    frame = page.open_tab(tensorboard_url)
    choose(frame, ".layer-select", plugin_logs.PENALIZED_LAYER)
    frame.wait_for_function("() => document.querySelectorAll('.reg-grid canvas').length === 5")
    assert texts(frame, ".reg-grid figcaption") == [
        "input · input penalty",
        "recurrent · forget penalty",
        "%s: total penalty" % plugin_logs.PENALIZED_LAYER,
        "regularization loss (model)",
        "training loss",
    ]
    stats = canvas_stats(frame, ".reg-grid canvas")
    assert all(block["counts"][plugin_logs.PENALIZED_RUN] > 20 for block in stats)

    # The section follows the sidebar's part toggles, as the gate grid does.
    frame.locator(".parts input[data-part=input]").uncheck()
    frame.wait_for_function("() => document.querySelectorAll('.reg-grid canvas').length === 4")
    assert texts(frame, ".reg-grid figcaption")[0] == "recurrent · forget penalty"


def test_empty_state_names_the_callback(page, tensorboard_url):
    page.page.route("**/data/plugin/lstm_gates/runs", lambda route: route.fulfill(json={"runs": []}))
    page.page.goto(tensorboard_url + "#lstm_gates")
    empty = page.page.frame_locator("iframe").locator(".empty")
    empty.wait_for(state="visible", timeout=60000)
    assert "LSTMGatesCallback(log_dir)" in empty.text_content()


def test_regularization_is_explained_when_no_run_has_penalties(page, tensorboard_url):
    def without_penalties(route):
        body = route.fetch().json()
        for run in body["runs"]:
            run["regularization"] = False
        route.fulfill(json=body)

    page.page.route("**/data/plugin/lstm_gates/runs", without_penalties)
    frame = page.open_tab(tensorboard_url)
    note = frame.locator(".regularization .message")
    note.wait_for()
    assert "No run logs penalties" in note.text_content()
    assert frame.locator(".reg-grid canvas").count() == 0


def test_dark_mode_follows_the_system_setting(browser, tensorboard_url):
    p = Page(browser, color_scheme="dark")
    try:
        frame = p.open_tab(tensorboard_url)
        dark_page = p.page.evaluate("() => document.body.classList.contains('dark-mode')")
        assert frame.evaluate("() => document.documentElement.classList.contains('dark')") == dark_page
        p.page.evaluate("() => document.body.classList.add('dark-mode')")
        frame.wait_for_function("() => document.documentElement.classList.contains('dark')")
        p.screenshot("dark_mode.png")
        assert p.errors == []
    finally:
        p.close()


def test_tab_works_under_path_prefix_with_the_python_loader(logdir, browser):
    # The session's TensorBoard runs with --load_fast=auto (RustBoard where its
    # binary is installed); this one with the Python multiplexer.
    with tensorboard(logdir, "--path_prefix", "/tb", "--load_fast", "false") as url:
        assert url.endswith("/tb/")
        p = Page(browser)
        try:
            frame = p.open_tab(url)
            choose(frame, ".layer-select", GRU_LAYER)
            frame.wait_for_function("() => document.querySelectorAll('.gates .chart canvas').length === 12")
            stats = canvas_stats(frame)
            assert stats and all(block["counts"]["alpha/train"] > 20 for block in stats)
            plugin_requests = [u for u in p.requests if "/data/plugin/lstm_gates/" in u]
            assert plugin_requests and all("/tb/data/plugin/lstm_gates/" in u for u in plugin_requests)
            assert any(u.split("?")[0].endswith("/series") for u in plugin_requests)
            p.screenshot("path_prefix.png")
            # TensorBoard itself asks for its Roboto font outside the prefix (a
            # TensorBoard bug, not the tab's); everything else must load.
            assert [e for e in p.errors if "/font-roboto/" not in e] == [] and p.dialogs == []
        finally:
            p.close()


def test_a_batch_level_run_reads_as_batches_and_the_statistic_is_explained(tmp_path, browser):
    # A run logged every 2 batches (update_freq=2): its steps are batches, and every axis must say so.
    import keras

    import tb_lstm_gates

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((6, 3)), keras.layers.LSTM(4, name="encoder"), keras.layers.Dense(1)]
    )
    model.compile("adam", "mse")
    rng = np.random.default_rng(0)
    callback = tb_lstm_gates.LSTMGatesCallback(os.fspath(tmp_path / "batches"), update_freq=2)
    model.fit(
        rng.normal(size=(32, 6, 3)),
        rng.normal(size=(32, 1)),
        epochs=1,
        batch_size=4,
        verbose=0,
        callbacks=[callback],
    )
    with tensorboard(tmp_path) as url:
        p = Page(browser)
        try:
            frame = p.open_tab(url)
            frame.wait_for_function("() => document.querySelectorAll('.gates .chart canvas').length === 12")
            # uPlot draws the x axis's name on the canvas, under the axis: below every tick label.
            names = frame.evaluate(
                """(sel) => [...document.querySelectorAll(sel)].map((canvas) => {
                  const drawn = window.canvasTexts(canvas);
                  const bottom = Math.max(...drawn.map((t) => t.y));
                  return drawn.filter((t) => t.y === bottom).map((t) => t.text);
                })""",
                GRID,
            )
            assert len(names) == 12 and all(n == ["batch"] for n in names), names
            description = frame.locator(".gates .stat-description")
            assert description.is_visible()
            assert description.text_content().startswith("L2 norm: Euclidean norm of the gate's weights")
            before = prints(canvas_stats(frame))
            choose(frame, ".stat-select", "update_ratio")
            wait_redrawn(frame, before)
            assert "1e-3 per step is healthy" in description.text_content()
            # The update ratio spans decades: it opens on a log scale.
            assert frame.locator("label.check", has_text="Log scale").locator("input").is_checked()
            frame.locator(".gates .chart .u-over").first.hover(position={"x": 100, "y": 50})
            head = frame.locator(".tooltip th").first
            head.wait_for(state="visible")
            assert re.search(r"batch \d+$", head.text_content()), head.text_content()
            p.screenshot("batch_unit.png")
            assert p.errors == [] and p.dialogs == []
        finally:
            p.close()
