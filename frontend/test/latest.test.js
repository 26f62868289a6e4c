import assert from "node:assert/strict";
import { test } from "node:test";
import { LatestRequest, loadLatest } from "../src/latest.js";

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

/** A stand-in for a view: what loadLatest reads and calls. */
function fakeView() {
  const view = { latest: new LatestRequest(), data: "old", renders: 0, errors: [] };
  view.app = { showError: (error) => view.errors.push(error ?? null) };
  view.render = () => view.renders++;
  return view;
}

test("loadLatest empties the view when there is nothing to ask for", async () => {
  const view = fakeView();
  await loadLatest(view, false);
  assert.equal(view.data, null);
  assert.equal(view.renders, 1);
});

test("loadLatest shapes a new answer, renders it once, and drops a stale one", async () => {
  const view = fakeView();
  const slow = deferred();
  const first = loadLatest(view, () => slow.promise, (d) => d.toUpperCase());
  await loadLatest(view, () => Promise.resolve("new"), (d) => d.toUpperCase());
  slow.resolve("stale");
  await first;
  assert.equal(view.data, "NEW");
  assert.equal(view.renders, 1);
  await loadLatest(view, () => Promise.resolve("new"), (d) => d.toUpperCase());
  assert.equal(view.renders, 1, "the same answer again is not drawn again");
  const failure = new Error("500");
  await loadLatest(view, () => Promise.reject(failure));
  assert.equal(view.data, null);
  assert.deepEqual(view.errors.at(-1), failure);
});
