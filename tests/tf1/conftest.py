"""Fixtures of the TF1 tests (run in their own process, see tests/conftest.py)."""

import pytest
from tf1_model import train_with_hook_and_checkpoints


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    return train_with_hook_and_checkpoints(tmp_path_factory.mktemp("tf1"))
