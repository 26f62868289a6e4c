"""The frontend's own unit tests (`node --test`), so the README's one test command runs them too."""

import json
import os
import shutil
import subprocess

from tb_lstm_gates.logs import metadata

FRONTEND = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "frontend")


def test_frontend_unit_tests_pass_under_node():
    node = shutil.which("node")
    assert node, "Node.js is needed to build and test the tab's frontend; install Node.js 18 or newer"
    result = subprocess.run(
        [node, "--test", "test/"], cwd=FRONTEND, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-4000:]
    assert "# fail 0" in result.stdout, result.stdout[-4000:]


def test_the_frontend_tests_contract_is_the_one_the_server_sends():
    # The node tests read the contract from this copy; regenerate it with
    # `json.dumps(metadata.contract(), indent=2)` when metadata.py changes.
    with open(os.path.join(FRONTEND, "test", "contract.json")) as f:
        assert json.load(f) == metadata.contract()
