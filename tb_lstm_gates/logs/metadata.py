"""The data contract: plugin name, summary metadata and tag names.

Shared by every writer (Keras callback, TF1 hook, checkpoint importer) and by
the reader and the TensorBoard plugin. Imports neither TensorFlow nor Keras.

Its names live in `kinds` (constants, `Block`, `Content`), `stat_info`
(`STAT_INFO`) and `content` (`parse_plugin_content`), and are re-exported
here, where every writer and reader imports them from.
"""

import hashlib
import json

import numpy as np
from tensorboard.compat.proto import summary_pb2

# Gate, part and statistic names live in `names`, which imports nothing, so the
# numeric core needs no TensorBoard; they are re-exported here for writers and readers.
from tb_lstm_gates.core.names import (  # noqa: F401
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
    PROBE_SEQUENCES,
    PROBE_STATS,
    PROBE_TOKENS,
    RETENTION,
    RETENTION_CAP,
    SATURATED,
    SATURATED_HIGH,
    SATURATED_LOW,
    SATURATION_BOUNDS,
    SATURATION_SLOPE,
    SCALAR_STATS,
    SELF_CHECK,
    SIGMOID_SATURATION,
    SPECTRAL_NORM,
    STATES,
    TANH_GATES,
    TANH_SATURATION,
    TENSOR_STATS,
    TOTAL,
    TRAIN_GRAD_NORM,
    UNIT_SATURATION,
)
from tb_lstm_gates.logs.content import parse_plugin_content  # noqa: F401
from tb_lstm_gates.logs.kinds import (  # noqa: F401
    ACTIVATION_MAPS_KIND,
    DEFAULT_STEP_UNIT,
    HISTOGRAMS_KIND,
    KIND_VERSIONS,
    PLUGIN_NAME,
    PROBE_KINDS,
    PROBE_SEQUENCES_KIND,
    PROBE_TOKENS_KIND,
    PROTOCOL_VERSION,
    STATS_KIND,
    STEP_UNITS,
    STRIDES,
    TAG_PREFIX,
    UNIT_SATURATIONS_KIND,
    Block,
    Content,
    NewerVersionError,
    check_step_unit,
)
from tb_lstm_gates.logs.stat_info import STAT_INFO, StatInfo  # noqa: F401


def contract():
    """The contract values the tab needs, as JSON-ready data (see `plugin/http_api.md`, `runs`)."""
    return {
        "version": PROTOCOL_VERSION,
        "stats": {
            stat: {"name": info.name, "description": info.description, "scale": info.scale}
            for stat, info in STAT_INFO.items()
        },
        "weight_stats": list(SCALAR_STATS) + [GRAD_NORM, TRAIN_GRAD_NORM],
        "activation_stats": list(ACTIVATION_STATS),
        # The Activations grid's rows: SATURATED is the sum of the two that tell more apart.
        "activation_rows": [s for s in ACTIVATION_STATS if s != SATURATED],
        "activation": ACTIVATION,
        "total": TOTAL,
        "model_layer": MODEL_LAYER,
        "tanh_gates": list(TANH_GATES),
        "saturation": {"sigmoid": list(SIGMOID_SATURATION), "tanh": list(TANH_SATURATION)},
        # Per activation with a bounded range, its bounds; the probe kinds'
        # `functions` name each gate's activation.
        "saturation_bounds": {name: list(bounds) for name, bounds in SATURATION_BOUNDS.items()},
        # Gates whose activation has no bounded range count as saturated where its slope is below this.
        "saturation_slope": SATURATION_SLOPE,
        "step_units": list(STEP_UNITS),
        # Per cell kind, the name of its state in the probe's sequences.
        "states": dict(STATES),
    }


def tag_for(layer, kind, cell, parts, stats, gates, stride=1, missing=()):
    """Tag of one packed series, e.g. `lstm_gates/lstm/lstm_cell/stats/5f2a9c01`
    (`.../5f2a9c01/every_100` for stride 100).

    The hash of what the tensor holds makes the tag the same in every file
    of a run (a resumed run writes a new file) while telling apart the
    packings of one layer (the first step has no `update_ratio`). Readers
    take the fields from the metadata, never from the tag.
    """
    fields = [cell, list(parts), list(stats), list(gates)] + ([[list(m) for m in missing]] if missing else [])
    key = json.dumps(fields).encode("utf-8")
    tag = "/".join((TAG_PREFIX, layer, kind, hashlib.sha1(key).hexdigest()[:8]))
    return tag if stride == 1 else "%s/every_%d" % (tag, stride)


def create_summary_metadata(
    layer,
    kind,
    cell,
    parts,
    stats,
    gates,
    stride=1,
    missing=(),
    step_unit="step",
    index=None,
    functions=None,
    heads=None,
    origins=None,
):
    """The `SummaryMetadata` of a version 2 summary (see the module's `*_KIND`).

    Args:
      layer: common path of the cell's variables, e.g. `doc_word/fw/lstm_cell`.
      kind: STATS_KIND, HISTOGRAMS_KIND, ACTIVATION_MAPS_KIND or UNIT_SATURATIONS_KIND.
      cell: cell kind, e.g. `lstm`, `gru`, `conv_lstm` (`model` for MODEL_LAYER).
      parts: the parts along the tensor's first axis (STATS_KIND,
        HISTOGRAMS_KIND), or `(ACTIVATION,)`.
      stats: the statistics along the second axis for STATS_KIND, else `()`.
      gates: the gates along the gates axis.
      stride: 1 for the time series of every point, else one of STRIDES.
      missing: for STATS_KIND, the `(part index, stat index)` pairs that
        hold no block.
      step_unit: what the steps count, one of STEP_UNITS; written only when
        it is not DEFAULT_STEP_UNIT, so older readers see the content they know.
      index: the layer's place in the model's order (0 first), or None.
      functions: for PROBE_KINDS, a mapping from each gate to the name of
        its activation function, or None.
      heads: for a layer with heads (xLSTM), `{"count": its layer's number
        of heads, "head": which one this layer is, or None where the units
        are the heads (an mLSTM's scalar gates)}`; None for others.
      origins: for STATS_KIND, `{part: origin}` of the parts whose weights
        are not plain parameters (see `logs.origins`), or None.
    """
    content = {
        "version": PROTOCOL_VERSION,
        "layer": layer,
        "kind": kind,
        "cell": cell,
        "parts": list(parts),
        "gates": list(gates),
    }
    if kind == STATS_KIND:
        content["stats"] = list(stats)
        if missing:
            content["missing"] = [list(m) for m in missing]
    if stride != 1:
        content["stride"] = stride
    if step_unit != DEFAULT_STEP_UNIT:
        content["step_unit"] = check_step_unit(step_unit)
    if index is not None:
        content["index"] = int(index)
    if kind in KIND_VERSIONS:
        content["kind_version"] = KIND_VERSIONS[kind]
    if kind == PROBE_SEQUENCES_KIND:
        content["state"] = STATES[cell]
    if functions and kind in PROBE_KINDS:
        content["functions"] = {gate: str(functions[gate]) for gate in gates}
    if heads is not None:
        content["heads"] = dict(heads)
    if origins and kind == STATS_KIND:
        content["origins"] = {str(part): str(origin) for part, origin in origins.items()}
    return summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(
            plugin_name=PLUGIN_NAME,
            content=json.dumps(content, sort_keys=True).encode("utf-8"),
        ),
        data_class=summary_pb2.DATA_CLASS_TENSOR,
    )


def tokens_tensor(tokens):
    """The uint8 tensor value of PROBE_TOKENS_KIND: the UTF-8 JSON of `tokens` (lists of strings)."""
    return np.frombuffer(json.dumps(tokens, ensure_ascii=False).encode("utf-8"), dtype=np.uint8)


def parse_tokens(array: np.ndarray) -> list[list[str]] | None:
    """The lists of strings a PROBE_TOKENS_KIND tensor holds, or None if it holds something else."""
    try:
        tokens = json.loads(np.asarray(array, dtype=np.uint8).tobytes().decode("utf-8"))
    except ValueError:
        return None
    if isinstance(tokens, list) and all(
        isinstance(row, list) and all(isinstance(t, str) for t in row) for row in tokens
    ):
        return tokens
    return None


def histogram_rows(packed: np.ndarray) -> np.ndarray:
    """TensorBoard's float64 rows `[left, right, count]` of packed histograms (see HISTOGRAMS_KIND).

    Args:
      packed: `(..., ends + bins)`, one packed histogram per leading index.

    Returns:
      float64 `(..., bins, 3)`.
    """
    packed = np.asarray(packed)
    n = 8 // packed.dtype.itemsize
    ends = np.ascontiguousarray(packed[..., :n]).view(np.float32).astype(np.float64)
    left, right = ends[..., :1], ends[..., 1:]
    counts = packed[..., n:].astype(np.float64)
    edges = left + (right - left) / counts.shape[-1] * np.arange(counts.shape[-1] + 1)
    edges[..., -1] = right[..., 0]
    return np.stack([edges[..., :-1], edges[..., 1:], counts], axis=-1)
