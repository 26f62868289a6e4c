// "Latest request wins": a view asks again whenever the selection changes,
// and answers can come back out of order; only the answer to the latest
// request may be drawn, and an answer equal to the one drawn is not drawn
// again (redrawing the same data would reset the hover).

export class LatestRequest {
  constructor() {
    this.id = 0;
    this.last = undefined;
  }

  /** Drops the answer of any pending request and forgets the last answer: the view has nothing to ask for. */
  clear() {
    this.id++;
    this.last = undefined;
  }

  /**
   * Awaits `load()`: {data} or {error} when no newer request (or `clear`)
   * was made meanwhile, else null (the answer is stale and must be ignored).
   */
  async fetch(load) {
    const id = ++this.id;
    let result;
    try {
      result = { data: await load() };
    } catch (error) {
      result = { error };
    }
    return id === this.id ? result : null;
  }

  /** Whether `answer` differs from the last answer passed here since `clear`; remembers it. */
  isNew(answer) {
    const text = JSON.stringify(answer);
    if (text === this.last) return false;
    this.last = text;
    return true;
  }
}

/**
 * How the grid views load: with no `request` (nothing to ask for) the view
 * empties; else the latest answer, passed through `shape`, becomes
 * `view.data` and is rendered when new, and errors go to `view.app.showError`.
 * `view` has `app`, `latest` (a LatestRequest), `data` and `render()`.
 */
export async function loadLatest(view, request, shape = (data) => data) {
  if (!request) {
    view.latest.clear();
    view.data = null;
    view.render();
    return;
  }
  const result = await view.latest.fetch(request);
  if (!result) return;
  view.app.showError(result.error);
  const data = result.data && shape(result.data);
  if (!view.latest.isNew(data)) return;
  view.data = data || null;
  view.render();
}
