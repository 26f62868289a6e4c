import assert from "node:assert/strict";
import { test } from "node:test";
import { saturationBounds, statDescription, statLogScale, statName } from "../src/contract.js";
import { Model, capitalized, layerOrder, mergeLayers, runListSummary, runMatcher, weightOrigins, weightParts, withRunsShown } from "../src/model.js";
import { CONTRACT, GRU, LSTM, RUNS, stateWith } from "./fixtures.js";

const model = new Model(RUNS);

test("runs are listed by name and layers merged across runs, sorted by name", () => {
  assert.deepEqual(model.runNames, ["alpha/train", "beta/train", "penalized"]);
  assert.deepEqual(
    model.layers.map((l) => l.layer),
    ["decoder/gru_cell", "encoder/lstm_cell", "lstm/lstm_cell"],
  );
  const lstm = model.layers[1];
  assert.deepEqual(lstm.runs, ["alpha/train", "beta/train"]);
  assert.deepEqual(lstm.histogramRuns, ["alpha/train"]);
  assert.deepEqual(lstm.probeRuns, ["alpha/train"]);
  assert.deepEqual(lstm.mapRuns, ["alpha/train"]);
  // The union keeps the canonical order of each run's lists.
  assert.deepEqual(lstm.parts, ["input", "recurrent", "bias", "activation"]);
  assert.deepEqual(weightParts(lstm), ["input", "recurrent", "bias"]);
});

test("the tab opens on the first LSTM layer, not on a GRU that sorts first by name", () => {
  assert.equal(model.currentLayer(stateWith()).layer, LSTM.layer);
  assert.equal(model.currentLayer(stateWith({ layer: GRU.layer })).layer, GRU.layer);
  assert.equal(model.currentLayer(stateWith({ layer: "gone/lstm_cell" })).layer, LSTM.layer);
  const grusOnly = new Model([{ run: "r", layers: [GRU, { ...GRU, layer: "a/gru_cell" }], regularization: false }]);
  assert.equal(grusOnly.currentLayer(stateWith()).layer, "a/gru_cell");
  assert.equal(new Model([]).currentLayer(stateWith()), null);
  assert.ok(new Model([{ run: "r", layers: [], regularization: false }]).empty);
  assert.ok(!model.empty);
});

test("the Weights view's statistics leave out the probe's activation statistics", () => {
  const lstm = model.currentLayer(stateWith());
  assert.deepEqual(model.weightStats(lstm), ["l2", "mean", "grad_norm"]);
  assert.equal(model.currentStat(lstm, stateWith({ stat: "mean" })), "mean");
  assert.equal(model.currentStat(lstm, stateWith({ stat: "act_mean" })), "l2");
  const penaltiesOnly = model.currentLayer(stateWith({ layer: "lstm/lstm_cell" }));
  assert.equal(model.currentStat(penaltiesOnly, stateWith()), undefined);
  assert.deepEqual(model.runsWithStat(lstm, "grad_norm", ["alpha/train", "beta/train"]), ["alpha/train"]);
  assert.deepEqual(model.shownParts(lstm, stateWith({ hiddenParts: ["bias"] })), ["input", "recurrent"]);
});

test("the run filter is a case-insensitive regex, and a bad regex matches as text", () => {
  assert.deepEqual(model.listedRuns(stateWith({ runFilter: "^B" })), ["beta/train"]);
  assert.deepEqual(model.visibleRuns(stateWith({ runFilter: "train", hiddenRuns: ["alpha/train"] })), ["beta/train"]);
  assert.ok(runMatcher("(a")("X(A"));
  assert.ok(!runMatcher("(a")("xa"));
  assert.deepEqual(model.regularizedRuns(model.runNames), ["penalized"]);
  assert.ok(model.anyRegularization);
});

test("the histogram target falls back to a run, part and gate that exist", () => {
  assert.equal(model.histogramTarget(stateWith()), null, "closed");
  const t = model.histogramTarget(stateWith({ histOpen: true, histRun: "beta/train", histPart: "activation", histGate: "reset" }));
  assert.deepEqual(t, {
    runs: ["alpha/train"],
    run: "alpha/train",
    layer: LSTM.layer,
    parts: ["input", "recurrent", "bias"],
    gates: LSTM.gates,
    part: "input",
    gate: "input",
    unit: "batch",
  });
  assert.equal(model.histogramTarget(stateWith({ histOpen: true, histPart: "recurrent", histGate: "forget" })).gate, "forget");
  assert.equal(model.histogramTarget(stateWith({ histOpen: true, view: "activations" })), null);
  assert.equal(model.histogramTarget(stateWith({ histOpen: true, hiddenRuns: ["alpha/train"] })), null);
  assert.ok(model.hasHistograms(model.layers[0], stateWith({ hiddenRuns: ["alpha/train"] })));
  assert.ok(!model.hasHistograms(model.layers[1], stateWith({ hiddenRuns: ["alpha/train"] })));
});

test("the activation map needs the Activations view and a visible run with maps", () => {
  assert.equal(model.mapTarget(stateWith()), null);
  const t = model.mapTarget(stateWith({ view: "activations", actGate: "cell" }));
  assert.deepEqual(t, { runs: ["alpha/train"], run: "alpha/train", layer: LSTM.layer, gates: LSTM.gates, gate: "cell", unit: "batch" });
  assert.equal(model.mapTarget(stateWith({ view: "activations", layer: GRU.layer })), null);
  const lstm = model.currentLayer(stateWith());
  assert.deepEqual(model.activationRows(lstm), ["act_mean", "saturated_low", "saturated_high", "retention"]);
  assert.deepEqual(model.probedRuns(lstm, stateWith()), ["alpha/train"]);
});

test("runs of different models list the first run's layers in its order, then the next run's, not interleaved by index", () => {
  const layer = (name, index) => ({ ...LSTM, layer: name, index });
  const encoderDecoder = { run: "a_seq2seq", layers: [layer("decoder/lstm_cell", 1), layer("encoder/lstm_cell", 0)], regularization: false };
  const tagger = { run: "b_tagger", layers: [layer("tagger/lstm_cell", 0), layer("char/lstm_cell", 1)], regularization: false };
  const names = (runs) => new Model(runs).layers.map((l) => l.layer);
  assert.deepEqual(names([tagger, encoderDecoder]), ["encoder/lstm_cell", "decoder/lstm_cell", "tagger/lstm_cell", "char/lstm_cell"]);
  // A run of the same model with one more layer puts it where its own order says, not last.
  const deeper = { run: "c_seq2seq", layers: [layer("encoder/lstm_cell", 0), layer("attention/lstm_cell", 1), layer("decoder/lstm_cell", 2)] };
  assert.deepEqual(layerOrder([encoderDecoder, deeper]), ["encoder/lstm_cell", "attention/lstm_cell", "decoder/lstm_cell"]);
  assert.deepEqual(layerOrder([deeper, tagger, encoderDecoder]), ["encoder/lstm_cell", "attention/lstm_cell", "decoder/lstm_cell", "tagger/lstm_cell", "char/lstm_cell"]);
  // A run's new first layer goes before the run's next layer already listed.
  const withEmbedding = { run: "d", layers: [layer("embed/lstm_cell", 0), layer("encoder/lstm_cell", 1)] };
  assert.deepEqual(layerOrder([encoderDecoder, withEmbedding]), ["embed/lstm_cell", "encoder/lstm_cell", "decoder/lstm_cell"]);
});

test("merging an empty run list gives no layer", () => {
  assert.deepEqual(mergeLayers([]), []);
});

test("the step unit is the runs' own when they agree, else plain step", () => {
  const lstm = model.currentLayer(stateWith());
  assert.equal(model.stepUnit(["alpha/train"], lstm), "batch");
  assert.equal(model.stepUnit(["beta/train"], lstm), "epoch");
  assert.equal(model.stepUnit(["alpha/train", "beta/train"], lstm), "step", "batches and epochs do not share an axis name");
  assert.equal(model.stepUnit(["penalized"]), "epoch", "runs without the layer: the run's own unit");
  assert.equal(new Model([{ run: "old", layers: [GRU], regularization: false }]).stepUnit(["old"]), "step", "older answers say nothing");
});

test("statistic names, descriptions and scales come from the server's contract", () => {
  assert.equal(statName("update_ratio"), CONTRACT.stats.update_ratio.name);
  assert.match(statDescription("update_ratio"), /healthy/);
  assert.ok(statLogScale("update_ratio") && !statLogScale("l2"));
  assert.equal(statName("made_up"), "made_up", "a statistic the contract does not know keeps its name");
  assert.deepEqual(saturationBounds("cell"), [-0.9, 0.9]);
  assert.deepEqual(saturationBounds("forget"), [0.1, 0.9]);
  assert.equal(capitalized("global step"), "Global step");
});

test("showing or hiding the listed runs changes only those runs", () => {
  assert.deepEqual(withRunsShown(["a", "b"], ["b", "c"], true), ["a"]);
  assert.deepEqual(withRunsShown(["a"], ["b", "c"], false).sort(), ["a", "b", "c"]);
  assert.deepEqual(withRunsShown([], [], false), []);
});

test("the run list header counts shown runs among the listed, and says when the filter leaves some out", () => {
  const runs = Array.from({ length: 500 }, (_, i) => `run_${String(i).padStart(3, "0")}`);
  const model = new Model(runs.map((run) => ({ run, layers: [] })));
  const listed = model.listedRuns(stateWith({ runFilter: "_0[0-4]" }));
  assert.equal(listed.length, 50);
  assert.deepEqual(runListSummary(500, listed, new Set(["run_001", "run_499"])), { text: "49 shown (50 of 500 listed)", all: false, some: true });
  assert.deepEqual(runListSummary(500, runs, new Set()), { text: "500 shown", all: true, some: false });
  assert.deepEqual(runListSummary(500, listed, new Set(listed)), { text: "0 shown (50 of 500 listed)", all: false, some: false });
  // Colours follow a run's place among all runs, whatever the filter lets through.
  assert.equal(model.runIndex.get("run_042"), 42);
});

test("a layer's header names where its weights come from, merged across runs; plain parameters say nothing", () => {
  const dropped = { ...LSTM, origins: { recurrent: "weight drop: weight_hh_l0_raw" } };
  const merged = mergeLayers([
    { run: "a", layers: [dropped] },
    { run: "b", layers: [{ ...LSTM, origins: { recurrent: "parametrized: orthogonal" } }] },
    { run: "c", layers: [dropped] },
  ]);
  assert.equal(weightOrigins(merged[0]), "recurrent: weight drop: weight_hh_l0_raw; recurrent: parametrized: orthogonal");
  assert.equal(weightOrigins(mergeLayers([{ run: "a", layers: [LSTM] }])[0]), "");
});
