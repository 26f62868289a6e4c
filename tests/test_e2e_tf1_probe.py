"""A TF1 run probed by LSTMGatesHook shows data in the tab's Activations and Text views.

Real parts: a TF1 graph (the seed's model, small: embeddings into a
`bidirectional_dynamic_rnn` of `LSTMCell`s) trained in its own process with
`TF_USE_LEGACY_KERAS=1`, a real TensorBoard, headless Chromium.
"""

import os
import subprocess
import sys

import pytest
from test_e2e_browser import CHROMIUM, Page, choose, tensorboard

from tb_lstm_gates.logs import reader

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)"
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAYER = "doc_word/bw/lstm_cell"
VOCAB = ["<pad>"] + "the a cat dog sat ran on mat".split()
LENGTHS = [7, 3, 5]
TRAIN = """
import numpy as np
import tensorflow as tf
from tb_lstm_gates.tf1 import LSTMGatesHook

v1 = tf.compat.v1
v1.disable_eager_execution()
vocab = %r
ids = v1.placeholder(tf.int32, [None, None])
lengths = v1.placeholder(tf.int32, [None])
x = tf.nn.embedding_lookup(v1.get_variable("embeddings", [len(vocab), 8]), ids)
(fw, bw), _ = v1.nn.bidirectional_dynamic_rnn(
    v1.nn.rnn_cell.LSTMCell(6), v1.nn.rnn_cell.LSTMCell(6), x,
    sequence_length=lengths, dtype=tf.float32, scope="doc_word")
loss = tf.reduce_mean(tf.square(tf.concat([fw, bw], -1) - 0.5))
step = v1.train.get_or_create_global_step()
train = v1.train.AdamOptimizer(1e-2).minimize(loss, global_step=step)
rng = np.random.default_rng(0)
probe = {ids: rng.integers(1, len(vocab), (3, 7)), lengths: np.array(%r)}
hook = LSTMGatesHook(%r, every_n_steps=2, probe=probe, probe_tokens=vocab)
with v1.train.MonitoredTrainingSession(hooks=[hook]) as sess:
    for _ in range(4):
        sess.run(train, {ids: rng.integers(1, len(vocab), (4, 7)), lengths: [7, 6, 5, 4]})
"""


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    root = tmp_path_factory.mktemp("tf1_logs")
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    script = TRAIN % (VOCAB, LENGTHS, os.fspath(root / "tf1"))
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return root


@pytest.fixture(scope="module")
def url(logs):
    with tensorboard(logs) as url:
        yield url


@pytest.fixture
def page(browser):
    p = Page(browser)
    yield p
    p.close()
    assert p.errors == [], "browser console errors: %s" % p.errors


def test_activations_view_of_a_tf1_run_draws_the_gates_and_the_map(page, url):
    frame = page.open_tab(url)
    choose(frame, ".layer-select", LAYER)
    frame.locator(".view-switch button[data-view=activations]").click()
    drawn = """(selector) => { const c = [...document.querySelectorAll(selector)];
      return c.length > 0 && c.every((x) => x.getContext("2d").getImageData(0, 0, x.width, x.height)
        .data.some((v) => v > 0)); }"""
    frame.wait_for_function(drawn, arg=".activations .chart canvas", timeout=60000)
    frame.wait_for_function(drawn, arg=".map-canvas", timeout=60000)
    page.screenshot("tf1_activations.png")


def test_text_view_of_a_tf1_run_shows_the_probe_tokens_over_their_valid_steps(page, url, logs):
    frame = page.open_tab(url)
    choose(frame, ".layer-select", LAYER)
    frame.locator(".view-switch button[data-view=text]").click()
    frame.wait_for_function("() => document.querySelectorAll('.text-sequence').length === 3", timeout=60000)
    shown = frame.evaluate(
        """() => [...document.querySelectorAll('.text-sequence')].map((line) =>
             [...line.querySelectorAll('.token')].map((t) => ({text: t.textContent, value: t.dataset.value})))"""
    )
    tokens = next(r.value for r in reader.load(logs) if r.stat == "probe_tokens")
    assert [[t["text"] for t in line] for line in shown] == [list(row) for row in tokens]
    # The valid steps carry values; the steps past each sequence's length do not.
    for line, n in zip(shown, LENGTHS):
        assert all(t["value"] not in (None, "", "NaN") for t in line[:n]), line
    page.screenshot("tf1_text.png")
