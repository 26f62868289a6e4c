// The plugin's routes (tb_lstm_gates/plugin/http_api.md). URLs are relative to
// this module, which TensorBoard serves at <root>/data/plugin/lstm_gates/static/,
// so they keep working under --path_prefix and behind proxies.
const BASE = new URL("../", import.meta.url);

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** GET `route` with `params` (pairs; a key may repeat), parsed as JSON. */
export async function getJSON(route, params = []) {
  const url = new URL(route, BASE);
  for (const [key, value] of params) url.searchParams.append(key, value);
  const response = await fetch(url, { credentials: "same-origin" });
  if (!response.ok) {
    const text = (await response.text()).trim().slice(0, 300);
    throw new ApiError(response.status, `${route}: ${response.status} ${text}`);
  }
  return response.json();
}

export const runParams = (runs) => runs.map((run) => ["run", run]);
