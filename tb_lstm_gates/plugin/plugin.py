"""Routes of the LSTM Gates tab; their contract is `http_api.md`.

Every read goes through `context.data_provider`, so both of TensorBoard's
loaders serve the same data. Routes parse the request and call an `*_impl`
method that takes plain values and returns plain data; errors are raised as
`tensorboard.errors` and turned into HTTP codes by TensorBoard. Run and layer
names are opaque strings, only ever compared with what the data provider
lists.
"""

import collections
import json
import logging
import mimetypes
import os
import re
import threading
import time

import numpy as np
from tensorboard import errors, plugin_util
from tensorboard.backend import http_util
from tensorboard.context import RequestContext
from tensorboard.plugins import base_plugin
from werkzeug import wrappers

from tb_lstm_gates import findings
from tb_lstm_gates.logs import metadata
from tb_lstm_gates.plugin import findings_cache, loader, series_cache, unpack

logger = logging.getLogger(__name__)

DEFAULT_SAMPLES = 1000
# Seconds a `findings` request spends checking runs before it answers with
# the others pending (a background thread goes on with them), and the runs
# read together (one read per batch).
FINDINGS_BUDGET = 0.5
FINDINGS_BATCH = 16
MAX_SAMPLES = 10000
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


class LSTMGatesPlugin(base_plugin.TBPlugin):
    """Serves per-gate statistics, histograms and penalties to the LSTM Gates tab."""

    plugin_name = metadata.PLUGIN_NAME

    def __init__(self, context):
        self._data_provider = context.data_provider
        # What TensorBoard keeps of each series (see `loader`); 0 is all.
        hints = getattr(context.flags, "samples_per_plugin", None) or {}
        self._store = unpack.Store(self._data_provider, hints.get(metadata.PLUGIN_NAME, loader.SAMPLES_CAP))
        self._findings = findings_cache.FindingsCache()
        self._series = series_cache.SeriesCache()

    def get_plugin_apps(self):
        return {
            "/runs": self._serve_runs,
            "/series": self._serve_series,
            "/histograms": self._serve_histograms,
            "/regularization": self._serve_regularization,
            "/activation_map": self._serve_activation_map,
            "/findings": self._serve_findings,
            "/unit_saturation": self._serve_unit_saturation,
            "/probe_sequences": self._serve_probe_sequences,
            "/static/*": self._serve_static,
        }

    def is_active(self):
        if self._data_provider is None:
            return False
        return metadata.PLUGIN_NAME in self._data_provider.list_plugins(RequestContext(), experiment_id="")

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
        text = self.series_text(
            ctx,
            experiment,
            layer=_required(request, "layer"),
            stat=_required(request, "stat"),
            runs=_runs(request),
            samples=_samples(request),
            wall_times=_wall_times(request),
        )
        return http_util.Respond(request, text, "application/json")

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
    def _serve_probe_sequences(self, request):
        ctx, experiment = _context(request)
        body = self.probe_sequences_impl(
            ctx,
            experiment,
            run=_required(request, "run"),
            layer=_required(request, "layer"),
            gate=_required(request, "gate"),
            step=_step(request),
        )
        return _json(request, body)

    @wrappers.Request.application
    def _serve_static(self, request):
        name = request.path[len(_STATIC_ROUTE) :] if request.path.startswith(_STATIC_ROUTE) else ""
        content, content_type = self.static_impl(name)
        return http_util.Respond(request, content, content_type)

    # Implementations: plain values in, plain data out.

    def runs_impl(self, ctx, experiment):
        """Every run with this plugin's data, its layers and what each holds."""
        runs = {}
        for listed in self._store.index(ctx, experiment):
            parsed = listed.parsed
            if parsed.content.stride != 1:
                continue  # copies of points of a stride-1 series
            run = runs.setdefault(
                listed.run,
                {
                    "run": listed.run,
                    "layers": {},
                    "regularization": False,
                    "probe_tokens": False,
                    "step_units": set(),
                },
            )
            run["step_units"].add(parsed.content.step_unit)
            if metadata.PENALTY in parsed.by_stat:
                run["regularization"] = True
            if metadata.PROBE_TOKENS in parsed.by_stat:
                run["probe_tokens"] = True
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
                    "probe_sequences": False,
                    "penalties": False,
                    "index": None,
                    "step_units": set(),
                    # {part: origin} of weights that are not plain parameters (see `logs.origins`).
                    "origins": {},
                },
            )
            layer["origins"].update(parsed.content.origins or {})
            index = parsed.content.index
            if index is not None and (layer["index"] is None or index < layer["index"]):
                layer["index"] = index
            layer["parts"] |= parsed.parts
            layer["gates"] |= parsed.gates
            layer["stats"] |= parsed.stats
            layer["histograms"] |= metadata.HISTOGRAM in parsed.by_stat
            layer["activation_maps"] |= metadata.ACTIVATION_MAP in parsed.by_stat
            layer["unit_saturation"] |= metadata.UNIT_SATURATION in parsed.by_stat
            layer["probe_sequences"] |= metadata.PROBE_SEQUENCES in parsed.by_stat
            layer["penalties"] |= metadata.PENALTY in parsed.by_stat
            layer["step_units"].add(parsed.content.step_unit)
        for run in runs.values():
            # In the model's order where the writer recorded it, else (older logs) by name.
            layers = sorted(
                run["layers"].values(),
                key=lambda layer: (layer["index"] is None, layer["index"] or 0, layer["layer"]),
            )
            for layer in layers:
                layer["parts"] = unpack.canonical(layer["parts"], metadata.PARTS)
                layer["gates"] = unpack.canonical(layer["gates"], unpack.CANONICAL_GATES)
                layer["stats"] = unpack.canonical(layer["stats"], unpack.CANONICAL_STATS)
            run["layers"] = layers
            _name_step_units(run)
        return {"runs": [runs[name] for name in sorted(runs)], "contract": metadata.contract()}

    def series_impl(self, ctx, experiment, layer, stat, runs=None, samples=DEFAULT_SAMPLES, wall_times=True):
        """One statistic of every block of `layer`, in `runs` (None: all runs); `wall_times` False leaves them out."""
        return json.loads(self.series_text(ctx, experiment, layer, stat, runs, samples, wall_times))

    def series_text(self, ctx, experiment, layer, stat, runs=None, samples=DEFAULT_SAMPLES, wall_times=True):
        """`series_impl`'s answer as JSON text, from each run's text kept while its listing
        stays the same (`series_cache`); only the other runs are read."""
        listed, runs = self._index(ctx, experiment, lambda parsed: parsed.layer == layer, runs)
        in_layer = [s for s in listed if s.run in runs and s.parsed.scalars]
        if not in_layer:
            raise errors.NotFoundError("no layer %r in the selected runs" % layer)
        selected = unpack.block_series(in_layer, stat) if stat not in metadata.TENSOR_STATS else []
        if not selected:
            raise errors.NotFoundError("layer %r has no statistic %r" % (layer, stat))
        listings = unpack.listing_keys(in_layer)
        asked = (experiment, layer, stat, samples, wall_times)
        texts = {run: self._series.get((run,) + asked, listings[run]) for run in {s.run for s in selected}}
        unread = {run for run, text in texts.items() if text is None}
        read = sorted(
            self._store.scalar_tables(ctx, experiment, [s for s in selected if s.run in unread]),
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
            texts[run] = ",".join(_dumps(series) for series in by_run[run])
            self._series.put((run,) + asked, listings[run], texts[run])
        pieces = ",".join(texts[run] for run in sorted(texts) if texts[run])
        return '{"layer":%s,"stat":%s,"series":[%s]}' % (_dumps(layer), _dumps(stat), pieces)

    def histograms_impl(self, ctx, experiment, run, layer, part, gate, samples=DEFAULT_SAMPLES):
        """The histograms of one block over steps."""
        datums = self._store.block_tensors(
            ctx, experiment, run, layer, metadata.HISTOGRAM, part=part, gate=gate
        )
        histograms = [
            {"step": d.step, "wall_time": d.wall_time, "buckets": unpack.buckets(d.value)}
            for d in unpack.downsample(datums, samples)
        ]
        return {"run": run, "layer": layer, "part": part, "gate": gate, "histograms": histograms}

    def regularization_impl(self, ctx, experiment, runs=None, samples=DEFAULT_SAMPLES):
        """Every penalty series and the model's training loss, in `runs` (None: all runs)."""
        listed = self._store.index(ctx, experiment)
        runs = unpack.select_runs(listed, runs)
        in_runs = [s for s in listed if s.run in runs]
        selected = unpack.block_series(in_runs, metadata.PENALTY) + [
            s for s in unpack.block_series(in_runs, metadata.LOSS) if s.block.layer == metadata.MODEL_LAYER
        ]
        read = self._store.scalar_tables(ctx, experiment, selected)
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

    def activation_map_impl(self, ctx, experiment, run, layer, gate, step=None):
        """One gate's activations on the probe's first sequence at `step` (None: the last step)."""
        datums = unpack.in_step_order(
            self._store.block_tensors(ctx, experiment, run, layer, metadata.ACTIVATION_MAP, gate=gate)
        )
        by_step = {d.step: d for d in datums}
        steps = [d.step for d in datums]
        if step is None:
            step = steps[-1]
        elif step not in by_step:
            raise errors.NotFoundError(
                "gate %r of layer %r has no activation map at step %d" % (gate, layer, step)
            )
        values = np.atleast_2d(np.asarray(by_step[step].value, dtype=np.float64))
        tokens = self._probe_tokens(ctx, experiment, run)
        return {
            "run": run,
            "layer": layer,
            "gate": gate,
            "steps": steps,
            "step": step,
            "wall_time": by_step[step].wall_time,
            "time_steps": values.shape[0],
            "units": values.shape[1],
            "values": [[unpack.finite(x) for x in row] for row in values.tolist()],
            "tokens": tokens[0] if tokens else None,
        }

    def probe_sequences_impl(self, ctx, experiment, run, layer, gate, step=None):
        """One gate's (or the cell state's) activations on the probe's first sequences at `step` (None: the last).

        Logs from before the probe's sequences serve the activation map, the
        first sequence's gates, as one sequence.
        """
        try:
            datums = self._store.block_tensors(
                ctx, experiment, run, layer, metadata.PROBE_SEQUENCES, gate=gate
            )
            source = metadata.PROBE_SEQUENCES
        except errors.NotFoundError:
            datums = self._store.block_tensors(
                ctx, experiment, run, layer, metadata.ACTIVATION_MAP, gate=gate
            )
            source = metadata.ACTIVATION_MAP
        datums = unpack.in_step_order(datums)
        by_step = {d.step: d for d in datums}
        steps = [d.step for d in datums]
        if step is None:
            step = steps[-1]
        elif step not in by_step:
            raise errors.NotFoundError(
                "gate %r of layer %r has no probe sequences at step %d" % (gate, layer, step)
            )
        values = np.asarray(by_step[step].value, dtype=np.float64)
        values = values.reshape((1,) * (3 - values.ndim) + values.shape)
        return {
            "run": run,
            "layer": layer,
            "gate": gate,
            "source": source,
            "steps": steps,
            "step": step,
            "wall_time": by_step[step].wall_time,
            "sequences": values.shape[0],
            "time_steps": values.shape[1],
            "units": values.shape[2],
            "values": [[[unpack.finite(x) for x in row] for row in sequence] for sequence in values.tolist()],
            "tokens": self._probe_tokens(ctx, experiment, run),
            "unit_saturation": self._unit_saturation_at(ctx, experiment, run, layer, gate, step),
        }

    def _unit_saturation_at(self, ctx, experiment, run, layer, gate, step):
        """A gate's logged `[low, high]` saturated fractions per unit at `step`, or None (a state, older logs).

        The Text view orders units by these, so it counts saturation as the
        probe logged it: by the activation's bounds, or its slope where it
        has none (relu and the like).
        """
        try:
            datums = self._store.block_tensors(
                ctx, experiment, run, layer, metadata.UNIT_SATURATION, gate=gate
            )
        except errors.NotFoundError:
            return None
        at_step = [d for d in datums if d.step == step]
        if not at_step:
            return None
        return _saturation_pairs(at_step[-1].value)

    def _probe_tokens(self, ctx, experiment, run):
        """The run's probe tokens (a list of lists of strings, the last written), or None."""
        try:
            datums = self._store.block_tensors(
                ctx, experiment, run, metadata.MODEL_LAYER, metadata.PROBE_TOKENS
            )
        except errors.NotFoundError:
            return None
        datums = unpack.in_step_order(datums)
        return metadata.parse_tokens(datums[-1].value) if datums else None

    def findings_impl(self, ctx, experiment, runs=None, settings=None, budget=FINDINGS_BUDGET):
        """The gate-health findings (`tb_lstm_gates.findings`) of `runs` (None: all runs).

        Each run's findings are kept until TensorBoard lists new points for
        it (`findings_cache`). Runs without findings for their latest
        points are checked in batches until `budget` seconds have passed
        (None: all); those left are listed in `pending`, with their earlier
        findings if any, and a background thread goes on checking them, so
        the next request finds more of them done. One request (or its
        thread) checks at a time; a request that comes meanwhile answers at
        once with what is kept.
        """
        listed, selected = self._index(ctx, experiment, _holds_findings_stats, runs)
        in_runs = [s for s in listed if s.run in selected]
        # A selected run without any statistic the rules read has no findings, and counts zeros.
        keys = {run: () for run in selected}
        keys.update(unpack.listing_keys(in_runs))
        if runs is None:
            self._findings.forget_others(keys)
        kept, stale = self._findings.lookup(settings, keys)
        checked = set()
        if stale and self._findings.begin_checking():
            deadline = None if budget is None else time.monotonic() + budget
            try:
                checked = self._check_stale(ctx, experiment, stale, in_runs, keys, settings, deadline, kept)
            except BaseException:
                self._findings.end_checking()
                raise
            left = [run for run in stale if run not in checked]
            if left:
                # The lock passes to the thread, which lets it go when done.
                threading.Thread(
                    target=self._check_in_background,
                    args=(ctx, experiment, left, in_runs, keys, settings),
                    name="lstm_gates findings",
                    daemon=True,
                ).start()
            else:
                self._findings.end_checking()
        found = [f for run in sorted(kept) for f in kept[run]]
        by_run = findings.counts(found)
        thresholds = {**findings.default_settings(), **(settings or {})}
        return {
            "findings": found,
            "counts": [
                {"run": run, **by_run.get(run, dict.fromkeys(findings.SEVERITIES, 0))} for run in sorted(kept)
            ],
            "pending": [run for run in stale if run not in checked],
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

    def _index(self, ctx, experiment, where, runs):
        """`(listed, runs)`: the `Listed` time series whose content `where` holds
        true of (see `Store.index`), and the set of runs to serve: `runs`, or
        every run listed if None.

        Raises:
          NotFoundError: a run of `runs` has no lstm_gates data at all.
        """
        listed = self._store.index(ctx, experiment, where=where, runs=runs)
        if runs is None:
            return listed, {s.run for s in listed}
        if not set(runs) <= {s.run for s in listed}:
            # Some runs lack such series: are they runs at all?
            unpack.select_runs(self._store.index(ctx, experiment), runs)
        return listed, set(runs)

    def _check_stale(self, ctx, experiment, stale, listed, keys, settings, deadline, kept):
        """Checks the runs of `stale` a batch at a time until `deadline` (None: all), keeping
        their findings and adding them to `kept`; returns the set of runs checked."""
        checked = set()
        for k in range(0, len(stale), FINDINGS_BATCH):
            batch = stale[k : k + FINDINGS_BATCH]
            found = self._check_runs(ctx, experiment, batch, listed, settings)
            for run in batch:
                self._findings.store(settings, run, keys[run], found[run])
                kept[run] = found[run]
            checked.update(batch)
            if deadline is not None and time.monotonic() > deadline:
                break
        return checked

    def _check_in_background(self, ctx, experiment, stale, listed, keys, settings):
        try:
            self._check_stale(ctx, experiment, stale, listed, keys, settings, None, {})
        except Exception:  # A run that cannot be read now stays pending; the next request tries again.
            logger.warning("LSTM Gates: checking findings failed", exc_info=True)
        finally:
            self._findings.end_checking()

    def _check_runs(self, ctx, experiment, runs, listed, settings):
        """`{run: findings}` of each of `runs`, from their `Listed` time series in `listed`, read together."""
        batch = set(runs)
        listed = [s for s in listed if s.run in batch]
        selected = [s for stat in sorted(findings.STATS_READ) for s in unpack.block_series(listed, stat)]
        read = unpack.loaded_steps(self._store.scalar_tables(ctx, experiment, selected))
        by_run = {run: [] for run in runs}
        # `check_series` orders by run first: each run's findings stay in order.
        for finding in findings.check_series(unpack.findings_series(read), settings):
            finding["value"] = unpack.finite(finding["value"])
            by_run[finding["run"]].append(finding)
        return by_run

    def unit_saturation_impl(self, ctx, experiment, layer, gate, runs=None, step=None):
        """Per unit of one gate, the fractions left- and right-saturated, per run.

        Each run holding the series gives its points at its last step at or
        before `step` (None: its last step), so runs logged at different
        steps line up; runs without a step that early are left out.
        """
        listed = self._store.index(ctx, experiment)
        runs = unpack.select_runs(listed, runs)
        in_layer = [s for s in listed if s.run in runs and s.parsed.layer == layer]
        selected = [
            s for s in unpack.block_series(in_layer, metadata.UNIT_SATURATION) if s.block.gate == gate
        ]
        if not selected:
            raise errors.NotFoundError(
                "gate %r of layer %r has no unit_saturation in the selected runs" % (gate, layer)
            )
        series = []
        # Logs written before `functions` name none: the tab reads the gate's sigmoid or tanh bounds.
        functions = [f[gate] for f in (s.parsed.content.functions for s in in_layer) if f and gate in f]
        by_run = self._store.tensor_points(ctx, experiment, selected)
        for run in sorted(by_run):
            points = unpack.in_step_order(by_run[run])
            chosen = [p for p in points if step is None or p.step <= step]
            if not chosen:
                continue
            series.append(
                {
                    "run": run,
                    "steps": [p.step for p in points],
                    "step": chosen[-1].step,
                    "units": _saturation_pairs(chosen[-1].value),
                }
            )
        return {"layer": layer, "gate": gate, "function": functions[0] if functions else None, "runs": series}

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


def _saturation_pairs(value):
    """A `unit_saturation` tensor as JSON: `[left, right]` per unit, null where NaN."""
    values = np.asarray(value, dtype=np.float64).reshape(-1, 2)
    return [[unpack.finite(left), unpack.finite(right)] for left, right in values.tolist()]


def _holds_findings_stats(parsed):
    return not findings.STATS_READ.isdisjoint(parsed.by_stat)


def _name_step_units(run):
    """Replaces the `step_units` sets of `run` and of its layers with one `step_unit` each.

    A run or layer whose series disagree says `step`: the tab then claims
    no unit it cannot back.
    """
    for holder in [run] + run["layers"]:
        found = holder.pop("step_units")
        holder["step_unit"] = found.pop() if len(found) == 1 else metadata.DEFAULT_STEP_UNIT


def _context(request):
    return plugin_util.context(request.environ), plugin_util.experiment_id(request.environ)


def _json(request, body):
    return http_util.Respond(request, _dumps(body), "application/json")


def _dumps(body):
    # Serialised here rather than by `Respond`, whose `json_util.Cleanse`
    # walks every point in Python first; bodies already hold no NaN or Inf
    # (`_finite`), so `allow_nan=False` only guards that.
    return json.dumps(body, allow_nan=False, separators=(",", ":"))


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


def _wall_times(request):
    values = request.args.getlist("wall_times")
    if not values:
        return True
    if len(values) == 1 and values[0] in ("true", "false"):
        return values[0] == "true"
    raise errors.InvalidArgumentError(
        "wall_times must be one of true or false, got %s" % ", ".join(map(repr, values))
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
