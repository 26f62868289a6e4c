"""Routes of the LSTM Gates tab; their contract is `http_api.md`.

Every read goes through `context.data_provider`, so both of TensorBoard's
loaders serve the same data. Routes parse the request (`requests`) and call
an `*_impl` method that takes plain values and returns plain data; errors
are raised as `tensorboard.errors` and turned into HTTP codes by
TensorBoard. Run and layer names are opaque strings, only ever compared
with what the data provider lists.
"""

import json

from tensorboard import errors
from tensorboard.backend import http_util
from tensorboard.context import RequestContext
from tensorboard.plugins import base_plugin

from tb_lstm_gates import findings
from tb_lstm_gates.logs import metadata
from tb_lstm_gates.plugin import (
    findings_cache,
    limits,
    probe_views,
    requests,
    run_list,
    series_cache,
    series_views,
    static_files,
    store,
    unpack,
)

# Re-exported: where tests and users found them before the split.
DEFAULT_SAMPLES = limits.DEFAULT_SAMPLES
MAX_SAMPLES = limits.MAX_SAMPLES
FINDINGS_BUDGET = findings_cache.FINDINGS_BUDGET
FINDINGS_BATCH = findings_cache.FINDINGS_BATCH
STATIC_DIR = static_files.STATIC_DIR
_STATIC_ROUTE = "/data/plugin/%s/static/" % metadata.PLUGIN_NAME


class LSTMGatesPlugin(base_plugin.TBPlugin):
    """Serves per-gate statistics, histograms and penalties to the LSTM Gates tab."""

    plugin_name = metadata.PLUGIN_NAME

    def __init__(self, context):
        self._data_provider = context.data_provider
        # What TensorBoard keeps of each series (see `loader`); 0 is all.
        hints = getattr(context.flags, "samples_per_plugin", None) or {}
        self._store = store.Store(self._data_provider, hints.get(metadata.PLUGIN_NAME, limits.SAMPLES_CAP))
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

    @requests.route
    def _serve_runs(self, request):
        ctx, experiment = requests.context(request)
        return requests.json_response(request, self.runs_impl(ctx, experiment))

    @requests.route
    def _serve_series(self, request):
        ctx, experiment = requests.context(request)
        text = self.series_text(
            ctx,
            experiment,
            layer=requests.required(request, "layer"),
            stat=requests.required(request, "stat"),
            runs=requests.runs(request),
            samples=requests.samples(request),
            wall_times=requests.wall_times(request),
        )
        return http_util.Respond(request, text, "application/json")

    @requests.route
    def _serve_histograms(self, request):
        ctx, experiment = requests.context(request)
        body = self.histograms_impl(
            ctx,
            experiment,
            run=requests.required(request, "run"),
            layer=requests.required(request, "layer"),
            part=requests.required(request, "part"),
            gate=requests.required(request, "gate"),
            samples=requests.samples(request),
        )
        return requests.json_response(request, body)

    @requests.route
    def _serve_regularization(self, request):
        ctx, experiment = requests.context(request)
        body = self.regularization_impl(
            ctx, experiment, runs=requests.runs(request), samples=requests.samples(request)
        )
        return requests.json_response(request, body)

    @requests.route
    def _serve_activation_map(self, request):
        ctx, experiment = requests.context(request)
        body = self.activation_map_impl(
            ctx,
            experiment,
            run=requests.required(request, "run"),
            layer=requests.required(request, "layer"),
            gate=requests.required(request, "gate"),
            step=requests.step(request),
        )
        return requests.json_response(request, body)

    @requests.route
    def _serve_findings(self, request):
        ctx, experiment = requests.context(request)
        try:
            settings = findings.parse_settings(request.args.getlist("set"))
        except ValueError as e:
            raise errors.InvalidArgumentError(str(e)) from None
        body = self.findings_impl(ctx, experiment, runs=requests.runs(request), settings=settings)
        return requests.json_response(request, body)

    @requests.route
    def _serve_unit_saturation(self, request):
        ctx, experiment = requests.context(request)
        body = self.unit_saturation_impl(
            ctx,
            experiment,
            layer=requests.required(request, "layer"),
            gate=requests.required(request, "gate"),
            runs=requests.runs(request),
            step=requests.step(request),
        )
        return requests.json_response(request, body)

    @requests.route
    def _serve_probe_sequences(self, request):
        ctx, experiment = requests.context(request)
        body = self.probe_sequences_impl(
            ctx,
            experiment,
            run=requests.required(request, "run"),
            layer=requests.required(request, "layer"),
            gate=requests.required(request, "gate"),
            step=requests.step(request),
        )
        return requests.json_response(request, body)

    @requests.route
    def _serve_static(self, request):
        name = request.path[len(_STATIC_ROUTE) :] if request.path.startswith(_STATIC_ROUTE) else ""
        content, content_type = self.static_impl(name)
        return http_util.Respond(request, content, content_type)

    # Implementations: plain values in, plain data out.

    def runs_impl(self, ctx, experiment):
        """Every run with this plugin's data, its layers and what each holds."""
        return run_list.run_list(self._store.index(ctx, experiment))

    def series_impl(self, ctx, experiment, layer, stat, runs=None, samples=DEFAULT_SAMPLES, wall_times=True):
        """One statistic of every block of `layer`, in `runs` (None: all runs); `wall_times` False leaves them out."""
        return json.loads(self.series_text(ctx, experiment, layer, stat, runs, samples, wall_times))

    def series_text(self, ctx, experiment, layer, stat, runs=None, samples=DEFAULT_SAMPLES, wall_times=True):
        """`series_impl`'s answer as JSON text (see `series_views.series_text`)."""
        return series_views.series_text(
            self._store, self._series, ctx, experiment, layer, stat, runs, samples, wall_times
        )

    def histograms_impl(self, ctx, experiment, run, layer, part, gate, samples=DEFAULT_SAMPLES):
        """The histograms of one block over steps."""
        return series_views.histograms(self._store, ctx, experiment, run, layer, part, gate, samples)

    def regularization_impl(self, ctx, experiment, runs=None, samples=DEFAULT_SAMPLES):
        """Every penalty series and the model's training loss, in `runs` (None: all runs)."""
        return series_views.regularization(self._store, ctx, experiment, runs, samples)

    def activation_map_impl(self, ctx, experiment, run, layer, gate, step=None):
        """One gate's activations on the probe's first sequence at `step` (None: the last step)."""
        return probe_views.activation_map(self._store, ctx, experiment, run, layer, gate, step)

    def probe_sequences_impl(self, ctx, experiment, run, layer, gate, step=None):
        """One gate's (or the cell state's) activations on the probe's first sequences at `step` (None: the last)."""
        return probe_views.probe_sequences(self._store, ctx, experiment, run, layer, gate, step)

    def unit_saturation_impl(self, ctx, experiment, layer, gate, runs=None, step=None):
        """Per unit of one gate, the fractions left- and right-saturated, per run (see `probe_views`)."""
        return probe_views.unit_saturation(self._store, ctx, experiment, layer, gate, runs, step)

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
        listed, selected = self._store.index_runs(ctx, experiment, _holds_findings_stats, runs)
        in_runs = [s for s in listed if s.run in selected]
        # A selected run without any statistic the rules read has no findings, and counts zeros.
        keys = {run: () for run in selected}
        keys.update(unpack.listing_keys(in_runs))
        if runs is None:
            self._findings.forget_others(keys)
        kept, stale = self._findings.lookup(settings, keys)

        def check(batch):
            return self._check_runs(ctx, experiment, batch, in_runs, settings)

        checked = self._findings.refresh(settings, stale, keys, check, kept, budget)
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

    def static_impl(self, name):
        """`(content, content_type)` of a file of the static folder (see `static_files.read`)."""
        return static_files.read(name)

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


def _holds_findings_stats(parsed):
    return not findings.STATS_READ.isdisjoint(parsed.by_stat)
