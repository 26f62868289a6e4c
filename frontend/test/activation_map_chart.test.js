import assert from "node:assert/strict";
import { test } from "node:test";
import { gateScale, indexTicks } from "../src/charts/activation_map.js";
import "./fixtures.js";

test("sigmoid gates use 0..1 and tanh gates -1..1, so maps compare across steps", () => {
  for (const gate of ["input", "forget", "output", "update", "reset"]) assert.deepEqual([gateScale(gate, false).lo, gateScale(gate, false).hi], [0, 1]);
  for (const gate of ["cell", "candidate"]) assert.deepEqual([gateScale(gate, true).lo, gateScale(gate, true).hi], [-1, 1]);
});

test("index ticks fall on round numbers and stay within the count asked for", () => {
  assert.deepEqual(indexTicks(6, 12), [0, 1, 2, 3, 4, 5]);
  assert.deepEqual(indexTicks(40, 12), [0, 5, 10, 15, 20, 25, 30, 35]);
  assert.deepEqual(indexTicks(64, 8), [0, 10, 20, 30, 40, 50, 60]);
  assert.deepEqual(indexTicks(1000, 12), [0, 100, 200, 300, 400, 500, 600, 700, 800, 900]);
});
