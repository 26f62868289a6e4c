// What the tab can show and what is selected, from the `runs` route's answer
// and the saved selections (state.js). Pure: no DOM, no fetch, so every rule
// here is tested with `node --test` (test/model.test.js).

import { contract, stateOf } from "./contract.js";

/** The gate the Text view opens on: the state that keeps memory (LSTM forget, GRU update), else the first. */
const defaultTextGate = (layer, gates) => gates.find((g) => g === "forget" || g === "update") || gates[0];

/** A step unit as a label's first word: "global step" -> "Global step". */
export const capitalized = (unit) => unit.charAt(0).toUpperCase() + unit.slice(1);

/** Union of lists, in order of first appearance (each list is in canonical order). */
const union = (lists) => [...new Set(lists.flat())];

/** A case-insensitive regex test like TensorBoard's run filter; a bad regex matches as plain text. */
export function runMatcher(filter) {
  if (!filter) return () => true;
  try {
    const re = new RegExp(filter, "i");
    return (name) => re.test(name);
  } catch {
    const needle = filter.toLowerCase();
    return (name) => name.toLowerCase().includes(needle);
  }
}

/** The hidden runs (state.hiddenRuns) once `runs` are shown (`visible`) or hidden. */
export function withRunsShown(hiddenRuns, runs, visible) {
  const hidden = new Set(hiddenRuns);
  for (const run of runs) visible ? hidden.delete(run) : hidden.add(run);
  return [...hidden];
}

/**
 * What the run list's header says of the `listed` runs (those the filter lets through) among `total`
 * runs, `hidden` a Set of hidden runs: {text, all (every listed run shown), some (some but not all)}.
 */
export function runListSummary(total, listed, hidden) {
  const shown = listed.filter((r) => !hidden.has(r)).length;
  const filtered = listed.length < total ? ` (${listed.length} of ${total} listed)` : "";
  return {
    text: `${shown} shown${filtered}`,
    all: listed.length > 0 && shown === listed.length,
    some: shown > 0 && shown < listed.length,
  };
}

/** The parts of a layer's weights (the probe's `activation` part has its own view). */
export const weightParts = (layer) => layer.parts.filter((p) => p !== contract.activation);

const byIndex = (a, b) => (a.index ?? Infinity) - (b.index ?? Infinity) || a.layer.localeCompare(b.layer);

/**
 * The layer names of `runs` in one order that keeps each run's own (its
 * layers by `index`, those without one after, by name), run by run: a run's
 * new layer goes right after its run's previous layer, or before its run's
 * next one already listed, else last. Runs of one model share one order;
 * runs of different models list the first run's layers, then the next's.
 */
export function layerOrder(runs) {
  const order = [];
  for (const run of runs) {
    const own = [...run.layers].sort(byIndex).map((info) => info.layer);
    let at = null;
    own.forEach((layer, k) => {
      const found = order.indexOf(layer);
      if (found >= 0) {
        at = found + 1;
        return;
      }
      if (at === null) at = own.slice(k + 1).map((l) => order.indexOf(l)).find((p) => p >= 0) ?? order.length;
      order.splice(at, 0, layer);
      at += 1;
    });
  }
  return order;
}

/**
 * Every layer across runs, merged, in the runs' order (`layerOrder`):
 * {layer, cell, index, infos, runs, parts, gates, stats, histogramRuns, probeRuns, mapRuns, saturationRuns, sequenceRuns}.
 */
export function mergeLayers(runs) {
  const byName = new Map();
  for (const run of runs) {
    for (const info of run.layers) {
      const entry = byName.get(info.layer) || {
        layer: info.layer,
        cell: info.cell,
        infos: [],
        runs: [],
        histogramRuns: [],
        probeRuns: [],
        mapRuns: [],
        saturationRuns: [],
        sequenceRuns: [],
        index: null,
        heads: null,
      };
      entry.infos.push(info);
      entry.heads = entry.heads || info.heads || null;
      entry.runs.push(run.run);
      if (info.histograms) entry.histogramRuns.push(run.run);
      if (info.parts.includes(contract.activation)) entry.probeRuns.push(run.run);
      if (info.activation_maps) entry.mapRuns.push(run.run);
      if (info.unit_saturation) entry.saturationRuns.push(run.run);
      if (info.probe_sequences) entry.sequenceRuns.push(run.run);
      if (Number.isInteger(info.index) && (entry.index === null || info.index < entry.index)) entry.index = info.index;
      byName.set(info.layer, entry);
    }
  }
  return layerOrder(runs)
    .map((layer) => byName.get(layer))
    .map((e) => ({
      ...e,
      parts: union(e.infos.map((i) => i.parts)),
      gates: union(e.infos.map((i) => i.gates)),
      stats: union(e.infos.map((i) => i.stats)),
    }));
}

/**
 * The heads of the layer `layer` is one head of (an xLSTM sLSTM layer logs each head as a layer
 * `<path>/head<k>`, its metadata's `heads` saying which), in head order: `[{head, layer}]`; empty for
 * a layer without heads, or whose units are its heads (an mLSTM's scalar gates).
 */
export function headSiblings(layers, layer) {
  if (!layer || !layer.heads || !Number.isInteger(layer.heads.head)) return [];
  const base = layer.layer.slice(0, layer.layer.lastIndexOf("/"));
  return layers
    .filter((l) => l.heads && Number.isInteger(l.heads.head) && l.layer.slice(0, l.layer.lastIndexOf("/")) === base)
    .map((l) => ({ head: l.heads.head, layer: l.layer }))
    .sort((a, b) => a.head - b.head);
}

/**
 * Where a layer's weights come from, for its header: "recurrent: weight drop: weight_hh_l0_raw",
 * one entry per part and origin across its runs (a run that names none logged plain parameters),
 * "" when every part is a plain parameter.
 */
export function weightOrigins(layer) {
  const seen = new Set();
  for (const info of layer.infos) {
    for (const [part, origin] of Object.entries(info.origins || {})) seen.add(`${part}: ${origin}`);
  }
  return [...seen].join("; ");
}

/** Runs, layers and their statistics as the `runs` route lists them; every selection is read against a state. */
export class Model {
  /** @param runs the `runs` route's `runs`: [{run, layers: [...], regularization}] */
  constructor(runs = []) {
    this.runs = [...runs].sort((a, b) => a.run.localeCompare(b.run));
    this.runNames = this.runs.map((r) => r.run);
    // A run's colour follows its place among all runs (not the filtered ones), so filtering keeps colours.
    this.runIndex = new Map(this.runNames.map((run, i) => [run, i]));
    this.layers = mergeLayers(this.runs);
  }

  /** Whether no run has any layer: the tab shows how to log data. */
  get empty() {
    return this.runs.every((r) => r.layers.length === 0);
  }

  /** Runs that pass the filter, whether shown or hidden: the run list. */
  listedRuns(state) {
    return this.runNames.filter(runMatcher(state.runFilter));
  }

  /** Runs that pass the filter and are not hidden: the runs charts draw. */
  visibleRuns(state) {
    const hidden = new Set(state.hiddenRuns);
    return this.listedRuns(state).filter((run) => !hidden.has(run));
  }

  /** Runs among `runs` that log penalties. */
  regularizedRuns(runs) {
    return runs.filter((r) => this.runs.find((x) => x.run === r)?.regularization);
  }

  get anyRegularization() {
    return this.runs.some((r) => r.regularization);
  }

  /**
   * The chosen layer, else, among the layers of the shown runs, the model's first recurrent layer where the logs
   * give the model's order, else (older logs, sorted by name, where a GRU may
   * sort first) the first LSTM layer, the gates the tab is named for, else
   * the first layer; null when there is none.
   */
  currentLayer(state) {
    const chosen = this.layers.find((l) => l.layer === state.layer);
    if (chosen) return chosen;
    // Among the layers of the shown runs, if any.
    const visible = new Set(this.visibleRuns(state));
    const shown = this.layers.filter((l) => l.runs.some((r) => visible.has(r)));
    const layers = shown.length ? shown : this.layers;
    if (layers.length && layers[0].index !== null) return layers[0];
    return layers.find((l) => /lstm/i.test(l.cell)) || layers[0] || null;
  }

  /** The statistics of the Weights view: all but the probe's activation statistics. */
  weightStats(layer) {
    return layer.stats.filter((s) => !contract.activation_stats.includes(s));
  }

  /**
   * What the steps of `runs` count on `layer` (null: the runs' own, for the
   * regularization charts): "epoch", "batch", "global step", or "step" when
   * they do not say or do not agree, so an axis never claims a unit wrongly.
   */
  stepUnit(runs, layer = null) {
    const units = new Set(
      runs.map((r) => (layer ? layer.infos[layer.runs.indexOf(r)]?.step_unit : this.runs.find((x) => x.run === r)?.step_unit)).filter(Boolean),
    );
    return units.size === 1 ? [...units][0] : "step";
  }

  /** The chosen statistic if the layer has it, else `l2`, else the first; undefined for a penalties-only layer. */
  currentStat(layer, state) {
    const stats = this.weightStats(layer);
    if (stats.includes(state.stat)) return state.stat;
    return stats.includes("l2") ? "l2" : stats[0];
  }

  /** The weight parts the grid shows: those not toggled off. */
  shownParts(layer, state) {
    return weightParts(layer).filter((p) => !state.hiddenParts.includes(p));
  }

  /** Runs of `layer` that hold `stat`, among `runs`: the series route answers 404 for the others. */
  runsWithStat(layer, stat, runs) {
    return runs.filter((r) => layer.infos[layer.runs.indexOf(r)]?.stats.includes(stat));
  }

  /** Whether a visible run has histograms of `layer` (so the histogram view could open). */
  hasHistograms(layer, state) {
    return Boolean(layer) && this.visibleRuns(state).some((r) => layer.histogramRuns.includes(r));
  }

  /** The block the histogram view shows, or null when it is closed or nothing fits. */
  histogramTarget(state) {
    const layer = this.currentLayer(state);
    if (!state.histOpen || !layer || state.view !== "weights") return null;
    const runs = this.visibleRuns(state).filter((r) => layer.histogramRuns.includes(r));
    if (runs.length === 0) return null;
    const run = runs.includes(state.histRun) ? state.histRun : runs[0];
    const parts = weightParts(layer);
    const part = parts.includes(state.histPart) ? state.histPart : parts[0];
    const gate = layer.gates.includes(state.histGate) ? state.histGate : layer.gates[0];
    return { runs, run, layer: layer.layer, parts, gates: layer.gates, part, gate, unit: this.stepUnit([run], layer) };
  }

  /** Rows of the Activations grid the layer has. */
  activationRows(layer) {
    return contract.activation_rows.filter((s) => layer.stats.includes(s));
  }

  /** Visible runs with a probe on `layer`. */
  probedRuns(layer, state) {
    return this.visibleRuns(state).filter((r) => layer.probeRuns.includes(r));
  }

  /** The run, layer and gate the activation map shows, or null when nothing fits. */
  mapTarget(state) {
    const layer = this.currentLayer(state);
    if (state.view !== "activations" || !layer) return null;
    const runs = this.visibleRuns(state).filter((r) => layer.mapRuns.includes(r));
    if (runs.length === 0) return null;
    const run = runs.includes(state.actRun) ? state.actRun : runs[0];
    const gate = layer.gates.includes(state.actGate) ? state.actGate : layer.gates[0];
    return { runs, run, layer: layer.layer, gates: layer.gates, gate, unit: this.stepUnit([run], layer) };
  }

  /**
   * The run, layer and gate (or state) the Text view shows, or null when
   * nothing fits: runs with the probe's sequences, or (older logs) its activation map.
   */
  textTarget(state) {
    const layer = this.currentLayer(state);
    if (state.view !== "text" || !layer) return null;
    const runs = this.visibleRuns(state).filter((r) => layer.sequenceRuns.includes(r) || layer.mapRuns.includes(r));
    if (runs.length === 0) return null;
    const run = runs.includes(state.textRun) ? state.textRun : runs[0];
    const gates = layer.sequenceRuns.includes(run) && stateOf(layer.cell) ? [...layer.gates, stateOf(layer.cell)] : layer.gates;
    const gate = gates.includes(state.textGate) ? state.textGate : defaultTextGate(layer, gates);
    return { runs, run, layer: layer.layer, gates, gate, unit: this.stepUnit([run], layer) };
  }

  /** The layers of the Overview that hold `stat` in one of `runs`, in the model's order, each with its parts. */
  overviewRows(stat, runs) {
    const probe = contract.activation_stats.includes(stat);
    return this.layers
      .filter((l) => l.stats.includes(stat) && this.runsWithStat(l, stat, runs).length > 0)
      .map((l) => ({ layer: l.layer, cell: l.cell, gates: l.gates, parts: probe ? [contract.activation] : weightParts(l), infos: l.infos, runs: l.runs }));
  }

  /** The statistics the Overview can show: those some layer has in one of `runs`, weights' first. */
  overviewStats(runs) {
    const all = union(this.layers.filter((l) => l.runs.some((r) => runs.includes(r))).map((l) => l.stats));
    return [...contract.weight_stats, ...contract.activation_stats].filter((s) => all.includes(s));
  }

  /** The layer, gate and runs of the saturation scatter, or null when nothing fits. */
  saturationTarget(state) {
    const layer = this.currentLayer(state);
    if (state.view !== "activations" || !layer) return null;
    const runs = this.visibleRuns(state).filter((r) => layer.saturationRuns.includes(r));
    if (runs.length === 0) return null;
    const gate = layer.gates.includes(state.satGate) ? state.satGate : layer.gates[0];
    return { runs, layer: layer.layer, gates: layer.gates, gate, unit: this.stepUnit(runs, layer) };
  }
}
