"""The data contract's constants: plugin name, versions, the kinds of a packed summary, strides, step units, `Block` and `Content`."""

import collections

from tb_lstm_gates.core.names import ACTIVATION_MAP, UNIT_SATURATION

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
GATE_KINDS = {ACTIVATION_MAPS_KIND: ACTIVATION_MAP, UNIT_SATURATIONS_KIND: UNIT_SATURATION}
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
# `heads`, for layers with heads (xLSTM), `{"count": heads, "head": k or None}`, else None.
# `origins` maps a part of STATS_KIND to where its weights come from when they
# are not plain parameters (see `logs.origins`), None where none is named.
Content = collections.namedtuple(
    "Content",
    ["kind", "blocks", "shape", "stride", "step_unit", "index", "functions", "heads", "origins"],
    defaults=(DEFAULT_STEP_UNIT, None, None, None, None),
)
# The kinds of the probe's per-gate activations, whose content names each
# gate's activation function.
PROBE_KINDS = (UNIT_SATURATIONS_KIND, ACTIVATION_MAPS_KIND, PROBE_SEQUENCES_KIND)
