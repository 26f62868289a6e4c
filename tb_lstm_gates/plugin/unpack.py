"""What the LSTM Gates routes read: the listed time series, unpacked into block series.

A version 1 time series holds one block; a version 2 one packs many (see
`tb_lstm_gates.logs.metadata`). `Store` lists and reads them through TensorBoard's
data provider (`store.py`), and the functions here parse their metadata, pick the blocks
of a statistic, merge the points of a block held by several time series and
shape points for JSON. The routes (`plugin.py`) only select and answer.
"""

import collections
import functools
import logging
import math

import numpy as np
from tensorboard import errors

from tb_lstm_gates import findings
from tb_lstm_gates.logs import metadata

logger = logging.getLogger(__name__)

CANONICAL_GATES = metadata.LSTM_GATES + metadata.GRU_GATES
CANONICAL_STATS = metadata.SCALAR_STATS + metadata.PROBE_STATS + (metadata.TRAIN_GRAD_NORM,)

# One listed time series whose metadata parsed: its run, tag, `Parsed`
# content, `packing`, the tag of its stride-1 time series, and its
# `max_step` and `max_wall_time` as TensorBoard lists them (they change
# whenever TensorBoard loads points of the series).
Listed = collections.namedtuple("Listed", ["run", "tag", "parsed", "packing", "max_step", "max_wall_time"])
# What a content holds, parsed once per distinct content: the
# `metadata.Content`, its `layer` and `cell`, `by_stat` (stat -> blocks),
# whether it holds scalar statistics, and for `runs`, the parts and gates
# of its blocks (without `total`) and its scalar statistics other than the
# penalty.
Parsed = collections.namedtuple(
    "Parsed", ["content", "layer", "cell", "by_stat", "scalars", "parts", "gates", "stats"]
)
# One block series of a listed time series whose metadata parsed: its run,
# tag, the `kind`, `shape` and `stride` of `metadata.Content`, the
# `metadata.Block`, and `packing`, the tag of its stride-1 time series. A
# version 2 time series holds many blocks; a block can be held by several
# time series (a version 1 and a version 2 file, two packings, strides).
Series = collections.namedtuple("Series", ["run", "tag", "kind", "shape", "block", "stride", "packing"])
# One point of a block's tensor series: `value` is the block's array.
Point = collections.namedtuple("Point", ["step", "wall_time", "value"])


def listing_keys(listed):
    """`{run: key}` of `Listed` time series: each run's (tag, last step, last wall time), sorted.

    TensorBoard's listing is cheap, and a run's key changes whenever
    TensorBoard loads a point of one of its series (also a step written
    again by a resumed run, which has a later wall time): what is computed
    from a run's points can be kept under its key.
    """
    keys = collections.defaultdict(list)
    for s in listed:
        keys[s.run].append((s.tag, s.max_step, s.max_wall_time))
    return {run: tuple(sorted(key)) for run, key in keys.items()}


def findings_series(read):
    """`findings.Series` of each scalar series in `read` (pairs of `Series` and `scalar_table`)."""
    return [
        findings.Series(
            s.run,
            s.block.layer,
            s.block.cell,
            s.block.part,
            s.block.gate,
            s.block.stat,
            table[:, 0].astype(np.int64),
            table[:, 2],
        )
        for s, table in read
    ]


def parse_listing(run_to_tags, version_1):
    """`Listed` of the listed time series whose metadata parses.

    `version_1` says whether these are the scalar listing, which only
    version 1 writes; the tensor listing holds version 1 histograms and
    activation maps and everything of version 2.
    """
    listed = []
    for run, tags in run_to_tags.items():
        for tag, time_series in tags.items():
            parsed = _parse_content(time_series.plugin_content)
            if parsed is not None and (parsed.content.kind is None or not version_1):
                packing = tag if parsed.content.stride == 1 else tag.rpartition("/")[0]
                listed.append(
                    Listed(run, tag, parsed, packing, time_series.max_step, time_series.max_wall_time)
                )
    return listed


@functools.lru_cache(maxsize=65536)
def _parse_content(content):
    """The `Parsed` content, or None if malformed; cached, as every run
    repeats the same few thousand contents at every request."""
    try:
        parsed = metadata.parse_plugin_content(content)
    except metadata.NewerVersionError as e:
        _warn_newer(e)
        return None
    except ValueError:
        return None
    by_stat = collections.defaultdict(list)
    for block in parsed.blocks:
        by_stat[block.stat].append(block)
    # The probe's sequences add the cell's state (`c_t`, `h_t`), which is no gate of the weights.
    weights = [b for b in parsed.blocks if b.part != metadata.TOTAL and b.stat != metadata.PROBE_SEQUENCES]
    scalar_stats = {stat for stat in by_stat if stat not in metadata.TENSOR_STATS}
    return Parsed(
        content=parsed,
        layer=parsed.blocks[0].layer,
        cell=parsed.blocks[0].cell,
        by_stat={stat: tuple(blocks) for stat, blocks in by_stat.items()},
        scalars=bool(scalar_stats),
        parts=frozenset(b.part for b in weights),
        gates=frozenset(b.gate for b in weights),
        stats=frozenset(scalar_stats - {metadata.PENALTY}),
    )


_warned: set[bool] = set()


def _warn_newer(error):
    """Logs once per process that some data comes from a newer version, as
    TensorBoard's `plugin_util._MetadataVersionChecker` does: skipped
    silently, the data would just seem missing."""
    if not _warned:
        _warned.add(True)
        logger.warning("LSTM Gates: some time series are not shown: %s", error)


def block_series(listed, stat):
    """A `Series` for each block of statistic `stat` in the `Listed` time series `listed`."""
    return [
        Series(
            s.run,
            s.tag,
            s.parsed.content.kind,
            s.parsed.content.shape,
            block,
            s.parsed.content.stride,
            s.packing,
        )
        for s in listed
        for block in s.parsed.by_stat.get(stat, ())
    ]


def tensor_value(series, array):
    """The array of `series`' block in one point of its time series."""
    if series.kind is None:
        return array
    if series.kind == metadata.HISTOGRAMS_KIND:
        return metadata.histogram_rows(array[series.block.index])
    return array[series.block.index]


def select_runs(listed, runs):
    """The set of runs to read: `runs`, all checked to exist, or every listed run if None."""
    known = {s.run for s in listed}
    if runs is None:
        return known
    unknown = sorted(set(runs) - known)
    if unknown:
        raise errors.NotFoundError("no lstm_gates data for run(s) %s" % ", ".join(map(repr, unknown)))
    return set(runs)


def canonical(names, canonical):
    """`names` sorted in the canonical order, unknown names last, by name."""
    return sorted(names, key=lambda name: _canonical_key(name, canonical))


def block_order(series):
    """Sort key of a series' block: parts, then gates in canonical order, totals last."""
    return (
        _canonical_key(series.block.part, metadata.PARTS + (metadata.TOTAL,)),
        _canonical_key(series.block.gate, CANONICAL_GATES + (metadata.TOTAL,)),
    )


def _canonical_key(name, canonical):
    return (canonical.index(name) if name in canonical else len(canonical), name)


def loaded_steps(read):
    """`read` (pairs of `Series` and `scalar_table`) without the steps some series of their run lack yet.

    Every block of a step is written in one event, but the Python loader
    adds an event's values tag by tag while requests are served: a request
    can come when some blocks of the newest step are loaded and others not.
    Each run is cut at the smallest last step among its series, so the
    blocks of a run always share their steps; the rest comes with the next
    request.
    """
    last = {}
    for s, table in read:
        newest = table[-1, 0] if len(table) else -1
        last[s.run] = min(last.get(s.run, newest), newest)
    return [(s, table[table[:, 0] <= last[s.run]]) for s, table in read]


def _one_per_step(steps, wall_times):
    """Indices that order points by step, keeping the last written point of each step.

    A run resumed from a checkpoint older than its last logged step writes
    some steps again, and the last written one holds the weights the run
    went on from.
    """
    order = np.lexsort((wall_times, steps))  # by step, then by wall time
    ordered = steps[order]
    return order[np.append(ordered[1:] != ordered[:-1], True)] if len(order) else order


def _evenly(n, samples):
    """Indices of at most `samples` of `n` points, evenly spaced, first and last kept."""
    if n <= samples:
        return np.arange(n)
    return np.linspace(0, n - 1, samples).round().astype(int)


def scalar_table(rows):
    """Rows `[step, wall_time, value]` (float64), one row per step, in step order."""
    return rows[_one_per_step(rows[:, 0], rows[:, 1])]


def in_step_order(datums):
    """`datums` (tensor points) in step order, one per step: the last written."""
    steps = np.array([d.step for d in datums], dtype=np.int64)
    wall_times = np.array([d.wall_time for d in datums], dtype=np.float64)
    return [datums[i] for i in _one_per_step(steps, wall_times)]


def downsample(datums, samples):
    """At most `samples` of `datums` (tensor points) in step order, one per step, evenly spaced."""
    datums = in_step_order(datums)
    return [datums[i] for i in _evenly(len(datums), samples)]


def points(table, samples, wall_times=True):
    """The JSON fields of a `scalar_table`, at most `samples` points; NaN and Inf as null.

    Without `wall_times`, the field is left out (a third of the answer's size).
    """
    table = table[_evenly(len(table), samples)]
    values = table[:, 2].tolist()
    finite = np.isfinite(table[:, 2])
    if not finite.all():
        values = [v if ok else None for v, ok in zip(values, finite.tolist())]
    fields = {"steps": table[:, 0].astype(np.int64).tolist(), "values": values}
    if wall_times:
        fields["wall_times"] = table[:, 1].tolist()
    return fields


def buckets(array):
    """Rows `[left, right, count]` of a histogram tensor; `[]` if it has another shape."""
    array = np.asarray(array, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != 3:
        return []
    return [[finite(x) for x in row] for row in array.tolist()]


def finite(value):
    value = float(value)
    return value if math.isfinite(value) else None
