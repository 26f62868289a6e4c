"""One check per rule: reads the series of an `Index` and returns its findings.

Each takes its `rules.Rule`, the `Index` and its thresholds; `CHECKS` maps a
rule's name to its check.
"""

import collections
import math

import numpy as np

from tb_lstm_gates.core import activations
from tb_lstm_gates.logs import metadata

WEIGHT_PARTS = ("input", "recurrent", "peephole", "projection")


class Index:
    """The series by stat, and by (run, layer, part, gate, stat)."""

    def __init__(self, series):
        self.by_stat = collections.defaultdict(list)
        self.by_key = {}
        for s in series:
            self.by_stat[s.stat].append(s)
            self.by_key[s.run, s.layer, s.part, s.gate, s.stat] = s


def _finding(rule, s, step, value, message, stat=None):
    return {
        "run": s.run,
        "layer": s.layer,
        "part": s.part,
        "gate": s.gate,
        "rule": rule.name,
        "severity": rule.severity,
        "step": int(step),
        "value": float(value),
        "stat": stat or rule.stat,
        "message": "%s Try: %s." % (message, rule.fix),
    }


def _first(holds):
    """Index of the first True of a boolean array, or None."""
    where = np.flatnonzero(holds)
    return int(where[0]) if len(where) else None


def _trailing(holds, window):
    """Index where the stretch of True ending at the last point starts, if it covers the last `window` points.

    Series shorter than `window` must hold at every point.
    """
    n = len(holds)
    if n == 0:
        return None
    false = np.flatnonzero(~holds)
    start = int(false[-1]) + 1 if len(false) else 0
    return start if n - start >= min(int(window), n) else None


def _block(s):
    return "%s/%s" % (s.part, s.gate)


def _nonfinite(rule, index, limits):
    findings = []
    for s in index.by_stat["nonfinite"]:
        i = _first(s.values > limits["max_count"])
        if i is not None:
            findings.append(
                _finding(
                    rule,
                    s,
                    s.steps[i],
                    s.values[i],
                    "Block %s of %s holds %d NaN or Inf value(s) from step %d on: training diverged "
                    "or a bad value was written into the weights."
                    % (_block(s), s.layer, s.values[i], s.steps[i]),
                )
            )
    return findings


def _weights_mismatch(rule, index, limits):
    findings = []
    for s in index.by_stat[metadata.SELF_CHECK]:
        # inf (finite on one side only) is past any threshold; nan (no valid step) is no value.
        i = _first(~np.isnan(s.values) & (s.values > limits["max"]))
        if i is not None:
            findings.append(
                _finding(
                    rule,
                    s,
                    s.steps[i],
                    s.values[i],
                    "The probe's outputs of %s recomputed from its logged weights differ from the model's "
                    "own by %.3g at step %d: the logged weights are not the ones it computes with, and "
                    "its statistics describe other weights." % (s.layer, s.values[i], s.steps[i]),
                )
            )
    return findings


def _weight_series(index, stat):
    return [s for s in index.by_stat[stat] if s.part in WEIGHT_PARTS]


def _update_ratio_high(rule, index, limits):
    layers = collections.defaultdict(list)
    for s in _weight_series(index, "update_ratio"):
        layers[s.run, s.layer].append(s)
    findings = []
    for group in layers.values():
        median = _median_by_step(group)
        for s in group:
            layer_median = np.array([median.get(step, np.nan) for step in s.steps.tolist()])
            # A block that was all zeros has an infinite ratio: not a jump.
            i = _first(np.isfinite(s.values) & (s.values > limits["max"]) & (layer_median > limits["max"]))
            if i is not None:
                findings.append(
                    _finding(
                        rule,
                        s,
                        s.steps[i],
                        s.values[i],
                        "Block %s of %s changed by %.3g times its norm in the logged step ending at step %d "
                        "(the layer's median block by %.3g): the learning rate is likely far too high."
                        % (_block(s), s.layer, s.values[i], s.steps[i], layer_median[i]),
                    )
                )
    return findings


def _median_by_step(group):
    """`{step: median of the finite values the series of `group` have at that step}`."""
    by_step = collections.defaultdict(list)
    for s in group:
        for step, value in zip(s.steps.tolist(), s.values.tolist()):
            if math.isfinite(value):
                by_step[step].append(value)
    return {step: float(np.median(values)) for step, values in by_step.items()}


def _update_ratio_stalled(rule, index, limits):
    findings = []
    for s in _weight_series(index, "update_ratio"):
        stalled = s.values < limits["min"]
        start = _trailing(stalled, limits["window"])
        # A block that never moved is frozen on purpose, not stalled.
        if start is None or not np.any(s.values[:start] >= limits["min"]):
            continue
        findings.append(
            _finding(
                rule,
                s,
                s.steps[start],
                s.values[start],
                "Block %s of %s moved before step %d and has barely moved since (update ratio %.2g, "
                "last %.2g): its learning has stalled."
                % (_block(s), s.layer, s.steps[start], s.values[start], s.values[-1]),
            )
        )
    return findings


def _l2_exploding(rule, index, limits):
    findings = []
    for s in index.by_stat["l2"]:
        if s.part in (metadata.TOTAL, metadata.ACTIVATION):
            continue
        first = s.values[0]
        # A block that starts at zero (most biases) has no scale to grow from.
        if not (np.isfinite(first) and first > 0):
            continue
        with np.errstate(invalid="ignore"):
            growth = s.values / first
        i = _first(growth > limits["factor"])
        if i is not None:
            findings.append(
                _finding(
                    rule,
                    s,
                    s.steps[i],
                    growth[i],
                    "The l2 norm of block %s of %s grew from %.3g at step %d to %.3g at step %d (%.3gx)."
                    % (_block(s), s.layer, first, s.steps[0], s.values[i], s.steps[i], growth[i]),
                )
            )
    return findings


def _state_gate(s):
    """Whether `s` is of the gate that keeps the state (the one `retention` is logged for)."""
    return activations.RETENTION_GATE.get(s.cell) == s.gate


def _probe_series(index, stat):
    return [s for s in index.by_stat[stat] if s.part == metadata.ACTIVATION]


def _saturated(rule, index, limits):
    findings = []
    for s in _probe_series(index, metadata.SATURATED):
        if _state_gate(s):
            continue  # the forget rules read its saturation through retention
        if s.gate in ("input", "stabilizer", "normalizer") and (
            (s.run, s.layer, s.part, "stabilizer", metadata.ACT_MEAN) in index.by_key
        ):
            continue  # exponential gating: its own rules read these (`findings.exponential`)
        start = _trailing(s.values >= limits["fraction"], limits["window"])
        if start is not None:
            low = index.by_key.get((s.run, s.layer, s.part, s.gate, metadata.SATURATED_LOW))
            side = ""
            if low is not None and len(low.values):
                side = " (mostly %s)" % ("low" if low.values[-1] > s.values[-1] / 2 else "high")
            findings.append(
                _finding(
                    rule,
                    s,
                    s.steps[start],
                    s.values[start],
                    "The %s gate of %s is saturated on %.0f%% of the probe%s from step %d on: it acts as a "
                    "constant and passes almost no gradient."
                    % (s.gate, s.layer, 100 * s.values[start], side, s.steps[start]),
                )
            )
    return findings


def _state_measure(index, s):
    """`(series, is_retention)`: the state gate's retention where logged, else its mean activation."""
    retention = index.by_key.get((s.run, s.layer, s.part, s.gate, metadata.RETENTION))
    return (retention, True) if retention is not None else (s, False)


def _forget_shut(rule, index, limits):
    findings = []
    for s in _probe_series(index, metadata.ACT_MEAN):
        if not _state_gate(s):
            continue
        measure, is_retention = _state_measure(index, s)
        limit = limits["retention"] if is_retention else limits["act_mean"]
        start = _trailing(measure.values <= limit, limits["window"])
        if start is not None:
            what = (
                "retention %.3g steps" % measure.values[start]
                if is_retention
                else ("mean activation %.3g" % measure.values[start])
            )
            findings.append(
                _finding(
                    rule,
                    measure,
                    measure.steps[start],
                    measure.values[start],
                    "The %s gate of %s is shut (%s) from step %d on: the state is erased at every step, "
                    "so the layer cannot remember." % (s.gate, s.layer, what, measure.steps[start]),
                    stat=measure.stat,
                )
            )
    return findings


def _forget_open(rule, index, limits):
    findings = []
    for s in _probe_series(index, metadata.RETENTION):
        start = _trailing(s.values >= limits["retention"], limits["window"])
        if start is not None:
            findings.append(
                _finding(
                    rule,
                    s,
                    s.steps[start],
                    s.values[start],
                    "The %s gate of %s is stuck open (retention %.4g steps, the cap is %g) from step %d on: "
                    "the state is never reset and the gate no longer learns."
                    % (s.gate, s.layer, s.values[start], metadata.RETENTION_CAP, s.steps[start]),
                )
            )
    return findings


def _grad_vanishing(rule, index, limits):
    blocks = collections.defaultdict(list)
    for s in index.by_stat[metadata.GRAD_NORM]:
        blocks[s.run, s.layer, s.part].append(s)
    findings = []
    for group in blocks.values():
        if len(group) < 2:
            continue
        steps = np.array(sorted(set.intersection(*(set(s.steps.tolist()) for s in group))), dtype=np.int64)
        if not len(steps):
            continue
        norms = np.stack([s.values[np.searchsorted(s.steps, steps)] for s in group])
        for g, s in enumerate(group):
            others = np.median(np.delete(norms, g, axis=0), axis=0)
            with np.errstate(invalid="ignore", divide="ignore"):
                ratio = norms[g] / others
            start = _trailing((others > 0) & (ratio < limits["ratio"]), limits["window"])
            if start is not None:
                findings.append(
                    _finding(
                        rule,
                        s,
                        steps[start],
                        ratio[start],
                        "The gradient of block %s of %s is %.2g times the median of the other gates' from "
                        "step %d on: the gate has stopped learning."
                        % (_block(s), s.layer, ratio[start], steps[start]),
                    )
                )
    return findings


def _regularization_dominates(rule, index, limits):
    findings = []
    for penalty in index.by_stat[metadata.PENALTY]:
        if penalty.layer != metadata.MODEL_LAYER:
            continue
        loss = index.by_key.get((penalty.run, penalty.layer, penalty.part, penalty.gate, metadata.LOSS))
        if loss is None:
            continue
        steps, in_penalty, in_loss = np.intersect1d(penalty.steps, loss.steps, return_indices=True)
        total = loss.values[in_loss]
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(total > 0, penalty.values[in_penalty] / total, np.nan)
        start = _trailing(share > limits["share"], limits["window"])
        if start is not None:
            findings.append(
                _finding(
                    rule,
                    penalty,
                    steps[start],
                    share[start],
                    "The regularization penalty is %.0f%% of the training loss from step %d on."
                    % (100 * share[start], steps[start]),
                )
            )
    return findings


def _spectral_norm_high(rule, index, limits):
    findings = []
    for s in index.by_stat[metadata.SPECTRAL_NORM]:
        # Pascanu et al.'s gamma is 1 for tanh gates, 1/4 for sigmoid gates.
        bound = 1.0 if s.gate in metadata.TANH_GATES else 4.0
        start = _trailing(s.values > limits["factor"] * bound, limits["window"])
        if start is not None:
            findings.append(
                _finding(
                    rule,
                    s,
                    s.steps[start],
                    s.values[start],
                    "The recurrent block of the %s gate of %s has a largest singular value of %.3g from "
                    "step %d on, over %g times the %g above which gradients through h_{t-1} can explode."
                    % (s.gate, s.layer, s.values[start], s.steps[start], limits["factor"], bound),
                )
            )
    return findings


CHECKS = {
    "nonfinite": _nonfinite,
    "weights_mismatch": _weights_mismatch,
    "update_ratio_high": _update_ratio_high,
    "update_ratio_stalled": _update_ratio_stalled,
    "l2_exploding": _l2_exploding,
    "saturated": _saturated,
    "forget_shut": _forget_shut,
    "forget_open": _forget_open,
    "grad_vanishing": _grad_vanishing,
    "regularization_dominates": _regularization_dominates,
    "spectral_norm_high": _spectral_norm_high,
}
