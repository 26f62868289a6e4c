"""tb-lstm-gates: per-gate views of LSTM and GRU weights in TensorBoard.

The package imports nothing heavy at import time: TensorBoard loads the
plugin from here at start-up, so TensorFlow and Keras are imported only by the
modules that need them, when first used.

`GateRegularizer` is registered with Keras as soon as both this package and
Keras are imported, in either order, so `keras.models.load_model` restores
models that use it after a plain `import tb_lstm_gates`.
"""

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

_LAZY = {
    "GateRegularizer": ("tb_lstm_gates.keras.regularizers", "GateRegularizer"),
    "attach_gate_regularizers": ("tb_lstm_gates.keras.regularizers", "attach_gate_regularizers"),
    "gate_blocks": ("tb_lstm_gates.keras.blocks", "gate_blocks"),
    "LSTMGatesCallback": ("tb_lstm_gates.keras.callback", "LSTMGatesCallback"),
    "load": ("tb_lstm_gates.logs.reader", "load"),
}

__all__ = sorted(_LAZY) + ["__version__"]

if TYPE_CHECKING:
    # What `__getattr__` hands out, for type checkers; at run time they load on first use.
    from tb_lstm_gates.keras.blocks import gate_blocks as gate_blocks
    from tb_lstm_gates.keras.callback import LSTMGatesCallback as LSTMGatesCallback
    from tb_lstm_gates.keras.regularizers import GateRegularizer as GateRegularizer
    from tb_lstm_gates.keras.regularizers import attach_gate_regularizers as attach_gate_regularizers
    from tb_lstm_gates.logs.reader import load as load


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError("module 'tb_lstm_gates' has no attribute %r" % name)
    module, attr = _LAZY[name]
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def _register_with_keras() -> None:
    """Imports `regularizers`, whose `GateRegularizer` registers itself with Keras."""
    try:
        importlib.import_module("tb_lstm_gates.keras.regularizers")
    except Exception as e:  # a broken Keras must not break whoever imported it
        warnings.warn(
            "tb-lstm-gates could not register GateRegularizer with Keras (%s: %s); import "
            "tb_lstm_gates.keras.regularizers before keras.models.load_model" % (type(e).__name__, e),
            stacklevel=2,
        )


class _RegisterAfterKeras(importlib.abc.MetaPathFinder):
    """Registers `GateRegularizer` right after Keras is first imported, by anyone.

    Only the import of `keras` itself is looked at, and the finder leaves
    `sys.meta_path` once Keras has run, so it costs nothing afterwards. It
    never imports Keras on its own (TensorBoard imports this package at
    start-up). A `find_spec("keras")` without an import (TensorFlow asks so)
    leaves it in place.
    """

    def __init__(self) -> None:
        self._looking = False

    def find_spec(
        self, name: str, path: Sequence[str] | None = None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if name != "keras" or self._looking:
            return None
        self._looking = True
        try:
            spec = importlib.util.find_spec(name)
        finally:
            self._looking = False
        if spec is None or spec.loader is None:
            return None
        spec.loader = _ThenRegister(spec.loader, self)
        return spec


class _ThenRegister(importlib.abc.Loader):
    """Runs a module's own loader, then `_register_with_keras`, then steps aside."""

    def __init__(self, loader: importlib.abc.Loader, finder: _RegisterAfterKeras) -> None:
        self._loader = loader
        self._finder = finder

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        # The module's own loader again, for reloads and resource readers.
        # The import system runs exec_module on a module made from its spec, so `__spec__` is set.
        module.__loader__ = module.__spec__.loader = self._loader  # type: ignore[union-attr]
        if self._finder in sys.meta_path:
            sys.meta_path.remove(self._finder)
        self._loader.exec_module(module)
        _register_with_keras()


if "keras" in sys.modules:
    _register_with_keras()
elif not any(isinstance(finder, _RegisterAfterKeras) for finder in sys.meta_path):
    sys.meta_path.insert(0, _RegisterAfterKeras())
