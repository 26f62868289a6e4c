"""tb-lstm-gates: per-gate views of LSTM and GRU weights in TensorBoard.

The package imports nothing heavy at import time: TensorBoard loads the
plugin from here at start-up, so TensorFlow and Keras are imported only by the
modules that need them, when first used.
"""

__version__ = "0.1.0"

_LAZY = {
    "GateRegularizer": ("tb_lstm_gates.regularizers", "GateRegularizer"),
    "attach_gate_regularizers": ("tb_lstm_gates.regularizers", "attach_gate_regularizers"),
    "gate_blocks": ("tb_lstm_gates.blocks", "gate_blocks"),
    "LSTMGatesCallback": ("tb_lstm_gates.keras_callback", "LSTMGatesCallback"),
    "load": ("tb_lstm_gates.reader", "load"),
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError("module 'tb_lstm_gates' has no attribute %r" % name)
    import importlib

    module, attr = _LAZY[name]
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value
