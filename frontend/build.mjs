// Bundles src/ (and uPlot with its CSS) into the Python package's static folder,
// which TensorBoard serves to the tab's iframe: everything must be local files.
import * as esbuild from "esbuild";
import { fileURLToPath } from "node:url";

const outdir = fileURLToPath(new URL("../tb_lstm_gates/plugin/static/", import.meta.url));
const options = {
  entryPoints: { index: fileURLToPath(new URL("src/index.js", import.meta.url)) },
  outdir,
  bundle: true,
  format: "esm",
  target: "es2020",
  minify: true,
  sourcemap: false,
  legalComments: "eof",
  // uPlot's MIT notice is a plain comment, which minifying would drop.
  banner: { js: "/*! Bundles uPlot, MIT License, Copyright (c) 2025 Leon Sorokin, https://github.com/leeoniya/uPlot */" },
  logLevel: "info",
};

if (process.argv.includes("--watch")) {
  const ctx = await esbuild.context(options);
  await ctx.watch();
} else {
  await esbuild.build(options);
}
