"""The torch GateLogger's cost on an xLSTM stack (the `xlstm` package, vanilla sLSTM backend, CPU).

A 4-block `xLSTMBlockStack` (embedding 128, 4 heads, sLSTM at blocks 1 and
3, mLSTM at 0 and 2; 32 steps, batch 8), trained on random data. Beside the median
time of one training step (forward, backward, Adam) it prints the median
**blocking time** of `GateLogger.log` (what training waits for: the
weights' copy, and the probe when there is one), with and without a probe
of 8 sequences, and the **CPU time** of a logged step until the writer's
thread has written it. Medians of `--steps` logged steps.

    pip install -e '.[test]'
    python benchmarks/bench_xlstm.py
"""

import argparse
import statistics
import subprocess
import tempfile
import time

import torch
from xlstm import (
    FeedForwardConfig,
    mLSTMBlockConfig,
    mLSTMLayerConfig,
    sLSTMBlockConfig,
    sLSTMLayerConfig,
    xLSTMBlockStack,
    xLSTMBlockStackConfig,
)

from tb_lstm_gates.torch import GateLogger, find_cells

WIDTH, TIME, BATCH, HEADS = 128, 32, 8, 4


def stack():
    return xLSTMBlockStack(
        xLSTMBlockStackConfig(
            mlstm_block=mLSTMBlockConfig(
                mlstm=mLSTMLayerConfig(conv1d_kernel_size=4, qkv_proj_blocksize=4, num_heads=HEADS)
            ),
            slstm_block=sLSTMBlockConfig(
                slstm=sLSTMLayerConfig(backend="vanilla", num_heads=HEADS, conv1d_kernel_size=4),
                feedforward=FeedForwardConfig(proj_factor=1.3, act_fn="gelu"),
            ),
            context_length=TIME,
            num_blocks=4,
            embedding_dim=WIDTH,
            slstm_at=[1, 3],
        )
    )


def measure(steps, probe):
    torch.manual_seed(0)
    model = stack()
    x = torch.randn(BATCH, TIME, WIDTH)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    train, blocking, cpu = [], [], []
    with tempfile.TemporaryDirectory() as logdir:
        with GateLogger(logdir, probe=x[:8] if probe else None, histogram_freq=1) as logger:
            for step in range(steps + 1):
                start = time.perf_counter()
                optimizer.zero_grad()
                model(x).square().mean().backward()
                optimizer.step()
                train.append(time.perf_counter() - start)
                cpu_start, start = time.process_time(), time.perf_counter()
                logger.log(model, step)
                blocking.append(time.perf_counter() - start)
                logger._background.wait()  # the step written, for its CPU time
                cpu.append(time.process_time() - cpu_start)
    # The first step compiles nothing but warms caches: left out.
    return [statistics.median(v[1:]) for v in (train, blocking, cpu)], model


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(2)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    (train, blocking, cpu), model = measure(args.steps, probe=False)
    (_, blocking_probe, cpu_probe), _ = measure(args.steps, probe=True)
    weights = sum(p.numel() for p in model.parameters())
    layers = [c.layer for c in find_cells(model)]
    print("commit %s, torch %s, %d threads" % (commit, torch.__version__, torch.get_num_threads()))
    print("xLSTMBlockStack: %d weights, %d logged layers (%s)" % (weights, len(layers), ", ".join(layers)))
    print("| measure | median (ms) | of a training step |")
    print("| --- | ---: | ---: |")
    print(
        "| training step (forward, backward, Adam; batch %d x %d steps) | %.1f | 1 |"
        % (BATCH, TIME, 1e3 * train)
    )
    for name, value in (
        ("`log` blocking, no probe", blocking),
        ("`log` CPU until written, no probe", cpu),
        ("`log` blocking, probe of 8 sequences", blocking_probe),
        ("`log` CPU until written, probe of 8 sequences", cpu_probe),
    ):
        print("| %s | %.1f | %.3f |" % (name, 1e3 * value, value / train))


if __name__ == "__main__":
    main()
