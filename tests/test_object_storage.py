"""Log directories on object storage: every writer and reader against a real S3 server
(moto's `moto_server`, started here on 127.0.0.1), with and without TensorFlow importable.

Each writer runs in its own process, as a training job would, so a process
where TensorFlow is hidden really has none (a meta-path blocker refuses its import).
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

import pytest

from tb_lstm_gates import load
from tb_lstm_gates.logs import storage, summary

pytest.importorskip("boto3")
pytest.importorskip("moto")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Put first in a child's code: refuses to import the modules named in HIDDEN_MODULES.
HIDE = """
import importlib.abc, os, sys
class _Hidden(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in os.environ.get("HIDDEN_MODULES", "").split(","):
            raise ModuleNotFoundError("No module named %r (hidden by the test)" % name, name=name)
sys.meta_path.insert(0, _Hidden())
"""

TORCH_WRITER = """
import json, sys, torch
from tb_lstm_gates import load
from tb_lstm_gates.torch import GateLogger
if sys.argv[2] == "import tensorflow":
    import tensorflow
for path in sys.argv[1:2] + sys.argv[3:]:  # the run, and the same run on a local disk if asked
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(3, 4)
    with GateLogger(path) as gates:
        for step in range(3):
            gates.log(lstm, step)
            with torch.no_grad():
                lstm.weight_hh_l0.mul_(1.5)
records = load(sys.argv[1].rsplit("/", 1)[0])
print(json.dumps({"tensorflow": "tensorflow" in sys.modules, "steps": sorted({r.step for r in records})}))
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(*command):
    """Starts `python -m <command>` (with `{port}` filled in) on a free port; returns the process and its URL."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", *(part.format(port=port) for part in command)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = "http://127.0.0.1:%d" % port
    deadline = time.time() + 30
    while True:
        try:
            urllib.request.urlopen(endpoint, timeout=2).close()
            return server, endpoint
        except urllib.error.HTTPError:
            return server, endpoint  # up, answering
        except OSError:
            assert server.poll() is None and time.time() < deadline, "%s did not start" % command[0]
            time.sleep(0.2)


@pytest.fixture(scope="module")
def s3():
    """A real S3 HTTP server on a free port; the environment points boto3, s3fs and TensorBoard at it."""
    server, endpoint = start_server("moto.server", "-H", "127.0.0.1", "-p", "{port}")
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,  # boto3, s3fs
        "S3_ENDPOINT": endpoint,  # TensorBoard's own S3 file system
    }
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        yield endpoint
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        server.terminate()
        server.wait(20)


@pytest.fixture
def bucket(s3):
    import boto3

    name = "logs-" + uuid.uuid4().hex[:12]
    boto3.client("s3").create_bucket(Bucket=name)
    return name


def run_python(code, *args, hidden=(), env=None, timeout=120):
    """Runs `code` in a fresh Python of this venv, with `hidden` modules refused; returns its stdout."""
    result = subprocess.run(
        [sys.executable, "-c", HIDE + code, *args],
        env=dict(os.environ, PYTHONPATH=REPO, HIDDEN_MODULES=",".join(hidden), **(env or {})),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def event_files(url):
    """The event files of the run at `url`, in name order."""
    gfile = storage.gfile(url)
    return [url + "/" + name for name in sorted(gfile.listdir(url)) if "tfevents" in name]


def logged_steps(url):
    """Every step of every event of the run at `url`, in file order, duplicates kept."""
    return [e.step for path in event_files(url) for e in summary.read_events(path) if e.HasField("summary")]


def test_torch_logger_writes_s3_without_tensorflow_and_load_reads_the_same_values(bucket, tmp_path):
    tensorflow = "hidden"
    url = "s3://%s/logs/run" % bucket
    local = os.fspath(tmp_path / "logs" / "run")
    out = run_python(TORCH_WRITER, url, tensorflow, local, hidden=("tensorflow",))
    assert json.loads(out.splitlines()[-1]) == {"tensorflow": False, "steps": [0, 1, 2]}
    # The same run on a local disk: every value read back from S3 equals it.
    remote_records, local_records = load("s3://%s/logs" % bucket), load(os.path.dirname(local))
    assert len(remote_records) == len(local_records) > 100
    for remote, here in zip(remote_records, local_records):
        assert remote[:7] == here[:7]
        assert str(remote.value) == str(here.value)
    assert logged_steps(url) == [0, 1, 2]


def test_keras_callback_on_tensorflow_and_torch_logger_beside_tensorflow_write_s3(bucket):
    # One process with TensorFlow imported (TensorFlow 2.21's gfile has no
    # s3://) runs both, so the test pays for one TensorFlow import.
    code = """
import sys
import numpy as np, keras
from tb_lstm_gates import LSTMGatesCallback
model = keras.Sequential([keras.Input((5, 3)), keras.layers.LSTM(4), keras.layers.Dense(1)])
model.compile("sgd", "mse")
x, y = np.ones((8, 5, 3), "float32"), np.ones((8, 1), "float32")
model.fit(x, y, epochs=2, verbose=0, callbacks=[LSTMGatesCallback(sys.argv[1])])
sys.argv = ["torch_writer", sys.argv[2], "import tensorflow"]
exec(TORCH_WRITER)
"""
    keras_url, torch_url = "s3://%s/keras" % bucket, "s3://%s/torch/run" % bucket
    out = run_python(
        "TORCH_WRITER = %r\n" % TORCH_WRITER + code, keras_url, torch_url, env={"KERAS_BACKEND": "tensorflow"}
    )
    assert json.loads(out.splitlines()[-1]) == {"tensorflow": True, "steps": [0, 1, 2]}
    records = load(keras_url)
    assert {r.step for r in records} == {0, 1, 2}
    assert len({r.layer for r in records}) == 1


def test_a_writer_killed_mid_run_loses_only_the_steps_since_its_last_upload_and_repeats_none(bucket):
    code = """
import sys, time, torch
from tb_lstm_gates.torch import GateLogger
lstm = torch.nn.LSTM(3, 4)
gates = GateLogger(sys.argv[1])
for step in range(100000):
    gates.log(lstm, step)
    print(step, time.time(), flush=True)
    time.sleep(0.05)
"""
    url = "s3://%s/killed" % bucket
    roll = 1.0
    child = subprocess.Popen(
        [sys.executable, "-c", HIDE + code, url],
        env=dict(
            os.environ, PYTHONPATH=REPO, HIDDEN_MODULES="tensorflow", TB_LSTM_GATES_ROLL_SECONDS=str(roll)
        ),
        stdout=subprocess.PIPE,
        text=True,
    )
    logged = []
    try:
        for line in child.stdout:
            step, at = line.split()
            logged.append((int(step), float(at)))
            if time.time() - logged[0][1] > 4 * roll:
                break
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    killed_at = time.time()
    steps = logged_steps(url)
    assert len(event_files(url)) >= 3, "the run did not roll to new files"
    assert steps == list(range(len(steps))), "a step is missing or written twice"
    # Lost: at most the steps logged in the last `roll` seconds before the kill
    # (with a second's slack for an upload under way).
    lost = [(step, at) for step, at in logged if step >= len(steps)]
    assert all(at > killed_at - roll - 1.0 for _, at in lost), (lost, killed_at)


def test_tensorboard_serves_the_tab_from_an_s3_logdir(bucket, tmp_path):
    from test_plugin_tensorboard import LAUNCHER, TensorBoardProcess

    url = "s3://%s/logs" % bucket
    run_python(TORCH_WRITER, url + "/run", "", hidden=("tensorflow",))
    # TensorFlow 2.21's file systems have no s3://: TensorBoard reads S3
    # through its own, which it uses in an environment without TensorFlow.
    launcher = tmp_path / "tensorboard_with_lstm_gates.py"
    launcher.write_text(HIDE + LAUNCHER)
    os.environ["HIDDEN_MODULES"] = "tensorflow"
    try:
        tensorboard = TensorBoardProcess(os.fspath(launcher), url, "--reload_interval", "1")
    finally:
        del os.environ["HIDDEN_MODULES"]
    try:
        deadline = time.time() + 60
        while True:
            try:
                runs = tensorboard.get_json("data/plugin/lstm_gates/runs")
                if runs:
                    break
            except urllib.error.HTTPError as e:
                if e.code != 404:  # 404 until the first load
                    raise
            assert time.time() < deadline, "".join(tensorboard.stderr)
            time.sleep(0.5)
        assert "run" in json.dumps(runs)
        expected = [r for r in load(url) if (r.part, r.gate, r.stat) == ("recurrent", "forget", "l2")]
        (series,) = [
            s
            for s in tensorboard.get_json(
                "data/plugin/lstm_gates/series", layer=expected[0].layer, stat="l2"
            )["series"]
            if (s["part"], s["gate"]) == ("recurrent", "forget")
        ]
        assert series["steps"] == [0, 1, 2]
        assert series["values"] == pytest.approx([r.value for r in expected], rel=1e-6)
    finally:
        tensorboard.stop()


MISSING_CLIENTS = {
    "s3://bucket/run": "pip install boto3",
    "gs://bucket/run": "pip install gcsfs",
    "az://container/run": "pip install adlfs",
    "abfs://container/run": "pip install adlfs",
}


def test_a_missing_client_library_is_named_with_the_package_to_install():
    code = """
import json, sys, warnings, torch
from tb_lstm_gates import load
from tb_lstm_gates.torch import GateLogger
said = {}
for url in sys.argv[1:]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with GateLogger(url) as gates:
            gates.log(torch.nn.LSTM(3, 4), 0)
    try:
        load(url)
    except ImportError as e:
        said[url] = [str(w.message) for w in caught] + [str(e)]
print(json.dumps(said))
"""
    hidden = ("tensorflow", "boto3", "s3fs", "gcsfs", "adlfs")
    said = json.loads(run_python(code, *MISSING_CLIENTS, hidden=hidden).splitlines()[-1])
    for url, package in MISSING_CLIENTS.items():
        logger_warning, load_error = said[url]
        assert package in logger_warning and package in load_error, said[url]
        assert url in load_error


def test_a_process_that_exits_without_closing_its_logger_uploads_every_step(bucket):
    code = """
import sys, torch
from tb_lstm_gates.torch import GateLogger
lstm = torch.nn.LSTM(3, 4)
gates = GateLogger(sys.argv[1])
for step in range(3):
    gates.log(lstm, step)
"""
    url = "s3://%s/unclosed" % bucket
    run_python(code, url, hidden=("tensorflow",), env={"TB_LSTM_GATES_ROLL_SECONDS": "600"})
    assert logged_steps(url) == [0, 1, 2]


def test_torch_logger_writes_gcs_through_gcsfs_and_load_reads_it():
    """Against `gcp-storage-emulator`, through gcsfs (TensorFlow hidden: its own GCS client
    would go to Google)."""
    pytest.importorskip("gcsfs")
    pytest.importorskip("gcp_storage_emulator")
    server, endpoint = start_server(
        "gcp_storage_emulator", "start", "--host", "127.0.0.1", "--port", "{port}", "--in-memory"
    )
    try:
        env = {
            "STORAGE_EMULATOR_HOST": endpoint,
            # gcsfs's probe of a bucket's type speaks gRPC, which the emulator does not.
            "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
        }
        code = "import gcsfs\ngcsfs.GCSFileSystem(token='anon').mkdir('gates')\n" + TORCH_WRITER
        out = run_python(code, "gs://gates/logs/run", "", hidden=("tensorflow",), env=env)
        assert json.loads(out.splitlines()[-1]) == {"tensorflow": False, "steps": [0, 1, 2]}
    finally:
        server.terminate()
        server.wait(20)


def test_import_writes_a_checkpoint_to_s3_once_however_often_it_runs(bucket, tmp_path):
    code = """
import sys, torch
from tb_lstm_gates import cli
torch.save(torch.nn.LSTM(3, 4).state_dict(), sys.argv[2])
for _ in range(2):  # the second run finds the step logged and skips it
    assert cli.main(["import", sys.argv[2], "--logdir", sys.argv[1], "--run", "imported"]) == 0
"""
    url = "s3://%s/logs" % bucket
    run_python(code, url, os.fspath(tmp_path / "model-5.pt"), hidden=("tensorflow",))
    assert logged_steps(url + "/imported") == [5]
    assert {r.step for r in load(url)} == {5}


def test_each_rolled_file_name_sorts_after_the_one_before_and_keeps_the_suffix():
    path = "s3://b/run/" + summary.event_file_name(".lstm_gates")
    names = [path]
    for _ in range(12):  # faster than a second apart: the counter alone would sort ".10" before ".9"
        names.append(storage.next_path(names[-1]))
    assert sorted(names) == names and len(set(names)) == len(names)
    assert all(n.startswith("s3://b/run/events.out.tfevents.") and n.endswith(".lstm_gates") for n in names)
