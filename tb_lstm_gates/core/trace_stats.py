"""What is logged of a `Trace`: per-gate statistics, unit saturation, retention, activation maps, probe sequences."""

import dataclasses

import numpy as np

from tb_lstm_gates.core import names
from tb_lstm_gates.core.functions import SATURATION_BOUNDS
from tb_lstm_gates.core.trace import RETENTION_GATE, Trace


def gate_statistics(trace):
    """Per-gate statistics of a trace's activations over its valid steps.

    Returns:
      dict from stat name (`act_mean`, `saturated_low`, `saturated_high`,
      `saturated`; see `metadata`) to a float64 array of shape `(n_gates,)`,
      NaN when no step is valid.
    """
    a = trace.activations[trace.valid]  # (valid steps, n_gates, units)
    stat_names = (names.ACT_MEAN, names.SATURATED_LOW, names.SATURATED_HIGH, names.SATURATED)
    if a.shape[0] == 0:
        return {stat: np.full(len(trace.gates), np.nan) for stat in stat_names}
    low, high = _saturated(trace)
    axes = (0, 2)
    result = {
        names.ACT_MEAN: a.mean(axis=axes, dtype=np.float64),
        names.SATURATED_LOW: low.mean(axis=axes),
        names.SATURATED_HIGH: high.mean(axis=axes),
    }
    result[names.SATURATED] = result[names.SATURATED_LOW] + result[names.SATURATED_HIGH]
    return result


def unit_saturation(trace):
    """Per unit, the fractions of valid steps saturated low and high, as in Karpathy et al. (2015).

    Saturation is that of `gate_statistics` (below 0.1 / above 0.9 for
    sigmoid gates, below -0.9 / above 0.9 for tanh gates, a slope below
    SATURATION_SLOPE for activations without a bounded range), counted over
    every sequence and valid time step of the trace.

    Returns:
      float32 array of shape `(n_gates, units, 2)`: `[..., 0]` the fraction
      left-saturated, `[..., 1]` right-saturated; NaN when no step is valid.
    """
    if not trace.valid.any():
        return np.full(trace.activations.shape[2:] + (2,), np.nan, dtype=np.float32)
    low, high = _saturated(trace)
    return np.stack([low.mean(axis=0), high.mean(axis=0)], axis=-1).astype(np.float32)


def _saturated(trace):
    """`(low, high)`: bool `(valid steps, n_gates, units)`, where the trace's activations are saturated."""
    if trace.saturated_low is not None:
        return trace.saturated_low[trace.valid], trace.saturated_high[trace.valid]
    a = trace.activations[trace.valid]
    low, high = (np.array([SATURATION_BOUNDS[f][i] for f in trace.functions])[:, None] for i in (0, 1))
    return a < low, a > high


def retention(trace, cap=names.RETENTION_CAP):
    """`(gate, horizon)`: the gate that keeps the state and its mean of min(1 / (1 - a), cap).

    1 / (1 - a) is how many steps a state component lasts when the gate keeps
    a fraction `a` of it at each step; capped, since a gate at 1 keeps it
    forever. NaN when no step is valid.
    """
    gate = RETENTION_GATE[trace.cell]
    kept = trace.activations[:, :, trace.gates.index(gate)][trace.valid].astype(np.float64)
    if kept.size == 0:
        return gate, float("nan")
    with np.errstate(divide="ignore"):
        return gate, float(np.minimum(1.0 / (1.0 - kept), cap).mean())


def concatenate(traces: list[Trace]) -> Trace:
    """One `Trace` of several calls of one cell, joined along the time axis in the given order.

    Calls on fewer sequences than the largest are padded with invalid
    steps, so the statistics cover exactly the calls' valid steps and the
    activation map of sequence 0 spans every call. Calls whose units differ
    from the first's (a ConvLSTM cell called on another image size) are
    left out.
    """
    first = traces[0]
    if len(traces) == 1:
        return first
    traces = [t for t in traces if t.activations.shape[2:] == first.activations.shape[2:]]
    batch = max(t.activations.shape[0] for t in traces)

    def joined(field, fill):
        arrays = [getattr(t, field) for t in traces]
        if any(a is None for a in arrays):
            return None
        padded = [
            np.concatenate([a, np.full((batch - a.shape[0],) + a.shape[1:], fill, a.dtype)])
            if len(a) < batch
            else a
            for a in arrays
        ]
        return np.concatenate(padded, axis=1)

    return dataclasses.replace(
        first,
        activations=joined("activations", np.nan),
        valid=joined("valid", False),
        outputs=joined("outputs", np.nan),
        reference_outputs=joined("reference_outputs", np.nan),
        saturated_low=joined("saturated_low", False),
        saturated_high=joined("saturated_high", False),
        states=joined("states", np.nan),
    )


def activation_map(trace, sequence=0):
    """The activations of one sequence: float32 `(n_gates, time, units)`, NaN at masked steps.

    For a ConvLSTM, `units` are its filters, each the mean over the output
    positions: a map of every position would be too wide to read or store.
    """
    a = np.where(trace.valid[sequence, :, None, None], trace.activations[sequence], np.nan)
    if trace.positions > 1:
        a = a.reshape(a.shape[:2] + (trace.positions, -1)).mean(axis=2)
    return np.ascontiguousarray(a.transpose(1, 0, 2), dtype=np.float32)


# Bound of what `probe_sequences` keeps of a layer at one step: at most
# MAX_SEQUENCES sequences and MAX_SEQUENCE_VALUES values (gates and state,
# sequences, time steps, units), 256 KiB as float16.
MAX_SEQUENCES = 8
MAX_SEQUENCE_VALUES = 2**17


def probe_sequences(trace):
    """The gates and the state of the trace's first sequences over time, for the tab's Text view.

    As many sequences as fit MAX_SEQUENCES and MAX_SEQUENCE_VALUES; if one
    sequence alone does not fit, its first time steps. A ConvLSTM's units
    are its filters, each the mean over the output positions, as in
    `activation_map`.

    Returns:
      float32 `(n_gates + 1, sequences, time, units)`: the gates in the
      order of `trace.gates`, then the state (`names.STATES`); NaN at
      masked steps.
    """
    a = np.moveaxis(trace.activations, 2, 0)  # (gates, batch, time, units)
    a = np.concatenate([a, trace.states[None]], axis=0)
    if trace.positions > 1:
        a = a.reshape(a.shape[:3] + (trace.positions, -1)).mean(axis=3)
    rows, batch, time, units = a.shape
    per_sequence = rows * time * units
    sequences = max(1, min(batch, MAX_SEQUENCES, MAX_SEQUENCE_VALUES // per_sequence))
    time = min(time, max(1, MAX_SEQUENCE_VALUES // (rows * units)))
    a = np.where(trace.valid[None, :sequences, :time, None], a[:, :sequences, :time], np.nan)
    return np.ascontiguousarray(a, dtype=np.float32)
