"""The gate-health rules: what each checks, its severity and thresholds, and how users override them.

Also the `Series` the checks read and the statistics they need (`STATS_READ`).
"""

import collections
import dataclasses
import math
from collections.abc import Iterable

from tb_lstm_gates.core import selfcheck
from tb_lstm_gates.logs import metadata

SEVERITIES = ("info", "warning", "error")


# The series of one block: `steps` (int64) and `values` (float64), in step
# order, one value per step.
Series = collections.namedtuple("Series", ["run", "layer", "cell", "part", "gate", "stat", "steps", "values"])


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
        metadata.SELF_CHECK,
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
        "weights_mismatch",
        "error",
        metadata.SELF_CHECK,
        {"max": (selfcheck.TOLERANCE, "largest self-check difference of a healthy cell")},
        "the probe's outputs recomputed from the logged weights differ from the model's own: the logged "
        "weights are not the ones the layer computes with (value: the largest difference, relative to the "
        "output's scale where it exceeds 1)",
        "the recomputation runs in float64, the framework in float32: on every healthy structure of the "
        "Keras test generator, the demo's 40-step char model, tf_keras layers and the docs' examples, the "
        "two differ by at most about 1e-6; weights changed behind the logger (one recurrent weight in ten "
        "dropped, halved inputs) move the outputs by 1e-2 and more",
        "look for a wrapper or custom cell that changes the weights or inputs the cell computes with (weight "
        "drop, a parametrization, a custom `call`); every statistic of the layer describes other weights "
        "until the logger reads the ones the model uses (see the self-check in docs/probe.md)",
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
        "sigmoid gate saturated below 0.1 or above 0.9 (tanh: |a| > 0.9); activations without a bounded range "
        "(relu, gelu, elu, ...) count where their slope is below 0.1 (relu: dead, at exactly 0); a gate "
        "saturated 90% of the time "
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
    # Exponential gating (xLSTM; `findings.exponential`): layers whose probe logs a stabilizer.
    Rule(
        "stabilizer_dominates",
        "warning",
        "saturated_low",
        {
            "fraction": (0.5, "share of probe steps where the exponential input gate exp(i - m) underflows"),
            "window": (3, "last logged steps where it must hold"),
        },
        "the stabilizer m, not the input, sets an exponential input gate so far below it that exp(i - m) "
        "underflows in float32 on most of the probe (value: the share)",
        "Beck et al. (2024, xLSTM) keep exp(i) finite with m_t = max(i_t, log f_t + m_{t-1}); where i_t - m_t "
        "< log(float32 tiny) = -87.3 the input's weight is exactly 0 and it passes no gradient; on half of "
        "the steps that is no longer a rare new maximum but the stabilizer ruling the gate",
        "lower the learning rate, clip gradients, look for input-gate pre-activations with outliers (the "
        "input scale, the input-gate weights' norm)",
    ),
    Rule(
        "exponent_growing",
        "warning",
        "act_mean",
        {
            "min": (20.0, "mean stabilizer m from which growth counts"),
            "window": (3, "last logged steps at each of which m must have grown"),
        },
        "the stabilizer m of an exponential-gating layer grows at every logged step and is large "
        "(value: its mean over the probe)",
        "m is the running maximum of the input gate's exponent; exp(20) = 4.9e8 is beyond float16's range "
        "(65504 = exp(11.1)) and a quarter of the way to float32's overflow at exp(88.7): exponents growing "
        "step after step are the drift the stabilizer hides until the gates' precision is gone",
        "lower the learning rate, add weight decay on the input-gate weights, clip gradients",
    ),
    Rule(
        "input_gate_closed",
        "warning",
        "act_mean",
        {
            "act_mean": (0.1, "mean stabilized input gate exp(i - m) at or under which it counts as closed"),
            "window": (3, "last logged steps where it must hold"),
        },
        "a head's exponential input gate never opens: its mean stabilized activation exp(i - m) is small "
        "(value: the mean)",
        "from a zero state the first step's input sets m (exp(i - m) = 1), so on a probe of T steps the mean "
        "is at least 1/T: probes of 20 steps or more let 0.1 mean the gate opened on under one step in ten",
        "check the head's input-gate bias and weights, and whether the other heads do its work",
    ),
    Rule(
        "forget_pinned",
        "info",
        "act_mean",
        {
            "act_mean": (0.999, "mean forget-gate activation at or over which it counts as pinned at 1"),
            "window": (3, "last logged steps where it must hold"),
        },
        "the forget gate of an exponential-gating layer is pinned at 1 (value: its mean)",
        "a forget gate of 0.999 keeps e^-1 of the memory after 1000 steps; xLSTM initialises forget biases "
        "at 3 to 6 (sigmoid 0.95 to 0.998), so a mean over 0.999 is past the initialisation's range",
        "lower the forget-gate bias, check the input scale of the forget gate, lower the learning rate",
    ),
)
RULES_BY_NAME = {rule.name: rule for rule in RULES}


def default_settings() -> dict[tuple[str, str], float]:
    """`{(rule, threshold): default value}` of every rule."""
    return {(r.name, t): default for r in RULES for t, (default, _) in r.thresholds.items()}


def setting_keys():
    """Every `rule.threshold` key `--set` accepts, in rule order."""
    return ["%s.%s" % key for key in default_settings()]


def parse_settings(items: Iterable[str]) -> dict[tuple[str, str], float]:
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
