"""The probe's tokens (`probe_tokens=`), checked and turned into one list of strings per sequence.

Shared by the Keras callback and PyTorch's GateLogger. `probe_tokens` is one of:
- a list of sequences of strings, one per probe sequence, each as long as
  the probe's time steps (axis 1 of its inputs);
- a vocabulary, a list of strings indexed by id or a dict from id to string,
  applied to the probe's ids (an integer array `(sequences, time steps)`,
  a char-level or word-level model's input);
- a decode function from one id (an int) to its string, applied likewise.
"""

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from tb_lstm_gates.core.activations import MAX_SEQUENCES

# What `probe_tokens=` takes: token lists per probe sequence, a vocabulary
# (list or dict from id to string), or a function from an id to its string.
ProbeTokens = Sequence[Sequence[str]] | Sequence[str] | Mapping[int, str] | Callable[[int], str]


def check_probe_tokens(probe_tokens: ProbeTokens | None, ids: Any) -> list[list[str]] | None:
    """One list of strings per probe sequence (the first MAX_SEQUENCES, which the tab shows), or None.

    Args:
      probe_tokens: None, or as the module says.
      ids: the probe's (first) input as a numpy array with the sequences on
        axis 0 and the time steps on axis 1, or None without a probe.

    Raises:
      ValueError: naming what is wrong and what to give instead.
    """
    if probe_tokens is None:
        return None
    if ids is None:
        raise ValueError("probe_tokens needs a probe: pass probe= too")
    ids = np.asarray(ids)
    if ids.ndim < 2:
        raise ValueError(
            "probe_tokens needs a probe of shape (sequences, time steps, ...), got shape %s" % (ids.shape,)
        )
    sequences, steps = ids.shape[:2]
    if callable(probe_tokens) or isinstance(probe_tokens, dict) or _is_vocabulary(probe_tokens):
        return _decoded(probe_tokens, ids[:MAX_SEQUENCES])
    if not isinstance(probe_tokens, (list, tuple)) or not all(
        isinstance(row, (list, tuple)) for row in probe_tokens
    ):
        raise ValueError(
            "probe_tokens must be a list of token lists (one per probe sequence), a vocabulary (a list or "
            "dict from id to string) or a function from an id to its string, got %r"
            % type(probe_tokens).__name__
        )
    if len(probe_tokens) != sequences:
        raise ValueError(
            "probe_tokens has %d token lists but the probe holds %d sequences: give one per sequence"
            % (len(probe_tokens), sequences)
        )
    for i, row in enumerate(probe_tokens):
        if len(row) != steps:
            raise ValueError(
                "probe_tokens[%d] has %d tokens but the probe has %d time steps: give one token per step "
                "(an empty string for padding)" % (i, len(row), steps)
            )
        bad = next((t for t in row if not isinstance(t, str)), None)
        if bad is not None:
            raise ValueError("probe_tokens[%d] holds %r, not a string" % (i, bad))
    return [list(row) for row in probe_tokens[:MAX_SEQUENCES]]


def _is_vocabulary(value: object) -> bool:
    return isinstance(value, (list, tuple)) and bool(value) and all(isinstance(t, str) for t in value)


def _decoded(decode: Any, ids: np.ndarray) -> list[list[str]]:
    if ids.ndim != 2 or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(
            "probe_tokens as a vocabulary or a decode function needs a probe of integer ids of shape "
            "(sequences, time steps), got %s of shape %s; give a list of token lists instead"
            % (ids.dtype, ids.shape)
        )
    if ids.size and ids.min() < 0:
        raise ValueError(
            "probe_tokens: the probe holds the negative id %d, which no vocabulary maps" % ids.min()
        )
    lookup = decode if callable(decode) else decode.__getitem__
    rows: list[list[str]] = []
    for row in ids.tolist():
        tokens: list[str] = []
        for i in row:
            try:
                token = lookup(i)
            except (IndexError, KeyError) as e:
                raise ValueError("probe_tokens has no token for id %d of the probe (%s)" % (i, e)) from None
            if not isinstance(token, str):
                raise ValueError("probe_tokens gives %r for id %d, not a string" % (token, i))
            tokens.append(token)
        rows.append(tokens)
    return rows
