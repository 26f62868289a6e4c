"""A real `tensorboard` process serves every step of a long run with default flags, and
a run longer than `--samples_per_plugin lstm_gates=N` thinned evenly with its first and last step."""

import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import plugin_logs
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The loader of this checkout is handed to TensorBoard directly, as
# TensorBoard does with an entry point's loader; installed entry points are
# left out, so an installed tb-lstm-gates (another checkout) does not clash.
LAUNCHER = """
import sys
from tensorboard import default, program
from tb_lstm_gates.plugin.loader import LSTMGatesLoader

tensorboard = program.TensorBoard(plugins=default.get_static_plugins() + [LSTMGatesLoader()])
tensorboard.configure(sys.argv)
sys.exit(tensorboard.main())
"""
SERVING = re.compile(r"TensorBoard \S+ at (http://127\.0\.0\.1:\d+/)")


@pytest.fixture(scope="module")
def logdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("long_logs")
    plugin_logs.write_long_run(os.fspath(root / plugin_logs.LONG_RUN))
    return root


class TensorBoardProcess:
    """`tensorboard --logdir D --host 127.0.0.1 --port 0` and the URL it serves at."""

    def __init__(self, launcher, logdir, *flags):
        self.stderr = []
        self.url = None
        self._ready = threading.Event()
        self._process = subprocess.Popen(
            [sys.executable, launcher, "--logdir", logdir, "--host", "127.0.0.1", "--port", "0", *flags],
            env=dict(os.environ, PYTHONPATH=REPO),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        # Drained all along: TensorBoard blocks once a full pipe is not read.
        threading.Thread(target=self._read_stderr, daemon=True).start()
        if not self._ready.wait(120) or self.url is None:
            self.stop()
            raise AssertionError("TensorBoard did not start:\n" + "".join(self.stderr))

    def _read_stderr(self):
        for line in self._process.stderr:
            self.stderr.append(line)
            match = SERVING.search(line)
            if match:
                self.url = match.group(1)
                self._ready.set()
        self._ready.set()

    def get_json(self, path, **params):
        url = self.url + path + ("?" + urllib.parse.urlencode(params) if params else "")
        with urllib.request.urlopen(url, timeout=30) as response:
            return json.load(response)

    def stop(self):
        self._process.terminate()
        try:
            self._process.wait(20)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


@pytest.fixture(scope="module")
def launcher(tmp_path_factory):
    path = tmp_path_factory.mktemp("launcher") / "tensorboard_with_lstm_gates.py"
    path.write_text(LAUNCHER)
    return os.fspath(path)


@pytest.mark.parametrize("load_fast", ["true", "false"])
def test_tensorboard_with_default_flags_serves_all_1000_steps(launcher, logdir, load_fast):
    tensorboard = TensorBoardProcess(
        launcher, os.fspath(logdir), "--load_fast", load_fast, "--reload_interval", "1"
    )
    try:
        series_params = dict(run=plugin_logs.LONG_RUN, layer=plugin_logs.LONG_LAYER, stat="l2")
        histogram_params = dict(
            run=plugin_logs.LONG_RUN, layer=plugin_logs.LONG_LAYER, part="recurrent", gate="forget"
        )
        deadline = time.time() + 90
        while True:
            try:
                (series,) = tensorboard.get_json("data/plugin/lstm_gates/series", **series_params)["series"]
                histograms = tensorboard.get_json("data/plugin/lstm_gates/histograms", **histogram_params)
                if len(series["steps"]) == len(histograms["histograms"]) == plugin_logs.LONG_STEPS:
                    break
            except urllib.error.HTTPError as e:
                if e.code != 404:  # 404 until the first load
                    raise
            assert time.time() < deadline, "TensorBoard did not serve all steps:\n" + "".join(
                tensorboard.stderr
            )
            time.sleep(0.5)
        steps = list(range(plugin_logs.LONG_STEPS))
        assert series["steps"] == steps
        assert series["values"] == [plugin_logs.long_value(s) for s in steps]
        assert [h["step"] for h in histograms["histograms"]] == steps
        listing = tensorboard.get_json("data/plugins_listing")["lstm_gates"]
        assert listing["enabled"] is True
        assert listing["tab_name"] == "LSTM Gates"
    finally:
        tensorboard.stop()


CAP = 50
CAPPED_FIRST_STEP = 3
CAPPED_STEPS = 1234


@pytest.fixture(scope="module")
def capped_logdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("capped_logs")
    plugin_logs.write_long_run(
        os.fspath(root / plugin_logs.LONG_RUN), steps=CAPPED_STEPS, first_step=CAPPED_FIRST_STEP
    )
    return root


def _serve_until_last_step(tensorboard, path, params, steps_of, last):
    deadline = time.time() + 90
    while True:
        try:
            body = tensorboard.get_json("data/plugin/lstm_gates/" + path, **params)
            if steps_of(body) and steps_of(body)[-1] == last:
                return body
        except urllib.error.HTTPError as e:
            if e.code != 404:
                raise
        assert time.time() < deadline, "TensorBoard did not serve the last step:\n" + "".join(
            tensorboard.stderr
        )
        time.sleep(0.5)


@pytest.mark.parametrize("load_fast", ["true", "false"])
def test_a_series_longer_than_the_cap_is_thinned_evenly_with_its_first_and_last_step(
    launcher, capped_logdir, load_fast
):
    """1234 steps from step 3 with a cap of 50 points: TensorBoard keeps a random 50 of the
    every-point series and of the every-10th-step one, all 13 points of the every-100th-step
    one; the tab serves those and the last step."""
    tensorboard = TensorBoardProcess(
        launcher,
        os.fspath(capped_logdir),
        "--load_fast",
        load_fast,
        "--reload_interval",
        "1",
        "--samples_per_plugin",
        "lstm_gates=%d" % CAP,
    )
    last = CAPPED_FIRST_STEP + CAPPED_STEPS - 1
    expected = [CAPPED_FIRST_STEP] + list(range(100, last, 100)) + [last]
    try:
        body = _serve_until_last_step(
            tensorboard,
            "series",
            dict(layer=plugin_logs.LONG_LAYER, stat="l2", samples=10000),
            lambda body: body["series"][0]["steps"],
            last,
        )
        (series,) = body["series"]
        assert series["steps"] == expected
        assert series["values"] == [plugin_logs.long_value(s) for s in expected]
        # Asked again, the route lists only the layer's tags (known from the first listing),
        # the stride series among them since this run is past the cap: the same answer.
        again = tensorboard.get_json(
            "data/plugin/lstm_gates/series", layer=plugin_logs.LONG_LAYER, stat="l2", samples=10000
        )
        assert again["series"][0]["steps"] == expected
        body = _serve_until_last_step(
            tensorboard,
            "histograms",
            dict(run=plugin_logs.LONG_RUN, layer=plugin_logs.LONG_LAYER, part="recurrent", gate="forget"),
            lambda body: [h["step"] for h in body["histograms"]],
            last,
        )
        assert [h["step"] for h in body["histograms"]] == expected
        assert [h["buckets"][0][2] for h in body["histograms"]] == expected
    finally:
        tensorboard.stop()
