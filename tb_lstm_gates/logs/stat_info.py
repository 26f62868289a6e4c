"""What the tab shows of each statistic: display name, description, chart scale (`STAT_INFO`)."""

import collections

from tb_lstm_gates.core.names import (
    ACT_MEAN,
    GRAD_NORM,
    LOSS,
    PENALTY,
    RETENTION,
    SATURATED,
    SATURATED_HIGH,
    SATURATED_LOW,
    SPECTRAL_NORM,
    TRAIN_GRAD_NORM,
)

# Per statistic, what the tab shows of it: a display name, one line on what
# it measures and what a healthy value looks like, and the scale its charts
# open on. Sent to the tab by the `runs` route (`contract()`), so these words
# live here, beside the definitions above, and nowhere in the frontend.
StatInfo = collections.namedtuple("StatInfo", ["name", "description", "scale"])
STAT_INFO = {
    "l2": StatInfo(
        "L2 norm",
        "Euclidean norm of the gate's weights: steady or slowly growing is healthy; a steep climb means "
        "the weights blow up.",
        "linear",
    ),
    "mean": StatInfo(
        "mean",
        "Mean of the gate's weights: near 0 for kernels; a bias drifts to where the gate should sit "
        "(forget biases often near 1).",
        "linear",
    ),
    "std": StatInfo(
        "standard deviation",
        "Spread of the gate's weights: should settle, not collapse to 0 nor keep growing.",
        "linear",
    ),
    "min": StatInfo(
        "minimum",
        "Smallest weight of the gate: watch for runaway negative values.",
        "linear",
    ),
    "max": StatInfo(
        "maximum",
        "Largest weight of the gate: watch for runaway positive values.",
        "linear",
    ),
    "mean_abs": StatInfo(
        "mean |w|",
        "Mean absolute weight: the gate's typical weight size; steady is healthy.",
        "linear",
    ),
    "max_abs": StatInfo(
        "max |w|",
        "Largest absolute weight: one weight far beyond the others hints at instability.",
        "linear",
    ),
    "nonfinite": StatInfo(
        "non-finite count",
        "Number of NaN or Inf weights: anything but 0 means training diverged.",
        "linear",
    ),
    "update_ratio": StatInfo(
        "update ratio",
        "Norm of the change since the previous step over the weights' norm: around 1e-3 per step is "
        "healthy; far below, the gate stopped learning; above 1e-1, it jumps.",
        "log",
    ),
    SPECTRAL_NORM: StatInfo(
        "spectral norm",
        "Largest singular value of the recurrent block: well above 1, the state can explode over time "
        "steps; well below 1, gradients vanish.",
        "linear",
    ),
    ACT_MEAN: StatInfo(
        "mean activation",
        "Mean activation of the gate on the probe batch: gates stuck near their bounds have stopped "
        "responding to the input.",
        "linear",
    ),
    SATURATED: StatInfo(
        "saturated fraction",
        "Fraction of activations at either bound: a few percent is normal; most of them means the gate no"
        " longer passes gradient.",
        "linear",
    ),
    SATURATED_LOW: StatInfo(
        "fraction saturated low",
        "Fraction of activations below 0.1 (sigmoid gates) or -0.9 (tanh gates): a gate almost always "
        "closed.",
        "linear",
    ),
    SATURATED_HIGH: StatInfo(
        "fraction saturated high",
        "Fraction of activations above 0.9: a gate almost always open.",
        "linear",
    ),
    RETENTION: StatInfo(
        "retention (steps)",
        "How many time steps the state lasts: mean of 1 / (1 - forget or update activation); it should "
        "reach the dependencies the task needs.",
        "log",
    ),
    GRAD_NORM: StatInfo(
        "gradient norm (probe)",
        "Norm of the loss gradient on the probe batch w.r.t. the block: vanishing near 0 or exploding by "
        "orders of magnitude are both unhealthy.",
        "log",
    ),
    TRAIN_GRAD_NORM: StatInfo(
        "gradient norm (training)",
        "Norm of the block's gradient on the training batch (its .grad when logged after backward()): "
        "vanishing near 0 or exploding by orders of magnitude are both unhealthy.",
        "log",
    ),
    PENALTY: StatInfo(
        "penalty",
        "Regularization penalty added to the loss: should stay a small share of the loss.",
        "linear",
    ),
    LOSS: StatInfo(
        "loss",
        "The model's training loss, beside the penalties.",
        "linear",
    ),
}
