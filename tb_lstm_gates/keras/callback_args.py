"""The checks of `LSTMGatesCallback`'s arguments: every problem named in one ValueError."""

from typing import Any

import keras

from tb_lstm_gates.keras import probe as probe_lib
from tb_lstm_gates.logs import guard, tokens


def check(
    log_dir: Any,
    update_freq: Any,
    histogram_freq: Any,
    layers: Any,
    histogram_bins: Any,
    probe: Any,
    probe_gradients: Any,
    probe_tokens: Any,
    hparams: Any = None,
) -> Any:
    """`(probe_x, probe_y, probe_tokens)` checked from the callback's arguments.

    Raises:
      ValueError: naming every argument that is wrong, and how.
    """
    errors = guard.check_logging_args(log_dir, histogram_freq, histogram_bins, hparams)
    probe_x = probe_y = checked_tokens = None
    try:
        probe_x, probe_y = probe_lib.check_probe(probe, probe_gradients)
    except ValueError as e:
        errors.append(str(e))
    try:
        first = None if probe_x is None else keras.tree.flatten(probe_x)[0]
        checked_tokens = tokens.check_probe_tokens(probe_tokens, first)
    except ValueError as e:
        errors.append(str(e))
    if update_freq != "epoch" and not (guard.is_int(update_freq) and update_freq > 0):
        errors.append('update_freq must be "epoch" or a positive int (batches), got %r' % (update_freq,))
    if layers is not None and (
        isinstance(layers, str) or not all(isinstance(n, str) for n in layers) or not layers
    ):
        errors.append("layers must be None or a non-empty list of layer names, got %r" % (layers,))
    if not isinstance(probe_gradients, bool):
        errors.append("probe_gradients must be True or False, got %r" % (probe_gradients,))
    if errors:
        raise ValueError("LSTMGatesCallback: " + "; ".join(errors))
    return probe_x, probe_y, checked_tokens
