"""The data contract: plugin name, summary metadata and tag names.

Shared by every writer (Keras callback, TF1 hook, checkpoint importer) and by
the reader and the TensorBoard plugin. Imports neither TensorFlow nor Keras.
"""

import json

from tensorboard.compat.proto import summary_pb2

# Gate, part and statistic names live in `names`, which imports nothing, so the
# numeric core needs no TensorBoard; they are re-exported here for writers and readers.
from tb_lstm_gates.names import (  # noqa: F401
    ACT_MEAN,
    ACTIVATION,
    ACTIVATION_MAP,
    ACTIVATION_STATS,
    GRAD_NORM,
    GRU_GATES,
    HISTOGRAM,
    LOSS,
    LSTM_GATES,
    MODEL_CELL,
    MODEL_LAYER,
    PARTS,
    PENALTY,
    PROBE_STATS,
    RETENTION,
    RETENTION_CAP,
    SATURATED,
    SATURATED_HIGH,
    SATURATED_LOW,
    SCALAR_STATS,
    SPECTRAL_NORM,
    TANH_GATES,
    TENSOR_STATS,
    TOTAL,
    UNIT_SATURATION,
)

PLUGIN_NAME = "lstm_gates"

# Version of the JSON stored in `plugin_data.content`. Readers accept every
# version up to this one.
PROTOCOL_VERSION = 1

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
