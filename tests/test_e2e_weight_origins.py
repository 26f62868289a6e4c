"""The Weights view's layer header names where a layer's weights come from: a real
TensorBoard, headless Chromium, logs of an AWD-LSTM (weight drop) and a parametrized LSTM
written by `GateLogger` (models of tests/test_torch_weight_wrappers.py).
"""

import pytest
from test_e2e_browser import CHROMIUM, Page, choose, tensorboard
from test_torch_weight_wrappers import parametrized, train

from tb_lstm_gates import torch as tg

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)"
)


def test_the_layer_header_names_the_weights_origin_and_says_nothing_for_parameters(browser, tmp_path):
    model = train("salesforce", steps=1)
    model.extra = parametrized("orthogonal")
    with tg.GateLogger(tmp_path / "awd") as logger:
        logger.log(model, 0)
        logger.log(model, 1)
    page = Page(browser)
    try:
        with tensorboard(tmp_path) as url:
            frame = page.open_tab(url)
            header = frame.locator(".weight-origins")
            shown = {}
            for layer in ("rnns/0/module/l0", "extra/l0", "extra/l0_reverse"):
                choose(frame, ".layer-select", layer)
                frame.wait_for_function(
                    "(layer) => [...document.querySelectorAll('.layer-name')].some((e) => e.textContent === layer)",
                    arg=layer,
                    timeout=30000,
                )
                shown[layer] = header.all_text_contents()
        assert shown == {
            "rnns/0/module/l0": [" · recurrent: weight drop: weight_hh_l0_raw"],
            "extra/l0": [" · recurrent: parametrized: orthogonal"],
            "extra/l0_reverse": [],
        }
        assert page.errors == []
    finally:
        page.close()
