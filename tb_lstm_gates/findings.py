"""Gate-health findings: rules that read logged statistics and say what is wrong.

Pure numpy over the values `tb_lstm_gates.load()` returns (or the same
series read through TensorBoard's data provider, for the tab), so the
`tb-lstm-gates report` command and the plugin's `findings` route apply the
same rules. Imports neither TensorFlow nor Keras.

A finding is a dict with `run`, `layer`, `part`, `gate` (the block, or
`model`/`total`/`total` for the model's losses), `rule`, `severity` (`info`,
`warning`, `error`), `step` (the first step where the rule holds), `value`
(the rule's measure at that step, see each rule), `stat` (the logged
statistic to chart to see it) and `message` (the likely cause and what to
try).

Two kinds of rules: event rules fire at the first step where their
condition holds (a NaN, a jump); state rules describe how the run stands
now, and fire when their condition holds at each of the series' last
`window` logged steps, with `step` the first of the stretch of steps,
ending at the last one, where it holds.
"""

import collections
import dataclasses
import json
import math

import numpy as np

from tb_lstm_gates import activations, metadata

SEVERITIES = ("info", "warning", "error")
FORMATS = ("text", "markdown", "json")

# The series of one block: `steps` (int64) and `values` (float64), in step
# order, one value per step.
Series = collections.namedtuple("Series", ["run", "layer", "cell", "part", "gate", "stat", "steps", "values"])

WEIGHT_PARTS = ("input", "recurrent", "peephole", "projection")
# Every statistic a rule reads: readers need not fetch the others.
STATS_READ = frozenset(
    {
        "nonfinite",
        "update_ratio",
        "l2",
        metadata.SPECTRAL_NORM,
        metadata.ACT_MEAN,
        metadata.SATURATED,
        metadata.SATURATED_LOW,
        metadata.RETENTION,
        metadata.GRAD_NORM,
        metadata.PENALTY,
        metadata.LOSS,
    }
)


@dataclasses.dataclass(frozen=True)
class Rule:
    """One check: its name, severity, thresholds and where its threshold comes from.

    Attributes:
      name: the `rule` of its findings and the prefix of its `--set` keys.
      severity: `info`, `warning` or `error`.
      stat: the statistic its findings point at.
      thresholds: `{name: (default, meaning)}`.
      what: when it fires, in one sentence.
      source: where the threshold comes from.
      fix: what to try.
    """

    name: str
    severity: str
    stat: str
    thresholds: dict
    what: str
    source: str
    fix: str


RULES = (
    Rule(
        "nonfinite",
        "error",
        "nonfinite",
        {"max_count": (0, "NaN or Inf values a block may hold")},
        "a weight block holds NaN or Inf values (value: how many, at the first step)",
        "any non-finite weight poisons every output it reaches; the first block and step show where it began",
        "lower the learning rate, clip gradients (`clipnorm`), look for log(0) or division by zero in the "
        "loss, and restart from the last finite checkpoint",
    ),
    Rule(
        "update_ratio_high",
        "warning",
        "update_ratio",
        {"max": (1.0, "largest ||W_t - W_prev|| / ||W_prev|| between two logged steps")},
        "a weight block, and the median weight block of its layer, move by more than their own norm "
        "between two logged steps (value: the block's ratio)",
        "Karpathy's rule of thumb (CS231n notes) puts a healthy update near 1e-3 of the weights per update; "
        "a logged step spans many updates (an epoch), so the rule only fires a thousand times above it, "
        "where no healthy run we trained comes (at most 0.06 per epoch). A learning rate moves every block: "
        "a lone block moving by its norm is one a penalty shrank near zero (the demo's L2 on the forget "
        "gate does that), not a learning rate",
        "lower the learning rate (by 10x), add warm-up or gradient clipping",
    ),
    Rule(
        "update_ratio_stalled",
        "warning",
        "update_ratio",
        {
            "min": (1e-5, "update ratio under which a block counts as stalled"),
            "window": (3, "last logged steps that must all be stalled"),
        },
        "a weight block that moved earlier barely moves any more (value: the ratio)",
        "Karpathy's rule of thumb: ratios far below 1e-3 per update mean the learning rate is too low; "
        "1e-5 over a whole logged step is far below it",
        "check the learning-rate schedule (decayed to nearly zero?), whether the layer was frozen on "
        "purpose, and whether its gradients vanish (`grad_norm`)",
    ),
    Rule(
        "l2_exploding",
        "warning",
        "l2",
        {"factor": (10.0, "growth of a block's l2 norm over its first logged value")},
        "a block's l2 norm has grown many times its first logged value (value: the growth factor); blocks "
        "starting at zero, as most biases do, are left out",
        "weights of healthy runs we trained grow by at most 1.2x over their training; tenfold growth means "
        "the updates drive the weights away rather than fitting",
        "lower the learning rate, add weight decay or a gate-wise L2 (`GateRegularizer`), clip gradients",
    ),
    Rule(
        "saturated",
        "warning",
        "saturated",
        {
            "fraction": (0.9, "share of probe activations in the saturated ranges"),
            "window": (3, "last logged steps that must all be saturated"),
        },
        "a gate (other than the one keeping the state) is saturated on most of the probe "
        "(value: the fraction)",
        "Karpathy, Johnson and Fei-Fei (2015, 'Visualizing and understanding recurrent networks') count a "
        "sigmoid gate saturated below 0.1 or above 0.9 (tanh: |a| > 0.9); a gate saturated 90% of the time "
        "acts as a constant and passes almost no gradient (sigmoid' < 0.09 there). The demo's healthy "
        "char-level GRU has its tanh candidate saturated up to 81% of the time",
        "check the gate's bias initialisation and input scale (normalise inputs), lower the learning rate",
    ),
    Rule(
        "forget_shut",
        "warning",
        "retention",
        {
            "retention": (1.25, "retention (steps the state lasts) at or under which the gate is shut"),
            "act_mean": (0.2, "mean activation at or under which it is shut, where retention is not logged"),
            "window": (3, "last logged steps that must all be shut"),
        },
        "the gate keeping the state (LSTM forget, GRU update) is shut: the state lasts about one step "
        "(value: the retention, or the mean activation)",
        "Gers, Schmidhuber and Cummins (2000) and Jozefowicz et al. (2015): a forget gate near 0 erases the "
        "cell every step, so the LSTM cannot remember; hence the forget-bias-of-1 initialisation",
        "initialise the forget bias at 1 (Keras `unit_forget_bias=True`), check for a forget-gate penalty "
        "pushing it shut, lower the learning rate",
    ),
    Rule(
        "forget_open",
        "warning",
        "retention",
        {
            "retention": (900.0, "retention at or over which the gate counts as stuck open (cap 1000)"),
            "window": (3, "last logged steps that must all be open"),
        },
        "the gate keeping the state is stuck open: retention at the cap, the state is never reset "
        "(value: the retention)",
        "retention is capped at 1000 steps (`metadata.RETENTION_CAP`); a gate mean near the cap has nearly "
        "every activation above 0.999, where it no longer learns (its gradient vanishes)",
        "lower the forget bias initialisation, check the input scale, lower the learning rate",
    ),
    Rule(
        "grad_vanishing",
        "warning",
        "grad_norm",
        {
            "ratio": (1e-3, "a block's gradient norm over the median of the other gates' (same layer, part)"),
            "window": (3, "last logged steps where it must hold"),
        },
        "a gate block's gradient on the probe vanishes next to the other gates of its layer and part "
        "(value: its gradient norm over theirs)",
        "vanishing gradients (Hochreiter 1991; Bengio, Simard and Frasconi 1994; Pascanu, Mikolov and Bengio "
        "2013): a block three orders of magnitude below its neighbours no longer learns",
        "look at the gate's saturation: a saturated gate passes no gradient; check its bias initialisation "
        "and any penalty on it",
    ),
    Rule(
        "regularization_dominates",
        "warning",
        "penalty",
        {
            "share": (0.5, "the model's regularization loss over its training loss"),
            "window": (3, "last logged steps where it must hold"),
        },
        "the regularization penalty is most of the training loss (value: penalty / loss)",
        "the logged training loss includes the penalty; when the penalty is most of it, the optimizer "
        "shrinks weights instead of fitting the data",
        "lower the regularization coefficients (the Regularization view shows which gate's penalty is "
        "largest)",
    ),
    Rule(
        "spectral_norm_high",
        "warning",
        "spectral_norm",
        {
            "factor": (4.0, "times 1/gamma (1 for tanh, 4 for sigmoid gates) the singular value may reach"),
            "window": (3, "last logged steps where it must hold"),
        },
        "a gate's recurrent block amplifies the hidden state far more than its activation can damp "
        "(value: the largest singular value)",
        "Pascanu, Mikolov and Bengio (2013): gradients through h_{t-1} can explode only where the recurrent "
        "matrix's largest singular value exceeds 1/gamma (gamma bounds the activation's slope: 1 for tanh, "
        "1/4 for sigmoid). The bound is necessary, not sufficient, and an LSTM's gates damp the path further "
        "(the demo's healthy char-LSTM reaches 2.9 on its cell gate), so the rule fires at 4 times it",
        "clip gradients, add an orthogonal penalty on the recurrent kernel "
        "(`GateRegularizer(orthogonal=...)`), lower the learning rate",
    ),
)
RULES_BY_NAME = {rule.name: rule for rule in RULES}


def default_settings():
    """`{(rule, threshold): default value}` of every rule."""
    return {(r.name, t): default for r in RULES for t, (default, _) in r.thresholds.items()}


def setting_keys():
    """Every `rule.threshold` key `--set` accepts, in rule order."""
    return ["%s.%s" % key for key in default_settings()]


def parse_settings(items):
    """Threshold overrides from `rule.threshold=value` strings.

    Returns:
      `{(rule, threshold): float}`, ready for `check`.

    Raises:
      ValueError: naming the bad item and listing the valid keys.
    """
    defaults = default_settings()
    settings = {}
    for item in items:
        key, sep, text = item.partition("=")
        rule, dot, name = key.strip().partition(".")
        if not sep or not dot or (rule, name) not in defaults:
            raise ValueError(
                "unknown threshold %r: give rule.threshold=value with one of %s"
                % (item, ", ".join(setting_keys()))
            )
        try:
            value = float(text)
        except ValueError:
            raise ValueError("threshold %s needs a number, got %r" % (key, text)) from None
        if not math.isfinite(value) or value < 0:
            raise ValueError("threshold %s must be a finite number >= 0, got %r" % (key, text))
        if name == "window" and (value < 1 or value != int(value)):
            raise ValueError("threshold %s must be a whole number of steps >= 1, got %r" % (key, text))
        settings[rule, name] = value
    return settings


def series_from_records(records):
    """The scalar series in `load()`'s records, as `Series`; histograms and maps are left out."""
    points = collections.defaultdict(dict)
    cells = {}
    for r in records:
        if r.stat in metadata.TENSOR_STATS:
            continue
        key = (r.run, r.layer, r.part, r.gate, r.stat)
        points[key][r.step] = r.value
        cells[key] = r.cell
    series = []
    for key, by_step in points.items():
        steps = np.array(sorted(by_step), dtype=np.int64)
        values = np.array([by_step[s] for s in steps.tolist()], dtype=np.float64)
        run, layer, part, gate, stat = key
        series.append(Series(run, layer, cells[key], part, gate, stat, steps, values))
    return series


def check(records, settings=None):
    """The findings of `load()`'s records; see `check_series`."""
    return check_series(series_from_records(records), settings)


def check_series(series, settings=None):
    """Applies every rule to `series` (an iterable of `Series`).

    Args:
      settings: threshold overrides as `parse_settings` returns them.

    Returns:
      list of finding dicts, sorted by run, then severity (errors first),
      step, layer, block and rule.
    """
    thresholds = {**default_settings(), **(settings or {})}
    index = _Index(series)
    findings = []
    for rule in RULES:
        limits = {name: thresholds[rule.name, name] for name in rule.thresholds}
        findings += _CHECKS[rule.name](rule, index, limits)
    order = {name: k for k, name in enumerate(RULES_BY_NAME)}
    findings.sort(
        key=lambda f: (
            f["run"],
            -SEVERITIES.index(f["severity"]),
            f["step"],
            f["layer"],
            _position(f["part"], metadata.PARTS),
            _position(f["gate"], metadata.LSTM_GATES + metadata.GRU_GATES),
            order[f["rule"]],
        )
    )
    return findings


def at_or_above(findings, severity):
    """The findings whose severity is `severity` or worse."""
    level = SEVERITIES.index(severity)
    return [f for f in findings if SEVERITIES.index(f["severity"]) >= level]


def counts(findings):
    """`{run: {severity: count}}`, every severity present for every run with findings."""
    result = {}
    for f in findings:
        result.setdefault(f["run"], dict.fromkeys(SEVERITIES, 0))[f["severity"]] += 1
    return result


# Rules. Each takes its `Rule`, the `_Index` and its thresholds, and returns findings.


class _Index:
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
                    rule, s, s.steps[i], s.values[i],
                    "Block %s of %s holds %d NaN or Inf value(s) from step %d on: training diverged "
                    "or a bad value was written into the weights."
                    % (_block(s), s.layer, s.values[i], s.steps[i]),
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
                        rule, s, s.steps[i], s.values[i],
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
                rule, s, s.steps[start], s.values[start],
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
                    rule, s, s.steps[i], growth[i],
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
        start = _trailing(s.values >= limits["fraction"], limits["window"])
        if start is not None:
            low = index.by_key.get((s.run, s.layer, s.part, s.gate, metadata.SATURATED_LOW))
            side = ""
            if low is not None and len(low.values):
                side = " (mostly %s)" % ("low" if low.values[-1] > s.values[-1] / 2 else "high")
            findings.append(
                _finding(
                    rule, s, s.steps[start], s.values[start],
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
            what = "retention %.3g steps" % measure.values[start] if is_retention else (
                "mean activation %.3g" % measure.values[start]
            )
            findings.append(
                _finding(
                    rule, measure, measure.steps[start], measure.values[start],
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
                    rule, s, s.steps[start], s.values[start],
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
                        rule, s, steps[start], ratio[start],
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
                    rule, penalty, steps[start], share[start],
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
                    rule, s, s.steps[start], s.values[start],
                    "The recurrent block of the %s gate of %s has a largest singular value of %.3g from "
                    "step %d on, over %g times the %g above which gradients through h_{t-1} can explode."
                    % (s.gate, s.layer, s.values[start], s.steps[start], limits["factor"], bound),
                )
            )
    return findings


_CHECKS = {
    "nonfinite": _nonfinite,
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


def _position(name, canonical):
    return (canonical.index(name) if name in canonical else len(canonical), name)


# Output.


def to_json(findings):
    """`{"findings": [...]}` as JSON text; non-finite values as null."""
    clean = [dict(f, value=f["value"] if math.isfinite(f["value"]) else None) for f in findings]
    return json.dumps({"findings": clean}, indent=2, allow_nan=False)


def to_text(findings):
    """One block of lines per run: `SEVERITY  layer part/gate  rule at step S (value V)` and the message."""
    if not findings:
        return "no findings"
    lines = []
    run = None
    for f in findings:
        if f["run"] != run:
            run = f["run"]
            if lines:
                lines.append("")
            lines.append("run %s: %s" % (run, _count_text(counts(findings)[run])))
        lines.append(
            "  %-7s %s %s/%s  %s at step %d (value %.4g)"
            % (f["severity"].upper(), f["layer"], f["part"], f["gate"], f["rule"], f["step"], f["value"])
        )
        lines.append("          " + f["message"])
    return "\n".join(lines)


def to_markdown(findings):
    """A Markdown table of the findings, with a count line per run."""
    if not findings:
        return "No findings."
    lines = ["%s: %s  " % (_md(run), _count_text(c)) for run, c in counts(findings).items()]
    lines += ["", "| severity | run | layer | block | rule | step | value | message |", "|---" * 8 + "|"]
    for f in findings:
        lines.append(
            "| %s | %s | %s | %s/%s | %s | %d | %.4g | %s |"
            % (f["severity"], _md(f["run"]), _md(f["layer"]), f["part"], f["gate"], f["rule"], f["step"],
               f["value"], _md(f["message"]))
        )
    return "\n".join(lines)


def format_findings(findings, fmt):
    """`findings` as `text`, `markdown` or `json`."""
    return {"text": to_text, "markdown": to_markdown, "json": to_json}[fmt](findings)


def _count_text(by_severity):
    return ", ".join(
        "%d %s%s" % (n, s, "" if n == 1 else "s") for s, n in reversed(list(by_severity.items())) if n
    )


def _md(text):
    return str(text).replace("|", "\\|")
