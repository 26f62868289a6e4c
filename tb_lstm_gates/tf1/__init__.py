"""TF1 graphs and sessions: `LSTMGatesHook`, `log_session`, `gate_blocks`, `tf1_gate_penalty`.

The TF1 wing: TF1 cells (`tf.compat.v1.nn.rnn_cell.*`) are found from their
variables' names and shapes (`tb_lstm_gates.core.scopes`), logged by a
session hook or a one-off call (`hook`), split and penalised as tensors in
the graph (`penalty`). Imports TensorFlow; needs `tf-keras` and
`TF_USE_LEGACY_KERAS=1` set before TensorFlow is imported for the TF1 cells.
"""

from tb_lstm_gates.tf1.hook import LSTMGatesHook, graph_cells, log_session
from tb_lstm_gates.tf1.penalty import gate_blocks, tf1_gate_penalty

__all__ = ["LSTMGatesHook", "gate_blocks", "graph_cells", "log_session", "tf1_gate_penalty"]
