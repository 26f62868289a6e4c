"""Routes of the LSTM Gates tab; their contract is `http_api.md`.

Every read goes through `context.data_provider`, so both of TensorBoard's
loaders serve the same data. Routes parse the request and call an `*_impl`
method that takes plain values and returns plain data; errors are raised as
`tensorboard.errors` and turned into HTTP codes by TensorBoard. Run and layer
names are opaque strings, only ever compared with what the data provider
lists.
"""

import collections
import functools
import json
import math
import mimetypes
import os
import re

import numpy as np
from tensorboard import errors, plugin_util
from tensorboard.backend import http_util
from tensorboard.context import RequestContext
from tensorboard.data import provider
from tensorboard.plugins import base_plugin
from werkzeug import wrappers

from tb_lstm_gates import findings, metadata
from tb_lstm_gates.plugin import loader

DEFAULT_SAMPLES = 1000
MAX_SAMPLES = 10000

# `downsample` for every read: the loader makes TensorBoard keep up to
# `loader.SAMPLES_CAP` points per series, and the routes downsample evenly
# themselves (the providers' own downsampling picks points at random).
_READ_ALL = 2**31 - 1

STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
_STATIC_ROUTE = "/data/plugin/%s/static/" % metadata.PLUGIN_NAME
# Set explicitly: `mimetypes` reads the system's tables (the Windows
# registry, /etc/mime.types), which can be wrong for `.js`.
_CONTENT_TYPES = {
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".css": "text/css",
    ".map": "application/json",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".woff2": "font/woff2",
}
_SAMPLES_PATTERN = re.compile(r"[0-9]{1,6}")
_STEP_PATTERN = re.compile(r"[0-9]{1,18}")

_CANONICAL_GATES = metadata.LSTM_GATES + metadata.GRU_GATES
_CANONICAL_STATS = metadata.SCALAR_STATS + metadata.PROBE_STATS

# One listed time series whose metadata parsed: its run, tag, `_Parsed`
# content, and `packing`, the tag of its stride-1 time series.
_Listed = collections.namedtuple("_Listed", ["run", "tag", "parsed", "packing"])
# What a content holds, parsed once per distinct content: the
# `metadata.Content`, its `layer` and `cell`, `by_stat` (stat -> blocks),
# whether it holds scalar statistics, and for `runs`, the parts and gates
# of its blocks (without `total`) and its scalar statistics other than the
# penalty.
_Parsed = collections.namedtuple(
    "_Parsed", ["content", "layer", "cell", "by_stat", "scalars", "parts", "gates", "stats"]
)
# One block series of a listed time series whose metadata parsed: its run,
# tag, the `kind`, `shape` and `stride` of `metadata.Content`, the
# `metadata.Block`, and `packing`, the tag of its stride-1 time series. A
# version 2 time series holds many blocks; a block can be held by several
# time series (a version 1 and a version 2 file, two packings, strides).
_Series = collections.namedtuple("_Series", ["run", "tag", "kind", "shape", "block", "stride", "packing"])
# One point of a block's tensor series: `value` is the block's array.
_Point = collections.namedtuple("_Point", ["step", "wall_time", "value"])


class LSTMGatesPlugin(base_plugin.TBPlugin):
    """Serves per-gate statistics, histograms and penalties to the LSTM Gates tab."""

    plugin_name = metadata.PLUGIN_NAME

    def __init__(self, context):
        self._data_provider = context.data_provider
        # What TensorBoard keeps of each series (see `loader`); 0 is all.
        hints = getattr(context.flags, "samples_per_plugin", None) or {}
        self._cap = hints.get(metadata.PLUGIN_NAME, loader.SAMPLES_CAP)

    def get_plugin_apps(self):
        return {
            "/runs": self._serve_runs,
            "/series": self._serve_series,
            "/histograms": self._serve_histograms,
            "/regularization": self._serve_regularization,
            "/activation_map": self._serve_activation_map,
            "/findings": self._serve_findings,
            "/unit_saturation": self._serve_unit_saturation,
            "/static/*": self._serve_static,
        }

    def is_active(self):
        if self._data_provider is None:
            return False
        return metadata.PLUGIN_NAME in self._data_provider.list_plugins(
            RequestContext(), experiment_id=""
        )

    def frontend_metadata(self):
        return base_plugin.FrontendMetadata(es_module_path="/static/index.js", tab_name="LSTM Gates")

    # Routes: parse, call the `*_impl`, respond.

    @wrappers.Request.application
    def _serve_runs(self, request):
        ctx, experiment = _context(request)
        return _json(request, self.runs_impl(ctx, experiment))

    @wrappers.Request.application
    def _serve_series(self, request):
        ctx, experiment = _context(request)
        body = self.series_impl(
            ctx,
            experiment,
            layer=_required(request, "layer"),
            stat=_required(request, "stat"),
            runs=_runs(request),
            samples=_samples(request),
        )
        return _json(request, body)

    @wrappers.Request.application
    def _serve_histograms(self, request):
        ctx, experiment = _context(request)
        body = self.histograms_impl(
            ctx,
            experiment,
            run=_required(request, "run"),
            layer=_required(request, "layer"),
            part=_required(request, "part"),
            gate=_required(request, "gate"),
            samples=_samples(request),
        )
        return _json(request, body)

    @wrappers.Request.application
    def _serve_regularization(self, request):
        ctx, experiment = _context(request)
        body = self.regularization_impl(ctx, experiment, runs=_runs(request), samples=_samples(request))
        return _json(request, body)

    @wrappers.Request.application
    def _serve_activation_map(self, request):
        ctx, experiment = _context(request)
        body = self.activation_map_impl(
            ctx,
            experiment,
            run=_required(request, "run"),
            layer=_required(request, "layer"),
            gate=_required(request, "gate"),
            step=_step(request),
        )
        return _json(request, body)

    @wrappers.Request.application
    def _serve_findings(self, request):
        ctx, experiment = _context(request)
        try:
            settings = findings.parse_settings(request.args.getlist("set"))
        except ValueError as e:
            raise errors.InvalidArgumentError(str(e)) from None
        return _json(request, self.findings_impl(ctx, experiment, runs=_runs(request), settings=settings))

    @wrappers.Request.application
    def _serve_unit_saturation(self, request):
        ctx, experiment = _context(request)
        body = self.unit_saturation_impl(
            ctx,
            experiment,
            layer=_required(request, "layer"),
            gate=_required(request, "gate"),
            runs=_runs(request),
            step=_step(request),
        )
        return _json(request, body)

    @wrappers.Request.application
    def _serve_static(self, request):
        name = request.path[len(_STATIC_ROUTE):] if request.path.startswith(_STATIC_ROUTE) else ""
        content, content_type = self.static_impl(name)
        return http_util.Respond(request, content, content_type)

    # Implementations: plain values in, plain data out.

    def runs_impl(self, ctx, experiment):
        """Every run with this plugin's data, its layers and what each holds."""
        runs = {}
        for listed in self._index(ctx, experiment):
            parsed = listed.parsed
            if parsed.content.stride != 1:
                continue  # copies of points of a stride-1 series
            run = runs.setdefault(listed.run, {"run": listed.run, "layers": {}, "regularization": False})
            if metadata.PENALTY in parsed.by_stat:
                run["regularization"] = True
            if parsed.cell == metadata.MODEL_CELL:
                continue
            layer = run["layers"].setdefault(
                parsed.layer,
                {
                    "layer": parsed.layer,
                    "cell": parsed.cell,
                    "parts": set(),
                    "gates": set(),
                    "stats": set(),
                    "histograms": False,
                    "activation_maps": False,
                    "unit_saturation": False,
                    "penalties": False,
                },
            )
            layer["parts"] |= parsed.parts
            layer["gates"] |= parsed.gates
            layer["stats"] |= parsed.stats
            layer["histograms"] |= metadata.HISTOGRAM in parsed.by_stat
            layer["activation_maps"] |= metadata.ACTIVATION_MAP in parsed.by_stat
            layer["unit_saturation"] |= metadata.UNIT_SATURATION in parsed.by_stat
            layer["penalties"] |= metadata.PENALTY in parsed.by_stat
        for run in runs.values():
            layers = [run["layers"][name] for name in sorted(run["layers"])]
            for layer in layers:
                layer["parts"] = _canonical(layer["parts"], metadata.PARTS)
                layer["gates"] = _canonical(layer["gates"], _CANONICAL_GATES)
                layer["stats"] = _canonical(layer["stats"], _CANONICAL_STATS)
            run["layers"] = layers
        return {"runs": [runs[name] for name in sorted(runs)]}

    def series_impl(self, ctx, experiment, layer, stat, runs=None, samples=DEFAULT_SAMPLES):
        """One statistic of every block of `layer`, in `runs` (None: all runs)."""
        listed = self._index(ctx, experiment)
        runs = _select_runs(listed, runs)
        in_layer = [s for s in listed if s.run in runs and s.parsed.layer == layer and s.parsed.scalars]
        if not in_layer:
            raise errors.NotFoundError("no layer %r in the selected runs" % layer)
        selected = _blocks(in_layer, stat) if stat not in metadata.TENSOR_STATS else []
        if not selected:
            raise errors.NotFoundError("layer %r has no statistic %r" % (layer, stat))
        read = sorted(
            self._scalar_tables(ctx, experiment, selected), key=lambda pair: (pair[0].run,) + _block_order(pair[0])
        )
        series = [
            dict(run=s.run, part=s.block.part, gate=s.block.gate, **_points(table, samples))
            for s, table in _loaded_steps(read)
        ]
        return {"layer": layer, "stat": stat, "series": series}

    def histograms_impl(self, ctx, experiment, run, layer, part, gate, samples=DEFAULT_SAMPLES):
        """The histograms of one block over steps."""
        datums = self._block_tensors(ctx, experiment, run, layer, metadata.HISTOGRAM, part=part, gate=gate)
        histograms = [
            {"step": d.step, "wall_time": d.wall_time, "buckets": _buckets(d.value)}
            for d in _downsample(datums, samples)
        ]
        return {"run": run, "layer": layer, "part": part, "gate": gate, "histograms": histograms}

    def regularization_impl(self, ctx, experiment, runs=None, samples=DEFAULT_SAMPLES):
        """Every penalty series and the model's training loss, in `runs` (None: all runs)."""
        listed = self._index(ctx, experiment)
        runs = _select_runs(listed, runs)
        in_runs = [s for s in listed if s.run in runs]
        selected = _blocks(in_runs, metadata.PENALTY) + [
            s for s in _blocks(in_runs, metadata.LOSS) if s.block.layer == metadata.MODEL_LAYER
        ]
        read = self._scalar_tables(ctx, experiment, selected)
        # Per run: the layers by name, then the model's penalty and loss.
        read.sort(
            key=lambda pair: (pair[0].run, pair[0].block.layer == metadata.MODEL_LAYER, pair[0].block.layer)
            + _block_order(pair[0])
            + (pair[0].block.stat,)
        )
        series = [
            dict(
                run=s.run,
                layer=s.block.layer,
                cell=s.block.cell,
                part=s.block.part,
                gate=s.block.gate,
                stat=s.block.stat,
                **_points(table, samples),
            )
            for s, table in read
        ]
        return {"series": series}

    def activation_map_impl(self, ctx, experiment, run, layer, gate, step=None):
        """One gate's activations on the probe's first sequence at `step` (None: the last step)."""
        datums = _in_step_order(self._block_tensors(ctx, experiment, run, layer, metadata.ACTIVATION_MAP, gate=gate))
        by_step = {d.step: d for d in datums}
        steps = [d.step for d in datums]
        if step is None:
            step = steps[-1]
        elif step not in by_step:
            raise errors.NotFoundError("gate %r of layer %r has no activation map at step %d" % (gate, layer, step))
        values = np.atleast_2d(np.asarray(by_step[step].value, dtype=np.float64))
        return {
            "run": run,
            "layer": layer,
            "gate": gate,
            "steps": steps,
            "step": step,
            "wall_time": by_step[step].wall_time,
            "time_steps": values.shape[0],
            "units": values.shape[1],
            "values": [[_finite(x) for x in row] for row in values.tolist()],
        }

    def findings_impl(self, ctx, experiment, runs=None, settings=None):
        """The gate-health findings (`tb_lstm_gates.findings`) of `runs` (None: all runs)."""
        listed = self._index(ctx, experiment)
        runs = _select_runs(listed, runs)
        in_runs = [s for s in listed if s.run in runs]
        selected = [s for stat in sorted(findings.STATS_READ) for s in _blocks(in_runs, stat)]
        read = _loaded_steps(self._scalar_tables(ctx, experiment, selected))
        found = findings.check_series(_findings_series(read), settings)
        for finding in found:
            finding["value"] = _finite(finding["value"])
        by_run = findings.counts(found)
        thresholds = {**findings.default_settings(), **(settings or {})}
        return {
            "findings": found,
            "counts": [
                {"run": run, **by_run.get(run, dict.fromkeys(findings.SEVERITIES, 0))} for run in sorted(runs)
            ],
            "rules": [
                {
                    "rule": rule.name,
                    "severity": rule.severity,
                    "stat": rule.stat,
                    "what": rule.what,
                    "thresholds": {name: thresholds[rule.name, name] for name in rule.thresholds},
                }
                for rule in findings.RULES
            ],
        }

    def unit_saturation_impl(self, ctx, experiment, layer, gate, runs=None, step=None):
        """Per unit of one gate, the fractions left- and right-saturated, per run.

        Each run holding the series gives its points at its last step at or
        before `step` (None: its last step), so runs logged at different
        steps line up; runs without a step that early are left out.
        """
        listed = self._index(ctx, experiment)
        runs = _select_runs(listed, runs)
        in_layer = [s for s in listed if s.run in runs and s.parsed.layer == layer]
        selected = [s for s in _blocks(in_layer, metadata.UNIT_SATURATION) if s.block.gate == gate]
        if not selected:
            raise errors.NotFoundError(
                "gate %r of layer %r has no unit_saturation in the selected runs" % (gate, layer)
            )
        series = []
        by_run = self._tensor_points(ctx, experiment, selected)
        for run in sorted(by_run):
            points = _in_step_order(by_run[run])
            chosen = [p for p in points if step is None or p.step <= step]
            if not chosen:
                continue
            values = np.asarray(chosen[-1].value, dtype=np.float64).reshape(-1, 2)
            series.append(
                {
                    "run": run,
                    "steps": [p.step for p in points],
                    "step": chosen[-1].step,
                    "units": [[_finite(left), _finite(right)] for left, right in values.tolist()],
                }
            )
        return {"layer": layer, "gate": gate, "runs": series}

    def static_impl(self, name):
        """`(content, content_type)` of a file of the static folder.

        Raises:
          NotFoundError: `name` is not a file inside the static folder
            (missing, a directory, or a path that leads out of it).
        """
        root = os.path.realpath(STATIC_DIR)
        path = os.path.realpath(os.path.join(root, name)) if name and "\0" not in name else root
        if os.path.commonpath([root, path]) != root or path == root or not os.path.isfile(path):
            raise errors.NotFoundError("no static file %r" % name)
        with open(path, "rb") as f:
            content = f.read()
        extension = os.path.splitext(path)[1].lower()
        content_type = (
            _CONTENT_TYPES.get(extension) or mimetypes.guess_type(path)[0] or "application/octet-stream"
        )
        return content, content_type

    # Data provider access.

    def _index(self, ctx, experiment):
        """`_Listed` time series whose metadata parses; the others (malformed, or from a newer version) are skipped."""
        kwargs = dict(experiment_id=experiment, plugin_name=metadata.PLUGIN_NAME)
        return _parse(self._data_provider.list_scalars(ctx, **kwargs), version_1=True) + _parse(
            self._data_provider.list_tensors(ctx, **kwargs), version_1=False
        )

    def _block_tensors(self, ctx, experiment, run, layer, stat, **block):
        """The `_Point`s of `run`'s tensor series `stat` of one block of `layer`.

        `block` gives the fields the series must have besides its layer and
        stat (`part`, `gate`). Points of every time series holding the block
        (version 1 and 2 files of one run) are served together.

        Raises:
          NotFoundError: no such run, layer or series.
        """
        listed = self._index(ctx, experiment)
        _select_runs(listed, [run])
        in_layer = [s for s in listed if s.run == run and s.parsed.layer == layer]
        if not in_layer:
            raise errors.NotFoundError("run %r has no layer %r" % (run, layer))
        selected = [
            s
            for s in _blocks(in_layer, stat)
            if all(getattr(s.block, field) == value for field, value in block.items())
        ]
        if not selected:
            raise errors.NotFoundError(
                "layer %r has no %s series of %s"
                % (layer, stat, ", ".join("%s %r" % item for item in block.items()))
            )
        return self._tensor_points(ctx, experiment, selected).get(run, [])

    def _tensor_points(self, ctx, experiment, selected):
        """`{run: [_Point]}` of the tensor block series `selected`, the points of each run's series together.

        Points whose tensor lacks the leading axes its metadata names are
        left out, as `load()` leaves them out.
        """
        points = collections.defaultdict(list)
        read = self._read(self._data_provider.read_tensors, ctx, experiment, selected)
        for s, datums in self._finest_complete(read):
            for d in datums:
                if d.numpy.shape[: len(s.shape)] == s.shape:
                    points[s.run].append(_Point(d.step, d.wall_time, _tensor_value(s, d.numpy)))
        return points

    def _scalar_tables(self, ctx, experiment, selected):
        """Pairs of a `_Series` and its `_scalar_table`, one pair per block of `selected`.

        A block held by several time series (version 1 and version 2 files
        of one run, or two packings) gets their points in one table.
        """
        pieces = {}  # (run, block without index) -> [_Series, tables]
        version_1 = [s for s in selected if s.kind is None]
        for s, datums in self._read(self._data_provider.read_scalars, ctx, experiment, version_1):
            rows = np.array([(d.step, d.wall_time, d.value) for d in datums], dtype=np.float64).reshape(-1, 3)
            pieces.setdefault((s.run, s.block[:-1]), [s, []])[1].append(rows)
        version_2 = [s for s in selected if s.kind is not None]
        # Each time series is read and stacked once, however many of its blocks are selected.
        by_tag = collections.defaultdict(list)
        for s in version_2:
            by_tag[s.run, s.tag].append(s)
        read = self._read(self._data_provider.read_tensors, ctx, experiment, [group[0] for group in by_tag.values()])
        for first, datums in self._finest_complete(read):
            datums = [d for d in datums if d.numpy.shape == first.shape]
            stacked = np.array([d.numpy for d in datums], dtype=np.float64).reshape((-1,) + first.shape)
            times = np.array([(d.step, d.wall_time) for d in datums], dtype=np.float64).reshape(-1, 2)
            for s in by_tag[first.run, first.tag]:
                rows = np.column_stack([times, stacked[(slice(None),) + s.block.index]])
                pieces.setdefault((s.run, s.block[:-1]), [s, []])[1].append(rows)
        return [(s, _scalar_table(np.concatenate(tables))) for s, tables in pieces.values()]

    def _finest_complete(self, read):
        """`read` (pairs of `_Series` and points), of each packing only the finest stride TensorBoard holds whole.

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
        """Pairs each `_Series` of `selected` with its data, read with `read`.

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


def _findings_series(read):
    """`findings.Series` of each scalar series in `read` (pairs of `_Series` and `_scalar_table`)."""
    return [
        findings.Series(
            s.run, s.block.layer, s.block.cell, s.block.part, s.block.gate, s.block.stat,
            table[:, 0].astype(np.int64), table[:, 2],
        )
        for s, table in read
    ]


def _parse(run_to_tags, version_1):
    """`_Listed` of the listed time series whose metadata parses.

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
                listed.append(_Listed(run, tag, parsed, packing))
    return listed


@functools.lru_cache(maxsize=65536)
def _parse_content(content):
    """The `_Parsed` content, or None if malformed; cached, as every run
    repeats the same few thousand contents at every request."""
    try:
        parsed = metadata.parse_plugin_content(content)
    except ValueError:
        return None
    by_stat = collections.defaultdict(list)
    for block in parsed.blocks:
        by_stat[block.stat].append(block)
    weights = [b for b in parsed.blocks if b.part != metadata.TOTAL]
    scalar_stats = {stat for stat in by_stat if stat not in metadata.TENSOR_STATS}
    return _Parsed(
        content=parsed,
        layer=parsed.blocks[0].layer,
        cell=parsed.blocks[0].cell,
        by_stat={stat: tuple(blocks) for stat, blocks in by_stat.items()},
        scalars=bool(scalar_stats),
        parts=frozenset(b.part for b in weights),
        gates=frozenset(b.gate for b in weights),
        stats=frozenset(scalar_stats - {metadata.PENALTY}),
    )


def _blocks(listed, stat):
    """A `_Series` for each block of statistic `stat` in the `_Listed` time series `listed`."""
    return [
        _Series(s.run, s.tag, s.parsed.content.kind, s.parsed.content.shape, block, s.parsed.content.stride, s.packing)
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


def _select_runs(listed, runs):
    """The set of runs to read: `runs`, all checked to exist, or every listed run if None."""
    known = {s.run for s in listed}
    if runs is None:
        return known
    unknown = sorted(set(runs) - known)
    if unknown:
        raise errors.NotFoundError("no lstm_gates data for run(s) %s" % ", ".join(map(repr, unknown)))
    return set(runs)


def _canonical(names, canonical):
    """`names` sorted in the canonical order, unknown names last, by name."""
    return sorted(names, key=lambda name: _canonical_key(name, canonical))


def _block_order(series):
    """Sort key of a series' block: parts, then gates in canonical order, totals last."""
    return (
        _canonical_key(series.block.part, metadata.PARTS + (metadata.TOTAL,)),
        _canonical_key(series.block.gate, _CANONICAL_GATES + (metadata.TOTAL,)),
    )


def _canonical_key(name, canonical):
    return (canonical.index(name) if name in canonical else len(canonical), name)


def _loaded_steps(read):
    """`read` (pairs of `_Series` and `_scalar_table`) without the steps some series of their run lack yet.

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


def _scalar_table(rows):
    """Rows `[step, wall_time, value]` (float64), one row per step, in step order."""
    return rows[_one_per_step(rows[:, 0], rows[:, 1])]


def _in_step_order(datums):
    """`datums` (tensor points) in step order, one per step: the last written."""
    steps = np.array([d.step for d in datums], dtype=np.int64)
    wall_times = np.array([d.wall_time for d in datums], dtype=np.float64)
    return [datums[i] for i in _one_per_step(steps, wall_times)]


def _downsample(datums, samples):
    """At most `samples` of `datums` (tensor points) in step order, one per step, evenly spaced."""
    datums = _in_step_order(datums)
    return [datums[i] for i in _evenly(len(datums), samples)]


def _points(table, samples):
    """The JSON fields of a `_scalar_table`, at most `samples` points; NaN and Inf as null."""
    table = table[_evenly(len(table), samples)]
    values = table[:, 2].tolist()
    finite = np.isfinite(table[:, 2])
    if not finite.all():
        values = [v if ok else None for v, ok in zip(values, finite.tolist())]
    return {
        "steps": table[:, 0].astype(np.int64).tolist(),
        "wall_times": table[:, 1].tolist(),
        "values": values,
    }


def _buckets(array):
    """Rows `[left, right, count]` of a histogram tensor; `[]` if it has another shape."""
    array = np.asarray(array, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != 3:
        return []
    return [[_finite(x) for x in row] for row in array.tolist()]


def _finite(value):
    value = float(value)
    return value if math.isfinite(value) else None


def _context(request):
    return plugin_util.context(request.environ), plugin_util.experiment_id(request.environ)


def _json(request, body):
    # Serialised here rather than by `Respond`, whose `json_util.Cleanse`
    # walks every point in Python first; bodies already hold no NaN or Inf
    # (`_finite`), so `allow_nan=False` only guards that.
    text = json.dumps(body, allow_nan=False, separators=(",", ":"))
    return http_util.Respond(request, text, "application/json")


def _required(request, name):
    values = request.args.getlist(name)
    if len(values) != 1 or not values[0]:
        raise errors.InvalidArgumentError("give exactly one non-empty %r parameter" % name)
    return values[0]


def _runs(request):
    return request.args.getlist("run") or None


def _step(request):
    values = request.args.getlist("step")
    if not values:
        return None
    if len(values) == 1 and _STEP_PATTERN.fullmatch(values[0]):
        return int(values[0])
    raise errors.InvalidArgumentError(
        "step must be one non-negative integer, got %s" % ", ".join(map(repr, values))
    )


def _samples(request):
    values = request.args.getlist("samples")
    if not values:
        return DEFAULT_SAMPLES
    if len(values) == 1 and _SAMPLES_PATTERN.fullmatch(values[0]):
        samples = int(values[0])
        if 2 <= samples <= MAX_SAMPLES:
            return samples
    raise errors.InvalidArgumentError(
        "samples must be one integer from 2 to %d, got %s" % (MAX_SAMPLES, ", ".join(map(repr, values)))
    )
