"""Checks of the rules for exponential gating (xLSTM's sLSTM and mLSTM; `rules.RULES`).

A layer has exponential gating where its probe logs a `stabilizer` gate
(`tb_lstm_gates.torch.xlstm_probe`): sLSTM heads and mLSTM layers. The
input gate's probe statistics then read as that module documents: its
activation is the stabilized exp(i_t - m_t), in [0, 1]; `saturated_high`
is the share of steps where the input set the stabilizer, `saturated_low`
the share where exp(i_t - m_t) underflows in float32.
"""

import numpy as np

from tb_lstm_gates.findings.checks import _finding, _probe_series, _trailing
from tb_lstm_gates.logs import metadata

STABILIZER = "stabilizer"
# The gates of an exponential-gating layer whose saturation the generic
# `saturated` rule does not read (they have rules of their own, or none).
OWN_RULES = ("input", STABILIZER, "normalizer")


def exponential(index, s):
    """Whether series `s` belongs to a layer with exponential gating (its probe logs a stabilizer)."""
    return (s.run, s.layer, metadata.ACTIVATION, STABILIZER, metadata.ACT_MEAN) in index.by_key


def _input_gates(index, stat):
    return [s for s in _probe_series(index, stat) if s.gate == "input" and exponential(index, s)]


def _held(rule, series, holds, window, message):
    """A finding for each series where `holds(series)` is true over its last `window` logged steps
    and more: at the first step of that run, with `message(series, step, value)`."""
    findings = []
    for s in series:
        start = _trailing(holds(s), window)
        if start is not None:
            step, value = s.steps[start], s.values[start]
            findings.append(_finding(rule, s, step, value, message(s, step, value)))
    return findings


def _stabilizer_dominates(rule, index, limits):
    return _held(
        rule,
        _input_gates(index, metadata.SATURATED_LOW),
        lambda s: s.values >= limits["fraction"],
        limits["window"],
        lambda s, step, value: (
            "The stabilizer of %s dominates its exponential input gate from step %d on: exp(i - m) "
            "underflows to 0 on %.0f%% of the probe's steps, whose inputs are lost and pass no gradient."
            % (s.layer, step, 100 * value)
        ),
    )


def _exponent_growing(rule, index, limits):
    stabilizers = [
        s for s in _probe_series(index, metadata.ACT_MEAN) if s.gate == STABILIZER and len(s.values) >= 2
    ]
    return _held(
        rule,
        stabilizers,
        lambda s: np.concatenate([[False], np.diff(s.values) > 0]) & (s.values >= limits["min"]),
        limits["window"],
        lambda s, step, value: (
            "The stabilizer m of %s (the running maximum of its input gate's exponent) has grown at "
            "every logged step from step %d on, to a mean of %.3g: its gate pre-activations are "
            "drifting up." % (s.layer, step, s.values[-1])
        ),
    )


def _input_gate_closed(rule, index, limits):
    return _held(
        rule,
        _input_gates(index, metadata.ACT_MEAN),
        lambda s: s.values <= limits["act_mean"],
        limits["window"],
        lambda s, step, value: (
            "The exponential input gate of %s never opens from step %d on (mean exp(i - m) %.3g): "
            "the head writes almost nothing new into its memory." % (s.layer, step, value)
        ),
    )


def _forget_pinned(rule, index, limits):
    forget = [
        s for s in _probe_series(index, metadata.ACT_MEAN) if s.gate == "forget" and exponential(index, s)
    ]
    return _held(
        rule,
        forget,
        lambda s: s.values >= limits["act_mean"],
        limits["window"],
        lambda s, step, value: (
            "The forget gate of %s is pinned at 1 from step %d on (mean %.4g): the memory is never "
            "decayed, and the gate's gradient (through log sigmoid) vanishes." % (s.layer, step, value)
        ),
    )


CHECKS = {
    "stabilizer_dominates": _stabilizer_dominates,
    "exponent_growing": _exponent_growing,
    "input_gate_closed": _input_gate_closed,
    "forget_pinned": _forget_pinned,
}
