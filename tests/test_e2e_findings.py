"""The Findings panel and the saturation scatter end to end: runs trained to be
pathological (tests/findings_runs.py), a real TensorBoard, headless Chromium.

Reuses the page and TensorBoard helpers of test_e2e_browser.py (and conftest.py's browser).
"""

import json
import urllib.request

import findings_runs
import pytest
from test_e2e_browser import CHROMIUM, UNNAMED_CONTROLS, Page, canvas_stats, choose, tensorboard

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)"
)

# The runs of findings_runs this file trains, each showing conditions in a different view.
TRAINED = ("gates", "nan", "over_regularized")
MARK_COLOR = {"mark": "#f57c00"}  # charts/lines.js MARK_COLOR
SHUT_LAYER = "shut/lstm_cell"
UNITS = 8  # findings_runs' LSTMs

# The dots the scatter draws: the centres (device pixels) of arc() calls on a canvas since it was last
# cleared from its corner.
ARC_COUNTER = """(() => {
  const proto = CanvasRenderingContext2D.prototype;
  const arcs = new WeakMap();
  const arc = proto.arc;
  const clearRect = proto.clearRect;
  proto.arc = function (x, y, ...rest) {
    const m = this.getTransform();
    if (!arcs.has(this.canvas)) arcs.set(this.canvas, []);
    arcs.get(this.canvas).push([Math.round(m.a * x + m.e), Math.round(m.d * y + m.f)]);
    return arc.call(this, x, y, ...rest);
  };
  proto.clearRect = function (x, y, ...rest) {
    if (x === 0 && y === 0) arcs.set(this.canvas, []);
    return clearRect.call(this, x, y, ...rest);
  };
  window.canvasArcs = (canvas) => (arcs.get(canvas) || []).length;
  window.arcCentres = (canvas) => arcs.get(canvas) || [];
})();"""


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    root = tmp_path_factory.mktemp("findings_logs")
    for name in TRAINED:
        findings_runs.TRAINERS[name](root)
    with tensorboard(root) as base:
        yield base


@pytest.fixture(scope="module")
def route_findings(url):
    with urllib.request.urlopen(url + "data/plugin/lstm_gates/findings") as answer:
        return json.load(answer)


@pytest.fixture
def page(browser):
    p = Page(browser)
    p.context.add_init_script(ARC_COUNTER)
    yield p
    p.close()
    assert p.errors == [], f"browser console errors: {p.errors}"
    assert p.dialogs == [], f"dialogs fired: {p.dialogs}"


def open_findings(page, url):
    frame = page.open_tab(url)
    frame.locator(".findings .finding").first.wait_for(timeout=60000)
    return frame


def click_finding(frame, run, rule):
    """Clicks the first finding of `rule` on `run` and waits for a chart to be marked."""
    rows = frame.locator(f".findings tr.finding[data-run='{run}'][data-rule='{rule}']")
    rows.first.locator("button.finding-link").click()
    frame.wait_for_function("() => document.querySelectorAll('.chart.marked').length > 0", timeout=30000)


def marked(frame):
    """The charts marked, each as {section, data attributes, step}, and whether it is scrolled into view."""
    return frame.evaluate(
        """() => [...document.querySelectorAll('.chart.marked')].filter((c) => c.offsetParent !== null).map((c) => {
          const box = c.getBoundingClientRect();
          return { section: c.closest('section').className, data: { ...c.dataset }, inView: box.top >= 0 && box.bottom <= innerHeight };
        })"""
    )


def mark_pixels(frame, selector):
    return [block["counts"]["mark"] for block in canvas_stats(frame, selector, MARK_COLOR)]


def test_panel_lists_the_findings_of_the_pathological_runs(page, url, route_findings):
    frame = open_findings(page, url)
    counts = frame.locator(".findings-counts tbody tr")
    by_run = {
        row[0]: row[1:]
        for row in (counts.nth(i).locator("td").all_text_contents() for i in range(counts.count()))
    }
    expected = {c["run"]: [str(c[s]) for s in ("error", "warning", "info")] for c in route_findings["counts"]}
    assert by_run == expected
    assert int(by_run["nan/train"][0]) > 0, "the NaN run has errors"
    rows = frame.locator(".findings tr.finding")
    assert rows.count() == len(route_findings["findings"])
    shown = [rows.nth(i).locator("td").all_text_contents()[:6] for i in range(rows.count())]
    assert shown == [
        [
            f["rule"],
            f["severity"],
            f["run"],
            f["layer"],
            "total" if f["layer"] == "model" else f"{f['part']} · {f['gate']}",
            str(f["step"]),
        ]
        for f in route_findings["findings"]
    ]
    first_nan = next(s for s in shown if s[2] == "nan/train")
    assert first_nan == [
        "nonfinite",
        "error",
        "nan/train",
        "lstm/lstm_cell",
        "recurrent · forget",
        str(findings_runs.NAN_STEP),
    ]
    assert "error" in frame.locator(".findings-headline").text_content()
    assert frame.evaluate(UNNAMED_CONTROLS) == []
    page.screenshot("findings_panel.png")


def test_clicking_a_weight_finding_marks_its_block_in_the_gate_grid(page, url):
    frame = open_findings(page, url)
    # Start elsewhere: another view, the run hidden, the recurrent part off.
    frame.locator(".view-switch button[data-view=activations]").click()
    frame.locator(".run-list label", has_text="nan/train").locator("input").uncheck()
    click_finding(frame, "nan/train", "nonfinite")
    frame.wait_for_function("() => document.querySelectorAll('.gates .chart canvas').length === 12")
    assert frame.locator(".view-switch button.active").text_content() == "Weights"
    assert frame.locator(".layer-select").input_value() == "lstm/lstm_cell"
    assert frame.locator(".stat-select").input_value() == "nonfinite"
    assert frame.locator(".run-list label", has_text="nan/train").locator("input").is_checked()
    (chart,) = marked(frame)
    assert chart["section"] == "gates"
    assert (chart["data"]["part"], chart["data"]["gate"], chart["data"]["markStep"]) == (
        "recurrent",
        "forget",
        str(findings_runs.NAN_STEP),
    )
    assert chart["inView"], "the marked chart is scrolled into view"
    pixels = dict(
        zip(
            frame.evaluate(
                "() => [...document.querySelectorAll('.gates .chart')].filter((c) => c.querySelector('canvas'))"
                ".map((c) => c.dataset.part + '/' + c.dataset.gate)"
            ),
            mark_pixels(frame, ".gates .chart canvas"),
        )
    )
    assert pixels.pop("recurrent/forget") > 50, "the step marker is drawn"
    assert set(pixels.values()) == {0}, "no other chart gets a marker"
    assert frame.locator(".findings tr.finding.selected").count() == 1
    page.screenshot("finding_weights.png")


def test_clicking_a_probe_finding_marks_its_gate_in_the_activations_grid(page, url):
    frame = open_findings(page, url)
    click_finding(frame, "gates/train", "forget_shut")
    assert frame.locator(".view-switch button.active").text_content() == "Activations"
    assert frame.locator(".layer-select").input_value() == SHUT_LAYER
    (chart,) = marked(frame)
    assert chart["section"] == "activations"
    assert (chart["data"]["stat"], chart["data"]["gate"], chart["data"]["markStep"]) == (
        "retention",
        "forget",
        "0",
    )
    assert mark_pixels(frame, ".activations .chart.marked canvas")[0] > 50
    # The scatter shows the finding's gate.
    assert frame.locator(".sat-gate").input_value() == "forget"


def test_clicking_regularization_dominates_marks_the_models_penalty(page, url):
    frame = open_findings(page, url)
    click_finding(frame, "over_regularized/train", "regularization_dominates")
    (chart,) = marked(frame)
    assert chart["section"] == "regularization"
    assert (chart["data"]["layer"], chart["data"]["stat"], chart["data"]["markStep"]) == (
        "model",
        "penalty",
        "1",
    )
    assert chart["inView"]


def test_saturation_scatter_draws_one_dot_per_unit_at_the_chosen_step(page, url):
    frame = page.open_tab(url)
    choose(frame, ".layer-select", SHUT_LAYER)
    frame.locator(".view-switch button[data-view=activations]").click()
    canvas = frame.locator(".sat-canvas")
    canvas.wait_for(state="visible", timeout=30000)
    assert (
        frame.locator(".sat-gate").evaluate("(c) => c.labels[0].querySelector('.label').textContent")
        == "Gate"
    )
    frame.wait_for_function("() => window.canvasArcs(document.querySelector('.sat-canvas')) > 0")
    # Only gates/train has a probe: one dot per unit.
    assert canvas.evaluate("(c) => window.canvasArcs(c)") == UNITS
    assert canvas.get_attribute("data-dots") == str(UNITS)
    dots = canvas_stats(frame, ".sat-canvas", {"gates": "#425066"})[0]["counts"]["gates"]
    assert dots > 0, "the dots are in the run's colour"
    last = findings_runs.EPOCHS
    assert frame.locator(".saturation .message").text_content().endswith(f"gates/train at epoch {last}.")

    frame.locator(".sat-step").fill("0")
    frame.wait_for_function(
        "() => document.querySelector('.saturation .message').textContent.endsWith('at epoch 0.')"
    )
    assert canvas.evaluate("(c) => window.canvasArcs(c)") == UNITS
    # The input gate of the shut layer is not forced: at step 0 no unit saturates, every dot at (0, 0).
    (origin,) = {tuple(p) for p in canvas.evaluate("(c) => window.arcCentres(c)")}
    choose(frame, ".sat-gate", "forget")
    frame.wait_for_function(
        "() => document.querySelector('.saturation .message').textContent.startsWith('forget gate')"
    )
    # The forget gate (bias -10) is below 0.1 at every time step: every dot at (1, 0), right of the origin.
    dots = canvas.evaluate("(c) => window.arcCentres(c)")
    assert len(dots) == UNITS
    (shut,) = {tuple(p) for p in dots}
    assert shut[1] == origin[1] and shut[0] - origin[0] > 200
    assert frame.evaluate(UNNAMED_CONTROLS) == []
    page.screenshot("saturation_scatter.png")


@pytest.fixture(scope="module")
def healthy_url(tmp_path_factory):
    root = tmp_path_factory.mktemp("healthy_logs")
    findings_runs.train_healthy(root)
    with tensorboard(root) as base:
        yield base


def test_with_no_findings_the_panel_is_one_line_and_opens_when_findings_come(page, healthy_url, url):
    frame = page.open_tab(healthy_url)
    headline = frame.locator(".findings .findings-headline")
    headline.filter(has_text="No findings in 1 run.").wait_for(timeout=60000)
    assert frame.locator(".findings-body").is_hidden()
    panel = frame.locator(".findings").bounding_box()
    line = frame.locator(".findings summary").bounding_box()
    assert panel["height"] < line["height"] + 20, (panel, line)  # the summary line and the card's padding
    # Runs with findings: the list opens below the same line, at its fixed height.
    frame = open_findings(page, url)
    assert frame.locator(".findings-body").bounding_box()["height"] == pytest.approx(200, abs=1)
