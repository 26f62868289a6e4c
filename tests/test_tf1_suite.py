"""Runs the TF1 graph-mode tests in their own process (see conftest.py), one item per test."""

import os

import pytest
from subprocess_suite import Suite, node_ids

TF1_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tf1")
IN_TF1_PROCESS = os.environ.get("TF_USE_LEGACY_KERAS") == "1"
ENV = dict(os.environ, TF_USE_LEGACY_KERAS="1")


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    return Suite(TF1_DIR, ENV, str(tmp_path_factory.mktemp("tf1") / "junit.xml"))


@pytest.mark.skipif(IN_TF1_PROCESS, reason="already the TF1 process")
@pytest.mark.parametrize("test_id", [] if IN_TF1_PROCESS else node_ids(TF1_DIR, ENV))
def test_tf1(suite, test_id):
    status, details = suite.outcome(test_id)
    if status == "skipped":
        pytest.skip(details.strip().splitlines()[0] if details.strip() else "skipped in the TF1 process")
    assert status == "passed", "%s %s in the TF1 process:\n%s" % (test_id, status, details)
