// What the tab learns from the TensorBoard page around its iframe: dark mode
// and TensorBoard's own reloads.

/** The TensorBoard page's document, when the iframe may reach it (same origin). */
function hostDocument() {
  try {
    return window.parent !== window ? window.parent.document : null;
  } catch {
    return null;
  }
}

/**
 * Calls `onChange(dark)` now and whenever dark mode changes. TensorBoard marks
 * dark mode with the `dark-mode` class on its body (it already folds in the
 * system setting); outside TensorBoard the system's `prefers-color-scheme` decides.
 */
export function watchDarkMode(onChange) {
  const media = window.matchMedia("(prefers-color-scheme: dark)");
  const host = hostDocument();
  const isDark = () => (host && host.body ? host.body.classList.contains("dark-mode") : media.matches);
  onChange(isDark());
  const update = () => onChange(isDark());
  media.addEventListener("change", update);
  if (host && host.body) {
    new MutationObserver(update).observe(host.body, { attributes: true, attributeFilter: ["class"] });
  }
}

/**
 * Calls `onReload()` after each TensorBoard reload (its reload button and
 * auto-reload), via TensorBoard's plugin message channel: the iframe sends
 * "experimental.bootstrap" with a port, and the host sends JSON messages that
 * expect a reply.
 */
export function onHostReload(onReload) {
  if (window.parent === window) return;
  const channel = new MessageChannel();
  channel.port1.onmessage = (event) => {
    let message;
    try {
      message = JSON.parse(event.data);
    } catch {
      return;
    }
    if (!message || message.isReply) return;
    if (message.type === "experimental.DataReloaded") onReload();
    channel.port1.postMessage(
      JSON.stringify({ type: message.type, id: message.id, payload: null, error: null, isReply: true }),
    );
  };
  window.parent.postMessage("experimental.bootstrap", location.origin, [channel.port2]);
}
