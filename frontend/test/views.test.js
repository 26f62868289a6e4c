// The data shaping of each view: what it asks the routes for and how it
// turns the answers into charts and messages.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Model } from "../src/model.js";
import { hasMaskedSteps, mapMessage } from "../src/views/activation_map.js";
import { stepParams } from "../src/views/step_slider.js";
import { activationRequests, activationSeries } from "../src/views/activations.js";
import { cellSeries } from "../src/views/grid.js";
import { histogramMessage } from "../src/views/histograms.js";
import { penaltyPanels, penaltyTitle } from "../src/views/regularization.js";
import { emptyGridMessage, labelledSeries, withWallTimes } from "../src/views/weights.js";
import { LSTM, RUNS } from "./fixtures.js";

const line = (run, part, gate, extra = {}) => ({ run, part, gate, steps: [0, 1], wall_times: [1, 2], values: [1, 2], ...extra });

test("weights: every series carries its layer and statistic, and each chart gets its block's runs", () => {
  const answer = { layer: "lstm/lstm_cell", stat: "l2", series: [line("a", "input", "forget"), line("b", "input", "forget"), line("a", "bias", "forget")] };
  const series = labelledSeries(answer);
  assert.deepEqual(
    series.map((s) => [s.layer, s.stat, s.run]),
    [["lstm/lstm_cell", "l2", "a"], ["lstm/lstm_cell", "l2", "b"], ["lstm/lstm_cell", "l2", "a"]],
  );
  assert.deepEqual(cellSeries(series, "part", "input", "forget").map((s) => s.run), ["a", "b"]);
  assert.deepEqual(cellSeries(series, "part", "input", "cell"), []);
  assert.equal(emptyGridMessage([], LSTM), "No run selected.");
  assert.equal(emptyGridMessage(["a"], LSTM), "No data for the selected runs.");
  assert.match(emptyGridMessage(["a"], { ...LSTM, stats: [] }), /only penalties/);
});

test("regularization: the layer's shown gates, then each layer's total, then the model's losses", () => {
  const series = [
    line("r", "total", "total", { layer: "model", stat: "loss" }),
    line("r", "total", "total", { layer: "model", stat: "penalty" }),
    line("r", "recurrent", "forget", { layer: "a/lstm_cell", stat: "penalty" }),
    line("s", "recurrent", "forget", { layer: "a/lstm_cell", stat: "penalty" }),
    line("r", "input", "input", { layer: "a/lstm_cell", stat: "penalty" }),
    line("r", "total", "total", { layer: "a/lstm_cell", stat: "penalty" }),
    line("r", "input", "input", { layer: "b/gru_cell", stat: "penalty" }),
    line("r", "total", "total", { layer: "b/gru_cell", stat: "penalty" }),
  ];
  const panels = penaltyPanels(series, "a/lstm_cell", ["input", "recurrent", "bias"]);
  assert.deepEqual(
    panels.map((p) => [p.title, p.series.length]),
    [
      ["recurrent · forget penalty", 2],
      ["input · input penalty", 1],
      ["a/lstm_cell: total penalty", 1],
      ["b/gru_cell: total penalty", 1],
      ["regularization loss (model)", 1],
      ["training loss", 1],
    ],
  );
  // A part toggled off in the sidebar leaves the section too.
  const withoutInput = penaltyPanels(series, "a/lstm_cell", ["recurrent", "bias"]).map((p) => p.title);
  assert.ok(!withoutInput.includes("input · input penalty") && withoutInput.includes("recurrent · forget penalty"));
  assert.equal(penaltyPanels(series, null, []).length, 4);
  assert.equal(penaltyTitle({ layer: "model", stat: "loss" }), "training loss");
});

test("histograms: a 404 means the run logged none, an empty answer that none is written yet", () => {
  assert.match(histogramMessage({ error: { status: 404, message: "x" } }), /histogram_freq=0/);
  assert.equal(histogramMessage({ error: { status: 500, message: "histograms: 500 boom" } }), "Could not load histograms: histograms: 500 boom");
  assert.equal(histogramMessage({ data: { histograms: [] } }), "No histograms for this block yet.");
  assert.equal(histogramMessage({ data: { histograms: [{ step: 0, buckets: [] }] } }), "");
});

test("activations: one request per statistic, for the runs that have it, and only the probe's series kept", () => {
  const model = new Model(RUNS);
  const layer = model.layers.find((l) => l.layer === LSTM.layer);
  assert.deepEqual(activationRequests(model, layer, ["alpha/train", "beta/train"]), [
    ["act_mean", ["alpha/train"]],
    ["saturated_low", ["alpha/train"]],
    ["saturated_high", ["alpha/train"]],
    ["retention", ["alpha/train"]],
  ]);
  assert.deepEqual(activationRequests(model, layer, ["beta/train"]), []);
  const answers = [
    { layer: LSTM.layer, stat: "act_mean", series: [line("alpha/train", "activation", "input"), line("alpha/train", "total", "total")] },
    { layer: LSTM.layer, stat: "retention", series: [line("alpha/train", "activation", "forget")] },
  ];
  const data = activationSeries(LSTM.layer, answers);
  assert.equal(data.layer, LSTM.layer);
  assert.deepEqual(data.series.map((s) => [s.stat, s.gate]), [["act_mean", "input"], ["retention", "forget"]]);
});

test("activation map: a step is asked for only when the route listed it", () => {
  const t = { run: "alpha/train", layer: LSTM.layer, gate: "forget" };
  const base = [["run", "alpha/train"], ["layer", LSTM.layer], ["gate", "forget"]];
  assert.deepEqual(stepParams(t, undefined, 2), base);
  assert.deepEqual(stepParams(t, [0, 2, 4], 3), base);
  assert.deepEqual(stepParams(t, [0, 2, 4], 2), [...base, ["step", "2"]]);
  assert.deepEqual(stepParams(t, [0, 2, 4], -1), base);
});

test("activation map: the hatching is explained only when a time step is masked", () => {
  const map = (values) => ({ gate: "forget", step: 3, steps: [3], values });
  assert.ok(!hasMaskedSteps(map([[0.1, 0.2], [0.3, 0.4]])));
  assert.ok(hasMaskedSteps(map([[0.1, 0.2], [null, null]])));
  assert.equal(mapMessage({ data: map([[0.1, 0.2]]) }), "forget gate on the probe's first sequence at step 3.");
  assert.equal(mapMessage({ data: map([[0.1, 0.2], [null, null]]) }), "forget gate on the probe's first sequence at step 3; hatched time steps are masked.");
  assert.equal(mapMessage({ error: { status: 404 } }), "No activation map for this gate in this run.");
  assert.equal(mapMessage({ data: map([[0.1, 0.2]]) }, "global step"), "forget gate on the probe's first sequence at global step 3.");
});

test("weights: a download gets the wall times the charts were loaded without, at each shown step", () => {
  const shown = [
    { run: "a", part: "input", gate: "forget", steps: [0, 2], values: [1, 3] },
    { run: "b", part: "input", gate: "forget", steps: [0], values: [1] },
  ];
  const answer = [line("a", "input", "forget", { steps: [0, 1, 2], wall_times: [10, 11, 12], values: [1, 2, 3] }), line("a", "bias", "forget")];
  const merged = withWallTimes(shown, answer);
  assert.deepEqual(merged[0].wall_times, [10, 12]);
  // A series the second answer lacks (its run gone meanwhile) stays as shown.
  assert.equal(merged[1], shown[1]);
});
