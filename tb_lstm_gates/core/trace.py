"""`Trace`: what one recurrent cell did on a batch, as the recurrences and the probes record it."""

import dataclasses

import numpy as np

# The gate that decides how much of the state is kept at each step.
RETENTION_GATE = {"lstm": "forget", "conv_lstm": "forget", "gru": "update", "mlstm": "forget"}


@dataclasses.dataclass
class Trace:
    """What one recurrent cell did on a batch.

    Attributes:
      cell: `lstm`, `conv_lstm` or `gru`.
      gates: canonical gate names, in the order of `activations`' gate axis.
      functions: name of each gate's activation function (`sigmoid`, `tanh`, ...).
      activations: `(batch, time, n_gates, units)`, in the input's time order
        (also for `go_backwards`).
      valid: `(batch, time)` bool, False at masked steps, in the input's time order.
      outputs: `(batch, time, units)`, the layer's `return_sequences` output:
        in reversed time order for `go_backwards`, as Keras returns it; for a
        ConvLSTM `(batch, time, *positions, filters)`.
      positions: for a ConvLSTM the number of output positions, whose
        activations `units` holds position by position (`positions *
        filters`); 1 for LSTM and GRU cells.
      states: `(batch, time, units)`, the cell's state after each step in
        the input's time order (an LSTM's c_t, a GRU's h_t; see
        `names.STATES`), carried over at masked steps; None if not recorded.
      saturated_low, saturated_high: bool, shaped as `activations`: where
        each activation is saturated (see SATURATION_BOUNDS); None to read
        it from `functions`' bounds.
      reference_outputs: the framework's own output for the same calls,
        shaped and ordered as `outputs`, for the probe's self-check (the
        recomputation from the logged blocks must equal it); None where the
        probe could not capture it.
      outputs_backwards: whether `outputs` (and `reference_outputs`) run in
        reversed time order (`go_backwards`, a reverse direction), while
        `valid` stays in the input's order.
    """

    cell: str
    gates: tuple[str, ...]
    functions: tuple[str, ...]
    activations: np.ndarray
    valid: np.ndarray
    outputs: np.ndarray
    positions: int = 1
    states: np.ndarray | None = None
    saturated_low: np.ndarray | None = None
    saturated_high: np.ndarray | None = None
    reference_outputs: np.ndarray | None = None
    outputs_backwards: bool = False
