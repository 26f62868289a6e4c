// Downloads of what the tab shows, as CSV or JSON, made in the browser.

const COLUMNS = ["section", "run", "layer", "part", "gate", "stat", "step", "wall_time", "value", "smoothed"];

function csvField(value) {
  if (value == null) return "";
  let text = String(value);
  // A run name starting with = + - @ would be a formula in a spreadsheet.
  if (typeof value === "string" && /^[=+\-@]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** Flat rows, one per (series, step), from [{section, run, layer, part, gate, stat, steps, wall_times, values, smoothed}]. */
function toRows(series) {
  return series.flatMap((s) =>
    s.steps.map((step, i) => ({
      section: s.section,
      run: s.run,
      layer: s.layer,
      part: s.part,
      gate: s.gate,
      stat: s.stat,
      step,
      wall_time: s.wall_times ? s.wall_times[i] : null,
      value: s.values[i],
      smoothed: s.smoothed ? s.smoothed[i] : s.values[i],
    })),
  );
}

export function toCSV(series) {
  const lines = [COLUMNS.join(",")];
  for (const row of toRows(series)) lines.push(COLUMNS.map((c) => csvField(row[c])).join(","));
  return lines.join("\r\n") + "\r\n";
}

export function saveFile(name, text, type) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
