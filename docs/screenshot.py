"""Takes the README's screenshots of the LSTM Gates tab on the demo's logs.

Trains the demo first if `demo/logs` is missing (`python demo/run.py
--no-tensorboard`), starts a real TensorBoard on those logs (127.0.0.1, a
free port), opens the tab in headless Chromium (Debian's `chromium`) and
saves `docs/screenshot.png` (the weights grid of the demo's LSTM, three runs),
`docs/screenshot-activations.png` (its Activations view),
`docs/screenshot-text.png` (the Text view: the probe's characters coloured
by the output gate of TEXT_UNIT, which tracks letters against spaces and
punctuation) and `docs/screenshot-overview.png` (every cell on one screen).

    python docs/screenshot.py

Needs the tab's bundle (`npm run build` in frontend/, or `pip install -e .`).
"""

import os
import re
import shutil
import subprocess
import sys
import threading

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOGDIR = os.path.join(ROOT, "demo", "logs")
DOCS = os.path.join(ROOT, "docs")
LAYER = "lstm/lstm_cell"
# The demo LSTM's unit whose output gate follows the text most readably: high
# inside words, low on spaces and punctuation (correlation 0.77 with "is a
# letter" on the probe, baseline run, last step). At the demo's size no unit
# tracks quotes, brackets or line length (|r| <= 0.3).
TEXT_GATE, TEXT_UNIT = "output", 46
STARTED = re.compile(r"TensorBoard \S+ at (http://127\.0\.0\.1:\d+/)")
# Charts are drawn, in the three runs' colours, when every canvas of a grid has painted pixels.
DRAWN = """(selector) => {
  const canvases = [...document.querySelectorAll(selector)];
  return canvases.length > 0 && canvases.every((c) =>
    c.getContext("2d").getImageData(0, 0, c.width, c.height).data.some((v) => v > 0));
}"""


def start_tensorboard():
    """A TensorBoard process on the demo's logs and its URL."""
    # This checkout's tb_lstm_gates first, also when another one is pip-installed.
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
    process = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", LOGDIR, "--host", "127.0.0.1", "--port", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    for line in process.stderr:
        match = STARTED.search(line)
        if match:
            # Keep reading its log so TensorBoard never blocks on a full pipe.
            threading.Thread(target=process.stderr.read, daemon=True).start()
            return process, match.group(1)
    raise SystemExit("TensorBoard did not start (exit code %s)" % process.wait())


def shoot(browser, url, path, height, view):
    context = browser.new_context(viewport={"width": 1400, "height": height})
    try:
        page = context.new_page()
        page.goto(url + "#lstm_gates")
        page.wait_for_selector("iframe", state="attached", timeout=60000)
        frame = page.frame_locator("iframe")
        frame.locator(".gates .chart canvas").first.wait_for(timeout=60000)
        frame.locator(".layer-select").select_option(LAYER)
        tab = next(f for f in page.frames if "plugin_entry.html" in f.url)
        tab.wait_for_function("() => document.querySelectorAll('.gates .col-head').length === 4")
        if view == "activations":
            frame.locator(".view-switch button[data-view=activations]").click()
            tab.wait_for_function(DRAWN, arg=".activations .chart canvas")
            tab.wait_for_function(DRAWN, arg=".map-canvas")
        elif view == "text":
            frame.locator(".run-filter").fill("baseline")
            frame.locator(".view-switch button[data-view=text]").click()
            frame.locator(".text-gate").select_option(TEXT_GATE)
            frame.locator(".text-order").select_option("unit")
            frame.locator(".text-unit[data-unit='%d']" % TEXT_UNIT).click()
            tab.wait_for_function(
                "(u) => document.querySelector('.text-unit.active')?.dataset.unit === String(u)",
                arg=TEXT_UNIT,
            )
            # Then list the units by saturation, the chosen one kept.
            frame.locator(".text-order").select_option("saturation")
        elif view == "overview":
            frame.locator(".view-switch button[data-view=overview]").click()
            tab.wait_for_function(DRAWN, arg=".overview-cell canvas")
        else:
            tab.wait_for_function(DRAWN, arg=".gates .chart canvas")
        page.screenshot(path=path)
        print("wrote %s (%d KB)" % (os.path.relpath(path, ROOT), os.path.getsize(path) // 1024))
    finally:
        context.close()


def main():
    if not os.path.isdir(LOGDIR):
        subprocess.run([sys.executable, os.path.join(ROOT, "demo", "run.py"), "--no-tensorboard"], check=True)
    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("Debian's chromium is needed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    process, url = start_tensorboard()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=chromium,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            shoot(browser, url, os.path.join(DOCS, "screenshot.png"), 1000, "weights")
            shoot(browser, url, os.path.join(DOCS, "screenshot-activations.png"), 1450, "activations")
            shoot(browser, url, os.path.join(DOCS, "screenshot-text.png"), 1000, "text")
            shoot(browser, url, os.path.join(DOCS, "screenshot-overview.png"), 700, "overview")
            browser.close()
    finally:
        process.terminate()
        process.wait(timeout=30)


if __name__ == "__main__":
    main()
