"""The routes on sweeps: findings kept per run until the run has new steps, partial
answers past the time budget, and listings of only the tags a route reads.

Real event files, read through TensorBoard's own data provider (the Python
loader, reloaded after each append as TensorBoard's reload loop does). The data
provider is wrapped only to record which runs each read asks for.
"""

import os
import time

import numpy as np
import pytest
from tensorboard.backend.event_processing import data_provider as multiplexer_data_provider
from tensorboard.backend.event_processing import plugin_event_multiplexer
from tensorboard.context import RequestContext
from tensorboard.plugins import base_plugin

from tb_lstm_gates.core import layouts
from tb_lstm_gates.logs import metadata, summary
from tb_lstm_gates.plugin import plugin as plugin_module
from tb_lstm_gates.plugin import store
from tb_lstm_gates.plugin.loader import LSTMGatesLoader

LAYER = "lstm/lstm_cell"
UNITS = 3


class Run:
    """One LSTM(3) layer (a GRU(3) if `gru`) over 2 features, logged through `CellLogger`
    by one writer that stays open, as during training."""

    def __init__(self, run_dir, gru=False):
        self.rng = np.random.default_rng(len(os.path.basename(run_dir)))
        self.gru = gru
        self.layout, self.gates = (layouts.keras_gru(), 3) if gru else (layouts.keras_lstm(), 4)
        self.writer = summary.GateSummaryWriter(run_dir)
        self.logger = summary.CellLogger(self.writer, bins=4)

    def log(self, steps, nan_at=None):
        """Writes `steps` (each flushed), with a NaN in the recurrent kernel at step `nan_at`."""
        for step in steps:
            arrays = {
                "kernel": self.rng.normal(size=(2, self.gates * UNITS)).astype(np.float32),
                "recurrent_kernel": self.rng.normal(size=(UNITS, self.gates * UNITS)).astype(np.float32),
                "bias": np.zeros((2, self.gates * UNITS) if self.gru else self.gates * UNITS, np.float32),
            }
            if step == nan_at:
                arrays["recurrent_kernel"][0, 0] = np.nan
            self.logger.log_cell(LAYER, self.layout, arrays)
            self.writer.end_step(step)
        return self

    def close(self):
        self.writer.close()


def write_run(run_dir, steps, nan_at=None, gru=False):
    Run(run_dir, gru).log(steps, nan_at).close()


class RecordingProvider:
    """TensorBoard's data provider, recording the runs each `read_*` call asks for."""

    def __init__(self, provider):
        self._provider = provider
        self.reads = []

    def __getattr__(self, name):
        return getattr(self._provider, name)

    def read_scalars(self, ctx, **kwargs):
        self.reads.append(set(kwargs["run_tag_filter"].runs or ()))
        return self._provider.read_scalars(ctx, **kwargs)

    def read_tensors(self, ctx, **kwargs):
        self.reads.append(set(kwargs["run_tag_filter"].runs or ()))
        return self._provider.read_tensors(ctx, **kwargs)

    def runs_read(self):
        runs = set().union(*self.reads) if self.reads else set()
        self.reads = []
        return runs


@pytest.fixture
def served(tmp_path):
    """`(plugin, provider, multiplexer)` over `tmp_path`, empty at first."""
    multiplexer = plugin_event_multiplexer.EventMultiplexer(tensor_size_guidance={metadata.PLUGIN_NAME: 0})
    multiplexer.AddRunsFromDirectory(os.fspath(tmp_path))
    provider = RecordingProvider(
        multiplexer_data_provider.MultiplexerDataProvider(multiplexer, os.fspath(tmp_path))
    )
    plugin = LSTMGatesLoader().load(base_plugin.TBContext(data_provider=provider))
    return plugin, provider, multiplexer


def reload(multiplexer, root):
    multiplexer.AddRunsFromDirectory(os.fspath(root))
    multiplexer.Reload()


def test_findings_are_read_again_only_for_the_run_with_new_steps(tmp_path, served):
    plugin, provider, multiplexer = served
    runs = {run: Run(os.fspath(tmp_path / run)).log(range(3)) for run in ("a", "b", "c")}
    reload(multiplexer, tmp_path)
    ctx = RequestContext()

    first = plugin.findings_impl(ctx, "")
    assert first["pending"] == []
    assert [c["run"] for c in first["counts"]] == ["a", "b", "c"]
    assert provider.runs_read() == {"a", "b", "c"}

    # Nothing new: the answer comes from what was kept, without reading a point.
    assert plugin.findings_impl(ctx, "") == first
    assert provider.runs_read() == set()

    # Run b gets a step, with a NaN: only b is read, and its new finding shows.
    runs["b"].log([3], nan_at=3)
    reload(multiplexer, tmp_path)
    after = plugin.findings_impl(ctx, "")
    assert provider.runs_read() == {"b"}
    assert after["pending"] == []
    nonfinite = [(f["run"], f["step"]) for f in after["findings"] if f["rule"] == "nonfinite"]
    assert nonfinite == [("b", 3)]
    assert [f for f in after["findings"] if f["run"] != "b"] == [
        f for f in first["findings"] if f["run"] != "b"
    ]
    for run in runs.values():
        run.close()


def test_series_are_read_again_only_for_the_run_with_new_steps(tmp_path, served):
    plugin, provider, multiplexer = served
    runs = {run: Run(os.fspath(tmp_path / run)).log(range(3)) for run in ("a", "b", "c")}
    reload(multiplexer, tmp_path)
    ctx = RequestContext()
    first = plugin.series_impl(ctx, "", layer=LAYER, stat="l2")
    assert provider.runs_read() == {"a", "b", "c"}
    assert plugin.series_impl(ctx, "", layer=LAYER, stat="l2") == first
    assert provider.runs_read() == set()
    # Other parameters are other answers, read again.
    assert plugin.series_impl(ctx, "", layer=LAYER, stat="l2", samples=2) != first
    assert provider.runs_read() == {"a", "b", "c"}

    runs["b"].log([3])
    reload(multiplexer, tmp_path)
    after = plugin.series_impl(ctx, "", layer=LAYER, stat="l2", runs=["b", "c"])
    assert provider.runs_read() == {"b"}
    assert {s["run"]: len(s["steps"]) for s in after["series"]} == {"b": 4, "c": 3}
    # The same answer as a plugin that kept nothing.
    fresh = LSTMGatesLoader().load(base_plugin.TBContext(data_provider=provider))
    assert fresh.series_impl(ctx, "", layer=LAYER, stat="l2", runs=["b", "c"]) == after
    for run in runs.values():
        run.close()


def test_findings_of_other_thresholds_are_kept_apart(tmp_path, served):
    plugin, provider, multiplexer = served
    write_run(os.fspath(tmp_path / "a"), range(3), nan_at=1)
    reload(multiplexer, tmp_path)
    ctx = RequestContext()
    strict = plugin.findings_impl(ctx, "")
    lenient = plugin.findings_impl(ctx, "", settings={("nonfinite", "max_count"): 5.0})
    assert "nonfinite" in {f["rule"] for f in strict["findings"]}
    assert "nonfinite" not in {f["rule"] for f in lenient["findings"]}
    provider.runs_read()
    assert plugin.findings_impl(ctx, "") == strict
    assert provider.runs_read() == set()


def test_findings_past_the_time_budget_answer_what_is_checked_and_check_the_pending_runs_meanwhile(
    tmp_path, served
):
    plugin, provider, multiplexer = served
    runs = ["run_%02d" % k for k in range(plugin_module.FINDINGS_BATCH + 4)]
    for run in runs:
        write_run(os.fspath(tmp_path / run), range(2), nan_at=1 if run == runs[-1] else None)
    reload(multiplexer, tmp_path)
    ctx = RequestContext()

    # A budget of 0 s: one batch is checked, the others are pending.
    first = plugin.findings_impl(ctx, "", budget=0)
    checked = runs[: plugin_module.FINDINGS_BATCH]
    assert [c["run"] for c in first["counts"]] == checked
    assert first["pending"] == runs[len(checked) :]
    assert {f["run"] for f in first["findings"]} <= set(checked)

    # A background thread checks the pending runs meanwhile.
    deadline = time.time() + 30
    while (second := plugin.findings_impl(ctx, "", budget=0))["pending"]:
        assert time.time() < deadline, "the pending runs were not checked"
        time.sleep(0.05)
    assert [c["run"] for c in second["counts"]] == runs
    assert {f["run"] for f in second["findings"] if f["rule"] == "nonfinite"} == {runs[-1]}
    assert provider.runs_read() == set(runs)


def test_a_findings_request_while_another_checks_answers_at_once_with_what_is_kept(tmp_path, served):
    plugin, provider, multiplexer = served
    for run in ("a", "b"):
        write_run(os.fspath(tmp_path / run), range(2))
    reload(multiplexer, tmp_path)
    ctx = RequestContext()
    plugin.findings_impl(ctx, "", runs=["a"])
    provider.runs_read()
    # Another request holds the right to check runs (TensorBoard serves on several threads).
    assert plugin._findings.begin_checking()
    try:
        body = plugin.findings_impl(ctx, "")
    finally:
        plugin._findings.end_checking()
    assert provider.runs_read() == set()
    assert [c["run"] for c in body["counts"]] == ["a"]
    assert body["pending"] == ["b"]
    assert plugin.findings_impl(ctx, "")["pending"] == []


def test_series_serves_a_run_named_in_the_request_that_logged_tags_not_listed_before(tmp_path, served):
    plugin, provider, multiplexer = served
    write_run(os.fspath(tmp_path / "a"), range(2))
    reload(multiplexer, tmp_path)
    ctx = RequestContext()
    # A full listing: the routes now list only the tags it found for what they read.
    assert [r["run"] for r in plugin.runs_impl(ctx, "")["runs"]] == ["a"]
    # Run b logs the same layer with other contents, so under other tags.
    write_run(os.fspath(tmp_path / "b"), range(2), gru=True)
    reload(multiplexer, tmp_path)
    body = plugin.series_impl(ctx, "", layer=LAYER, stat="l2", runs=["a", "b"])
    assert {s["run"] for s in body["series"]} == {"a", "b"}
    assert {len(s["steps"]) for s in body["series"]} == {2}


def test_series_leaves_out_wall_times_when_asked(tmp_path, served):
    plugin, _, multiplexer = served
    write_run(os.fspath(tmp_path / "a"), range(3))
    reload(multiplexer, tmp_path)
    ctx = RequestContext()
    with_times = plugin.series_impl(ctx, "", layer=LAYER, stat="l2")["series"]
    without = plugin.series_impl(ctx, "", layer=LAYER, stat="l2", wall_times=False)["series"]
    assert all(len(s["wall_times"]) == 3 for s in with_times)
    assert without == [{k: v for k, v in s.items() if k != "wall_times"} for s in with_times]


def test_a_tag_logged_after_the_last_full_listing_is_served_once_that_listing_is_old(
    tmp_path, served, monkeypatch
):
    plugin, _, multiplexer = served
    monkeypatch.setattr(store, "KNOWN_TAGS_SECONDS", 0.5)
    run = Run(os.fspath(tmp_path / "a")).log([0])
    reload(multiplexer, tmp_path)
    ctx = RequestContext()

    def steps():
        return {len(s["steps"]) for s in plugin.series_impl(ctx, "", layer=LAYER, stat="l2")["series"]}

    assert steps() == {1}
    # From step 1 on, `update_ratio` joins the statistics: they are packed under a new tag.
    run.log([1, 2])
    reload(multiplexer, tmp_path)
    time.sleep(0.6)
    assert steps() == {3}
    run.close()
