// The Text view's unit orders and colours, the Overview's rows and outlines,
// and the layer order of the `runs` route.
import assert from "node:assert/strict";
import { test } from "node:test";
import { tokenLabel } from "../src/charts/activation_map.js";
import { sparkRange } from "../src/charts/sparkline.js";
import { ramp, VIRIDIS } from "../src/colors.js";
import { Model } from "../src/model.js";
import { overviewStat, rowPart, worstSeverity } from "../src/views/overview.js";
import { inSpan, sequenceTokens, shownUnit, sortedUnits, tokenText, unitScores, valueColor } from "../src/views/text.js";
import { GRU, LSTM, stateWith } from "./fixtures.js";

// Two sequences of 4 steps, 3 units: unit 0 is high only on steps 1-2 of
// sequence 0, unit 1 saturates but for one step, unit 2 varies most; step 3 of
// sequence 1 is masked.
const DATA = {
  gate: "forget",
  units: 3,
  time_steps: 4,
  sequences: 2,
  tokens: [["a", " ", "\n", ""], ["b", "c", "d", "e"]],
  values: [
    [[0.2, 0.95, 0.1], [0.9, 0.97, 0.9], [0.85, 0.99, 0.1], [0.2, 0.96, 0.9]],
    [[0.25, 0.02, 0.1], [0.2, 0.98, 0.9], [0.3, 0.99, 0.1], [null, null, null]],
  ],
};

test("text: units sort by saturation, by variance over time and by their match with a span", () => {
  assert.deepEqual(sortedUnits(unitScores(DATA, "saturation")), [1, 0, 2]);
  assert.deepEqual(sortedUnits(unitScores(DATA, "variance")), [2, 1, 0]);
  const span = { sequence: 0, from: 2, to: 1 };
  assert.deepEqual(sortedUnits(unitScores(DATA, "span", span)).slice(0, 1), [0]);
  assert.ok(unitScores(DATA, "span", span)[0] > 0.9);
  assert.deepEqual(unitScores(DATA, "span_low", span), unitScores(DATA, "span", span).map((x) => -x));
  assert.deepEqual(sortedUnits(unitScores(DATA, "unit")), [0, 1, 2]);
  assert.deepEqual(unitScores(DATA, "span", null), [0, 0, 0]);
  assert.ok(inSpan(span, 0, 1) && inSpan(span, 0, 2) && !inSpan(span, 0, 3) && !inSpan(span, 1, 1));
});

test("text: saturation follows the logged per-unit fractions where the probe logged them", () => {
  // A relu gate: its zeros are "dead" (slope rule), which no bound on the values shown tells.
  const relu = { ...DATA, gate: "cell", unit_saturation: [[0.5, 0], [0, 0.1], [null, null]] };
  assert.deepEqual(unitScores(relu, "saturation"), [0.5, 0.1, -Infinity]);
  assert.deepEqual(sortedUnits(unitScores(relu, "saturation")), [0, 1, 2]);
  // Other orders still read the values shown.
  assert.deepEqual(unitScores(relu, "variance"), unitScores(DATA, "variance"));
});

test("text: the chosen unit is shown if it exists, else the first of the order", () => {
  assert.equal(shownUnit([2, 0, 1], -1, 3), 2);
  assert.equal(shownUnit([2, 0, 1], 1, 3), 1);
  assert.equal(shownUnit([2, 0, 1], 7, 3), 2);
});

test("text: tokens show whitespace and padding; runs without tokens show step numbers", () => {
  assert.deepEqual(DATA.tokens[0].map(tokenText), ["a", "\u00a0", "↵", "·"]);
  assert.deepEqual(sequenceTokens(DATA, 1), ["b", "c", "d", "e"]);
  assert.deepEqual(sequenceTokens({ ...DATA, tokens: null }, 0), [null, null, null, null]);
  assert.deepEqual(["a", " ", "\n", "", "longword", undefined].map(tokenLabel), ["a", "␣", "↵", "·", "longw…", ""]);
});

test("text: gates colour on their fixed range, states as tanh on -1..1, masked steps get none", () => {
  assert.equal(valueColor(0.25, "forget", false), ramp(0.25, VIRIDIS));
  assert.equal(valueColor(null, "forget", false), null);
  assert.equal(valueColor(0, "c_t", false), valueColor(0, "cell", false));
  assert.notEqual(valueColor(3, "c_t", false), valueColor(1, "c_t", false));
});

test("model: layers follow the model's order where the logs give it, and the tab opens on the first", () => {
  const ordered = new Model([
    { run: "r", layers: [{ ...LSTM, index: 1 }, { ...GRU, index: 0 }], regularization: false },
    { run: "s", layers: [{ ...LSTM, layer: "z/lstm_cell", index: 2 }], regularization: false },
  ]);
  assert.deepEqual(ordered.layers.map((l) => l.layer), [GRU.layer, LSTM.layer, "z/lstm_cell"]);
  assert.equal(ordered.currentLayer(stateWith()).layer, GRU.layer);
  const old = new Model([{ run: "r", layers: [LSTM, GRU], regularization: false }]);
  assert.equal(old.currentLayer(stateWith()).layer, LSTM.layer);
});

test("model: the Text view offers the gates and the state of runs with probe sequences", () => {
  const model = new Model([{ run: "r", layers: [{ ...LSTM, probe_sequences: true }], regularization: false }]);
  const t = model.textTarget(stateWith({ view: "text" }));
  assert.deepEqual(t.gates, ["input", "forget", "cell", "output", "c_t"]);
  assert.equal(t.gate, "forget");
  assert.equal(model.textTarget(stateWith({ view: "weights" })), null);
  const old = new Model([{ run: "r", layers: [LSTM], regularization: false }]);
  assert.deepEqual(old.textTarget(stateWith({ view: "text", textGate: "c_t" })).gates, LSTM.gates);
});

test("overview: rows in model order with their parts, outlines in the worst severity", () => {
  const model = new Model([{ run: "r", layers: [{ ...LSTM, index: 1 }, { ...GRU, index: 0 }], regularization: false }]);
  assert.deepEqual(model.overviewRows("l2", ["r"]).map((r) => r.layer), [GRU.layer, LSTM.layer]);
  assert.deepEqual(model.overviewRows("act_mean", ["r"]).map((r) => [r.layer, r.parts]), [[LSTM.layer, ["activation"]]]);
  assert.deepEqual(model.overviewRows("l2", ["other"]), []);
  assert.equal(overviewStat(model.overviewStats(["r"]), "nope"), "l2");
  assert.equal(rowPart({ parts: ["input", "recurrent"] }, ""), "recurrent");
  assert.equal(rowPart({ parts: ["input", "bias"] }, "bias"), "bias");
  const findings = [
    { run: "r", layer: LSTM.layer, gate: "forget", severity: "warning" },
    { run: "r", layer: LSTM.layer, gate: "forget", severity: "error" },
    { run: "hidden", layer: LSTM.layer, gate: "input", severity: "error" },
  ];
  assert.equal(worstSeverity(findings, LSTM.layer, "forget", ["r"]), "error");
  assert.equal(worstSeverity(findings, LSTM.layer, "input", ["r"]), null);
});

test("sparkline: one range over the runs' finite values, log10 on a log scale", () => {
  assert.deepEqual(sparkRange([{ values: [1, null, 3] }, { values: [2, Infinity] }]), [1, 3]);
  assert.deepEqual(sparkRange([{ values: [0, 10, 100] }], true), [1, 2]);
  assert.equal(sparkRange([{ values: [null] }]), null);
  assert.deepEqual(sparkRange([{ values: [2, 2] }]), [1.8, 2.2]);
});
