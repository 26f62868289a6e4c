"""Takes the TF1 page's screenshot: the Activations view of the seed's model, probed.

Runs the probe example of docs/getting-started/tf1.md (the block after
"The probe") as written, in its own process with `TF_USE_LEGACY_KERAS=1`,
into a temporary directory, then shoots the tab on its logs as
`docs/screenshot.py` does, and saves `docs/screenshot-tf1-activations.png`.

    python docs/screenshot_tf1.py

Needs the tab's bundle (`npm run build` in frontend/) and Debian's chromium.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile

import screenshot

PAGE = os.path.join(screenshot.DOCS, "getting-started", "tf1.md")
OUT = os.path.join(screenshot.DOCS, "screenshot-tf1-activations.png")


def main():
    text = open(PAGE, encoding="utf-8").read()
    example = re.findall(r"<!-- run alone -->\s*\n```python\n(.*?)```", text, re.S)[-1]
    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("Debian's chromium is needed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, TF_USE_LEGACY_KERAS="1", PYTHONPATH=screenshot.ROOT)
        subprocess.run([sys.executable, "-c", example], cwd=tmp, env=env, check=True)
        screenshot.LOGDIR = os.path.join(tmp, "logs")
        screenshot.LAYER = "doc_word/fw/lstm_cell"
        process, url = screenshot.start_tensorboard()
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=chromium,
                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
                )
                screenshot.shoot(browser, url, OUT, 1450, "activations")
                browser.close()
        finally:
            process.terminate()
            process.wait(timeout=30)


if __name__ == "__main__":
    main()
