import assert from "node:assert/strict";
import { test } from "node:test";
import { LatestRequest } from "../src/latest.js";

/** A promise and the functions that settle it, so a test decides the order answers arrive in. */
function deferred() {
  let resolve, reject;
  const promise = new Promise((res, rej) => ([resolve, reject] = [res, rej]));
  return { promise, resolve, reject };
}

test("an answer that arrives after a newer request was made is dropped", async () => {
  const latest = new LatestRequest();
  const slow = deferred();
  const fast = deferred();
  const first = latest.fetch(() => slow.promise);
  const second = latest.fetch(() => fast.promise);
  fast.resolve("new");
  slow.resolve("old");
  assert.deepEqual(await second, { data: "new" });
  assert.equal(await first, null);
});

test("errors come back as {error}, and clear drops a pending answer", async () => {
  const latest = new LatestRequest();
  const failure = new Error("404");
  assert.deepEqual(await latest.fetch(() => Promise.reject(failure)), { error: failure });
  const pending = deferred();
  const answer = latest.fetch(() => pending.promise);
  latest.clear();
  pending.resolve("late");
  assert.equal(await answer, null);
});

test("an answer equal to the last one is not new until clear", () => {
  const latest = new LatestRequest();
  assert.ok(latest.isNew({ a: [1, 2] }));
  assert.ok(!latest.isNew({ a: [1, 2] }));
  assert.ok(latest.isNew({ a: [1, 3] }));
  latest.clear();
  assert.ok(latest.isNew({ a: [1, 3] }));
});
