"""Benchmark: long runs and sweeps, on disk and in a real TensorBoard.

Writes N runs x S steps x L `LSTM(units)` layers with the real writer
(`summary.CellLogger` on weights that drift like training, every statistic
and a histogram of every gate block at every step, as the callback with
`update_freq=1, histogram_freq=1`), then, for each loader, starts a real
`tensorboard` on them and prints:

- disk per layer-step (event file bytes / (N x S x L));
- TensorBoard memory above its empty baseline, per layer-step: resident
  memory of the `tensorboard` process and its children (RustBoard's data
  server), minus that of the same command on an empty log directory;
- the time from TensorBoard's start until the tab's `series` route answers
  the first and the last layer's `l2` of every run with every step;
- the tab's first full render in headless Chromium (as `bench_tab.py`).

`--sweep N [N ...]` measures a sweep instead: one run of 100 epochs x 4
`LSTM(units)` cells, with a probe (activation statistics, per-unit
saturation and activation maps) and histograms, its event files copied
under N run names; a real RustBoard (`--load_fast=true`) serves them, and
once every step is loaded the table gives, per N, the time of `runs`, of
`series` (every run, one layer's `l2`), of `findings` cold (until every
run is checked) and warm, and of the first full render in Chromium. The
first `series` and the first render come from a TensorBoard that has not
answered them before (nothing kept), "again" from the same one after.

`--checkout DIR` writes and serves with the tb-lstm-gates of another
checkout (e.g. version 1 of the data contract: `git archive 7124d5e`),
for a before/after table; its `plugin/static` must hold a built frontend.

    python benchmarks/bench_scale.py [--runs 2 --steps 10000 --layers 2 --units 32]
        [--load_fast true false] [--checkout DIR] [--render]
    python benchmarks/bench_scale.py --sweep 100 500 2000 [--checkout DIR]
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

from common import print_table

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
SERVING = re.compile(r"TensorBoard \S+ at (http://127\.0\.0\.1:\d+/)")

# Run in a subprocess with the checkout on its path, so "before" writes
# with the writer of that checkout.
WRITER = """
import os, sys
import numpy as np
from tb_lstm_gates.core import layouts
from tb_lstm_gates.logs import summary

root, runs, steps, layers, units = sys.argv[1], *map(int, sys.argv[2:6])
rng = np.random.default_rng(0)
layout = layouts.keras_lstm()
names = ["model/lstm_%d/lstm_cell" % k for k in range(layers)]
for r in range(runs):
    writer = summary.GateSummaryWriter(os.path.join(root, "run_%03d" % r))
    logger = summary.CellLogger(writer)
    weights = {
        name: {
            "kernel": rng.normal(0, 0.3, (units, 4 * units)).astype("float32"),
            "recurrent_kernel": rng.normal(0, 0.3, (units, 4 * units)).astype("float32"),
            "bias": np.zeros(4 * units, "float32"),
        }
        for name in names
    }
    noise = rng.normal(0, 0.01, (64, units, 4 * units)).astype("float32")
    for step in range(steps):
        for k, name in enumerate(names):
            # Drift by one of a few precomputed noise draws: the writer, not
            # the random generator, should take the time.
            arrays = {key: v + noise[(step + k) % 64][: v.shape[0]] if v.ndim == 2 else v + noise[step % 64][0]
                      for key, v in weights[name].items()}
            weights[name] = arrays
            logger.log_cell(name, layout, arrays)
        writer.end_step(step)
    writer.close()
print(names[0], names[-1])
"""

# One run of a sweep: `steps` epochs after step 0 of `layers` LSTM cells,
# with histograms and a probe trace (from numpy's own LSTM on the weights),
# as the callback with `probe=..., histogram_freq=1` writes them.
SWEEP_WRITER = """
import sys
import numpy as np
from tb_lstm_gates.core import activations, layouts
from tb_lstm_gates.logs import summary

run_dir, steps, layers, units = sys.argv[1], *map(int, sys.argv[2:5])
rng = np.random.default_rng(0)
layout = layouts.keras_lstm()
names = ["model/lstm_%d/lstm_cell" % k for k in range(layers)]
weights = {
    name: {
        "kernel": rng.normal(0, 0.3, (units, 4 * units)).astype("float32"),
        "recurrent_kernel": rng.normal(0, 0.3, (units, 4 * units)).astype("float32"),
        "bias": np.zeros(4 * units, "float32"),
    }
    for name in names
}
probe = rng.normal(0, 1, (16, 20, units)).astype("float32")
writer = summary.GateSummaryWriter(run_dir)
logger = summary.CellLogger(writer)
for step in range(steps + 1):
    for name in names:
        weights[name] = {k: v + rng.normal(0, 0.01, v.shape).astype("float32") for k, v in weights[name].items()}
        logger.log_cell(name, layout, weights[name])
        summary.write_probe_trace(writer, name, activations.lstm(layout, weights[name], probe), maps=True)
    writer.end_step(step)
writer.close()
print(names[0])
"""

# The loader of the checkout handed to TensorBoard directly, as the plugin
# tests do, so an installed tb-lstm-gates does not clash.
LAUNCHER = """
import sys
from tensorboard import default, program
from tb_lstm_gates.plugin.loader import LSTMGatesLoader

tensorboard = program.TensorBoard(plugins=default.get_static_plugins() + [LSTMGatesLoader()])
tensorboard.configure(sys.argv)
sys.exit(tensorboard.main())
"""


def tree_rss(pid):
    """Resident bytes of process `pid` and all its descendants (from /proc)."""
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        try:
            with open("/proc/%d/status" % p) as f:
                total += next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))
            for task in os.listdir("/proc/%d/task" % p):
                with open("/proc/%d/task/%s/children" % (p, task)) as f:
                    stack.extend(int(c) for c in f.read().split())
        except (FileNotFoundError, ProcessLookupError, StopIteration):
            continue
    return total


class TensorBoard:
    """`tensorboard --logdir D --host 127.0.0.1 --port 0 --load_fast X` with the checkout's plugin."""

    def __init__(self, launcher, checkout, logdir, load_fast):
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            [
                sys.executable,
                launcher,
                "--logdir",
                logdir,
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--load_fast",
                load_fast,
                "--reload_interval",
                "5",
            ],
            env=dict(os.environ, PYTHONPATH=checkout),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for line in self.process.stderr:
            match = SERVING.search(line)
            if match:
                self.url = match.group(1)
                break
        else:
            raise RuntimeError("tensorboard did not start")
        # Drain stderr so TensorBoard never blocks on a full pipe.
        import threading

        threading.Thread(target=lambda: [None for _ in self.process.stderr], daemon=True).start()

    def get_json(self, path, params):
        url = self.url + "data/plugin/lstm_gates/" + path + "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=600) as response:
            return json.load(response)

    def every_step(self, layer, runs, steps, stat="l2", blocks=12):
        """Whether `series` serves `layer`'s `stat` (`blocks` series a run) of every run with every step."""
        params = [("layer", layer), ("stat", stat), ("samples", "10000")] + [("run", r) for r in runs]
        try:
            body = self.get_json("series", params)
        except urllib.error.HTTPError:
            return False
        lengths = {(s["run"], s["part"], s["gate"]): len(s["steps"]) for s in body["series"]}
        return len(lengths) == blocks * len(runs) and set(lengths.values()) == {steps}

    def rss(self):
        return tree_rss(self.process.pid)

    def close(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def baseline_rss(launcher, checkout, load_fast):
    """Resident bytes of the same TensorBoard on an empty log directory, once settled."""
    empty = tempfile.mkdtemp(prefix="bench_scale_empty_")
    board = TensorBoard(launcher, checkout, empty, load_fast)
    try:
        time.sleep(8)
        return board.rss()
    finally:
        board.close()
        shutil.rmtree(empty, ignore_errors=True)


def serve(launcher, checkout, root, load_fast, runs, steps, layers, render):
    """`(memory above baseline, seconds until every step served, render seconds or None)`."""
    baseline = baseline_rss(launcher, checkout, load_fast)
    board = TensorBoard(launcher, checkout, root, load_fast)
    try:
        deadline = time.perf_counter() + 3600
        for layer in (layers[0], layers[-1]):
            while not board.every_step(layer, runs, steps):
                if time.perf_counter() > deadline:
                    raise RuntimeError("tensorboard did not serve every step within an hour")
                time.sleep(1)
            if layer == layers[0]:
                served = time.perf_counter() - board.started
        # Loaded: let the reload loop and the allocator settle, take the highest of a few reads.
        readings = []
        for _ in range(4):
            time.sleep(2)
            readings.append(board.rss())
        memory = max(readings) - baseline
        rendered = None
        if render:
            sys.path.insert(0, HERE)
            from bench_tab import first_render_seconds

            rendered = first_render_seconds(board.url, 12)[0]
        return memory, served, rendered
    finally:
        board.close()


def timed_json(board, path, params=()):
    """`(seconds, body)` of one request."""
    t = time.perf_counter()
    body = board.get_json(path, list(params))
    return time.perf_counter() - t, body


def findings_until_complete(board):
    """`(seconds until every run is checked, seconds of the first answer)` of `findings`.

    A route that answers before every run is checked lists the others in
    `pending`; the tab asks again until none is left, as this does.
    """
    t = time.perf_counter()
    first = None
    while True:
        body = board.get_json("findings", [])
        if first is None:
            first = time.perf_counter() - t
        if not body.get("pending"):
            return time.perf_counter() - t, first
        time.sleep(1.0)  # as the tab (findings.js POLL_MS)


def sweep(launcher, checkout, root, sizes, units):
    """Rows of the sweep table, one per number of runs in `sizes`, each yielded once measured."""
    epochs, layers = 100, 4
    source = os.path.join(root, "source")
    layer = subprocess.run(
        [sys.executable, "-c", SWEEP_WRITER, source, str(epochs), str(layers), str(units)],
        env=dict(os.environ, PYTHONPATH=checkout),
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()[-1]
    last_layer = layer.replace("lstm_0", "lstm_%d" % (layers - 1))
    for n in sizes:
        logdir = os.path.join(root, "sweep_%d" % n)
        runs = ["run_%04d" % r for r in range(n)]
        for run in runs:
            # Hard links, not copies: a run with its probe's sequences is about 20 MB, and
            # 2,000 copies would fill a shared disk; TensorBoard reads each link as its own file.
            shutil.copytree(source, os.path.join(logdir, run), copy_function=os.link)
        # As the tab asks: every run named, without wall times (which an
        # older plugin ignores, as any unknown parameter).
        series_params = [("layer", layer), ("stat", "l2"), ("wall_times", "false")] + [
            ("run", r) for r in runs
        ]
        sys.path.insert(0, HERE)
        from bench_tab import first_render_seconds

        # Two TensorBoards, so that each figure starts from nothing kept: the
        # routes on one; on the other, the first render (then a second page
        # load, as a reload of the tab).
        board = TensorBoard(launcher, checkout, logdir, "true")
        try:
            loaded = wait_loaded(board, runs, epochs, layer, last_layer)
            cold, first = findings_until_complete(board)
            series_cold = timed_json(board, "series", series_params)[0]
            series_s = statistics.median(timed_json(board, "series", series_params)[0] for _ in range(3))
            runs_s = statistics.median(timed_json(board, "runs")[0] for _ in range(3))
            warm = statistics.median(timed_json(board, "findings")[0] for _ in range(3))
        finally:
            board.close()
        board = TensorBoard(launcher, checkout, logdir, "true")
        try:
            wait_loaded(board, runs, epochs, layer, last_layer)
            rendered, data_at = first_render_seconds(board.url, 12)
            rendered_again = first_render_seconds(board.url, 12)[0]
        finally:
            board.close()
            shutil.rmtree(logdir, ignore_errors=True)
        yield (n, loaded, runs_s, series_cold, series_s, first, cold, warm, rendered, data_at, rendered_again)


def wait_loaded(board, runs, epochs, layer, last_layer):
    """Seconds from TensorBoard's start until it serves every step of the sweep."""
    deadline = time.perf_counter() + 1800
    # The probe is written after the weights of each cell: its last
    # layer's statistics come last in each run's event file.
    while not (
        board.every_step(layer, runs, epochs + 1)
        and board.every_step(last_layer, runs, epochs + 1, stat="act_mean", blocks=4)
    ):
        if time.perf_counter() > deadline:
            raise RuntimeError("tensorboard did not load the sweep within 30 minutes")
        time.sleep(2)
    return time.perf_counter() - board.started


def print_sweep(rows):
    print(
        "| runs | loaded after | `runs` | `series` (every run, one layer): first / again "
        "| `findings` first answer | `findings` cold (every run checked) | `findings` warm "
        "| first full render (its last data response) / again |"
    )
    print("| --- " * 8 + "|", flush=True)
    for n, loaded, runs_s, series_cold, series_s, first, cold, warm, rendered, data_at, again in rows:
        print(
            "| %d | %.0f s | %.2f s | %.2f / %.2f s | %.2f s | %.1f s | %.2f s | %.1f (%.1f) / %.1f s |"
            % (n, loaded, runs_s, series_cold, series_s, first, cold, warm, rendered, data_at, again),
            flush=True,
        )


def commit_of(checkout):
    """The short commit of `checkout` (with `+changes` if its tree differs), or `unknown` outside git."""
    git = ["git", "-C", checkout]
    try:
        commit = subprocess.run(
            git + ["rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        )
        dirty = subprocess.run(
            git + ["status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--steps", type=int, default=10000)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--units", type=int, default=32)
    parser.add_argument("--load_fast", nargs="+", default=["true", "false"], choices=["true", "false"])
    parser.add_argument("--checkout", default=REPO, help="tb-lstm-gates checkout to write and serve with")
    parser.add_argument("--render", action="store_true", help="also time the first render in Chromium")
    parser.add_argument("--sweep", type=int, nargs="+", metavar="N", help="measure sweeps of N runs instead")
    args = parser.parse_args(argv)
    checkout = os.path.abspath(args.checkout)

    root = tempfile.mkdtemp(prefix="bench_scale_")
    launcher = os.path.join(root, "launcher.py")
    logdir = os.path.join(root, "logs")
    with open(launcher, "w") as f:
        f.write(LAUNCHER)
    if args.sweep:
        try:
            print(
                "checkout %s at commit %s; one run of 100 epochs x 4 LSTM(%d) cells with probe and histograms"
                % (checkout, commit_of(checkout), args.units)
            )
            print_sweep(sweep(launcher, checkout, root, args.sweep, args.units))
        finally:
            shutil.rmtree(root, ignore_errors=True)
        return 0
    try:
        t = time.perf_counter()
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                WRITER,
                logdir,
                str(args.runs),
                str(args.steps),
                str(args.layers),
                str(args.units),
            ],
            env=dict(os.environ, PYTHONPATH=checkout),
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()
        write_seconds = time.perf_counter() - t
        layers = out[-2:]
        layer_steps = args.runs * args.steps * args.layers
        disk = sum(
            os.path.getsize(os.path.join(d, name)) for d, _, names in os.walk(logdir) for name in names
        )
        runs = ["run_%03d" % r for r in range(args.runs)]
        rows = [
            ("checkout", checkout),
            (
                "log directory",
                "%d runs x %d steps x %d LSTM(%d) layers, histograms on (written in %.0f s)"
                % (args.runs, args.steps, args.layers, args.units, write_seconds),
            ),
            ("disk", "%.1f MB" % (disk / 1e6)),
            ("disk per layer-step", "%.2f KB" % (disk / layer_steps / 1e3)),
        ]
        for load_fast in args.load_fast:
            name = "RustBoard" if load_fast == "true" else "Python loader"
            memory, served, rendered = serve(
                launcher, checkout, logdir, load_fast, runs, args.steps, layers, args.render
            )
            rows += [
                ("%s: memory above empty baseline" % name, "%.0f MB" % (memory / 1e6)),
                ("%s: memory per layer-step" % name, "%.2f KB" % (memory / layer_steps / 1e3)),
                ("%s: start until `series` serves every step" % name, "%.1f s" % served),
            ]
            if rendered is not None:
                rows.append(("%s: first full render in Chromium" % name, "%.2f s" % rendered))
        print_table(rows)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
