"""The data contract: plugin name, summary metadata and tag names.

Shared by every writer (Keras callback, TF1 hook, checkpoint importer) and by
the reader and the TensorBoard plugin. Imports neither TensorFlow nor Keras.
"""

import collections
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

PLUGIN_NAME = "lstm_gates"

# Version of the JSON stored in `plugin_data.content`. Readers accept every
# version up to this one: version 1 wrote one summary per block and
# statistic, version 2 packs them (see `create_summary_metadata`).
PROTOCOL_VERSION = 2

TAG_PREFIX = PLUGIN_NAME

# What a version 2 summary packs (`kind` in its content), with the tensor it holds:
# - STATS_KIND: float32 `[parts, stats, gates]`, every scalar statistic of
#   the blocks of a layer that share their gates and whose statistics nest
#   (`missing`, in the content, lists the `[part, stat]` index pairs a part
#   lacks, NaN in the tensor: `spectral_norm` is on the recurrent part only,
#   and a tensor of its own would cost TensorBoard a point per layer-step);
# - HISTOGRAMS_KIND: uint8, uint16 or uint32 (the smallest that holds the
#   counts) `[parts, gates, ends + bins]`: per histogram of evenly spaced
#   buckets, its float32 `left` and `right` ends as raw bits (8 bytes: 8,
#   4 or 2 entries), then the count of each bucket;
# - ACTIVATION_MAPS_KIND: float16 `[gates, time, units]`, the probe's
#   activation maps of a layer (part ACTIVATION);
# - UNIT_SATURATIONS_KIND: float16 `[gates, units, 2]`, the probe's
#   per-unit saturation of a layer (part ACTIVATION). Written at every
#   probed step, so half the bytes of float32 matter; a fraction is within
#   0.05 % of itself, far below what the scatter plot shows, and 0 and 1
#   are exact.
#
# Kinds added later carry their own `kind_version` (1 so far), so a reader
# skips, with the newer-version warning, a kind it knows in a newer form, and
# older readers skip the kinds they do not know; the contents of the kinds
# above are unchanged:
# - PROBE_SEQUENCES_KIND: float16 `[gates + 1, sequences, time, units]`,
#   the probe's first sequences (`activations.probe_sequences`: at most 8
#   sequences and 2**17 values per layer and step), the gates then the
#   cell's state (`state` in the content: `c_t` or `h_t`), NaN at masked
#   steps; written on the steps that write activation maps, thinning out
#   (`summary.keeps_sequences`), without stride copies;
# - PROBE_TOKENS_KIND: uint8, the UTF-8 JSON of the probe's tokens, a list
#   of lists of strings (one per sequence, the first 8), layer MODEL_LAYER;
#   written once per event file, at its first step.
STATS_KIND = "stats"
HISTOGRAMS_KIND = "histograms"
ACTIVATION_MAPS_KIND = "activation_maps"
UNIT_SATURATIONS_KIND = "unit_saturations"
PROBE_SEQUENCES_KIND = "probe_sequences"
PROBE_TOKENS_KIND = "probe_tokens"
# Per gate-indexed kind, the statistic of its blocks.
_GATE_KINDS = {ACTIVATION_MAPS_KIND: ACTIVATION_MAP, UNIT_SATURATIONS_KIND: UNIT_SATURATION}
# The `kind_version` of each later kind that this version reads up to.
KIND_VERSIONS = {PROBE_SEQUENCES_KIND: 1, PROBE_TOKENS_KIND: 1}

# Beside every point, a version 2 writer writes the points of steps that are
# multiples of 10, 100, 1000 and 10000 (and the first point of each time
# series of an event file) to one time series per such stride. TensorBoard
# keeps a capped random sample of a long series; the tab then serves the
# finest stride it holds every point of, so a long series is thinned
# evenly, its first step kept. 11 % more points on disk and in memory.
STRIDES = (10, 100, 1000, 10000)

# What the steps of a run count, recorded by the writer (`step_unit` in a
# version 2 content): `epoch` (LSTMGatesCallback's default), `batch` (its
# `update_freq=N`), `global step` (TF1 training), or `step` when the writer
# does not know.
DEFAULT_STEP_UNIT = "step"
STEP_UNITS = (DEFAULT_STEP_UNIT, "epoch", "batch", "global step")


def check_step_unit(step_unit):
    """`step_unit` if it is one of STEP_UNITS; else a ValueError naming them."""
    if step_unit not in STEP_UNITS:
        known = ", ".join(map(repr, STEP_UNITS))
        raise ValueError("step_unit must be one of %s, got %r" % (known, step_unit))
    return step_unit


class NewerVersionError(ValueError):
    """Summary metadata written by a newer tb-lstm-gates than the one installed."""


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


# One block series of a summary: `index` picks its values out of the
# summary's tensor at each step (`None` for version 1, whose tensor is the
# block's value itself).
Block = collections.namedtuple("Block", ["layer", "cell", "part", "gate", "stat", "index"])
# What a summary's content says: `kind` (None for version 1, else a
# `*_KIND`), its `blocks` (a tuple of `Block`s), `shape`, the leading axes
# its tensor must have (`()` for version 1), and `stride`, 1 or one of
# STRIDES.
# `step_unit` (one of STEP_UNITS) is what the steps count; logs that do not say
# (version 1, and version 2 before the field) read as DEFAULT_STEP_UNIT.
# `index` is the layer's place in the model's order (0 first), None where
# the writer did not say (logs before the field: readers sort by name).
# `functions` maps each gate of a probe kind (PROBE_KINDS) to the name of its
# activation function (`sigmoid`, `relu`, ...), None where the writer did not
# say (logs before the field: sigmoid gates and tanh gates, see TANH_GATES).
# `origins` maps a part of STATS_KIND to where its weights come from when they
# are not plain parameters (see `logs.origins`), None where none is named.
Content = collections.namedtuple(
    "Content",
    ["kind", "blocks", "shape", "stride", "step_unit", "index", "functions", "origins"],
    defaults=(DEFAULT_STEP_UNIT, None, None, None),
)
# The kinds of the probe's per-gate activations, whose content names each
# gate's activation function.
PROBE_KINDS = (UNIT_SATURATIONS_KIND, ACTIVATION_MAPS_KIND, PROBE_SEQUENCES_KIND)


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
    if origins and kind == STATS_KIND:
        content["origins"] = {str(part): str(origin) for part, origin in origins.items()}
    return summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(
            plugin_name=PLUGIN_NAME,
            content=json.dumps(content, sort_keys=True).encode("utf-8"),
        ),
        data_class=summary_pb2.DATA_CLASS_TENSOR,
    )


def parse_plugin_content(content):
    """The block series a summary holds, from its `plugin_data.content`.

    Returns:
      a `Content`; version 1 holds one block (a float32 scalar, or a
      histogram or activation map tensor as it is).

    Raises:
      NewerVersionError: the content comes from a newer version of
        tb-lstm-gates than the one installed.
      ValueError: the content is not this plugin's JSON or lacks a field.
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
    if isinstance(version, int) and version > PROTOCOL_VERSION:
        raise NewerVersionError(
            "lstm_gates summary metadata has version %d; this tb-lstm-gates "
            "reads up to version %d: upgrade tb-lstm-gates" % (version, PROTOCOL_VERSION)
        )
    if not isinstance(version, int):
        raise ValueError(
            "lstm_gates summary metadata has version %r; this tb-lstm-gates "
            "reads up to version %d: upgrade tb-lstm-gates" % (version, PROTOCOL_VERSION)
        )
    if version < 2:
        _require(parsed, ("layer", "cell", "part", "gate", "stat"), str)
        block = Block(parsed["layer"], parsed["cell"], parsed["part"], parsed["gate"], parsed["stat"], None)
        return Content(None, (block,), (), 1)
    _require(parsed, ("layer", "cell", "kind"), str)
    kind, layer, cell = parsed["kind"], parsed["layer"], parsed["cell"]
    names = ("parts", "gates", "stats") if kind == STATS_KIND else ("parts", "gates")
    if kind not in (STATS_KIND, HISTOGRAMS_KIND) + tuple(_GATE_KINDS) + tuple(KIND_VERSIONS):
        raise ValueError("lstm_gates summary metadata has unknown kind %r" % (kind,))
    if kind in KIND_VERSIONS:
        kind_version = parsed.get("kind_version")
        if not isinstance(kind_version, int) or kind_version > KIND_VERSIONS[kind]:
            raise NewerVersionError(
                "lstm_gates %s summary has kind_version %r; this tb-lstm-gates reads up to %d: upgrade "
                "tb-lstm-gates" % (kind, kind_version, KIND_VERSIONS[kind])
            )
    _require(parsed, names, list)
    if not all(isinstance(name, str) for field in names for name in parsed[field]):
        raise ValueError("lstm_gates summary metadata has non-string names")
    parts, gates = parsed["parts"], parsed["gates"]
    stride = parsed.get("stride", 1)
    if stride != 1 and stride not in STRIDES:
        raise ValueError("lstm_gates summary metadata has stride %r, not 1 or one of %s" % (stride, STRIDES))
    if kind == STATS_KIND:
        shape = (len(parts), len(parsed["stats"]), len(gates))
        missing = _missing(parsed.get("missing", []), shape)
        blocks = (
            Block(layer, cell, part, gate, stat, (p, s, g))
            for p, part in enumerate(parts)
            for s, stat in enumerate(parsed["stats"])
            if (p, s) not in missing
            for g, gate in enumerate(gates)
        )
    elif kind == HISTOGRAMS_KIND:
        shape = (len(parts), len(gates))
        blocks = (
            Block(layer, cell, part, gate, HISTOGRAM, (p, g))
            for p, part in enumerate(parts)
            for g, gate in enumerate(gates)
        )
    elif kind == PROBE_SEQUENCES_KIND:
        _require(parsed, ("state",), str)
        gates = gates + [parsed["state"]]
        shape = (len(gates),)
        blocks = (Block(layer, cell, ACTIVATION, gate, PROBE_SEQUENCES, g) for g, gate in enumerate(gates))
    elif kind == PROBE_TOKENS_KIND:
        shape = ()
        blocks = (Block(layer, cell, ACTIVATION, TOTAL, PROBE_TOKENS, ()),)
    else:
        shape = (len(gates),)
        blocks = (Block(layer, cell, ACTIVATION, gate, _GATE_KINDS[kind], g) for g, gate in enumerate(gates))
    blocks = tuple(blocks)
    if not blocks:
        raise ValueError("lstm_gates summary metadata names no part, gate or statistic")
    # A unit this version does not know (a newer writer's) reads as unknown.
    step_unit = parsed.get("step_unit")
    index = parsed.get("index")
    index = index if isinstance(index, int) and not isinstance(index, bool) and index >= 0 else None
    functions = parsed.get("functions")
    if not (isinstance(functions, dict) and all(isinstance(f, str) for f in functions.values())):
        functions = None
    origins = parsed.get("origins")
    if not (isinstance(origins, dict) and all(isinstance(o, str) for o in origins.values())):
        origins = None
    return Content(
        kind,
        blocks,
        shape,
        stride,
        step_unit if step_unit in STEP_UNITS else DEFAULT_STEP_UNIT,
        index,
        functions,
        origins,
    )


def tokens_tensor(tokens):
    """The uint8 tensor value of PROBE_TOKENS_KIND: the UTF-8 JSON of `tokens` (lists of strings)."""
    return np.frombuffer(json.dumps(tokens, ensure_ascii=False).encode("utf-8"), dtype=np.uint8)


def parse_tokens(array):
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


def histogram_rows(packed):
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


def _missing(missing, shape):
    """The set of `(part index, stat index)` pairs of a STATS_KIND content's `missing`."""
    pairs = set()
    for pair in missing if isinstance(missing, list) else [None]:
        if not (
            isinstance(pair, list)
            and len(pair) == 2
            and all(isinstance(i, int) and not isinstance(i, bool) for i in pair)
            and 0 <= pair[0] < shape[0]
            and 0 <= pair[1] < shape[1]
        ):
            raise ValueError("lstm_gates summary metadata has a bad missing entry %r" % (pair,))
        pairs.add(tuple(pair))
    return pairs


def _require(parsed, fields, kind):
    missing = [k for k in fields if not isinstance(parsed.get(k), kind)]
    if missing:
        raise ValueError("lstm_gates summary metadata lacks %s" % ", ".join(missing))
