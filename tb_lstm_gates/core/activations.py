"""Gate activations of LSTM, GRU and ConvLSTM cells on a batch, recomputed from split blocks.

Pure numpy. The recurrences take a cell's weights through its `Layout`
(`Layout.blocks`, the same views every statistic uses), so what they show is
what the split says each gate is. Work is vectorised over the batch, the
gates and the units; Python loops over time steps only. The input part of
every gate is one matrix product over all time steps at once.

`lstm` and `gru` follow Keras's cells and `RNN` layer: a zero initial state
unless one is given; at a masked step the state and the output carry over unchanged;
`go_backwards` reads the sequence (and its mask) from the end and returns
the outputs in that reversed order, as Keras does. Dropout is left out (the
layers' inference mode).

The module is the import home of these names; they live in `functions`
(activation functions and saturation), `trace` (`Trace`), `recurrences`
(`lstm`, `gru`), `conv_recurrence` (`conv_lstm`) and `trace_stats` (what
is logged of a trace).
"""

from tb_lstm_gates.core.conv_recurrence import conv_lstm
from tb_lstm_gates.core.functions import (
    FUNCTIONS,
    SATURATION_BOUNDS,
    SATURATION_SLOPE,
    Function,
    function,
    hard_sigmoid,
    linear,
    relu,
    sigmoid,
)
from tb_lstm_gates.core.recurrences import gru, lstm
from tb_lstm_gates.core.trace import RETENTION_GATE, Trace
from tb_lstm_gates.core.trace_stats import (
    MAX_SEQUENCE_VALUES,
    MAX_SEQUENCES,
    activation_map,
    concatenate,
    gate_statistics,
    probe_sequences,
    retention,
    unit_saturation,
)

__all__ = [
    "FUNCTIONS",
    "MAX_SEQUENCES",
    "MAX_SEQUENCE_VALUES",
    "RETENTION_GATE",
    "SATURATION_BOUNDS",
    "SATURATION_SLOPE",
    "Function",
    "Trace",
    "activation_map",
    "concatenate",
    "conv_lstm",
    "function",
    "gate_statistics",
    "gru",
    "hard_sigmoid",
    "linear",
    "lstm",
    "probe_sequences",
    "relu",
    "retention",
    "sigmoid",
    "unit_saturation",
]
