"""Benchmark: `tb_lstm_gates.load()` on the scale bench's logs, here and in another checkout.

Writes `bench_scale.py`'s log directory (N runs x S steps x L `LSTM(units)`
layers, every statistic and histogram at every step), then times `load()`
of it in a fresh process per checkout (median of `--repeats` calls after
one warm-up, so the page cache is warm for both) and prints the time, the
records read and whether the process imported TensorFlow.

`--baseline DIR` times the reader of another checkout as well (e.g. one
before the package read event files itself: `git archive eaa84fd | tar -x
-C /tmp/before`).

    python benchmarks/bench_load.py [--runs 2 --steps 10000 --layers 2 --units 32] [--baseline DIR]
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

from bench_scale import WRITER
from common import print_table

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

TIMER = """
import statistics, sys, time
t = time.perf_counter()
from tb_lstm_gates.logs import reader
imported = time.perf_counter() - t
times = []
for _ in range(int(sys.argv[2]) + 1):
    t = time.perf_counter()
    records = reader.load(sys.argv[1])
    times.append(time.perf_counter() - t)
print(imported, statistics.median(times[1:]), len(records), "tensorflow" in sys.modules)
"""


def time_load(checkout, logdir, repeats):
    out = subprocess.run(
        [sys.executable, "-c", TIMER, logdir, str(repeats)],
        env=dict(os.environ, PYTHONPATH=checkout),
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return float(out[0]), float(out[1]), int(out[2]), out[3] == "True"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--steps", type=int, default=10000)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--units", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline", help="another tb-lstm-gates checkout to time as well")
    args = parser.parse_args(argv)
    root = tempfile.mkdtemp(prefix="bench_load_")
    try:
        t = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", WRITER, root, *map(str, (args.runs, args.steps, args.layers, args.units))],
            env=dict(os.environ, PYTHONPATH=REPO),
            check=True,
            capture_output=True,
        )
        disk = sum(os.path.getsize(os.path.join(d, n)) for d, _, names in os.walk(root) for n in names)
        rows = [
            (
                "log directory",
                "%d runs x %d steps x %d LSTM(%d) layers, %.1f MB (written in %.0f s)"
                % (args.runs, args.steps, args.layers, args.units, disk / 1e6, time.perf_counter() - t),
            )
        ]
        checkouts = [("this checkout", REPO)]
        if args.baseline:
            checkouts.append(("baseline %s" % args.baseline, os.path.abspath(args.baseline)))
        for name, checkout in checkouts:
            imported, seconds, records, tensorflow = time_load(checkout, root, args.repeats)
            rows += [
                ("%s: load()" % name, "%.2f s (%d records)" % (seconds, records)),
                ("%s: import of the reader" % name, "%.2f s" % imported),
                ("%s: imports TensorFlow" % name, "yes" if tensorflow else "no"),
            ]
        print_table(rows)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
