import assert from "node:assert/strict";
import { test } from "node:test";
import { toCSV } from "../src/download.js";

const series = (run, values) => ({
  section: "gates",
  run,
  layer: "lstm/lstm_cell",
  part: "recurrent",
  gate: "forget",
  stat: "l2",
  steps: values.map((_, i) => i),
  wall_times: values.map((_, i) => 100 + i),
  values,
});

test("one row per step, with a header", () => {
  const lines = toCSV([series("train", [1.5, null])]).trimEnd().split("\r\n");
  assert.equal(lines[0], "section,run,layer,part,gate,stat,step,wall_time,value,smoothed");
  assert.equal(lines[1], "gates,train,lstm/lstm_cell,recurrent,forget,l2,0,100,1.5,1.5");
  assert.equal(lines[2], "gates,train,lstm/lstm_cell,recurrent,forget,l2,1,101,,");
});

test("names with commas or quotes are quoted, and formulas are defused", () => {
  const csv = toCSV([series('a,"b"', [1]), series("=cmd()", [1])]);
  assert.ok(csv.includes('"a,""b"""'));
  assert.ok(csv.includes(",'=cmd(),"));
});
