"""Runs a test folder once in its own process and reports each of its tests by name.

TF1 cells need TF_USE_LEGACY_KERAS=1 and Keras picks its backend once per
process, so those suites run in subprocesses. `node_ids` lists their tests at
collection time, so the parent pytest shows one item per test (its name, its
own failure message), and `Suite.outcome` reads the single run's JUnit XML.
"""

import os
import subprocess
import sys
import xml.etree.ElementTree as ElementTree


def node_ids(folder, env):
    """The test ids of `folder` as a pytest process started with `env` collects them."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "--collect-only", "-p", "no:cacheprovider", folder],
        env=env,
        capture_output=True,
        text=True,
    )
    ids = [line for line in result.stdout.splitlines() if "::" in line]
    if not ids:
        # A collection error: one item that fails with its output.
        return ["%s::<collection>" % os.path.basename(folder)]
    return [line.split("/")[-1] for line in ids]


class Suite:
    """One run of a test folder in a subprocess with `env`, its outcomes by test id."""

    def __init__(self, folder, env, xml_path):
        self.result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--junitxml", xml_path, folder],
            env=env,
            capture_output=True,
            text=True,
        )
        self.outcomes = {}
        if os.path.exists(xml_path):
            for case in ElementTree.parse(xml_path).iter("testcase"):
                module = case.get("classname", "").split(".")[-1]
                problem = next((c for c in case if c.tag in ("failure", "error", "skipped")), None)
                key = "%s.py::%s" % (module, case.get("name"))
                self.outcomes[key] = (
                    "passed" if problem is None else problem.tag,
                    "" if problem is None else (problem.get("message", "") + "\n" + (problem.text or "")),
                )

    def outcome(self, test_id):
        """`(status, details)` of one test: passed, failure, error, skipped, or missing."""
        found = self.outcomes.get(test_id)
        if found is None:
            return "missing", self.result.stdout[-20000:] + self.result.stderr[-5000:]
        return found
