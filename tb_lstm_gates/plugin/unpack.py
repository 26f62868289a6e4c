"""What the LSTM Gates routes read: the listed time series, unpacked into block series.

A version 1 time series holds one block; a version 2 one packs many (see
`tb_lstm_gates.logs.metadata`). `Store` lists and reads them through TensorBoard's
data provider, and the functions below parse their metadata, pick the blocks
of a statistic, merge the points of a block held by several time series and
shape points for JSON. The routes (`plugin.py`) only select and answer.
"""

import collections
import functools
import logging
import math
import threading
import time

import numpy as np
from tensorboard import errors
from tensorboard.data import provider

from tb_lstm_gates import findings
from tb_lstm_gates.logs import metadata

logger = logging.getLogger(__name__)

# `downsample` for every read: the loader makes TensorBoard keep up to
# `loader.SAMPLES_CAP` points per series, and the routes downsample evenly
# themselves (the providers' own downsampling picks points at random).
_READ_ALL = 2**31 - 1

CANONICAL_GATES = metadata.LSTM_GATES + metadata.GRU_GATES
CANONICAL_STATS = metadata.SCALAR_STATS + metadata.PROBE_STATS + (metadata.TRAIN_GRAD_NORM,)

# Seconds a full listing's tags are used to list only the tags a route
# reads (see `Store.index`): RustBoard's default reload interval, so a new
# tag shows about as late as a new point does.
KNOWN_TAGS_SECONDS = 5.0

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


class Store:
    """Lists and reads this plugin's time series through TensorBoard's data provider.

    Args:
      data_provider: the `context.data_provider` of the plugin.
      cap: the points TensorBoard keeps per series (see `loader`); 0 is all.
    """

    def __init__(self, data_provider, cap):
        self._data_provider = data_provider
        self._cap = cap
        self._lock = threading.Lock()
        # experiment -> (monotonic time of its last full listing, {tag: Parsed} of every tag listed then)
        self._known = {}

    def index(self, ctx, experiment, where=None, runs=None):
        """`Listed` time series whose metadata parses, without the stride series no route needs.

        The others (malformed, or from a newer version: logged once) are
        skipped. So are the stride series (every 10th step, ...) of a packing
        whose stride-1 series TensorBoard surely holds whole: its last step
        is below half the cap, so it has fewer points than the cap even with
        some steps written twice. Reading them would cost as much again as
        a short series' points, for nothing (see `_finest_complete`).

        `where`, a function of a `Parsed` content, keeps only the time series
        it holds true of. Those are listed with a filter of the tags known
        to hold such content from a full listing of the last
        `KNOWN_TAGS_SECONDS`: a sweep lists hundreds of runs of the same
        tags, and listing one layer's tags costs a tenth of listing all. A
        full listing is made instead when there is none that recent, or
        when a run of `runs` is missing from the filtered one (a run with
        tags not seen yet). So a new tag (a new run's, or a new packing of a
        run's, as when step 1 adds `update_ratio`) can stay unseen up to
        `KNOWN_TAGS_SECONDS`: the tab asks `runs`, which lists everything,
        then the other routes at once.
        """
        if where is not None:
            with self._lock:
                listed_at, known = self._known.get(experiment, (None, {}))
            if listed_at is not None and time.monotonic() - listed_at < KNOWN_TAGS_SECONDS:
                tags = {tag for tag, parsed in known.items() if where(parsed)}
                # The stride series only where a stride-1 series may be beyond the cap: most
                # runs list a fifth of the tags.
                every = {tag for tag in tags if known[tag].content.stride == 1}
                listed = self._list(ctx, experiment, every) if every else []
                long = {s.run for s in listed if self._cap and s.max_step >= self._cap // 2}
                if long and tags - every:
                    listed += self._list(ctx, experiment, tags - every, runs=long)
                if runs is None or set(runs) <= {s.run for s in listed}:
                    return self._needed(listed)
        listed = self._list(ctx, experiment)
        known = {s.tag: s.parsed for s in listed}
        with self._lock:
            self._known[experiment] = (time.monotonic(), known)
        return self._needed([s for s in listed if where is None or where(s.parsed)])

    def _list(self, ctx, experiment, tags=None, runs=None):
        """Every `Listed` time series (of `tags` and `runs`, where not None), strides included."""
        kwargs = dict(experiment_id=experiment, plugin_name=metadata.PLUGIN_NAME)
        if tags is not None or runs is not None:
            kwargs["run_tag_filter"] = provider.RunTagFilter(runs=runs, tags=tags)
        return parse_listing(self._data_provider.list_scalars(ctx, **kwargs), version_1=True) + parse_listing(
            self._data_provider.list_tensors(ctx, **kwargs), version_1=False
        )

    def _needed(self, listed):
        """`listed` without the stride series of packings whose stride-1 series is surely whole."""
        whole = {
            (s.run, s.tag)
            for s in listed
            if s.parsed.content.stride == 1 and (not self._cap or s.max_step < self._cap // 2)
        }
        return [s for s in listed if s.parsed.content.stride == 1 or (s.run, s.packing) not in whole]

    def block_tensors(self, ctx, experiment, run, layer, stat, **block):
        """The `Point`s of `run`'s tensor series `stat` of one block of `layer`.

        `block` gives the fields the series must have besides its layer and
        stat (`part`, `gate`). Points of every time series holding the block
        (version 1 and 2 files of one run) are served together.

        Raises:
          NotFoundError: no such run, layer or series.
        """
        listed = self.index(ctx, experiment)
        select_runs(listed, [run])
        in_layer = [s for s in listed if s.run == run and s.parsed.layer == layer]
        if not in_layer:
            raise errors.NotFoundError("run %r has no layer %r" % (run, layer))
        selected = [
            s
            for s in block_series(in_layer, stat)
            if all(getattr(s.block, field) == value for field, value in block.items())
        ]
        if not selected:
            raise errors.NotFoundError(
                "layer %r has no %s series of %s"
                % (layer, stat, ", ".join("%s %r" % item for item in block.items()))
            )
        return self.tensor_points(ctx, experiment, selected).get(run, [])

    def tensor_points(self, ctx, experiment, selected):
        """`{run: [Point]}` of the tensor block series `selected`, the points of each run's series together.

        Points whose tensor lacks the leading axes its metadata names are
        left out, as `load()` leaves them out.
        """
        points = collections.defaultdict(list)
        read = self._read(self._data_provider.read_tensors, ctx, experiment, selected)
        for s, datums in self._finest_complete(read):
            for d in datums:
                if d.numpy.shape[: len(s.shape)] == s.shape:
                    points[s.run].append(Point(d.step, d.wall_time, _tensor_value(s, d.numpy)))
        return points

    def scalar_tables(self, ctx, experiment, selected):
        """Pairs of a `Series` and its `scalar_table`, one pair per block of `selected`.

        A block held by several time series (version 1 and version 2 files
        of one run, or two packings) gets their points in one table.
        """
        pieces = {}  # (run, block without index) -> [Series, tables]
        version_1 = [s for s in selected if s.kind is None]
        for s, datums in self._read(self._data_provider.read_scalars, ctx, experiment, version_1):
            rows = np.array([(d.step, d.wall_time, d.value) for d in datums], dtype=np.float64).reshape(-1, 3)
            pieces.setdefault((s.run, s.block[:-1]), [s, []])[1].append(rows)
        version_2 = [s for s in selected if s.kind is not None]
        # Each time series is read and stacked once, however many of its blocks are selected.
        by_tag = collections.defaultdict(list)
        for s in version_2:
            by_tag[s.run, s.tag].append(s)
        read = self._read(
            self._data_provider.read_tensors, ctx, experiment, [group[0] for group in by_tag.values()]
        )
        for first, datums in self._finest_complete(read):
            datums = [d for d in datums if d.numpy.shape == first.shape]
            stacked = np.array([d.numpy for d in datums], dtype=np.float64).reshape((-1,) + first.shape)
            times = np.array([(d.step, d.wall_time) for d in datums], dtype=np.float64).reshape(-1, 2)
            for s in by_tag[first.run, first.tag]:
                rows = np.column_stack([times, stacked[(slice(None),) + s.block.index]])
                pieces.setdefault((s.run, s.block[:-1]), [s, []])[1].append(rows)
        return [(s, scalar_table(np.concatenate(tables))) for s, tables in pieces.values()]

    def _finest_complete(self, read):
        """`read` (pairs of `Series` and points), of each packing only the finest
        stride TensorBoard holds whole.

        Up to the cap TensorBoard keeps every point, so that is the stride-1
        series. Beyond it, it keeps a random sample of each time series,
        always with the latest point: the finest stride holding fewer points
        than the cap (or exactly the cap, with every point of the next
        stride) is complete, evenly spaced and starts at the run's first
        step; the latest point of the stride-1 series is added to it.
        """
        levels = collections.defaultdict(dict)  # (run, packing, block) -> {stride: (series, points)}
        for s, datums in read:
            levels[s.run, s.packing, s.block][s.stride] = (s, datums)
        chosen = []
        for by_stride in levels.values():
            strides = sorted(by_stride)
            finest = strides[-1]
            for i, stride in enumerate(strides):
                steps = {d.step for d in by_stride[stride][1]}
                coarser = {d.step for d in by_stride[strides[i + 1]][1]} if i + 1 < len(strides) else set()
                if not self._cap or len(steps) < self._cap or (len(steps) == self._cap and coarser <= steps):
                    finest = stride
                    break
            s, datums = by_stride[finest]
            if finest != 1 and 1 in by_stride and by_stride[1][1]:
                latest = max(by_stride[1][1], key=lambda d: (d.step, d.wall_time))
                datums = list(datums) + [latest]
            chosen.append((s, datums))
        return chosen

    def _read(self, read, ctx, experiment, selected):
        """Pairs each `Series` of `selected` with its data, read with `read`.

        RustBoard does not check the CRC of a record's data, so a corrupted
        record can reach the data provider as a tensor that TensorBoard's
        own conversion to numpy rejects, failing the whole read. Then each
        time series is read alone and those that fail are left out (as
        empty), so one damaged file does not take down every run.
        """
        if not selected:
            return []

        def read_some(runs, tags):
            return read(
                ctx,
                experiment_id=experiment,
                plugin_name=metadata.PLUGIN_NAME,
                downsample=_READ_ALL,
                run_tag_filter=provider.RunTagFilter(runs=runs, tags=tags),
            )

        try:
            data = read_some({s.run for s in selected}, {s.tag for s in selected})
        except (ValueError, TypeError):
            data = {}
            for run, tag in {(s.run, s.tag) for s in selected}:
                try:
                    data.setdefault(run, {}).update(read_some([run], [tag]).get(run, {}))
                except (ValueError, TypeError):
                    continue
        return [(s, data.get(s.run, {}).get(s.tag, [])) for s in selected]


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


_warned = set()


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


def _tensor_value(series, array):
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
