// The data contract's values (tb_lstm_gates.logs.metadata.contract()), as the
// `runs` route sends them: statistic names, descriptions and scales, the
// pseudo names, the tanh gates and saturation bounds. They live in
// metadata.py only; the tab reads them here once the first answer came.
export const contract = {
  stats: {},
  weight_stats: [],
  activation_stats: [],
  activation_rows: [],
  activation: "",
  total: "",
  model_layer: "",
  tanh_gates: [],
  saturation: { sigmoid: [], tanh: [] },
  saturation_bounds: {},
  saturation_slope: 0.1,
  step_units: [],
  states: {},
};

/** Takes the contract of a `runs` answer. */
export function useContract(values) {
  Object.assign(contract, values);
}

/** A statistic's display name, or its own name when the contract does not know it. */
export const statName = (stat) => contract.stats[stat]?.name || stat;

/** One line on what `stat` measures and what a healthy value looks like ("" if unknown). */
export const statDescription = (stat) => contract.stats[stat]?.description || "";

/** Whether `stat`'s charts open on a log scale. */
export const statLogScale = (stat) => contract.stats[stat]?.scale === "log";

/**
 * The saturation bounds [low, high] of `gate`'s activation: those of `fn` (its
 * activation function's name) when the logs name one, null when that function
 * has no bounded range (it saturates where its slope is below
 * `contract.saturation_slope`); sigmoid's or tanh's for logs that name none.
 */
export const saturationBounds = (gate, fn = null) =>
  fn != null ? contract.saturation_bounds[fn] ?? null : contract.tanh_gates.includes(gate) ? contract.saturation.tanh : contract.saturation.sigmoid;

/** The name of a cell kind's state in the probe's sequences (`c_t`, `h_t`), or undefined. */
export const stateOf = (cell) => contract.states[cell];

/** Whether `gate` is a cell's state rather than a gate. */
export const isState = (gate) => Object.values(contract.states).includes(gate);

/** Whether `gate` is a tanh gate (range -1..1) rather than a sigmoid one. */
export const isTanhGate = (gate) => contract.tanh_gates.includes(gate);
