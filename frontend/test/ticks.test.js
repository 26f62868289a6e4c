import assert from "node:assert/strict";
import { test } from "node:test";
import { formatLogTicks, formatTicks, niceTicks } from "../src/charts/ticks.js";

test("ticks fall on round values inside the range", () => {
  // The extent of a histogram seen by a new user: ticks read -0.4, -0.2, 0, 0.2, 0.4, not -0.4135 and 0.008284.
  assert.deepEqual(niceTicks(-0.4135, 0.4563, 4), [-0.4, -0.2, 0, 0.2, 0.4]);
  assert.deepEqual(niceTicks(0, 1, 4), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.deepEqual(niceTicks(0, 1, 2), [0, 0.5, 1]);
  assert.deepEqual(niceTicks(-1, 1, 4), [-1, -0.5, 0, 0.5, 1]);
  assert.deepEqual(niceTicks(0.1, 0.7, 6), [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]);
  assert.deepEqual(niceTicks(1.0552, 1.0568, 4), [1.0555, 1.056, 1.0565]);
  assert.deepEqual(niceTicks(3, 3, 4), [3]);
  for (const [lo, hi, n] of [[-0.4135, 0.4563, 4], [0, 1234, 5], [1e-7, 3e-6, 4]]) {
    const ticks = niceTicks(lo, hi, n);
    assert.ok(ticks.length >= 2 && ticks.length <= 2 * n, `${lo}..${hi}: ${ticks}`);
    assert.ok(ticks.every((t) => t >= lo && t <= hi));
  }
});

test("adjacent tick labels differ and carry no digits they do not need", () => {
  assert.deepEqual(formatTicks([1.0555, 1.056, 1.0565]), ["1.0555", "1.0560", "1.0565"]);
  assert.deepEqual(formatTicks([0, 0.5, 1, 1.5]), ["0.0", "0.5", "1.0", "1.5"]);
  assert.deepEqual(formatTicks([0, 2, 4]), ["0", "2", "4"]);
  assert.deepEqual(formatTicks([0.0004, 0.0006, 0.0008]), ["4e-4", "6e-4", "8e-4"]);
  assert.deepEqual(formatTicks([200000, 400000]), ["2e5", "4e5"]);
  // Float noise from the chart's own arithmetic does not show.
  assert.deepEqual(formatTicks([0.1 * 3, 0.1 * 4 + 1e-17]), ["0.3", "0.4"]);
  assert.deepEqual(formatTicks([-0.2, -1e-17, 0.2]), ["-0.2", "0.0", "0.2"]);
  assert.deepEqual(formatTicks([null, 1, null, 2]), ["", "1", "", "2"]);
  assert.deepEqual(formatTicks([]), []);
});

test("log ticks are labelled one by one, and ticks the chart skips stay blank", () => {
  assert.deepEqual(formatLogTicks([0.001, 0.01, 0.1, 1, 10]), ["0.001", "0.01", "0.1", "1", "10"]);
  assert.deepEqual(formatLogTicks([1e-5, null, 1e-4]), ["1e-5", "", "1e-4"]);
});
