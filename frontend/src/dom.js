// DOM helpers. Text always goes in through text nodes (`append` of a string,
// or `textContent`): run, layer and tag names come from users' directories
// and summaries and must never be parsed as HTML.

/**
 * Creates an element. `attrs`: `class`, `text`, `on<event>` listeners,
 * `props` (assigned as properties, e.g. `checked`), anything else as an
 * attribute; null/false values are skipped.
 */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value == null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "props") Object.assign(node, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  node.append(...children.flat().filter((c) => c != null));
  return node;
}

/** A `<select>` of `[value, label]` pairs with `selected` chosen. */
export function select(pairs, selected, onchange, attrs = {}) {
  const node = el(
    "select",
    { ...attrs, onchange: () => onchange(node.value) },
    pairs.map(([value, label]) => el("option", { value, text: label })),
  );
  node.value = selected;
  return node;
}

/** A control with its visible name before it, on one line (the header rows of the histogram and activation-map sections). */
export const labelled = (name, control) => el("label", { class: "inline-field" }, el("span", { class: "label", text: name }), control);

/** A number for humans: 4 significant digits, exponent for very large or small. */
export function formatValue(v) {
  if (v == null || Number.isNaN(v)) return "–";
  if (!Number.isFinite(v)) return v > 0 ? "∞" : "-∞";
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(3);
  return Number(v.toPrecision(4)).toString();
}
