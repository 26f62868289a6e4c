"""Per-gate views of PyTorch recurrent modules: `GateLogger`, `GatePenalty`, `gate_blocks`.

PyTorch fuses each LSTM's four gates (GRU's three) in `weight_ih_l{k}`
`(gates * H, in)`, `weight_hh_l{k}`, `bias_ih_l{k}` and `bias_hh_l{k}`, gates
in the order i, f, g, o (r, z, n for GRUs) on the first axis. This module
finds every `nn.LSTM`, `nn.GRU`, `nn.LSTMCell` and `nn.GRUCell` in a module
tree (also inside `DataParallel`, `DistributedDataParallel` and
`torch.compile` wrappers; each module object once, however many paths reach
it; `unlogged_weights` names the recurrent weights left out) and splits them with `layouts.torch_lstm` /
`layouts.torch_gru`.

Names follow the module tree: a module at `encoder.rnn` logs layers
`encoder/rnn/l0`, `encoder/rnn/l0_reverse`, `encoder/rnn/l1`, ... (one per
stacked layer and direction); a cell module logs under its path alone
(`decoder/cell`). Parts: `input` (weight_ih), `recurrent` (weight_hh),
`input_bias` (bias_ih), `recurrent_bias` (bias_hh), `projection`
(weight_hr, gate `all`). Gates: LSTM input, forget, cell (g), output; GRU
reset (r), update (z), candidate (n).

Modules: `cells` (finding and splitting the modules, `gate_blocks`),
`penalty` (`GatePenalty`), `probe` (gate activations on a probe batch),
`logger` (`GateLogger`) and `state_dict` (cells of a saved state_dict).

Imports torch, numpy and tensorboard only: never TensorFlow or Keras.
"""

from tb_lstm_gates.core.gate_penalty import TERMS
from tb_lstm_gates.torch.cells import TorchCell, find_cells, gate_blocks, unlogged_weights, unwrap
from tb_lstm_gates.torch.logger import GateLogger
from tb_lstm_gates.torch.penalty import PENALTY_PARTS, GatePenalty
from tb_lstm_gates.torch.probe import probe_traces
from tb_lstm_gates.torch.state_dict import cells_from_state_dict, load_state_dict, state_arrays

__all__ = [
    "PENALTY_PARTS",
    "TERMS",
    "GateLogger",
    "GatePenalty",
    "TorchCell",
    "cells_from_state_dict",
    "find_cells",
    "gate_blocks",
    "load_state_dict",
    "probe_traces",
    "state_arrays",
    "unlogged_weights",
    "unwrap",
]
