"""`Store`: lists and reads the LSTM Gates time series through TensorBoard's data provider.

What it lists is parsed, and what it reads shaped, by `unpack`.
"""

import collections
import threading
import time

import numpy as np
from tensorboard import errors
from tensorboard.data import provider

from tb_lstm_gates.logs import metadata
from tb_lstm_gates.plugin import unpack

# `downsample` for every read: the loader makes TensorBoard keep up to
# `loader.SAMPLES_CAP` points per series, and the routes downsample evenly
# themselves (the providers' own downsampling picks points at random).
_READ_ALL = 2**31 - 1

# Seconds a full listing's tags are used to list only the tags a route
# reads (see `index`): RustBoard's default reload interval, so a new
# tag shows about as late as a new point does.
KNOWN_TAGS_SECONDS = 5.0


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

    def index_runs(self, ctx, experiment, where, runs):
        """`(listed, runs)`: the `Listed` time series whose content `where` holds
        true of (see `index`), and the set of runs to serve: `runs`, or
        every run listed if None.

        Raises:
          NotFoundError: a run of `runs` has no lstm_gates data at all.
        """
        listed = self.index(ctx, experiment, where=where, runs=runs)
        if runs is None:
            return listed, {s.run for s in listed}
        if not set(runs) <= {s.run for s in listed}:
            # Some runs lack such series: are they runs at all?
            unpack.select_runs(self.index(ctx, experiment), runs)
        return listed, set(runs)

    def _list(self, ctx, experiment, tags=None, runs=None):
        """Every `Listed` time series (of `tags` and `runs`, where not None), strides included."""
        kwargs = dict(experiment_id=experiment, plugin_name=metadata.PLUGIN_NAME)
        if tags is not None or runs is not None:
            kwargs["run_tag_filter"] = provider.RunTagFilter(runs=runs, tags=tags)
        return unpack.parse_listing(
            self._data_provider.list_scalars(ctx, **kwargs), version_1=True
        ) + unpack.parse_listing(self._data_provider.list_tensors(ctx, **kwargs), version_1=False)

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
        unpack.select_runs(listed, [run])
        in_layer = [s for s in listed if s.run == run and s.parsed.layer == layer]
        if not in_layer:
            raise errors.NotFoundError("run %r has no layer %r" % (run, layer))
        selected = [
            s
            for s in unpack.block_series(in_layer, stat)
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
                    points[s.run].append(unpack.Point(d.step, d.wall_time, unpack.tensor_value(s, d.numpy)))
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
        return [(s, unpack.scalar_table(np.concatenate(tables))) for s, tables in pieces.values()]

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
