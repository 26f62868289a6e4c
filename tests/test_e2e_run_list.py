"""The run list of a sweep in the tab: filter, show all or none of the filtered runs.

A real `tensorboard` on 60 small runs and headless Chromium.
"""

import json
import os
import time
import urllib.parse
import urllib.request

import numpy as np
import pytest
from test_e2e_browser import page, tensorboard  # noqa: F401 (fixture)

from tb_lstm_gates.core import layouts
from tb_lstm_gates.logs import summary

RUNS = ["run_%02d" % k for k in range(60)]
FILTERED = ["run_1%d" % k for k in range(10)]


@pytest.fixture(scope="module")
def sweep_url(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep_logs")
    rng = np.random.default_rng(0)
    for run in RUNS:
        writer = summary.GateSummaryWriter(os.fspath(root / run))
        logger = summary.CellLogger(writer, bins=4)
        for step in range(2):
            arrays = {
                "kernel": rng.normal(size=(2, 8)).astype(np.float32),
                "recurrent_kernel": rng.normal(size=(2, 8)).astype(np.float32),
                "bias": np.zeros(8, np.float32),
            }
            logger.log_cell("lstm/lstm_cell", layouts.keras_lstm(), arrays, histograms=False)
            writer.end_step(step)
        writer.close()
    with tensorboard(root) as url:
        # The tab lists the runs TensorBoard has loaded when it asks: wait for all of them.
        deadline = time.time() + 60
        while True:
            with urllib.request.urlopen(url + "data/plugin/lstm_gates/runs") as answer:
                if len(json.load(answer)["runs"]) == len(RUNS):
                    break
            assert time.time() < deadline, "TensorBoard did not load the 60 runs"
            time.sleep(0.5)
        yield url


def shown_runs(frame):
    """The listed runs and whether each is shown (its box checked)."""
    return frame.evaluate(
        "() => Object.fromEntries([...document.querySelectorAll('.run-list input')]"
        ".map((box) => [box.dataset.run, box.checked]))"
    )


def series_runs(request):
    return urllib.parse.parse_qs(urllib.parse.urlparse(request.url).query).get("run", [])


def test_run_list_filters_and_shows_all_or_none_of_the_filtered_runs(page, sweep_url):  # noqa: F811
    frame = page.open_tab(sweep_url)
    count = frame.locator(".run-count")
    assert list(shown_runs(frame)) == RUNS
    assert count.text_content() == "60 shown"
    swatch = (
        "(run) => document.querySelector(`.run-list input[data-run='${run}'] ~ .swatch`).style.background"
    )
    colour = frame.evaluate(swatch, "run_13")

    frame.locator(".run-filter").fill("^RUN_1")  # a case-insensitive regex, as TensorBoard's
    frame.wait_for_function("() => document.querySelectorAll('.run-list input').length === 10")
    assert list(shown_runs(frame)) == FILTERED
    assert frame.evaluate(swatch, "run_13") == colour  # colours follow a run, not its place in the list

    frame.locator("button.runs-none").click()
    assert count.text_content() == "0 shown (10 of 60 listed)"
    assert frame.locator(".gates .message").text_content() == "No run selected."

    # Cleared, the filter lists every run again: only the filtered ones were hidden, and the
    # charts ask for the 50 others, once typing pauses.
    with page.page.expect_request(lambda r: "/lstm_gates/series?" in r.url) as request:
        frame.locator(".run-filter").fill("")
    assert sorted(series_runs(request.value)) == [r for r in RUNS if r not in FILTERED]
    shown = shown_runs(frame)
    assert [r for r, on in shown.items() if not on] == FILTERED
    assert count.text_content() == "50 shown"

    frame.locator(".run-filter").fill("run_1")  # a substring is a regex too
    frame.wait_for_function("() => document.querySelectorAll('.run-list input').length === 10")
    with page.page.expect_request(lambda r: "/lstm_gates/series?" in r.url) as request:
        frame.locator("button.runs-all").click()
    assert sorted(series_runs(request.value)) == FILTERED
    frame.locator(".run-filter").fill("")
    frame.wait_for_function("() => document.querySelectorAll('.run-list input:checked').length === 60")
    assert count.text_content() == "60 shown"
