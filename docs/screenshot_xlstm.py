"""Takes `docs/screenshot-xlstm.png`: an sLSTM head's probe activations, with the Head selector.

Trains a small xLSTM stack (the `xlstm` package, vanilla sLSTM backend, CPU)
on a copy task for 60 steps with `GateLogger` and a probe, into
a temporary directory, then opens the tab on it as `docs/screenshot.py`
does (a real TensorBoard, headless Debian Chromium).

    python docs/screenshot_xlstm.py
"""

import os
import shutil
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import screenshot  # noqa: E402  (the demo's screenshots: TensorBoard start, DRAWN)

from tb_lstm_gates.torch import GateLogger  # noqa: E402

LAYER = "stack/blocks/1/xlstm/head1"
WIDTH, TIME, HEADS = 32, 24, 4


class Model(torch.nn.Module):
    """An embedding, an mLSTM and an sLSTM block, a readout: recall the token 4 steps back."""

    def __init__(self):
        super().__init__()
        from xlstm import (
            FeedForwardConfig,
            mLSTMBlockConfig,
            mLSTMLayerConfig,
            sLSTMBlockConfig,
            sLSTMLayerConfig,
            xLSTMBlockStack,
            xLSTMBlockStackConfig,
        )

        self.embed = torch.nn.Embedding(16, WIDTH)
        self.stack = xLSTMBlockStack(
            xLSTMBlockStackConfig(
                mlstm_block=mLSTMBlockConfig(
                    mlstm=mLSTMLayerConfig(conv1d_kernel_size=4, qkv_proj_blocksize=4, num_heads=HEADS)
                ),
                slstm_block=sLSTMBlockConfig(
                    slstm=sLSTMLayerConfig(backend="vanilla", num_heads=HEADS, conv1d_kernel_size=4),
                    feedforward=FeedForwardConfig(proj_factor=1.3, act_fn="gelu"),
                ),
                context_length=TIME,
                num_blocks=2,
                embedding_dim=WIDTH,
                slstm_at=[1],
            )
        )
        self.readout = torch.nn.Linear(WIDTH, 16)

    def forward(self, tokens):
        return self.readout(self.stack(self.embed(tokens)))


def train(logdir, steps=60):
    torch.manual_seed(0)
    model = Model()
    tokens = torch.randint(0, 16, (32, TIME), generator=torch.Generator().manual_seed(1))
    target = torch.roll(tokens, 4, dims=1)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    with GateLogger(os.path.join(logdir, "copy"), probe=tokens[:8], step_unit="batch") as gates:
        for step in range(steps + 1):
            if step % 10 == 0:
                gates.log(model, step)
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(
                model(tokens)[:, 4:].flatten(0, 1), target[:, 4:].flatten()
            )
            loss.backward()
            optimizer.step()
    print("trained: loss %.3f" % loss.item())


def shoot(browser, url, path):
    context = browser.new_context(viewport={"width": 1400, "height": 1250})
    try:
        page = context.new_page()
        page.goto(url + "#lstm_gates")
        page.wait_for_selector("iframe", state="attached", timeout=60000)
        frame = page.frame_locator("iframe")
        frame.locator(".gates .chart canvas").first.wait_for(timeout=60000)
        frame.locator(".layer-select").select_option(LAYER)
        frame.locator(".head-select").wait_for(timeout=60000)
        frame.locator(".view-switch button[data-view=activations]").click()
        tab = next(f for f in page.frames if "plugin_entry.html" in f.url)
        tab.wait_for_function(screenshot.DRAWN, arg=".activations .chart canvas")
        page.screenshot(path=path)
        print("wrote %s (%d KB)" % (os.path.relpath(path, screenshot.ROOT), os.path.getsize(path) // 1024))
    finally:
        context.close()


def main():
    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("Debian's chromium is needed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as logdir:
        train(logdir)
        screenshot.LOGDIR = logdir
        process, url = screenshot.start_tensorboard()
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=chromium,
                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
                )
                shoot(browser, url, os.path.join(screenshot.DOCS, "screenshot-xlstm.png"))
                browser.close()
        finally:
            process.terminate()
            process.wait(timeout=30)


if __name__ == "__main__":
    main()
