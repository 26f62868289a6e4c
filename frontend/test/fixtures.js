// A `runs` route answer shaped like the e2e logs: a GRU that sorts before the
// LSTM by name, one run with a probe (its `activation` part and probe
// statistics), one without histograms, one with penalties only.
import { readFileSync } from "node:fs";
import { useContract } from "../src/contract.js";
import { DEFAULTS } from "../src/state.js";

// The contract the `runs` route sends (tb_lstm_gates.logs.metadata.contract()), as
// the tab takes it; tests/test_frontend_units.py checks this copy is current.
export const CONTRACT = JSON.parse(readFileSync(new URL("./contract.json", import.meta.url), "utf8"));
useContract(CONTRACT);

export const LSTM = {
  layer: "encoder/lstm_cell",
  cell: "lstm",
  parts: ["input", "recurrent", "bias", "activation"],
  gates: ["input", "forget", "cell", "output"],
  stats: ["l2", "mean", "act_mean", "saturated", "saturated_low", "saturated_high", "retention", "grad_norm"],
  histograms: true,
  activation_maps: true,
  unit_saturation: true,
  penalties: false,
  step_unit: "batch",
};
export const GRU = {
  layer: "decoder/gru_cell",
  cell: "gru",
  parts: ["input", "recurrent", "input_bias", "recurrent_bias"],
  gates: ["update", "reset", "candidate"],
  stats: ["l2", "mean"],
  histograms: true,
  activation_maps: false,
  penalties: false,
  step_unit: "batch",
};
const plain = (info) => ({
  ...info,
  parts: info.parts.filter((p) => p !== "activation"),
  stats: ["l2", "mean"],
  activation_maps: false,
  unit_saturation: false,
});

export const RUNS = [
  // beta logged once an epoch, alpha every few batches.
  {
    run: "beta/train",
    layers: [{ ...GRU, step_unit: "epoch" }, { ...plain(LSTM), histograms: false, step_unit: "epoch" }],
    regularization: false,
    step_unit: "epoch",
  },
  { run: "alpha/train", layers: [GRU, LSTM], regularization: false, step_unit: "batch" },
  {
    run: "penalized",
    layers: [{ layer: "lstm/lstm_cell", cell: "lstm", parts: ["recurrent"], gates: ["forget"], stats: [], histograms: false, activation_maps: false, penalties: true, step_unit: "epoch" }],
    regularization: true,
    step_unit: "epoch",
  },
];

/** The tab's default state (state.js) with `changes`. */
export const stateWith = (changes = {}) => ({ ...structuredClone(DEFAULTS), ...changes });
