"""Logs the probe's self-check of one layer (`core.selfcheck`) and warns once where it fails.

Every probe calls `write_probe_trace` (`logs.summary`), which calls
`write_self_check`: a probe that fills `Trace.reference_outputs` gets the
check, its logged statistic (`metadata.SELF_CHECK`), the `weights_mismatch`
finding that reads it and the warning, with nothing more to write.
"""

import warnings
import weakref
from collections.abc import Iterable
from typing import Any

from tb_lstm_gates.core import callers, selfcheck
from tb_lstm_gates.logs import metadata

# The layers already warned about, per writer of loggers that pass no set of their own.
_WARNED: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()


def write_self_check(writer: Any, layer: str, trace: Any, warned: set[str] | None = None) -> float | None:
    """Adds the layer's self-check to the writer's current step; warns the first time it fails.

    Args:
      writer: the step's writer (`write_scalar`).
      layer: the layer's logged name.
      trace: its `activations.Trace` on the probe.
      warned: the set of layers this logger has warned about (one warning
        per layer per logger); None to keep it per writer.

    Returns:
      the difference (`selfcheck.difference`), or None where the probe did
      not capture the framework's outputs.
    """
    value = selfcheck.check(trace)
    if value is None:
        return None
    writer.write_scalar(layer, trace.cell, metadata.TOTAL, metadata.TOTAL, metadata.SELF_CHECK, value)
    if selfcheck.mismatched(value):
        if warned is None:
            try:
                warned = _WARNED.setdefault(writer, set())
            except TypeError:  # a writer that takes no weak reference: warn at every step rather than never
                warned = set()
        _warn_once(layer, value, warned)
    return value


def warn_mismatches(traces: Iterable[tuple[str, Any]], warned: set[str]) -> None:
    """Warns once per layer (kept in `warned`) whose `(layer, trace)` fails its self-check.

    A logger whose writer runs on another thread calls this where the probe
    ran, on the training thread, so the warning points at the user's line;
    passing the same `warned` to `write_self_check` then warns no second time.
    """
    for layer, trace in traces:
        value = selfcheck.check(trace)
        if selfcheck.mismatched(value):
            assert value is not None  # mismatched(None) is False
            _warn_once(layer, value, warned)


def _warn_once(layer: str, value: float, warned: set[str]) -> None:
    if layer not in warned:
        warned.add(layer)
        warnings.warn(mismatch_message(layer, value), RuntimeWarning, stacklevel=callers.user_stacklevel())


def mismatch_message(layer: str, value: float) -> str:
    """The warning of a failed self-check: the layer, the difference and the likely cause."""
    return (
        "tb-lstm-gates: the weights logged for %s are not the ones it computes with: the gates recomputed "
        "from them give outputs that differ from the model's own by %.3g (tolerance %g). Every statistic "
        "of this layer describes other weights. Likely cause: a wrapper or a custom cell that changes the "
        "weights or the inputs the logger sees (weight drop, a custom `call`); log the weights the cell "
        "really uses, or leave the layer out (layers=...). See the self-check in docs/probe.md."
        % (layer, value, selfcheck.TOLERANCE)
    )
