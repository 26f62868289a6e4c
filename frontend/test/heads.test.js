import assert from "node:assert/strict";
import { test } from "node:test";
import { headSiblings, mergeLayers } from "../src/model.js";
import { LSTM } from "./fixtures.js";

// A model with an LSTM, then an xLSTM stack: an mLSTM block (its units are its heads) and an sLSTM
// block of two heads, each logged as a layer, in model order (`index`) as the logger writes them.
const layer = (name, index, heads, cell = "lstm") => ({ ...LSTM, layer: name, cell, index, heads });
const RUN = {
  run: "xlstm",
  layers: [
    layer("stack/blocks/1/xlstm/head1", 3, { count: 2, head: 1 }),
    layer("lstm/l0", 0, null),
    layer("stack/blocks/0/xlstm", 1, { count: 2, head: null }, "mlstm"),
    layer("stack/blocks/1/xlstm/head0", 2, { count: 2, head: 0 }),
  ],
};

test("xLSTM blocks keep the model's order beside the LSTM of the same model", () => {
  assert.deepEqual(
    mergeLayers([RUN]).map((l) => l.layer),
    ["lstm/l0", "stack/blocks/0/xlstm", "stack/blocks/1/xlstm/head0", "stack/blocks/1/xlstm/head1"],
  );
});

test("a head's siblings are the heads of its layer, in head order; other layers have none", () => {
  const layers = mergeLayers([RUN]);
  const byName = Object.fromEntries(layers.map((l) => [l.layer, l]));
  const heads = [
    { head: 0, layer: "stack/blocks/1/xlstm/head0" },
    { head: 1, layer: "stack/blocks/1/xlstm/head1" },
  ];
  assert.deepEqual(headSiblings(layers, byName["stack/blocks/1/xlstm/head1"]), heads);
  assert.deepEqual(headSiblings(layers, byName["stack/blocks/1/xlstm/head0"]), heads);
  assert.deepEqual(headSiblings(layers, byName["stack/blocks/0/xlstm"]), []);
  assert.deepEqual(headSiblings(layers, byName["lstm/l0"]), []);
  assert.deepEqual(headSiblings(layers, null), []);
});
