"""Names shared by the data contract and the numeric core: gates, parts, statistics.

Imports nothing, so the numeric modules (`layouts`, `stats`, `activations`)
import with numpy alone; `metadata` re-exports every name for writers and
readers.
"""

LSTM_GATES = ("input", "forget", "cell", "output")
GRU_GATES = ("update", "reset", "candidate")
# Gates squashed by tanh rather than a sigmoid (the LSTM cell candidate, the
# GRU candidate): their saturation bounds are -0.9 / 0.9 and the slope of
# their activation is at most 1 instead of 1/4.
TANH_GATES = ("cell", "candidate")
# The saturation bounds of SATURATED_LOW and SATURATED_HIGH: below the first /
# above the second, for sigmoid gates and for tanh gates.
SIGMOID_SATURATION = (0.1, 0.9)
TANH_SATURATION = (-0.9, 0.9)
# Activations with a bounded range, saturated below / above these values
# (see `activations.SATURATION_BOUNDS`); any other is saturated where its
# slope is below SATURATION_SLOPE.
SATURATION_BOUNDS = {
    "sigmoid": SIGMOID_SATURATION,
    "hard_sigmoid": SIGMOID_SATURATION,
    "tanh": TANH_SATURATION,
    "softsign": TANH_SATURATION,
}
# Activations without a bounded range count as saturated where their slope is below this.
SATURATION_SLOPE = 0.1
PARTS = (
    "input",
    "recurrent",
    "bias",
    "input_bias",
    "recurrent_bias",
    "peephole",
    "projection",
    "activation",
)
# Largest singular value of a gate's recurrent block (the matrix acting on
# h_{t-1}; `stats.spectral_norm`), written on part `recurrent` only, and not
# for ConvLSTM cells, whose recurrent kernel is a convolution.
SPECTRAL_NORM = "spectral_norm"
# Statistics of one block, written as float32 scalars.
SCALAR_STATS = (
    "l2",
    "mean",
    "std",
    "min",
    "max",
    "mean_abs",
    "max_abs",
    "nonfinite",
    "update_ratio",
    SPECTRAL_NORM,
)
PENALTY = "penalty"
HISTOGRAM = "histogram"

# Gate activations on the callback's probe batch (see
# `tb_lstm_gates.core.activations`), written with part = ACTIVATION and the gate's
# canonical name. Every statistic leaves out masked time steps.
ACTIVATION = "activation"
# - ACT_MEAN: mean activation over probe sequences, time steps and units;
# - SATURATED_LOW / SATURATED_HIGH: fraction of activations below 0.1 /
#   above 0.9 for sigmoid gates, below -0.9 / above 0.9 for tanh gates (the
#   LSTM cell candidate, the GRU candidate); SATURATED is their sum;
# - RETENTION: mean of min(1 / (1 - a), RETENTION_CAP) over sequences, time
#   steps and units, for the gate that keeps the state (LSTM forget, GRU
#   update): how many steps the state lasts, capped because a = 1 is forever.
ACT_MEAN = "act_mean"
SATURATED = "saturated"
SATURATED_LOW = "saturated_low"
SATURATED_HIGH = "saturated_high"
RETENTION = "retention"
ACTIVATION_STATS = (ACT_MEAN, SATURATED, SATURATED_LOW, SATURATED_HIGH, RETENTION)
RETENTION_CAP = 1000.0
# Norm of the gradient of the model's loss on the probe w.r.t. one block,
# written on the weight's own part (`input`, `recurrent`, `bias`, ...).
GRAD_NORM = "grad_norm"
# Norm of the gradient of the real training batch w.r.t. one block: the
# weights' own `.grad` (PyTorch's GateLogger, when `log` runs between
# `backward()` and `zero_grad()`), on the weight's own part.
TRAIN_GRAD_NORM = "train_grad_norm"
# The probe's self-check (`selfcheck.difference`): the largest difference
# between the outputs recomputed from the logged blocks and the framework's
# own, over the probe's valid steps, relative to the output's scale where
# that exceeds 1. Written per probed layer with part = gate = TOTAL.
SELF_CHECK = "self_check"
# Statistics of the probe, in the order the tab lists them.
PROBE_STATS = ACTIVATION_STATS + (GRAD_NORM,)
# The activations of one gate on the probe's first sequence: a [time, units]
# array (float16 in version 2, float32 in version 1), NaN at masked time
# steps, rows in the input's time order (also for backward layers).
# Part = ACTIVATION.
ACTIVATION_MAP = "activation_map"
# Per unit of one gate, the fractions of the probe's valid time steps (over
# every sequence) left- and right-saturated (the bounds of SATURATED_LOW and
# SATURATED_HIGH): a [units, 2] array (float16 in version 2, float32 in
# version 1), the points of Karpathy, Johnson and Fei-Fei's (2015)
# saturation plot. Part = ACTIVATION.
UNIT_SATURATION = "unit_saturation"
# What the probe's first sequences did over time, for the tab's Text view: per
# gate and for the cell's state (STATES: an LSTM's c_t, a GRU's h_t), a
# [sequences, time, units] array, NaN at masked steps. Part = ACTIVATION.
PROBE_SEQUENCES = "probe_sequences"
STATES = {"lstm": "c_t", "conv_lstm": "c_t", "gru": "h_t"}
# The probe's tokens, one list of strings per sequence, once per run (layer
# MODEL_LAYER).
PROBE_TOKENS = "probe_tokens"
# Statistics whose value is an array rather than a number.
TENSOR_STATS = (HISTOGRAM, ACTIVATION_MAP, UNIT_SATURATION, PROBE_SEQUENCES, PROBE_TOKENS)
# The training loss, logged beside the penalties so the tab can show each
# penalty's share of the loss.
LOSS = "loss"

# Regularization totals use pseudo names:
# - a layer's total penalty: its own `layer` and `cell`, part = gate = TOTAL;
# - the model's regularization loss (stat PENALTY) and training loss (stat
#   LOSS): layer = MODEL_LAYER, cell = MODEL_CELL, part = gate = TOTAL.
TOTAL = "total"
MODEL_LAYER = "model"
MODEL_CELL = "model"
