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


def _stabilizer_dominates(rule, index, limits):
    findings = []
    for s in _input_gates(index, metadata.SATURATED_LOW):
        start = _trailing(s.values >= limits["fraction"], limits["window"])
        if start is not None:
            findings.append(
                _finding(
                    rule,
                    s,
                    s.steps[start],
                    s.values[start],
                    "The stabilizer of %s dominates its exponential input gate from step %d on: exp(i - m) "
                    "underflows to 0 on %.0f%% of the probe's steps, whose inputs are lost and pass no gradient."
                    % (s.layer, s.steps[start], 100 * s.values[start]),
                )
            )
    return findings


def _exponent_growing(rule, index, limits):
    findings = []
    for s in _probe_series(index, metadata.ACT_MEAN):
        if s.gate != STABILIZER or len(s.values) < 2:
            continue
        rising = np.concatenate([[False], np.diff(s.values) > 0]) & (s.values >= limits["min"])
        start = _trailing(rising, limits["window"])
        if start is not None:
            findings.append(
                _finding(
                    rule,
                    s,
                    s.steps[start],
                    s.values[start],
                    "The stabilizer m of %s (the running maximum of its input gate's exponent) has grown at "
                    "every logged step from step %d on, to a mean of %.3g: its gate pre-activations are "
                    "drifting up." % (s.layer, s.steps[start], s.values[-1]),
                )
            )
    return findings


def _input_gate_closed(rule, index, limits):
    findings = []
    for s in _input_gates(index, metadata.ACT_MEAN):
        start = _trailing(s.values <= limits["act_mean"], limits["window"])
        if start is not None:
            findings.append(
                _finding(
                    rule,
                    s,
                    s.steps[start],
                    s.values[start],
                    "The exponential input gate of %s never opens from step %d on (mean exp(i - m) %.3g): "
                    "the head writes almost nothing new into its memory."
                    % (s.layer, s.steps[start], s.values[start]),
                )
            )
    return findings


def _forget_pinned(rule, index, limits):
    findings = []
    for s in _probe_series(index, metadata.ACT_MEAN):
        if s.gate != "forget" or not exponential(index, s):
            continue
        start = _trailing(s.values >= limits["act_mean"], limits["window"])
        if start is not None:
            findings.append(
                _finding(
                    rule,
                    s,
                    s.steps[start],
                    s.values[start],
                    "The forget gate of %s is pinned at 1 from step %d on (mean %.4g): the memory is never "
                    "decayed, and the gate's gradient (through log sigmoid) vanishes."
                    % (s.layer, s.steps[start], s.values[start]),
                )
            )
    return findings


CHECKS = {
    "stabilizer_dominates": _stabilizer_dominates,
    "exponent_growing": _exponent_growing,
    "input_gate_closed": _input_gate_closed,
    "forget_pinned": _forget_pinned,
}
