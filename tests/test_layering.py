"""The package's layers import downwards only: core <- logs <- wings <- the rest.

Read from the source (every import statement, lazy ones inside functions
included), so a wrong import fails here even if no test happens to run it.
"""

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "tb_lstm_gates"
FRAMEWORKS = {"tensorflow", "keras", "tf_keras", "torch", "lightning", "pytorch_lightning", "jax"}

# What each folder may import of the package (besides itself).
ALLOWED = {
    "core": set(),
    "logs": {"core"},
    "findings": {"core", "logs"},
    "plugin": {"core", "logs", "findings"},
    "keras": {"core", "logs"},
    "tf1": {"core", "logs"},
    "torch": {"core", "logs"},
    # Reads each framework's files; a PyTorch file through the torch wing's state_dict reader.
    "checkpoints": {"core", "logs", "torch"},
}
# Folders that must run in any process: a torch process, TensorBoard at start-up.
FRAMEWORK_FREE = {"core", "logs", "findings", "plugin", "checkpoints"}
# Lazy framework imports, inside the function that needs them: checkpoints'
# reader of that framework's files, and `logs.storage`'s remote file systems:
# TensorFlow's gfile for a scheme it serves (gs://) when TensorFlow is already
# imported or no other installed client serves it.
LAZY_FRAMEWORKS_ALLOWED = {("checkpoints", None), ("logs", "tensorflow")}


def imports_of(source):
    """(module, at_top_level) for every import in `source`, relative ones resolved against nothing."""
    found = []
    tree = ast.parse(source)
    top_level = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in top_level) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                found.append(("." * node.level + (node.module or ""), id(node) in top_level))
            elif node.module == "tb_lstm_gates":
                found += [("tb_lstm_gates." + alias.name, id(node) in top_level) for alias in node.names]
            else:
                found.append((node.module, id(node) in top_level))
    return found


def violations(folder, source):
    """What `source`, a module of `folder`, imports against the layering rules."""
    problems = []
    for module, top_level in imports_of(source):
        if module.startswith("."):
            problems.append("relative import %s (imports are absolute)" % module)
            continue
        parts = module.split(".")
        if parts[0] == "tb_lstm_gates" and len(parts) > 1:
            target = parts[1]
            if target != folder and target not in ALLOWED[folder]:
                problems.append(
                    "imports %s: %s may import only %s" % (module, folder, sorted(ALLOWED[folder]))
                )
        elif parts[0] in FRAMEWORKS and folder in FRAMEWORK_FREE:
            lazy_ok = (folder, None) in LAZY_FRAMEWORKS_ALLOWED or (
                folder,
                parts[0],
            ) in LAZY_FRAMEWORKS_ALLOWED
            if top_level or not lazy_ok:
                problems.append("imports the framework %s" % module)
    return problems


def package_modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        if len(rel.parts) > 1 and rel.parts[0] in ALLOWED:
            yield rel.parts[0], path


@pytest.mark.parametrize(
    "folder, path",
    list(package_modules()),
    ids=lambda v: str(v.relative_to(PACKAGE)) if hasattr(v, "parts") else v,
)
def test_module_imports_only_the_layers_below_it(folder, path):
    assert violations(folder, path.read_text()) == [], path


def test_every_folder_of_the_package_has_a_rule():
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert folders == set(ALLOWED)


@pytest.mark.parametrize(
    "folder, source",
    [
        ("core", "from tb_lstm_gates.keras import discover\n"),
        ("core", "from tb_lstm_gates import logs\n"),
        ("core", "def f():\n    import torch\n"),
        ("logs", "from tb_lstm_gates.torch import cells\n"),
        ("logs", "import tensorflow as tf\n"),
        ("keras", "from tb_lstm_gates import torch as gates_torch\n"),
        ("torch", "def f():\n    from tb_lstm_gates.tf1 import hook\n"),
        ("plugin", "import keras\n"),
        ("checkpoints", "import tensorflow as tf\n"),
        ("logs", "def f():\n    import torch\n"),
        ("keras", "from . import discover\n"),
    ],
)
def test_the_rules_catch_an_import_against_the_layering(folder, source):
    assert violations(folder, source)


def test_a_checkpoint_reader_may_import_its_framework_when_called():
    assert violations("checkpoints", "def read():\n    import tensorflow as tf\n") == []


# --- No import cycles inside the package, and no module over MAX_LINES lines.

MAX_LINES = 400


def module_name(path, root=PACKAGE):
    """`tb_lstm_gates.logs.summary` for `.../tb_lstm_gates/logs/summary.py` (a package is its `__init__`)."""
    parts = (root.name,) + path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(root=PACKAGE):
    """`{module: {modules of the package it imports}}` from the source, lazy imports included.

    `from a.b import c` counts as importing the module `a.b.c` when there is
    one, else `a.b`. Importing `a.b` also runs the package `a`'s `__init__`;
    that implicit edge is left out, so a package re-exporting its modules'
    names is no cycle, but a module importing its package by name is an edge.
    """
    paths = sorted(root.rglob("*.py"))
    names = {module_name(p, root) for p in paths}

    def known(module):
        while module and module not in names:
            module = module.rpartition(".")[0]
        return module

    graph = {}
    for path in paths:
        name = module_name(path, root)
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(known(alias.name) for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and not node.level:
                found.update(known(node.module + "." + alias.name) for alias in node.names)
        graph[name] = {m for m in found if m and m.split(".")[0] == root.name} - {name}
    return graph


def cycles(graph):
    """The strongly connected components of `graph` with more than one module (Tarjan), each sorted."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_package_has_no_import_cycle():
    assert cycles(import_graph()) == []


def test_the_cycle_check_finds_a_cycle(tmp_path):
    package = tmp_path / "tb_lstm_gates"
    (package / "plugin").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "plugin" / "__init__.py").write_text("")
    (package / "plugin" / "loader.py").write_text(
        "def load():\n    from tb_lstm_gates.plugin.plugin import Plugin\n"
    )
    (package / "plugin" / "plugin.py").write_text("from tb_lstm_gates.plugin import loader\n")
    (package / "plugin" / "alone.py").write_text("import tb_lstm_gates.plugin.loader\n")
    graph = import_graph(package)
    assert graph["tb_lstm_gates.plugin.plugin"] == {"tb_lstm_gates.plugin.loader"}
    assert cycles(graph) == [["tb_lstm_gates.plugin.loader", "tb_lstm_gates.plugin.plugin"]]


def test_the_cycle_check_finds_a_longer_cycle_and_no_false_one():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"d"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_is_over_the_line_cap(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, "%s has %d lines: split it by concern (cap %d)" % (path, lines, MAX_LINES)
