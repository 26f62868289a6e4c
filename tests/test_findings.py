"""Gate-health findings: each rule on runs trained to show its condition, the
`report` command, and the plugin's `findings` route under both loaders."""

import json
import os
import subprocess
import sys
import time

import findings_runs
import numpy as np
import pytest
from tensorboard.backend import application
from tensorboard.backend.event_processing import data_provider as multiplexer_data_provider
from tensorboard.backend.event_processing import plugin_event_multiplexer
from tensorboard.context import RequestContext
from tensorboard.data import server_ingester
from tensorboard.plugins import base_plugin
from tensorboard.util import grpc_util
from werkzeug import test as werkzeug_test

import tb_lstm_gates
from tb_lstm_gates import cli, findings
from tb_lstm_gates.core import layouts
from tb_lstm_gates.logs import metadata, summary
from tb_lstm_gates.plugin.loader import LSTMGatesLoader

WEIGHT_BLOCKS = {(part, gate) for part in ("input", "recurrent") for gate in metadata.LSTM_GATES}


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("findings")
    runs = findings_runs.train_all(root)
    return root, runs


@pytest.fixture(scope="session")
def records(trained):
    return tb_lstm_gates.load(trained[0])


@pytest.fixture(scope="session")
def found(records):
    return findings.check(records)


def of(found, run, rule=None):
    return [f for f in found if f["run"] == run and (rule is None or f["rule"] == rule)]


# Each rule on the runs trained to show its condition, and nowhere else.


def test_each_run_gets_the_findings_of_its_condition_and_no_other(found, trained):
    runs = trained[1]
    expected = {
        runs["healthy"]: set(),
        runs["nan"]: {"nonfinite"},
        runs["gates"]: {"forget_shut", "forget_open", "saturated", "grad_vanishing"},
        runs["high_lr"]: {"update_ratio_high", "l2_exploding", "spectral_norm_high"},
        runs["stalled"]: {"update_ratio_stalled"},
        runs["over_regularized"]: {"regularization_dominates"},
        runs["expansive"]: {"spectral_norm_high"},
    }
    got = {run: {f["rule"] for f in of(found, run)} for run in expected}
    assert got == expected
    assert {f["run"] for f in found} <= set(expected)


def test_healthy_run_gets_no_finding_at_all(found, trained):
    assert of(found, trained[1]["healthy"]) == []


def test_nan_written_into_a_kernel_is_an_error_at_its_block_and_step_first(found, trained):
    nan = of(found, trained[1]["nan"])
    first = nan[0]
    assert (first["layer"], first["part"], first["gate"]) == ("lstm/lstm_cell", "recurrent", "forget")
    assert (first["rule"], first["severity"], first["step"], first["value"]) == ("nonfinite", "error", 3, 1.0)
    # One step later every block of the layer holds NaN.
    assert {f["step"] for f in nan[1:]} == {findings_runs.NAN_STEP + 1}
    assert len(nan) == 12


def test_learning_rate_far_too_high_fires_update_ratio_exploding_l2_and_spectral_norm(found, trained):
    run = trained[1]["high_lr"]
    high = of(found, run, "update_ratio_high")
    assert {(f["part"], f["gate"]) for f in high} == WEIGHT_BLOCKS
    assert {f["step"] for f in high} == {1} and all(f["value"] > 1 for f in high)
    exploding = of(found, run, "l2_exploding")
    assert exploding and all(f["value"] > 10 and f["stat"] == "l2" for f in exploding)
    assert all(f["part"] != "bias" for f in exploding), "biases start at zero: no scale to grow from"
    assert {f["part"] for f in of(found, run, "spectral_norm_high")} == {"recurrent"}


def test_forget_bias_minus_ten_shuts_the_forget_gate_and_vanishes_its_gradients(found, trained):
    run = trained[1]["gates"]
    (shut,) = of(found, run, "forget_shut")
    assert (shut["layer"], shut["part"], shut["gate"], shut["stat"], shut["step"]) == (
        "shut/lstm_cell",
        "activation",
        "forget",
        "retention",
        0,
    )
    assert shut["value"] == pytest.approx(1.0, abs=1e-3)
    vanishing = {(f["layer"], f["part"], f["gate"]) for f in of(found, run, "grad_vanishing")}
    assert {b for b in vanishing if b[0] == "shut/lstm_cell"} == {
        ("shut/lstm_cell", part, "forget") for part in ("input", "recurrent", "bias")
    }


def test_forget_bias_plus_ten_leaves_the_gate_at_the_retention_cap(found, trained):
    run = trained[1]["gates"]
    (open_,) = of(found, run, "forget_open")
    assert (open_["layer"], open_["gate"], open_["step"]) == ("stuck/lstm_cell", "forget", 0)
    assert open_["value"] == pytest.approx(metadata.RETENTION_CAP, rel=1e-3)


def test_saturated_input_gate_fires_but_saturated_forget_gates_are_left_to_the_forget_rules(found, trained):
    (saturated,) = of(found, trained[1]["gates"], "saturated")
    assert (saturated["layer"], saturated["gate"], saturated["value"]) == ("stuck/lstm_cell", "input", 1.0)
    assert "mostly high" in saturated["message"]


def test_stalled_learning_rate_fires_from_the_first_stalled_step(found, trained):
    stalled = of(found, trained[1]["stalled"])
    assert {(f["part"], f["gate"]) for f in stalled} == WEIGHT_BLOCKS
    assert {f["step"] for f in stalled} == {findings_runs.STALL_EPOCH + 1}
    assert all(f["value"] < 1e-5 for f in stalled)


def test_heavy_gate_regularization_dominates_the_loss(found, records, trained):
    run = trained[1]["over_regularized"]
    (f,) = of(found, run)
    assert (f["layer"], f["part"], f["gate"], f["stat"]) == ("model", "total", "total", "penalty")
    # The loss is logged from step 1 (after the first epoch); the share is penalty / loss there.
    value = {(r.stat, r.step): r.value for r in records if r.run == run and r.layer == "model"}
    assert f["step"] == 1
    assert f["value"] == pytest.approx(value["penalty", 1] / value["loss", 1])
    assert f["value"] > 0.5


def test_expansive_recurrent_kernel_fires_spectral_norm_on_the_tanh_gate_only(found, records, trained):
    run = trained[1]["expansive"]
    logged = {r.gate: r.value for r in records if r.run == run and r.stat == "spectral_norm" and r.step == 0}
    # Every gate's block is near 10: above 4 x 1 for the tanh gate, under 4 x 4 for the sigmoid gates.
    assert all(8 < value < 12 for value in logged.values())
    (f,) = of(found, run, "spectral_norm_high")
    assert (f["gate"], f["step"], f["value"]) == ("cell", 0, pytest.approx(logged["cell"]))


def test_thresholds_can_be_raised_until_a_rule_no_longer_fires(records, trained):
    runs = trained[1]
    settings = findings.parse_settings(["spectral_norm_high.factor=100", "update_ratio_high.max=1e3"])
    found = findings.check(records, settings)
    assert of(found, runs["expansive"]) == []
    assert {f["rule"] for f in of(found, runs["high_lr"])} == {"l2_exploding"}


def test_counts_and_severity_filter(found, trained):
    runs = trained[1]
    by_run = findings.counts(found)
    assert by_run[runs["nan"]] == {"info": 0, "warning": 0, "error": 12}
    assert runs["healthy"] not in by_run
    assert {f["run"] for f in findings.at_or_above(found, "error")} == {runs["nan"]}
    assert len(findings.at_or_above(found, "info")) == len(found)


# Rule mechanics on hand-made series.


def series(stat, values, part="recurrent", gate="forget", steps=None, run="r", layer="l", cell="lstm"):
    steps = np.arange(len(values)) if steps is None else np.asarray(steps)
    steps, values = steps.astype(np.int64), np.asarray(values, float)
    return findings.Series(run, layer, cell, part, gate, stat, steps, values)


def rules_of(*s, **settings):
    items = ["%s=%s" % (k.replace("__", "."), v) for k, v in settings.items()]
    return [(f["rule"], f["step"]) for f in findings.check_series(s, findings.parse_settings(items))]


def test_state_rules_need_the_last_window_steps_and_report_where_the_stretch_starts():
    assert rules_of(series("spectral_norm", [1, 9, 9, 9, 9], gate="cell")) == [("spectral_norm_high", 1)]
    # Above the bound, then back under it: not the state of the run any more.
    assert rules_of(series("spectral_norm", [9, 9, 9, 1], gate="cell")) == []
    # Only two steps above: a window of 3 is not met, a window of 2 is.
    assert rules_of(series("spectral_norm", [1, 1, 9, 9], gate="cell")) == []
    assert rules_of(series("spectral_norm", [1, 1, 9, 9], gate="cell"), spectral_norm_high__window=2) == [
        ("spectral_norm_high", 2)
    ]
    # 4 times the bound: 1 for a tanh gate, 4 for a sigmoid gate.
    gru_candidate = series("spectral_norm", [5, 5, 5], gate="candidate", cell="gru")
    assert rules_of(gru_candidate) == [("spectral_norm_high", 0)]
    assert rules_of(series("spectral_norm", [5, 5, 5], gate="forget")) == []
    assert rules_of(series("spectral_norm", [17, 17, 17], gate="forget")) == [("spectral_norm_high", 0)]


def test_a_block_that_never_moved_is_frozen_not_stalled():
    assert rules_of(series("update_ratio", [0, 0, 0, 0], steps=[1, 2, 3, 4])) == []
    moved_then_stopped = series("update_ratio", [0.01, 0, 0, 0], steps=[1, 2, 3, 4])
    assert rules_of(moved_then_stopped) == [("update_ratio_stalled", 2)]
    # Biases are left out: they start at zero, so their ratio starts infinite.
    assert rules_of(series("update_ratio", [np.inf, 0.01, 0, 0, 0], part="bias")) == []


def test_update_ratio_high_ignores_infinite_ratios_of_blocks_that_were_zero():
    assert rules_of(series("update_ratio", [np.inf, 0.1, 0.1])) == []
    assert rules_of(series("update_ratio", [0.1, 2.0, 0.1])) == [("update_ratio_high", 1)]


def test_update_ratio_high_needs_the_layers_median_block_to_move_too():
    calm = [series("update_ratio", [0.02, 0.02, 0.02], gate=g) for g in ("input", "cell", "output")]
    # A block shrunk near zero by a penalty: large ratios, alone in its layer.
    lone = series("update_ratio", [0.02, 1.5, 0.8], gate="forget")
    assert rules_of(lone, *calm) == []
    jumping = [series("update_ratio", [0.02, 3.0, 0.5], gate=g) for g in ("input", "cell", "output")]
    assert rules_of(lone, *jumping) == [("update_ratio_high", 1)] * 4


def test_l2_growth_is_measured_from_the_first_logged_value():
    assert rules_of(series("l2", [1.0, 5.0, 10.5, 3.0])) == [("l2_exploding", 2)]
    assert rules_of(series("l2", [0.0, 1e-3, 1.0], part="bias")) == []
    assert rules_of(series("l2", [1.0, np.nan, np.nan])) == []


def test_forget_shut_reads_the_mean_activation_where_retention_is_not_logged():
    act = series("act_mean", [0.1, 0.1, 0.1], part="activation")
    assert rules_of(act) == [("forget_shut", 0)]
    assert rules_of(act, forget_shut__act_mean=0.05) == []
    # With retention logged, retention decides.
    assert rules_of(act, series("retention", [3.0, 3.0, 3.0], part="activation")) == []
    # A GRU keeps its state with the update gate.
    gru = series("act_mean", [0.05] * 3, part="activation", gate="update", cell="gru")
    assert rules_of(gru) == [("forget_shut", 0)]


def test_grad_vanishing_compares_a_gate_with_the_median_of_the_other_gates_of_its_part():
    norms = {"input": 1.0, "forget": 1e-5, "cell": 2.0, "output": 0.5}
    group = [series("grad_norm", [v] * 3, part="recurrent", gate=g) for g, v in norms.items()]
    got = findings.check_series(group)
    assert [(f["rule"], f["gate"]) for f in got] == [("grad_vanishing", "forget")]
    assert got[0]["value"] == pytest.approx(1e-5)
    assert rules_of(*group, grad_vanishing__ratio=1e-6) == []


def test_regularization_share_is_taken_at_the_steps_both_series_have():
    model = dict(layer="model", cell="model", part="total", gate="total")
    penalty = series("penalty", [9.0, 6.0, 6.0, 6.0], **model)
    loss = series("loss", [10.0, 10.0, 10.0], steps=[1, 2, 3], **model)
    assert rules_of(penalty, loss) == [("regularization_dominates", 1)]
    assert rules_of(penalty, loss, regularization_dominates__share=0.7) == []
    assert rules_of(penalty) == [], "without the loss there is no share"


@pytest.mark.parametrize(
    "item, message",
    [
        ("nope.max=1", "unknown threshold 'nope.max=1'"),
        ("update_ratio_high=1", "update_ratio_high.max, update_ratio_stalled.min"),
        ("update_ratio_high.max", "unknown threshold"),
        ("update_ratio_high.max=fast", "needs a number, got 'fast'"),
        ("update_ratio_high.max=-1", "finite number >= 0"),
        ("saturated.window=1.5", "whole number of steps"),
    ],
)
def test_bad_settings_are_named_and_list_the_valid_keys(item, message):
    with pytest.raises(ValueError, match=None) as e:
        findings.parse_settings([item])
    assert message in str(e.value)


def test_every_rule_is_documented_with_its_thresholds_and_source():
    readme = open(
        os.path.join(os.path.dirname(__file__), os.pardir, "docs", "findings.md"), encoding="utf-8"
    ).read()
    for rule in findings.RULES:
        assert rule.severity in findings.SEVERITIES
        assert rule.source and rule.fix and rule.what
        assert "`%s`" % rule.name in readme
        for name, (_default, meaning) in rule.thresholds.items():
            assert meaning
            assert "`%s.%s`" % (rule.name, name) in readme


# The report command.


def test_report_json_lists_the_findings_and_fails_on_error(trained, capsys):
    root, runs = trained
    args = ["--run", runs["nan"], "--format", "json", "--fail-on", "error"]
    status = cli.main(["report", os.fspath(root), *args])
    body = json.loads(capsys.readouterr().out)
    assert status == 1
    assert len(body["findings"]) == 12
    assert set(body["findings"][0]) == {
        "run",
        "layer",
        "part",
        "gate",
        "rule",
        "severity",
        "step",
        "value",
        "stat",
        "message",
    }


def test_report_exits_zero_without_fail_on_or_below_it(trained, capsys):
    root, runs = trained
    assert cli.main(["report", os.fspath(root), "--run", runs["nan"]]) == 0
    assert cli.main(["report", os.fspath(root), "--run", runs["gates"], "--fail-on", "error"]) == 0
    assert cli.main(["report", os.fspath(root), "--run", runs["gates"], "--fail-on", "warning"]) == 1
    assert cli.main(["report", os.fspath(root), "--run", runs["healthy"], "--fail-on", "info"]) == 0
    out = capsys.readouterr().out
    assert "run gates/train: 12 warnings" in out
    assert "WARNING shut/lstm_cell activation/forget  forget_shut at step 0" in out
    assert out.rstrip().endswith("no findings")


def test_report_markdown_is_a_table_with_a_count_line_per_run(trained, capsys):
    root, runs = trained
    args = ["--run", runs["stalled"], "--run", runs["over_regularized"], "--format", "markdown"]
    cli.main(["report", os.fspath(root), *args])
    lines = capsys.readouterr().out.splitlines()
    assert lines[:2] == ["over_regularized/train: 1 warning  ", "stalled/train: 8 warnings  "]
    assert lines[3].startswith("| severity | run | layer | block | rule | step | value | message |")
    assert len([line for line in lines if line.startswith("| warning |")]) == 9


def test_report_set_overrides_a_threshold(trained, capsys):
    root, runs = trained
    args = ["report", os.fspath(root), "--run", runs["expansive"], "--fail-on", "warning"]
    assert cli.main(args) == 1
    assert cli.main(args + ["--set", "spectral_norm_high.factor=50"]) == 0


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--set", "spectral.max=1"], "unknown threshold 'spectral.max=1': give rule.threshold=value"),
        (["--run", "nope"], "no tb-lstm-gates data for run(s) 'nope'; the runs are 'expansive/train'"),
    ],
)
def test_report_names_bad_arguments_and_exits_2(trained, capsys, extra, message):
    assert cli.main(["report", os.fspath(trained[0])] + extra) == cli.REPORT_ERROR
    assert message in capsys.readouterr().err


def test_report_on_a_directory_without_data_exits_2(tmp_path, capsys):
    assert cli.main(["report", os.fspath(tmp_path)]) == cli.REPORT_ERROR
    assert "no tb-lstm-gates data under" in capsys.readouterr().err
    assert cli.main(["report", os.fspath(tmp_path / "missing")]) == cli.REPORT_ERROR
    assert "no log directory at" in capsys.readouterr().err


def test_report_command_gates_a_ci_job_on_errors(trained):
    root, runs = trained
    command = [os.path.join(os.path.dirname(sys.executable), "tb-lstm-gates"), "report", os.fspath(root)]
    failing = subprocess.run(command + ["--fail-on", "error"], capture_output=True, text=True, timeout=300)
    assert failing.returncode == 1, failing.stderr
    assert "ERROR   lstm/lstm_cell recurrent/forget  nonfinite at step 3 (value 1)" in failing.stdout
    passing = subprocess.run(
        command + ["--run", runs["healthy"], "--fail-on", "info"], capture_output=True, text=True, timeout=300
    )
    assert (passing.returncode, passing.stdout.strip()) == (0, "no findings")


# The plugin's findings route, under both loaders.


def _python_provider(path):
    multiplexer = plugin_event_multiplexer.EventMultiplexer(tensor_size_guidance={metadata.PLUGIN_NAME: 0})
    multiplexer.AddRunsFromDirectory(path)
    multiplexer.Reload()
    return multiplexer_data_provider.MultiplexerDataProvider(multiplexer, path)


def _tag_count(provider):
    listed = provider.list_scalars(RequestContext(), experiment_id="", plugin_name=metadata.PLUGIN_NAME)
    return sum(len(tags) for tags in listed.values())


@pytest.fixture(scope="module", params=["python", "rust"])
def client(request, trained):
    path = os.fspath(trained[0])
    python = _python_provider(path)
    provider = python
    if request.param == "rust":
        ingester = server_ingester.SubprocessServerDataIngester(
            server_binary=server_ingester.get_server_binary(),
            logdir=path,
            reload_interval=0,
            channel_creds_type=grpc_util.ChannelCredsType.LOCAL,
            samples_per_plugin={metadata.PLUGIN_NAME: 0},
        )
        ingester.start()
        provider = ingester.data_provider
        deadline = time.time() + 60
        while _tag_count(provider) != _tag_count(python):
            assert time.time() < deadline, "RustBoard did not load the log directory"
            time.sleep(0.2)
    plugin = LSTMGatesLoader().load(base_plugin.TBContext(data_provider=provider))
    return werkzeug_test.Client(application.TensorBoardWSGI([plugin], data_provider=provider))


ROUTE = "/data/plugin/lstm_gates/findings"


def get_json(client, **params):
    response = client.get(ROUTE, query_string=params)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    return response.get_json()


def test_route_serves_the_findings_the_report_prints(client, found):
    body = get_json(client)
    assert body["findings"] == [dict(f, value=pytest.approx(f["value"], rel=1e-6)) for f in found]


def test_route_counts_every_selected_run_by_severity(client, trained):
    runs = trained[1]
    body = get_json(client, run=[runs["nan"], runs["healthy"]])
    assert body["counts"] == [
        {"run": runs["healthy"], "info": 0, "warning": 0, "error": 0},
        {"run": runs["nan"], "info": 0, "warning": 0, "error": 12},
    ]
    assert {f["run"] for f in body["findings"]} == {runs["nan"]}


def test_route_lists_the_rules_with_the_thresholds_in_force(client, trained):
    body = get_json(client, run=trained[1]["expansive"], set="spectral_norm_high.factor=50")
    assert body["findings"] == []
    rules = {r["rule"]: r for r in body["rules"]}
    assert list(rules) == [r.name for r in findings.RULES]
    assert rules["spectral_norm_high"]["thresholds"] == {"factor": 50.0, "window": 3}
    assert rules["nonfinite"] == {
        "rule": "nonfinite",
        "severity": "error",
        "stat": "nonfinite",
        "what": findings.RULES_BY_NAME["nonfinite"].what,
        "thresholds": {"max_count": 0},
    }


def test_route_answers_400_for_a_bad_threshold_and_404_for_an_unknown_run(client):
    bad = client.get(ROUTE, query_string={"set": "spectral.max=1"})
    assert bad.status_code == 400
    assert "spectral_norm_high.factor" in bad.get_data(as_text=True)
    assert client.get(ROUTE, query_string={"run": "nope"}).status_code == 404


def test_findings_impl_takes_plain_values(trained, found):
    provider = _python_provider(os.fspath(trained[0]))
    plugin = LSTMGatesLoader().load(base_plugin.TBContext(data_provider=provider))
    run = trained[1]["gates"]
    body = plugin.findings_impl(RequestContext(), "", runs=[run], settings={("saturated", "fraction"): 1.5})
    expected = [f["rule"] for f in of(found, run) if f["rule"] != "saturated"]
    assert [f["rule"] for f in body["findings"]] == expected


# spectral_norm, as every writer logs it (they all go through CellLogger).


def test_cell_logger_writes_spectral_norm_of_recurrent_matrices_only(tmp_path):
    rng = np.random.default_rng(0)
    units = 6
    lstm = {
        "kernel": rng.normal(size=(3, 4 * units)),
        "recurrent_kernel": rng.normal(size=(units, 4 * units)),
        "bias": rng.normal(size=4 * units),
    }
    conv = {
        "kernel": rng.normal(size=(3, 2, 4 * units)),
        "recurrent_kernel": rng.normal(size=(3, units, 4 * units)),
        "bias": rng.normal(size=4 * units),
    }
    writer = summary.GateSummaryWriter(tmp_path / "run")
    logger = summary.CellLogger(writer)
    logger.log_cell("lstm/lstm_cell", layouts.keras_lstm(), lstm, histograms=False)
    logger.log_cell("conv/conv_lstm_cell", layouts.keras_conv_lstm(), conv, histograms=False)
    writer.end_step(0)
    writer.close()
    records = tb_lstm_gates.load(tmp_path)
    got = {(r.layer, r.part, r.gate): r.value for r in records if r.stat == "spectral_norm"}
    recurrent = lstm["recurrent_kernel"]
    expected = {
        ("lstm/lstm_cell", "recurrent", gate): np.linalg.norm(recurrent[:, k * units : (k + 1) * units], 2)
        for k, gate in enumerate(metadata.LSTM_GATES)
    }
    assert set(got) == set(expected)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-3)


def test_findings_module_imports_neither_tensorflow_nor_keras():
    code = "import sys, tb_lstm_gates.findings; print(sorted({'tensorflow', 'keras'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_rules_read_only_the_statistics_they_declare(records, found):
    # The route reads only findings.STATS_READ: the rules must not need anything else.
    read = [r for r in records if r.stat in findings.STATS_READ]
    assert findings.check(read) == found
    assert {"mean", "std", "min", "max", "mean_abs", "max_abs"}.isdisjoint(findings.STATS_READ)
