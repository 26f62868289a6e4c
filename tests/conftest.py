"""Shared test set-up; keeps the TF1 and Keras-backend tests out of the main process.

TF1 cells (`tf.compat.v1.nn.rnn_cell`) need `TF_USE_LEGACY_KERAS=1` set before
TensorFlow is imported, which would change what `tf.keras` means for every
other test. So `tests/tf1` is collected only in a process started with that
variable, and `tests/test_tf1_suite.py` starts such a process.
"""

import os
import shutil
import sys

import pytest

collect_ignore_glob = [] if os.environ.get("TF_USE_LEGACY_KERAS") == "1" else ["tf1/*"]
# The same for Keras on torch and JAX: tests/keras_backends runs only in a process
# started with KERAS_BACKEND set (tests/test_keras_backends.py starts them).
if os.environ.get("KERAS_BACKEND") not in ("torch", "jax"):
    collect_ignore_glob.append("keras_backends/*")

# Test helpers (e.g. cellmath) import as top-level modules.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


# Modules whose tests are `slow`: a headless browser, a real TensorBoard
# process, training in subprocesses (TF1, Keras backends, distributed), the
# hypothesis generator of Keras structures, the docs' examples and site
# build, the demo, the frontend's own test run, the object-storage servers.
# Every `test_e2e_*` module (a browser) is slow too. `-m "not slow"` leaves them out.
SLOW_MODULES = {
    "test_plugin_tensorboard",
    "test_hparams_dashboard",
    "test_object_storage",
    "test_tf1_suite",
    "test_keras_backends",
    "test_distributed",
    "test_torch_distributed",
    "test_every_cell_keras",
    # Real Keras training, end to end, many times over (the heaviest of the rest).
    "test_keras_callback",
    "test_training_patterns",
    "test_callback_never_changes_training",
    "test_checkpoints",
    "test_docs_examples",
    "test_demo_serve",
    "test_frontend_units",
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.stem in SLOW_MODULES or item.path.stem.startswith("test_e2e_"):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium through Playwright, one for every browser test
    module: a second sync Playwright cannot start while one runs."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=shutil.which("chromium"),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()
