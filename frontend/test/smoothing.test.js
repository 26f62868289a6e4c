import assert from "node:assert/strict";
import { test } from "node:test";
import { smooth } from "../src/smoothing.js";

test("weight 0 leaves values unchanged", () => {
  assert.deepEqual(smooth([1, 5, 2], 0), [1, 5, 2]);
});

test("debiased EMA: the first point is kept, later points follow TensorBoard's formula", () => {
  const w = 0.6;
  const [a, b] = smooth([10, 20], w);
  assert.equal(a, 10);
  const last = (1 - w) * 10 * w + (1 - w) * 20;
  assert.ok(Math.abs(b - last / (1 - w * w)) < 1e-12);
});

test("non-finite values pass through and do not disturb the average", () => {
  const s = smooth([1, null, 3], 0.5);
  assert.equal(s[1], null);
  assert.ok(Math.abs(s[2] - (0.5 * 0.5 * 1 + 0.5 * 3) / (1 - 0.25)) < 1e-12);
});

test("a constant series stays constant", () => {
  assert.deepEqual(smooth([2, 2, 2], 0.9), [2, 2, 2]);
});
