// Selections, kept in localStorage so a reload of the page or of TensorBoard
// comes back to the same view.
const KEY = "tb-lstm-gates/state/v1";

export const DEFAULTS = Object.freeze({
  hiddenRuns: [],
  runFilter: "",
  layer: "",
  stat: "l2",
  hiddenParts: [],
  smoothing: 0.6,
  logScale: false,
  autoReload: true,
  histRun: "",
  histPart: "",
  histGate: "",
  histMode: "offset",
  histOpen: false,
  view: "weights",
  actRun: "",
  actGate: "",
  // The activation map's step; -1 follows the latest step.
  actStep: -1,
  // The saturation scatter's gate and step (-1: the latest).
  satGate: "",
  satStep: -1,
  // The Text view's run, gate (or state), step (-1: the latest), unit (-1: the first in the chosen order) and order.
  textRun: "",
  textGate: "",
  textStep: -1,
  textUnit: -1,
  textOrder: "saturation",
  // The Overview's statistic and part ("": the first the layer has).
  overviewStat: "l2",
  overviewPart: "",
});

/** The saved state; a key of the wrong type (an older or edited save) gets its default. */
export function loadState() {
  let saved = {};
  try {
    saved = JSON.parse(localStorage.getItem(KEY) || "{}") || {};
  } catch {
    saved = {};
  }
  const state = {};
  for (const [key, fallback] of Object.entries(DEFAULTS)) {
    const value = saved[key];
    const ok = Array.isArray(fallback)
      ? Array.isArray(value) && value.every((v) => typeof v === "string")
      : typeof value === typeof fallback;
    state[key] = ok ? value : structuredClone(fallback);
  }
  return state;
}

export function saveState(state) {
  try {
    localStorage.setItem(KEY, JSON.stringify(state));
  } catch {
    // Storage full or disabled: selections simply do not persist.
  }
}
