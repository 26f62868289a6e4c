"""Demo: train a small character-level PyTorch LSTM with GateLogger, then open TensorBoard.

The PyTorch twin of `demo/run.py`, on the same text (the source of Python's
`textwrap` module, so no download). Two runs differ only in a gate penalty:

- `torch_baseline`: none;
- `torch_l2_forget`: a strong L2 on the forget gate of the stacked LSTM's
  input and recurrent blocks (`GatePenalty`).

Logs go to `demo/logs/<run>`, beside the Keras demo's runs when both have
run, and open in the same LSTM Gates tab at http://localhost:6006/#lstm_gates.

    python demo/run_torch.py                 # train, then start TensorBoard
    python demo/run_torch.py --no-tensorboard --epochs 2
"""

import argparse
import os
import shutil
import sys

import torch
from run import HERE, serve, text_dataset
from torch import nn

from tb_lstm_gates.torch import GateLogger, GatePenalty

PENALTIES = {
    "torch_baseline": None,
    "torch_l2_forget": GatePenalty(l2={"input/forget": 1e-2, "recurrent/forget": 1e-2}),
}


class CharModel(nn.Module):
    def __init__(self, vocab_size):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, 24)
        self.rnn = nn.LSTM(24, 64, num_layers=2, batch_first=True)
        self.gru = nn.GRU(64, 32, batch_first=True)
        self.head = nn.Linear(32, vocab_size)

    def forward(self, tokens):
        y, _ = self.rnn(self.embedding(tokens))
        y, _ = self.gru(y)
        return self.head(y[:, -1])


def train(logdir, run, epochs):
    torch.manual_seed(0)
    x, y, vocab = text_dataset()
    x, y = torch.as_tensor(x, dtype=torch.long), torch.as_tensor(y, dtype=torch.long)
    model = CharModel(len(vocab))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    penalty = PENALTIES[run]
    step = 0
    # The probe's characters label the Text view; `log` runs after backward() and
    # before the next zero_grad(), so it also writes each gate's train_grad_norm.
    with GateLogger(os.path.join(logdir, run), probe=x[:256:8], penalty=penalty, probe_tokens=vocab) as gates:
        gates.log(model, step)
        for epoch in range(epochs):
            order = torch.randperm(len(x))
            for start in range(0, len(x), 128):
                batch = order[start : start + 128]
                optimizer.zero_grad()
                loss = nn.functional.cross_entropy(model(x[batch]), y[batch])
                total = loss if penalty is None else loss + penalty(model)
                total.backward()
                optimizer.step()
                step += 1
                # Every 5 batches, as the Keras demo logs.
                if step % 5 == 0:
                    gates.log(model, step, loss=loss.item())
            print("%s: epoch %d, loss %.3f" % (run, epoch + 1, loss.item()), flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logdir", default=os.path.join(HERE, "logs"))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--port", type=int, default=6006)
    parser.add_argument("--no-tensorboard", action="store_true", help="train only")
    args = parser.parse_args(argv)
    for run in PENALTIES:
        shutil.rmtree(os.path.join(args.logdir, run), ignore_errors=True)
        train(args.logdir, run, args.epochs)
    if args.no_tensorboard:
        return 0
    return serve(args.logdir, args.port)


if __name__ == "__main__":
    sys.exit(main())
