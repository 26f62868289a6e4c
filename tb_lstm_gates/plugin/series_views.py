"""The answers of the routes that read scalar series and histograms: `series`, `histograms`, `regularization`.

Functions of a `store.Store` and plain values, returning plain data; the
routes of `plugin.py` call them.
"""

import collections

from tensorboard import errors

from tb_lstm_gates.logs import metadata
from tb_lstm_gates.plugin import limits, requests, unpack


def series_text(
    store, cache, ctx, experiment, layer, stat, runs=None, samples=limits.DEFAULT_SAMPLES, wall_times=True
):
    """The `series` route's answer as JSON text, from each run's text kept while its listing
    stays the same in `cache` (a `series_cache.SeriesCache`); only the other runs are read."""
    listed, runs = store.index_runs(ctx, experiment, lambda parsed: parsed.layer == layer, runs)
    in_layer = [s for s in listed if s.run in runs and s.parsed.scalars]
    if not in_layer:
        raise errors.NotFoundError("no layer %r in the selected runs" % layer)
    selected = unpack.block_series(in_layer, stat) if stat not in metadata.TENSOR_STATS else []
    if not selected:
        raise errors.NotFoundError("layer %r has no statistic %r" % (layer, stat))
    listings = unpack.listing_keys(in_layer)
    asked = (experiment, layer, stat, samples, wall_times)
    texts = {run: cache.get((run,) + asked, listings[run]) for run in {s.run for s in selected}}
    unread = {run for run, text in texts.items() if text is None}
    read = sorted(
        store.scalar_tables(ctx, experiment, [s for s in selected if s.run in unread]),
        key=lambda pair: (pair[0].run,) + unpack.block_order(pair[0]),
    )
    by_run = collections.defaultdict(list)
    for s, table in unpack.loaded_steps(read):
        by_run[s.run].append(
            dict(
                run=s.run,
                part=s.block.part,
                gate=s.block.gate,
                **unpack.points(table, samples, wall_times),
            )
        )
    for run in unread:
        texts[run] = ",".join(requests.dumps(series) for series in by_run[run])
        cache.put((run,) + asked, listings[run], texts[run])
    pieces = ",".join(texts[run] for run in sorted(texts) if texts[run])
    return '{"layer":%s,"stat":%s,"series":[%s]}' % (requests.dumps(layer), requests.dumps(stat), pieces)


def histograms(store, ctx, experiment, run, layer, part, gate, samples=limits.DEFAULT_SAMPLES):
    """The histograms of one block over steps."""
    datums = store.block_tensors(ctx, experiment, run, layer, metadata.HISTOGRAM, part=part, gate=gate)
    histograms = [
        {"step": d.step, "wall_time": d.wall_time, "buckets": unpack.buckets(d.value)}
        for d in unpack.downsample(datums, samples)
    ]
    return {"run": run, "layer": layer, "part": part, "gate": gate, "histograms": histograms}


def regularization(store, ctx, experiment, runs=None, samples=limits.DEFAULT_SAMPLES):
    """Every penalty series and the model's training loss, in `runs` (None: all runs)."""
    listed = store.index(ctx, experiment)
    runs = unpack.select_runs(listed, runs)
    in_runs = [s for s in listed if s.run in runs]
    selected = unpack.block_series(in_runs, metadata.PENALTY) + [
        s for s in unpack.block_series(in_runs, metadata.LOSS) if s.block.layer == metadata.MODEL_LAYER
    ]
    read = store.scalar_tables(ctx, experiment, selected)
    # Per run: the layers by name, then the model's penalty and loss.
    read.sort(
        key=lambda pair: (
            (pair[0].run, pair[0].block.layer == metadata.MODEL_LAYER, pair[0].block.layer)
            + unpack.block_order(pair[0])
            + (pair[0].block.stat,)
        )
    )
    series = [
        dict(
            run=s.run,
            layer=s.block.layer,
            cell=s.block.cell,
            part=s.block.part,
            gate=s.block.gate,
            stat=s.block.stat,
            **unpack.points(table, samples),
        )
        for s, table in read
    ]
    return {"series": series}
