"""50 concurrent clients against a real `tensorboard` while a training process appends to the logs.

Prints the figures (run pytest with -s to see them): requests made, errors,
and latency percentiles, per loader.
"""

import json
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import numpy as np
import pytest
import worker_process
from test_plugin_tensorboard import TensorBoardProcess, launcher  # noqa: F401 (fixture)

CLIENTS = 50
REQUESTS_PER_CLIENT = 30
DEADLINE = 120  # seconds for all requests of all clients
EPOCHS = 40
LAYER = "lstm/lstm_cell"
UNITS = 4


def _get(url, timeout=30):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        assert response.status == 200
        return json.loads(response.read().decode("utf-8"))


def _strictly_increasing(steps):
    return all(a < b for a, b in zip(steps, steps[1:]))


def _check_series(body):
    """Problems in a `series` answer: every block has the same steps, strictly increasing, finite values."""
    problems = []
    steps = {tuple(s["steps"]) for s in body["series"]}
    if len(body["series"]) != 12 or len(steps) != 1:
        problems.append("blocks with different steps: %s" % sorted(map(len, steps)))
    for s in body["series"]:
        if not _strictly_increasing(s["steps"]) or None in s["values"] or len(s["values"]) != len(s["steps"]):
            problems.append("bad series %s/%s" % (s["part"], s["gate"]))
    return problems, max((len(s) for s in steps), default=0)


def _check_histograms(body):
    steps = [h["step"] for h in body["histograms"]]
    problems = [] if _strictly_increasing(steps) else ["histogram steps not increasing"]
    for h in body["histograms"]:
        if sum(row[2] for row in h["buckets"]) != UNITS * UNITS:
            problems.append("histogram at step %d does not count every weight" % h["step"])
    return problems, len(steps)


class Client(threading.Thread):
    def __init__(self, base, index, deadline):
        super().__init__(daemon=True)
        self.base, self.index, self.deadline = base, index, deadline
        self.latencies, self.errors, self.steps_seen = [], [], []

    def run(self):
        routes = [
            ("series", {"layer": LAYER, "stat": "l2", "run": "train"}, _check_series),
            (
                "histograms",
                {"layer": LAYER, "run": "train", "part": "recurrent", "gate": "forget"},
                _check_histograms,
            ),
            ("runs", {}, lambda body: ([] if body["runs"] else ["no runs"], 0)),
            ("regularization", {}, lambda body: ([], 0)),
        ]
        for k in range(REQUESTS_PER_CLIENT):
            if time.time() > self.deadline:
                self.errors.append("deadline passed after %d requests" % k)
                return
            path, params, check = routes[(self.index + k) % len(routes)]
            url = (
                self.base
                + "data/plugin/lstm_gates/"
                + path
                + ("?" + urllib.parse.urlencode(params) if params else "")
            )
            start = time.perf_counter()
            try:
                body = _get(url)
                self.latencies.append(time.perf_counter() - start)
                problems, steps = check(body)
                self.errors.extend("%s: %s" % (path, p) for p in problems)
                if steps:
                    self.steps_seen.append(steps)
            except (OSError, ValueError, AssertionError, KeyError) as e:  # HTTP errors, refused, bad JSON
                self.latencies.append(time.perf_counter() - start)
                self.errors.append("%s: %s: %s" % (path, type(e).__name__, e))


def _wait_for_steps(tensorboard, n, timeout=180):
    deadline = time.time() + timeout
    while True:
        try:
            body = tensorboard.get_json("data/plugin/lstm_gates/series", layer=LAYER, stat="l2", run="train")
            if len(body["series"][0]["steps"]) >= n:
                return
        except urllib.error.HTTPError as e:
            if e.code != 404:
                raise
        assert time.time() < deadline, "no data after %ds:\n%s" % (timeout, "".join(tensorboard.stderr))
        time.sleep(0.5)


@pytest.mark.parametrize("load_fast", ["true", "false"])
def test_fifty_concurrent_clients_while_training_appends(tmp_path, launcher, load_fast):  # noqa: F811
    logdir = tmp_path / "logs"
    trainer = worker_process.start(
        "append", logdir, tmp_path / "out", EPOCHS, stderr=open(tmp_path / "stderr", "w")
    )
    tensorboard = None
    try:
        tensorboard = TensorBoardProcess(
            launcher, os.fspath(logdir), "--load_fast", load_fast, "--reload_interval", "1"
        )
        _wait_for_steps(tensorboard, 2)
        clients = [Client(tensorboard.url, i, time.time() + DEADLINE) for i in range(CLIENTS)]
        started = time.perf_counter()
        for client in clients:
            client.start()
        for client in clients:
            client.join(DEADLINE + 60)
        elapsed = time.perf_counter() - started
        still_training = trainer.poll() is None
    finally:
        if tensorboard is not None:
            tensorboard.stop()
        trainer.kill()
        trainer.wait()
    latencies = np.array([t for c in clients for t in c.latencies])
    errors = [e for c in clients for e in c.errors]
    steps = [s for c in clients for s in c.steps_seen]
    print(
        "\nload_fast=%s: %d clients, %d requests in %.1f s (%.0f/s), %d errors, latency p50 %.0f ms, "
        "p95 %.0f ms, max %.0f ms; steps served grew from %d to %d while training appended"
        % (
            load_fast,
            CLIENTS,
            len(latencies),
            elapsed,
            len(latencies) / elapsed,
            len(errors),
            1000 * np.percentile(latencies, 50),
            1000 * np.percentile(latencies, 95),
            1000 * latencies.max(),
            min(steps),
            max(steps),
        )
    )
    assert not any(c.is_alive() for c in clients)
    assert errors == [], errors[:20]
    assert len(latencies) == CLIENTS * REQUESTS_PER_CLIENT
    assert still_training, "the training process ended before the load did: raise EPOCHS"
    assert max(steps) > min(steps), "the logs did not grow during the load"
