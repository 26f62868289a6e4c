"""What every gate logger checks and guards around the writer.

Argument checks shared by the Keras callback, the TF1 hook, the PyTorch
logger and the Lightning callback, run before anything is written, and the
guard that turns a logging failure into one warning instead of a stopped
training run.
"""

import os
import warnings
from collections.abc import Callable
from typing import Any, TypeGuard

import numpy as np

from tb_lstm_gates.core import callers


def is_int(value: Any) -> TypeGuard[int | np.integer[Any]]:
    """True for Python and numpy ints, False for bools."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def check_logging_args(log_dir: Any, histogram_freq: Any, histogram_bins: Any) -> list[str]:
    """Messages naming each bad argument every gate logger takes; empty if all are good."""
    errors = []
    if not isinstance(log_dir, (str, os.PathLike)) or not os.fspath(log_dir):
        errors.append("log_dir must be a non-empty path, got %r" % (log_dir,))
    if not (is_int(histogram_freq) and histogram_freq >= 0):
        errors.append(
            "histogram_freq must be an int >= 0 (0 turns histograms off), got %r" % (histogram_freq,)
        )
    if not (is_int(histogram_bins) and histogram_bins > 0):
        errors.append("histogram_bins must be a positive int, got %r" % (histogram_bins,))
    return errors


class FailureGuard:
    """Keeps a logging failure from stopping training.

    The first exception raised by work run through the guard is reported as
    one `RuntimeWarning` naming the logger and its directory, and `failed`
    turns True so the caller stops logging; with `strict=True` the exception
    is raised instead.

    Args:
      owner: the logger's name for the message, e.g. `LSTMGatesCallback`.
      log_dir: where it logs.
      strict: raise instead of warning.
    """

    def __init__(self, owner: str, log_dir: str | os.PathLike[str], strict: bool) -> None:
        self.owner = owner
        self.log_dir = log_dir
        self.strict = strict
        self.failed = False

    def run(self, fn: Callable[..., object], *args: Any) -> bool:
        """Calls `fn(*args)`; returns whether it succeeded."""
        try:
            fn(*args)
            return True
        except Exception as e:
            if self.strict:
                raise
            self.failed = True
            warnings.warn(
                "%s stopped logging to %s: %s: %s. Training goes on; pass "
                "strict=True to stop it instead." % (self.owner, self.log_dir, type(e).__name__, e),
                RuntimeWarning,
                stacklevel=callers.user_stacklevel(),
            )
            return False
