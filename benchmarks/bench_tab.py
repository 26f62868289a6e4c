"""Benchmark: the LSTM Gates tab on a big log directory, beside TensorBoard's scalars.

Writes 20 runs x 500 steps x 2 LSTM layers with the callback's own writer
(every statistic and histogram of every block, from real weight arrays that
drift like training), plus, in the same runs, the same `l2` points as plain
TensorBoard scalars. Then, against one real `tensorboard` process:

- times every request the tab makes when it opens (`runs`, then `series` of
  the first layer's `l2` for all runs), against the requests TensorBoard's
  own Scalars dashboard makes for the same points (`scalars_multirun`, one
  per tag, all runs);
- opens the tab in headless Chromium and times the first full render: from
  the tab's iframe starting to load until every chart of the grid holds the
  drawn lines of all runs.

Prints a table; exits non-zero only on error.

    python benchmarks/bench_tab.py [--runs 20 --steps 500 --repeats 5] [--load_fast true|false]
"""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

import numpy as np
from common import median_time, print_table
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins.scalar import metadata as scalar_metadata
from tensorboard.summary.writer.event_file_writer import EventFileWriter
from tensorboard.util import tensor_util

from tb_lstm_gates.core import layouts
from tb_lstm_gates.logs import summary

UNITS = 32
LAYERS = ("model/lstm/lstm_cell", "model/lstm_1/lstm_cell")
STARTED = re.compile(r"TensorBoard \S+ at (http://\S+) ")


def write_logs(root, runs, steps):
    """Returns the number of `l2` points of the first layer, over all runs."""
    rng = np.random.default_rng(0)
    layout = layouts.keras_lstm()
    points = 0
    for r in range(runs):
        run_dir = os.path.join(root, "run_%02d" % r)
        writer = summary.GateSummaryWriter(run_dir)
        logger = summary.CellLogger(writer)
        scalars = EventFileWriter(run_dir, filename_suffix=".scalars")
        tagged = set()
        weights = {
            layer: {
                "kernel": rng.normal(0, 0.3, (UNITS, 4 * UNITS)).astype("float32"),
                "recurrent_kernel": rng.normal(0, 0.3, (UNITS, 4 * UNITS)).astype("float32"),
                "bias": np.zeros(4 * UNITS, "float32"),
            }
            for layer in LAYERS
        }
        for step in range(steps):
            plain = []
            for layer in LAYERS:
                arrays = {
                    k: v + rng.normal(0, 0.01, v.shape).astype("float32") for k, v in weights[layer].items()
                }
                weights[layer] = arrays
                logger.log_cell(layer, layout, arrays)
            # The first layer's l2 points again, as plain scalars for the Scalars dashboard.
            for part, gates, view in layout.blocks(weights[LAYERS[0]]):
                for g, gate in enumerate(gates):
                    tag = "%s/%s/%s/l2" % (LAYERS[0], part, gate)
                    value = summary_pb2.Summary.Value(
                        tag=tag,
                        tensor=tensor_util.make_tensor_proto(np.float32(np.linalg.norm(view[..., g, :]))),
                    )
                    if tag not in tagged:
                        tagged.add(tag)
                        value.metadata.CopyFrom(scalar_metadata.create_summary_metadata(tag, ""))
                    plain.append(value)
            points += len(plain)
            writer.end_step(step)
            scalars.add_event(
                event_pb2.Event(step=step, wall_time=time.time(), summary=summary_pb2.Summary(value=plain))
            )
        writer.close()
        scalars.close()
    return points


class TensorBoard:
    """A real `tensorboard` process on 127.0.0.1 with an ephemeral port."""

    def __init__(self, logdir, load_fast):
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tensorboard.main",
                "--logdir",
                logdir,
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--load_fast",
                load_fast,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for line in self.process.stderr:
            match = STARTED.search(line)
            if match:
                self.url = match.group(1).rstrip("/") + "/"
                break
        else:
            raise RuntimeError("tensorboard did not start")

    def get(self, path, data=None):
        request = urllib.request.Request(self.url + path, data=data)
        if data is not None:
            request.add_header("Content-Type", "application/x-www-form-urlencoded")
            request.add_header("X-TensorBoard-Feature-Flags", "{}")
        with urllib.request.urlopen(request, timeout=300) as response:
            return response.read()

    def wait_loaded(self, runs, points):
        """Waits until TensorBoard has read every point of every run."""
        import json

        deadline = time.time() + 900
        while time.time() < deadline:
            listed = json.loads(self.get("data/plugin/lstm_gates/runs"))["runs"]
            if len(listed) == runs:
                series = self.tab_requests(listed)
                if sum(len(s["steps"]) for s in series["series"]) == points:
                    return listed
            time.sleep(2)
        raise RuntimeError("tensorboard did not load the logs in time")

    def tab_requests(self, listed=None):
        """What the tab fetches when it opens: runs, then the first layer's l2 for every run."""
        import json

        if listed is None:
            listed = json.loads(self.get("data/plugin/lstm_gates/runs"))["runs"]
        layer = sorted(layer["layer"] for layer in listed[0]["layers"])[0]
        query = [("layer", layer), ("stat", "l2")] + [("run", r["run"]) for r in listed]
        return json.loads(self.get("data/plugin/lstm_gates/series?" + urllib.parse.urlencode(query)))

    def scalars_requests(self, runs, tags):
        """What the Scalars dashboard fetches for the same points: one multirun request per tag."""
        for tag in tags:
            body = urllib.parse.urlencode([("tag", tag)] + [("runs", r) for r in runs]).encode()
            self.get("data/plugin/scalars/scalars_multirun", body)

    def close(self):
        self.process.terminate()
        self.process.wait(timeout=30)


# TensorBoard's run palette, as the tab uses it (frontend/src/colors.js).
PALETTE = ["#425066", "#12b5cb", "#e52592", "#f9ab00", "#9334e6", "#7cb342", "#e8710a"]

# Runs in the tab's iframe: true once every chart of the grid has drawn lines
# in run colours.
CHARTS_DRAWN = """([expected, palette]) => {
  const canvases = [...document.querySelectorAll(".gates .chart canvas")];
  if (canvases.length < expected) return false;
  const colors = palette.map((hex) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)));
  return canvases.every((canvas) => {
    const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    let lines = 0;
    for (let i = 0; i < data.length; i += 4) {
      if (data[i + 3] < 200) continue;
      if (colors.some(([r, g, b]) => Math.abs(data[i] - r) + Math.abs(data[i + 1] - g) + Math.abs(data[i + 2] - b) < 30)) lines++;
    }
    return lines > 20;
  });
}"""


def first_render_seconds(url, n_charts):
    """`(render, data)`: seconds from the tab's iframe starting to load until
    every chart is drawn, and until the last data response arrived."""
    import shutil as sh

    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=sh.which("chromium"),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url + "#lstm_gates")
        page.wait_for_selector("iframe", state="attached", timeout=120000)
        frame = None
        deadline = time.perf_counter() + 120
        while frame is None:
            frame = next((f for f in page.frames if "plugin_entry.html" in f.url), None)
            if time.perf_counter() > deadline:
                raise RuntimeError("the tab's iframe did not load within 2 minutes")
            # Playwright's sync API takes in the page's events only inside its own calls:
            # time.sleep here could wait forever for a frame that had already come.
            page.wait_for_timeout(5)
        frame.wait_for_function(CHARTS_DRAWN, arg=[n_charts, PALETTE], timeout=120000, polling="raf")
        elapsed = frame.evaluate("performance.now()") / 1000
        data = (
            frame.evaluate(
                "Math.max(...performance.getEntriesByType('resource')"
                ".filter((e) => e.name.includes('/data/plugin/lstm_gates/') && !e.name.includes('/static/'))"
                ".map((e) => e.responseEnd))"
            )
            / 1000
        )
        browser.close()
        return elapsed, data


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--load_fast", default="true", choices=["true", "false"])
    args = parser.parse_args(argv)

    root = tempfile.mkdtemp(prefix="bench_tab_")
    try:
        t = time.perf_counter()
        points = write_logs(root, args.runs, args.steps)
        write_seconds = time.perf_counter() - t
        board = TensorBoard(root, args.load_fast)
        try:
            listed = board.wait_loaded(args.runs, points)
            runs = [r["run"] for r in listed]
            layer = sorted(layer["layer"] for layer in listed[0]["layers"])[0]
            tags = [
                "%s/%s/%s/l2" % (layer, part, gate)
                for part in ("input", "recurrent", "bias")
                for gate in layouts.KERAS_LSTM_ORDER
            ]
            t_tab = median_time(board.tab_requests, args.repeats)
            t_scalars = median_time(lambda: board.scalars_requests(runs, tags), args.repeats)
            renders = [first_render_seconds(board.url, len(tags)) for _ in range(max(1, args.repeats // 2))]
        finally:
            board.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)

    rows = [
        (
            "log directory",
            "%d runs x %d steps x %d LSTM layers (written in %.0f s)"
            % (args.runs, args.steps, len(LAYERS), write_seconds),
        ),
        (
            "loader",
            "RustBoard (--load_fast=true)" if args.load_fast == "true" else "Python (--load_fast=false)",
        ),
        ("points the tab shows on open", "%d (%d series)" % (points, len(tags) * args.runs)),
        ("tab: requests on open (runs + series)", "%.0f ms" % (t_tab * 1e3)),
        ("scalars plugin: same points (%d x scalars_multirun)" % len(tags), "%.0f ms" % (t_scalars * 1e3)),
        ("tab / scalars plugin (target <= 1)", "%.2f" % (t_tab / t_scalars)),
        (
            "first full render in headless Chromium (target < 1.5 s)",
            "%.2f s (median of %d)" % (statistics.median(r for r, _ in renders), len(renders)),
        ),
        ("  of which until the last data response", "%.2f s" % statistics.median(d for _, d in renders)),
    ]
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
