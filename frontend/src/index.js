// Entry point TensorBoard loads in the tab's iframe: `render()` builds the tab.
import "uplot/dist/uPlot.min.css";
import "./styles.css";
import "./findings.css";
import { getJSON } from "./api.js";
import { App } from "./app.js";

/** Links the stylesheet esbuild writes next to this module, and waits for it (layout needs it). */
function loadStyles() {
  return new Promise((resolve) => {
    const link = document.createElement("link");
    link.rel = "stylesheet";
    link.href = new URL("index.css", import.meta.url).href;
    link.onload = link.onerror = resolve;
    document.head.append(link);
  });
}

export async function render() {
  // Ask for the run list while the stylesheet loads: the first paint needs both.
  const runs = getJSON("runs").catch(() => null);
  await loadStyles();
  const root = document.createElement("div");
  root.className = "lstm-gates";
  document.body.append(root);
  await new App(root).reload(runs);
}
