"""The data contract: plugin name, summary metadata and tag names.

Shared by every writer (Keras callback, TF1 hook, checkpoint importer) and by
the reader and the TensorBoard plugin. Imports neither TensorFlow nor Keras.
"""

import json

from tensorboard.compat.proto import summary_pb2

PLUGIN_NAME = "lstm_gates"

# Version of the JSON stored in `plugin_data.content`. Readers accept every
# version up to this one.
PROTOCOL_VERSION = 1

LSTM_GATES = ("input", "forget", "cell", "output")
GRU_GATES = ("update", "reset", "candidate")
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
# `tb_lstm_gates.activations`), written with part = ACTIVATION and the gate's
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
# Statistics of the probe, in the order the tab lists them.
PROBE_STATS = ACTIVATION_STATS + (GRAD_NORM,)
# The activations of one gate on the probe's first sequence: a float32
# [time, units] tensor (DATA_CLASS_TENSOR), NaN at masked time steps, rows in
# the input's time order (also for backward layers). Part = ACTIVATION.
ACTIVATION_MAP = "activation_map"
# Per unit of one gate, the fractions of the probe's valid time steps (over
# every sequence) left- and right-saturated (the bounds of SATURATED_LOW and
# SATURATED_HIGH): a float32 [units, 2] tensor (DATA_CLASS_TENSOR), the
# points of Karpathy, Johnson and Fei-Fei's (2015) saturation plot. Part =
# ACTIVATION.
UNIT_SATURATION = "unit_saturation"
# Statistics written as tensors rather than scalars.
TENSOR_STATS = (HISTOGRAM, ACTIVATION_MAP, UNIT_SATURATION)
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

TAG_PREFIX = PLUGIN_NAME


def tag_for(layer, part, gate, stat):
    """Tag of one series, e.g. `lstm_gates/model/lstm/lstm_cell/recurrent/forget/l2`.

    The tag only has to be unique and readable; readers take the fields from
    the metadata, never by parsing the tag.
    """
    return "/".join((TAG_PREFIX, layer, part, gate, stat))


def create_summary_metadata(layer, cell, part, gate, stat):
    """A `SummaryMetadata` proto for one series of one block.

    Args:
      layer: common path of the cell's variables, e.g. `doc_word/fw/lstm_cell`.
      cell: cell kind, e.g. `lstm`, `gru`, `conv_lstm`.
      part: `input`, `recurrent`, `bias`, ..., `activation` or `total`.
      gate: canonical gate name or `total`.
      stat: one of SCALAR_STATS, PROBE_STATS, `penalty`, `loss` or
        TENSOR_STATS (`histogram`, `activation_map`).
    """
    content = {
        "version": PROTOCOL_VERSION,
        "layer": layer,
        "cell": cell,
        "part": part,
        "gate": gate,
        "stat": stat,
    }
    data_class = (
        summary_pb2.DATA_CLASS_TENSOR
        if stat in TENSOR_STATS
        else summary_pb2.DATA_CLASS_SCALAR
    )
    return summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(
            plugin_name=PLUGIN_NAME,
            content=json.dumps(content, sort_keys=True).encode("utf-8"),
        ),
        data_class=data_class,
    )


def parse_plugin_content(content):
    """The dict stored in `plugin_data.content`.

    Raises:
      ValueError: the content is not this plugin's JSON, or comes from a newer
        version of tb-lstm-gates than the one installed.
    """
    if isinstance(content, bytes):
        content = content.decode("utf-8", errors="replace")
    try:
        parsed = json.loads(content)
    except ValueError as e:
        raise ValueError("lstm_gates summary metadata is not JSON: %s" % e) from None
    if not isinstance(parsed, dict):
        raise ValueError("lstm_gates summary metadata is not a JSON object")
    version = parsed.get("version")
    if not isinstance(version, int) or version > PROTOCOL_VERSION:
        raise ValueError(
            "lstm_gates summary metadata has version %r; this tb-lstm-gates "
            "reads up to version %d: upgrade tb-lstm-gates" % (version, PROTOCOL_VERSION)
        )
    missing = [k for k in ("layer", "cell", "part", "gate", "stat") if not isinstance(parsed.get(k), str)]
    if missing:
        raise ValueError("lstm_gates summary metadata lacks %s" % ", ".join(missing))
    return parsed
