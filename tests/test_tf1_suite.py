"""Runs the TF1 graph-mode tests in their own process (see conftest.py)."""

import os
import subprocess
import sys

import pytest

TF1_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tf1")


@pytest.mark.skipif(os.environ.get("TF_USE_LEGACY_KERAS") == "1", reason="already the TF1 process")
def test_tf1_suite_passes_in_a_legacy_keras_process():
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", TF1_DIR],
        env=env,
        capture_output=True,
        text=True,
    )
    sys.stdout.write(result.stdout[-5000:])
    assert result.returncode == 0, "TF1 tests failed:\n" + result.stdout[-20000:] + result.stderr[-5000:]
