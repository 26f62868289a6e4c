"""The demos' TensorBoard stops with the demo, on SIGTERM as on Ctrl-C (issue 19, item 9)."""

import os
import signal
import subprocess
import sys
import time

import pytest

DEMO = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "demo")
SERVE = """
import sys
sys.path.insert(0, sys.argv[1])
import run
sys.exit(run.serve(sys.argv[2], 0))
"""


def tensorboard_children(pid):
    with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
        found = []
        for child in map(int, f.read().split()):
            try:
                with open("/proc/%d/cmdline" % child, "rb") as cmdline:
                    if b"tensorboard.main" in cmdline.read():
                        found.append(child)
            except FileNotFoundError:
                pass  # a child that ended meanwhile (webbrowser's `true`)
        return found


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_demo_stops_its_tensorboard_on_sigterm_as_on_ctrl_c(tmp_path, stop):
    # BROWSER=true: webbrowser runs `true URL` instead of opening a browser.
    demo = subprocess.Popen(
        [sys.executable, "-c", SERVE, DEMO, str(tmp_path)],
        env=dict(os.environ, BROWSER="true"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    servers = []
    try:
        deadline = time.monotonic() + 60
        while not tensorboard_children(demo.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        servers = tensorboard_children(demo.pid)
        assert servers, "the demo started no TensorBoard"
        demo.send_signal(stop)
        assert demo.wait(timeout=30) == 0
        assert not alive(servers[0]), "TensorBoard outlived the demo"
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
        for server in servers:
            if alive(server):  # the failure above: do not leave it running
                os.kill(server, signal.SIGKILL)
