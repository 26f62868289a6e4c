"""Damaged event files: a garbage file, truncated last records, a record with a bad CRC.

A process killed mid-write leaves a partial last record; disks and copies
corrupt bytes. `load()` and both loaders must skip what they cannot read
and serve the rest.
"""

import os

import numpy as np
import pytest
from tensorboard.backend import application
from test_plugin_fuzz import check, rust_provider_of
from test_plugin_routes import ROUTE, _listing, _plugin, _python_provider
from werkzeug import test as werkzeug_test

import tb_lstm_gates
from tb_lstm_gates.logs import summary

LAYER = "lstm/lstm_cell"
STEPS = 4


def write_run(run_dir):
    """`STEPS` steps of one l2 series; returns the file and its size after each step."""
    writer = summary.GateSummaryWriter(run_dir)
    ends = []
    for step in range(STEPS):
        writer.write_scalar(LAYER, "lstm", "recurrent", "forget", "l2", float(step))
        writer.write_gate_histograms(LAYER, "lstm", "recurrent", ("forget",), np.array([[[0.0, 1.0, 9.0]]]))
        writer.end_step(step)
        ends.append(os.path.getsize(writer.path))
    writer.close()
    return writer.path, ends


def truncated_runs(last_record_size):
    """Cut points inside the last record: in its length header, its header CRC, its data, its data CRC."""
    return {"truncated_%d" % cut: cut for cut in (3, 10, last_record_size // 2, last_record_size - 1)}


@pytest.fixture(scope="module")
def damaged_logdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("damaged")
    _, ends = write_run(os.fspath(root / "good"))
    truncated = truncated_runs(ends[-1] - ends[-2])
    os.makedirs(root / "garbage")
    (root / "garbage" / "events.out.tfevents.1.garbage").write_bytes(np.random.default_rng(0).bytes(5000))
    for run, cut in truncated.items():
        path, ends = write_run(os.fspath(root / run))
        os.truncate(path, ends[-2] + cut)
    path, ends = write_run(os.fspath(root / "bad_crc"))
    with open(path, "r+b") as f:
        middle = (ends[0] + ends[1]) // 2  # inside step 1's record
        f.seek(middle)
        byte = f.read(1)
        f.seek(middle)
        f.write(bytes([byte[0] ^ 0xFF]))
    return os.fspath(root), truncated


def test_load_reads_whole_steps_and_skips_what_it_cannot_read(damaged_logdir):
    logdir, truncated = damaged_logdir
    steps = {}
    for r in tb_lstm_gates.load(logdir):
        if r.stat == "l2":
            steps.setdefault(r.run, []).append(r.step)
    assert steps["good"] == list(range(STEPS))
    assert "garbage" not in steps
    for run in truncated:
        assert steps[run] == list(range(STEPS - 1)), run
    assert steps.get("bad_crc", []) == [0], "the bad record and the file after it are skipped"


@pytest.fixture(scope="module", params=["python", "rust"])
def client(request, damaged_logdir):
    provider = _python_provider(damaged_logdir[0])
    if request.param == "rust":
        # Past a record with a bad CRC, RustBoard reads on and the Python
        # loader stops: their `bad_crc` listings differ.
        expected = {key: step for key, step in _listing(provider).items() if key[0] != "bad_crc"}
        provider = rust_provider_of(damaged_logdir[0], expected)
    return werkzeug_test.Client(application.TensorBoardWSGI([_plugin(provider)], data_provider=provider))


def test_the_tab_serves_the_readable_runs(client, damaged_logdir):
    truncated = damaged_logdir[1]
    runs = [r["run"] for r in check(client.get(ROUTE + "runs"))["runs"]]
    assert "garbage" not in runs
    assert {"good", *truncated} <= set(runs)
    for run in ["good", *truncated]:
        expected = list(range(STEPS if run == "good" else STEPS - 1))
        body = check(client.get(ROUTE + "series", query_string={"layer": LAYER, "stat": "l2", "run": run}))
        (series,) = body["series"]
        assert (series["steps"], series["values"]) == (expected, [float(s) for s in expected]), run
        body = check(
            client.get(
                ROUTE + "histograms",
                query_string={"run": run, "layer": LAYER, "part": "recurrent", "gate": "forget"},
            )
        )
        assert [h["step"] for h in body["histograms"]] == expected
    if "bad_crc" in runs:
        # The Python loader stops at the bad record. RustBoard does not check
        # data CRCs and reads on: the flipped byte reaches it in step 1's
        # packed statistics, which cannot be decoded, so that time series is
        # left out whole; the histograms' series is served.
        body = check(
            client.get(ROUTE + "series", query_string={"layer": LAYER, "stat": "l2", "run": "bad_crc"})
        )
        (series,) = body["series"]
        assert series["steps"] in ([0], [])
        body = check(
            client.get(
                ROUTE + "histograms",
                query_string={"run": "bad_crc", "layer": LAYER, "part": "recurrent", "gate": "forget"},
            )
        )
        assert [h["step"] for h in body["histograms"]] in ([0], [0, 1, 2, 3])
    check(client.get(ROUTE + "series", query_string={"layer": LAYER, "stat": "l2"}))
    check(client.get(ROUTE + "regularization"))
