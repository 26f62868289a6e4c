"""Demo: train a small character-level LSTM with LSTMGatesCallback, then open TensorBoard.

The training text is the source of Python's own `textwrap` module, so the demo
needs no download. Three runs differ only in the gate regularization of the
LSTM, so the tab shows its effect side by side:

- `baseline`: none;
- `l2_forget`: a strong L2 on the forget gate of the kernel and recurrent kernel;
- `orthogonal`: each gate's recurrent block pulled towards an orthogonal matrix.

Logs go to `demo/logs/<run>`; TensorBoard then serves them and the LSTM Gates
tab is at http://localhost:6006/#lstm_gates.

    python demo/run.py                 # train, then start TensorBoard
    python demo/run.py --no-tensorboard --epochs 2
"""

import argparse
import inspect
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import webbrowser

import numpy as np

from tb_lstm_gates.cli import import_tensorflow_quietly

HERE = os.path.dirname(os.path.abspath(__file__))
SEQ_LEN = 40


def text_dataset(seq_len=SEQ_LEN, stride=5):
    """(inputs, targets, vocabulary): next-character prediction on textwrap's source."""
    text = inspect.getsource(textwrap)
    vocab = sorted(set(text))
    ids = np.array([vocab.index(c) for c in text], dtype=np.int32)
    starts = np.arange(0, len(ids) - seq_len - 1, stride)
    x = np.stack([ids[s : s + seq_len] for s in starts])
    y = ids[starts + seq_len]
    return x, y, vocab


def build_model(vocab_size, **rnn_kwargs):
    import keras

    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((SEQ_LEN,), dtype="int32"),
            keras.layers.Embedding(vocab_size, 24),
            keras.layers.LSTM(64, return_sequences=True, name="lstm", **rnn_kwargs),
            keras.layers.GRU(32, name="gru"),
            keras.layers.Dense(vocab_size, activation="softmax"),
        ],
        name="char_model",
    )


def regularization(run):
    """The LSTM's regularizer arguments for each run."""
    from tb_lstm_gates import GateRegularizer

    forget_l2 = GateRegularizer("lstm", l2={"forget": 1e-2})
    return {
        "baseline": {},
        "l2_forget": dict(kernel_regularizer=forget_l2, recurrent_regularizer=forget_l2),
        "orthogonal": dict(recurrent_regularizer=GateRegularizer("lstm", orthogonal=3e-3)),
    }[run]


RUNS = ("baseline", "l2_forget", "orthogonal")


def train(logdir, run, epochs):
    import keras

    import tb_lstm_gates

    x, y, vocab = text_dataset()
    model = build_model(len(vocab), **regularization(run))
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
    run_dir = os.path.join(logdir, run)
    model.fit(
        x,
        y,
        batch_size=128,
        epochs=epochs,
        verbose=2,
        callbacks=[
            keras.callbacks.TensorBoard(run_dir),
            # Every 5 batches: about 30 points per run over 5 short epochs.
            # The probe (32 fixed sequences, every 8th, so its text reads on
            # without overlap) feeds the Activations view; its characters,
            # decoded by the vocabulary, label the Text view.
            tb_lstm_gates.LSTMGatesCallback(run_dir, update_freq=5, probe=x[:256:8], probe_tokens=vocab),
        ],
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logdir", default=os.path.join(HERE, "logs"))
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--port", type=int, default=6006)
    parser.add_argument("--no-tensorboard", action="store_true", help="train only")
    args = parser.parse_args(argv)
    # TensorFlow's C++ start-up lines (oneDNN, a missing CUDA driver) would open the demo's output.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import_tensorflow_quietly()
    shutil.rmtree(args.logdir, ignore_errors=True)
    for run in RUNS:
        print("\n== run %s ==" % run, flush=True)
        train(args.logdir, run, args.epochs)
    if args.no_tensorboard:
        return 0
    return serve(args.logdir, args.port)


def serve(logdir, port):
    """Runs TensorBoard on `logdir` and opens the LSTM Gates tab, until Ctrl-C or SIGTERM stops both."""
    url = "http://localhost:%d/#lstm_gates" % port
    print("\nLSTM Gates tab: %s  (Ctrl-C to stop)\n" % url, flush=True)
    # SIGTERM (`kill`, a process manager, a closed terminal's session) stops
    # the demo as Ctrl-C does; without this TensorBoard would outlive it.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    server = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", logdir, "--port", str(port)]
    )
    try:
        webbrowser.open(url)
        return server.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def _interrupt(signum, frame):
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
