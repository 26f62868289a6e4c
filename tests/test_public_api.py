"""The public API: the names the docs promise import from where they say, and are typed.

Read from the source for the annotations, so the TF1 wing is checked
without a TF1 process.
"""

import ast
import importlib
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "tb_lstm_gates"

# (module file, function or Class.method) of every public callable.
PUBLIC = [
    ("keras/callback.py", "LSTMGatesCallback.__init__"),
    ("keras/regularizers.py", "GateRegularizer.__init__"),
    ("keras/regularizers.py", "attach_gate_regularizers"),
    ("keras/blocks.py", "gate_blocks"),
    ("logs/reader.py", "load"),
    ("torch/logger.py", "GateLogger.__init__"),
    ("torch/logger.py", "GateLogger.log"),
    ("torch/penalty.py", "GatePenalty.__init__"),
    ("torch/penalty.py", "GatePenalty.__call__"),
    ("torch/cells.py", "gate_blocks"),
    ("torch/cells.py", "find_cells"),
    ("torch/lightning.py", "LSTMGatesCallback.__init__"),
    ("tf1/hook.py", "LSTMGatesHook.__init__"),
    ("tf1/hook.py", "log_session"),
    ("tf1/hook.py", "graph_cells"),
    ("tf1/penalty.py", "gate_blocks"),
    ("tf1/penalty.py", "tf1_gate_penalty"),
    ("findings/apply.py", "check"),
]


def function(path, qualname):
    nodes = ast.parse((PACKAGE / path).read_text()).body
    for name in qualname.split("."):
        (node,) = [n for n in nodes if getattr(n, "name", None) == name]
        nodes = getattr(node, "body", [])
    return node


@pytest.mark.parametrize("path, qualname", PUBLIC, ids=lambda v: v)
def test_public_callables_annotate_every_argument_and_the_result(path, qualname):
    node = function(path, qualname)
    args = node.args.posonlyargs + node.args.args + node.args.kwonlyargs
    missing = [a.arg for a in args if a.annotation is None and a.arg != "self"]
    assert missing == [], "%s: %s has no annotation" % (qualname, ", ".join(missing))
    assert node.returns is not None, "%s has no return annotation" % qualname


def test_the_package_says_it_is_typed():
    assert (PACKAGE / "py.typed").exists()


@pytest.mark.parametrize(
    "module, name",
    [
        ("tb_lstm_gates", "LSTMGatesCallback"),
        ("tb_lstm_gates", "GateRegularizer"),
        ("tb_lstm_gates", "attach_gate_regularizers"),
        ("tb_lstm_gates", "gate_blocks"),
        ("tb_lstm_gates", "load"),
        ("tb_lstm_gates.torch", "GateLogger"),
        ("tb_lstm_gates.torch", "GatePenalty"),
        ("tb_lstm_gates.lightning", "LSTMGatesCallback"),
        ("tb_lstm_gates.findings", "check"),
        ("tb_lstm_gates.logs.summary", "GateSummaryWriter"),
    ],
)
def test_public_names_import_from_where_the_docs_say(module, name):
    assert callable(getattr(importlib.import_module(module), name))
