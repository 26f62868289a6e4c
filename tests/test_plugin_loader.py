"""The plugin's entry point: light to import, and keeps up to its cap of points per series by default."""

import importlib
import os
import re
import subprocess
import sys

import pytest
from tensorboard import program
from tensorboard.plugins.core import core_plugin

from tb_lstm_gates.plugin import loader

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEAVY = ("tensorflow", "keras", "tf_keras")


@pytest.mark.parametrize("module", ["tb_lstm_gates.plugin.loader", "tb_lstm_gates.plugin.plugin"])
def test_importing_the_plugin_imports_neither_tensorflow_nor_keras(module):
    code = "import sys, %s\nprint(sorted(m for m in sys.modules if m.split('.')[0] in %r))" % (module, HEAVY)
    env = dict(os.environ, PYTHONPATH=REPO)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_pyproject_registers_the_loader_as_the_entry_point():
    with open(os.path.join(REPO, "pyproject.toml"), encoding="utf-8") as f:
        section = f.read().split("[project.entry-points.tensorboard_plugins]\n", 1)[1]
    (spec,) = re.findall(r'^lstm_gates = "([\w.]+:\w+)"', section, re.M)
    module, attr = spec.split(":")
    assert getattr(importlib.import_module(module), attr) is loader.LSTMGatesLoader


def _configure(*argv):
    tensorboard = program.TensorBoard(plugins=[core_plugin.CorePluginLoader(), loader.LSTMGatesLoader()])
    tensorboard.configure(("tensorboard", "--logdir", "unused") + argv)
    return tensorboard.flags


def test_default_flags_keep_up_to_the_cap_of_lstm_gates_points():
    assert _configure().samples_per_plugin == {"lstm_gates": loader.SAMPLES_CAP}


def test_other_plugins_sampling_is_kept_beside_ours():
    assert _configure("--samples_per_plugin", "images=3").samples_per_plugin == {
        "images": 3,
        "lstm_gates": loader.SAMPLES_CAP,
    }


def test_a_users_sampling_of_lstm_gates_is_not_overridden():
    assert _configure("--samples_per_plugin", "lstm_gates=7").samples_per_plugin == {"lstm_gates": 7}
