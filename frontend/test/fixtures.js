// A `runs` route answer shaped like the e2e logs: a GRU that sorts before the
// LSTM by name, one run with a probe (its `activation` part and probe
// statistics), one without histograms, one with penalties only.
import { DEFAULTS } from "../src/state.js";

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
};
const plain = (info) => ({
  ...info,
  parts: info.parts.filter((p) => p !== "activation"),
  stats: ["l2", "mean"],
  activation_maps: false,
  unit_saturation: false,
});

export const RUNS = [
  { run: "beta/train", layers: [GRU, { ...plain(LSTM), histograms: false }], regularization: false },
  { run: "alpha/train", layers: [GRU, LSTM], regularization: false },
  {
    run: "penalized",
    layers: [{ layer: "lstm/lstm_cell", cell: "lstm", parts: ["recurrent"], gates: ["forget"], stats: [], histograms: false, activation_maps: false, penalties: true }],
    regularization: true,
  },
];

/** The tab's default state (state.js) with `changes`. */
export const stateWith = (changes = {}) => ({ ...structuredClone(DEFAULTS), ...changes });
