// The Findings panel and the saturation scatter: which chart a finding
// selects and marks, and how the routes' answers become rows and dots.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Model } from "../src/model.js";
import { countRows, findingBlock, findingSelection, findingView, marks, summary } from "../src/views/findings.js";
import { axisLabels, saturationDots, saturationMessage, saturationParams, saturationSteps } from "../src/views/saturation.js";
import { GRU, LSTM, RUNS, stateWith } from "./fixtures.js";

const finding = (extra) => ({ run: "nan/train", layer: "lstm/lstm_cell", part: "recurrent", gate: "forget", rule: "nonfinite", severity: "error", step: 3, value: 1, stat: "nonfinite", message: "m", ...extra });
const NONFINITE = finding();
const SHUT = finding({ run: "gates/train", layer: "shut/lstm_cell", part: "activation", rule: "forget_shut", severity: "warning", stat: "retention" });
const SATURATED = finding({ part: "activation", gate: "input", rule: "saturated", severity: "warning", stat: "saturated" });
const REGULARIZED = finding({ run: "heavy/train", layer: "model", part: "total", gate: "total", rule: "regularization_dominates", severity: "warning", stat: "penalty" });

test("a weight finding selects the Weights view, its run, layer, statistic and part, and marks its block's chart only", () => {
  const state = stateWith({ view: "activations", hiddenRuns: ["nan/train", "other"], runFilter: "^other", hiddenParts: ["recurrent", "bias"], stat: "l2" });
  assert.equal(findingView(NONFINITE), "weights");
  assert.deepEqual(findingSelection(NONFINITE, state), {
    view: "weights",
    hiddenRuns: ["other"],
    runFilter: "",
    layer: "lstm/lstm_cell",
    stat: "nonfinite",
    hiddenParts: ["bias"],
    histRun: "nan/train",
  });
  // A filter the run passes is kept.
  assert.equal(findingSelection(NONFINITE, stateWith({ runFilter: "nan" })).runFilter, undefined);
  const chart = { layer: "lstm/lstm_cell", stat: "nonfinite", part: "recurrent", gate: "forget" };
  assert.ok(marks(NONFINITE, chart));
  assert.ok(!marks(NONFINITE, { ...chart, gate: "input" }));
  assert.ok(!marks(NONFINITE, { ...chart, part: "input" }));
  assert.ok(!marks(NONFINITE, { ...chart, stat: "l2" }));
  assert.ok(!marks(NONFINITE, { ...chart, layer: "other/lstm_cell" }));
  assert.ok(!marks(null, chart));
  assert.equal(findingBlock(NONFINITE), "recurrent · forget");
});

test("a probe finding selects the Activations view and its gate; saturated marks both saturation rows", () => {
  assert.deepEqual(findingSelection(SHUT, stateWith()), {
    view: "activations",
    hiddenRuns: [],
    layer: "shut/lstm_cell",
    actRun: "gates/train",
    actGate: "forget",
    satGate: "forget",
  });
  const cell = (stat, gate = "forget") => ({ layer: "shut/lstm_cell", stat, part: "activation", gate });
  assert.ok(marks(SHUT, cell("retention")));
  assert.ok(!marks(SHUT, cell("act_mean")));
  const at = (stat) => marks(SATURATED, { layer: "lstm/lstm_cell", stat, part: "activation", gate: "input" });
  assert.deepEqual(["act_mean", "saturated_low", "saturated_high", "retention"].filter(at), ["saturated_low", "saturated_high"]);
});

test("regularization_dominates keeps the layer and marks the model's penalty chart, not the loss", () => {
  assert.deepEqual(findingSelection(REGULARIZED, stateWith({ view: "activations", layer: "a/lstm_cell" })), { view: "weights", hiddenRuns: [] });
  const model = (stat) => ({ layer: "model", stat, part: "total", gate: "total" });
  assert.ok(marks(REGULARIZED, model("penalty")));
  assert.ok(!marks(REGULARIZED, model("loss")));
  assert.ok(!marks(REGULARIZED, { layer: "a/lstm_cell", stat: "penalty", part: "total", gate: "total" }));
  assert.equal(findingBlock(REGULARIZED), "total");
});

test("counts list runs with findings first, and the headline sums severities and the runs still being checked", () => {
  const counts = [
    { run: "a", info: 0, warning: 0, error: 0 },
    { run: "z", info: 1, warning: 0, error: 2 },
    { run: "b", info: 0, warning: 1, error: 0 },
  ];
  assert.deepEqual(countRows(counts), [["b", 0, 1, 0], ["z", 2, 0, 1], ["a", 0, 0, 0]]);
  assert.equal(summary({ counts, findings: [NONFINITE, NONFINITE, SHUT] }), "2 errors, 1 warning in 3 runs.");
  assert.equal(summary({ counts: counts.slice(0, 1), findings: [] }), "No findings in 1 run.");
  // While the route still checks runs, the headline says how many are left.
  assert.equal(summary({ counts, findings: [NONFINITE], pending: ["d"] }), "1 error in 3 runs. Checking 1 more run…");
  assert.equal(summary({ counts: [], findings: [], pending: ["a", "b"] }), "Checking 2 runs…");
  assert.equal(summary({ counts, findings: [], pending: [] }), "No findings in 3 runs.");
});

const ANSWER = {
  layer: "encoder/lstm_cell",
  gate: "forget",
  runs: [
    { run: "a", steps: [0, 2, 4], step: 4, units: [[0, 0.97], [0.12, 0.4], [null, null]] },
    { run: "b", steps: [1, 3], step: 3, units: [[1, 0]] },
  ],
};

test("saturation: one dot per unit and run with a valid probe step, in the run's colour", () => {
  const dots = saturationDots(ANSWER, (run) => (run === "a" ? "#111111" : "#222222"));
  assert.deepEqual(dots, [
    { run: "a", unit: 0, x: 0, y: 0.97, color: "#111111" },
    { run: "a", unit: 1, x: 0.12, y: 0.4, color: "#111111" },
    { run: "b", unit: 0, x: 1, y: 0, color: "#222222" },
  ]);
  assert.deepEqual(saturationSteps(ANSWER), [0, 1, 2, 3, 4]);
  assert.equal(saturationMessage(ANSWER), "forget gate, one dot per unit: a at step 4, b at step 3.");
  assert.equal(saturationMessage(ANSWER, "batch"), "forget gate, one dot per unit: a at batch 4, b at batch 3.");
  assert.match(axisLabels("forget").xLabel, /below 0\.1/);
  assert.match(axisLabels("cell").xLabel, /below -0\.9/);
  // Logs that name each gate's activation: its bounds, or the slope rule for one without a bounded range.
  assert.match(axisLabels("cell", "hard_sigmoid").xLabel, /below 0\.1/);
  assert.match(axisLabels("forget", "softsign").yLabel, /above 0\.9/);
  assert.match(axisLabels("cell", "relu").xLabel, /"dead" \(relu: slope below 0\.1\)/);
  assert.match(axisLabels("cell", "relu").yLabel, /flat high \(slope below 0\.1\)/);
});

test("saturation: the target follows the view, the gate and the runs that log it; the step is sent only when chosen", () => {
  const model = new Model(RUNS);
  assert.equal(model.saturationTarget(stateWith()), null, "the Weights view has no scatter");
  const t = model.saturationTarget(stateWith({ view: "activations", satGate: "output" }));
  assert.deepEqual(t, { runs: ["alpha/train"], layer: LSTM.layer, gates: LSTM.gates, gate: "output", unit: "batch" });
  assert.equal(model.saturationTarget(stateWith({ view: "activations", satGate: "gone" })).gate, "input");
  assert.equal(model.saturationTarget(stateWith({ view: "activations", layer: GRU.layer })), null);
  assert.equal(model.saturationTarget(stateWith({ view: "activations", hiddenRuns: ["alpha/train"] })), null);
  assert.deepEqual(saturationParams(t, -1), [["layer", LSTM.layer], ["gate", "output"], ["run", "alpha/train"]]);
  assert.deepEqual(saturationParams(t, 7).at(-1), ["step", "7"]);
});
