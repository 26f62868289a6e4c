// The Text view, after Karpathy, Johnson and Fei-Fei (2015) and LSTMVis
// (Strobelt et al., 2017): the probe's first sequences as text, each token
// coloured by one unit's gate (or cell state) at one step of training. The
// units are listed by saturation, by variance over time, or by how well they
// follow a span of tokens the user selects (high there, low elsewhere).
import { gateScale } from "../charts/activation_map.js";
import { DIVERGING, DIVERGING_DARK, ramp } from "../colors.js";
import { isState, saturationBounds } from "../contract.js";
import { el, formatValue, labelled, select } from "../dom.js";
import { StepRequest, StepSlider } from "./step_slider.js";

/** The orders of the unit list: [value, label]. */
export const UNIT_ORDERS = [
  ["saturation", "saturation"],
  ["variance", "variance over time"],
  ["span", "span: high there, low elsewhere"],
  ["span_low", "span: low there, high elsewhere"],
  ["unit", "unit number"],
];

/** Each unit's valid values, with where they are: [{s, t, v}] per unit, of `values[s][t][u]`. */
function unitValues(values, units) {
  const per = Array.from({ length: units }, () => []);
  values.forEach((sequence, s) =>
    sequence.forEach((row, t) =>
      row.forEach((v, u) => {
        if (v != null) per[u].push({ s, t, v });
      }),
    ),
  );
  return per;
}

/** Whether step `t` of sequence `s` lies in `span` ({sequence, from, to}, ends included). */
export const inSpan = (span, s, t) => Boolean(span) && s === span.sequence && t >= Math.min(span.from, span.to) && t <= Math.max(span.from, span.to);

/** Pearson correlation of `xs` with `ys`; 0 when either is constant. */
function correlation(xs, ys) {
  const n = xs.length;
  if (n < 2) return 0;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    sxy += (xs[i] - mx) * (ys[i] - my);
    sxx += (xs[i] - mx) ** 2;
    syy += (ys[i] - my) ** 2;
  }
  return sxx > 0 && syy > 0 ? sxy / Math.sqrt(sxx * syy) : 0;
}

/**
 * A score per unit of a `probe_sequences` answer, higher first in the list:
 * - `saturation`: the fraction of the probe's valid steps at which it is
 *   saturated, as the probe logged it for the gate (`unit_saturation`: by
 *   the activation's bounds, or by its slope where it has none, relu's
 *   zeros among them); for a state, or logs without it, the fraction of the
 *   values shown beyond the gate's sigmoid or tanh bounds (a state's, the
 *   tanh bounds);
 * - `variance`: its variance over time, the mean over the sequences;
 * - `span`: the correlation of its values with being inside `span`
 *   ({sequence, from, to}): high there and low elsewhere scores near 1 (LSTMVis);
 * - `span_low`: the reverse, low there and high elsewhere first (a forget
 *   gate that closes on the span's tokens);
 * - `unit`: the unit number, first first.
 */
export function unitScores(data, order, span = null) {
  const per = unitValues(data.values, data.units);
  const [lo, hi] = isState(data.gate) ? [-0.9, 0.9] : saturationBounds(data.gate);
  return per.map((points, u) => {
    if (order === "unit") return -u;
    if (order === "saturation" && data.unit_saturation) {
      const [low, high] = data.unit_saturation[u] || [];
      return low == null || high == null ? -Infinity : low + high;
    }
    if (points.length === 0) return -Infinity;
    if (order === "saturation") return points.filter(({ v }) => v < lo || v > hi).length / points.length;
    if (order === "variance") {
      const bySequence = new Map();
      for (const { s, v } of points) bySequence.set(s, [...(bySequence.get(s) || []), v]);
      const variances = [...bySequence.values()].map((vs) => {
        const mean = vs.reduce((a, b) => a + b, 0) / vs.length;
        return vs.reduce((a, v) => a + (v - mean) ** 2, 0) / vs.length;
      });
      return variances.reduce((a, b) => a + b, 0) / variances.length;
    }
    if (!span) return 0;
    const match = correlation(
      points.map(({ v }) => v),
      points.map(({ s, t }) => (inSpan(span, s, t) ? 1 : 0)),
    );
    return order === "span_low" ? -match : match;
  });
}

/** Unit numbers by descending score, ties by number. */
export const sortedUnits = (scores) => scores.map((score, u) => [score, u]).sort((a, b) => b[0] - a[0] || a[1] - b[1]).map(([, u]) => u);

/** A token as the text shows it: spaces kept wide, line breaks and tabs as arrows, padding as a dot. */
export function tokenText(token) {
  if (token === "") return "·";
  return token.replace(/ /g, "\u00a0").replace(/\n/g, "↵").replace(/\t/g, "→");
}

/** The tokens of sequence `s`, or its time step numbers when the run logged none. */
export function sequenceTokens(data, s) {
  const row = data.tokens && data.tokens[s];
  return Array.from({ length: data.time_steps }, (_, t) => (row && t < row.length ? row[t] : null));
}

/**
 * The colour of value `v` of `gate`: a gate on its fixed range (as the
 * activation map); a state as tanh(v) on -1..1, what the output gate reads
 * of an LSTM's c_t (a GRU's h_t is already in -1..1). Null: masked.
 */
export function valueColor(v, gate, dark) {
  if (v == null) return null;
  if (isState(gate)) return ramp((Math.tanh(v) + 1) / 2, dark ? DIVERGING_DARK : DIVERGING);
  const { lo, hi, stops } = gateScale(gate, dark);
  return ramp((v - lo) / (hi - lo), stops);
}

/** The unit the text is coloured by: the chosen one if it exists, else the first of the order. */
export const shownUnit = (order, chosen, units) => (chosen >= 0 && chosen < units ? chosen : order[0] ?? 0);

const pairs = (xs) => xs.map((x) => [x, x]);

export class TextView {
  /** @param app the tab (app.js) */
  constructor(app) {
    this.app = app;
    this.request = new StepRequest("probe_sequences");
    this.data = null;
    // The selected span of tokens ({sequence, from, to}), while dragging too.
    this.span = null;
    this.dragging = false;
    this.header = el("div", { class: "text-controls" });
    this.message = el("p", { class: "message" });
    this.units = el("ol", { class: "text-units" });
    this.body = el("div", { class: "text-sequences" });
    this.readout = el("span", { class: "text-readout" });
    this.section = el(
      "section",
      { class: "text-view", hidden: true },
      this.header,
      this.message,
      el("div", { class: "text-layout" }, el("div", { class: "text-unit-list" }, el("h3", { text: "Units" }), this.units), this.body),
    );
    this.slider = new StepSlider("text", (textStep) => this.app.update({ textStep }, () => this.load()));
    document.addEventListener("mouseup", () => this.endDrag());
  }

  /** Rebuilds the selectors for the current runs, layer and gate. */
  sync() {
    const t = this.app.model.textTarget(this.app.state);
    this.section.hidden = !t;
    if (!t) return;
    // The order is applied to the data shown at once; the load redraws only when the data changed.
    const change = (key, extra = {}) => (value) =>
      this.app.update({ [key]: value, ...extra }, () => {
        this.sync();
        this.render();
        this.load();
      });
    const order = this.app.state.textOrder;
    this.header.replaceChildren(
      el("h2", { text: "Text" }),
      labelled("Run", select(pairs(t.runs), t.run, change("textRun"), { class: "text-run" })),
      labelled("Gate", select(pairs(t.gates), t.gate, change("textGate"), { class: "text-gate" })),
      labelled("Order units by", select(UNIT_ORDERS, order, change("textOrder"), { class: "text-order" })),
      this.slider.element(t.unit),
      el("button", { type: "button", class: "text-clear-span", text: "Clear span", onclick: () => this.setSpan(null) }),
      this.readout,
    );
    this.syncStep();
  }

  syncStep() {
    this.slider.show(this.data ? this.data.steps : [], this.data ? this.data.step : null);
  }

  async load() {
    const t = this.app.model.textTarget(this.app.state);
    if (!t) {
      this.request.clear();
      this.data = null;
      this.render();
      return;
    }
    const result = await this.request.fetch(t, this.app.state.textStep);
    if (!result) return;
    this.data = result.data || null;
    if (result.error) {
      this.message.textContent = result.error.status === 404 ? "No probe sequences for this gate in this run." : `Could not load the probe sequences: ${result.error.message}`;
    }
    this.render();
  }

  setSpan(span) {
    this.span = span;
    const spanOrder = this.app.state.textOrder.startsWith("span") ? this.app.state.textOrder : "span";
    const changes = span ? { textOrder: spanOrder, textUnit: -1 } : {};
    this.app.update(changes, () => {
      this.sync();
      this.render();
    });
  }

  startDrag(s, t) {
    this.dragging = true;
    this.span = { sequence: s, from: t, to: t };
    this.markSpan();
  }

  extendDrag(s, t) {
    if (!this.dragging || !this.span || s !== this.span.sequence) return;
    this.span = { ...this.span, to: t };
    this.markSpan();
  }

  endDrag() {
    if (!this.dragging) return;
    this.dragging = false;
    this.setSpan(this.span);
  }

  /** Outlines the tokens of the span, without rebuilding the text (a drag is under way). */
  markSpan() {
    for (const node of this.body.querySelectorAll(".token")) {
      node.classList.toggle("in-span", inSpan(this.span, Number(node.dataset.sequence), Number(node.dataset.t)));
    }
  }

  render() {
    this.syncStep();
    if (this.section.hidden || !this.data) {
      this.units.replaceChildren();
      this.body.replaceChildren();
      if (!this.section.hidden && !this.data && !this.message.textContent) this.message.textContent = "Loading the probe's sequences…";
      return;
    }
    const { data } = this;
    const { state, theme } = this.app;
    const spanOrder = state.textOrder.startsWith("span");
    const order = spanOrder && !this.span ? "saturation" : state.textOrder;
    const scores = unitScores(data, order, this.span);
    const units = sortedUnits(scores);
    const unit = shownUnit(units, state.textUnit, data.units);
    const fallback = data.source === "activation_map" ? " (logs without the probe's sequences: its first sequence only)" : "";
    const spanNote = spanOrder && !this.span ? " Drag over tokens to select a span." : "";
    this.message.textContent = `${data.gate} of unit ${unit} at ${this.app.model.stepUnit([data.run])} ${data.step} on the probe's first ${data.sequences === 1 ? "sequence" : `${data.sequences} sequences`}${fallback}.${spanNote}`;
    this.units.replaceChildren(
      ...units.map((u) =>
        el(
          "li",
          {},
          el(
            "button",
            {
              type: "button",
              class: `text-unit${u === unit ? " active" : ""}`,
              "data-unit": String(u),
              "aria-pressed": String(u === unit),
              onclick: () => this.app.update({ textUnit: u }, () => this.render()),
            },
            el("span", { text: `unit ${u}` }),
            el("span", { class: "score", text: order === "unit" ? "" : formatValue(scores[u]) }),
          ),
        ),
      ),
    );
    const lines = data.values.map((sequence, s) => {
      const tokens = sequenceTokens(data, s);
      return el(
        "div",
        { class: "text-sequence", "data-sequence": String(s) },
        tokens.flatMap((token, t) => {
          const v = sequence[t] ? sequence[t][unit] : null;
          const color = valueColor(v, data.gate, theme.dark);
          const node = el("span", {
            class: `token${token == null ? " no-token" : ""}${color ? "" : " masked"}${inSpan(this.span, s, t) ? " in-span" : ""}`,
            "data-sequence": String(s),
            "data-t": String(t),
            "data-value": v == null ? "" : String(v),
            style: color ? `background:${color};color:${textOn(v, data.gate)}` : null,
            text: token == null ? String(t) : tokenText(token),
            onmousedown: (e) => {
              e.preventDefault();
              this.startDrag(s, t);
            },
            onmouseenter: () => {
              this.extendDrag(s, t);
              this.readout.textContent = `sequence ${s} · t ${t} · ${v == null ? "masked" : formatValue(v)}`;
            },
          });
          return token === "\n" ? [node, el("br")] : [node];
        }),
      );
    });
    this.body.replaceChildren(...lines);
  }

  resize() {}
}

/** Text colour readable on the token's background: dark on light colours. */
function textOn(v, gate) {
  if (isState(gate)) return Math.abs(Math.tanh(v)) > 0.6 ? "#fff" : "#000";
  const { lo, hi } = gateScale(gate, false);
  const x = (v - lo) / (hi - lo);
  // Viridis is light at its top end; the diverging ramp is light in its middle.
  return lo < 0 ? (Math.abs(x - 0.5) > 0.3 ? "#fff" : "#000") : x > 0.6 ? "#000" : "#fff";
}
