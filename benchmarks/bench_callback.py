"""Benchmark: the callback's cost beside keras.callbacks.TensorBoard and the floor.

Prints a table and exits non-zero only on error. All figures come from one
process, so compare the ratios rather than the absolute times.

    python benchmarks/bench_callback.py [--repeats 15]
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
import tracemalloc

import numpy as np
from common import median_time, print_table

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def big_model():
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((20, 256)),
            keras.layers.LSTM(512, return_sequences=True),
            keras.layers.LSTM(512),
            keras.layers.Dense(1),
        ]
    )
    model.compile("adam", "mse")
    return model


def start(callback, model, logdir):
    callback.set_model(model)
    callback.set_params({"epochs": 1000, "steps": 1, "verbose": 0})
    callback.on_train_begin()
    callback.on_epoch_begin(0)


def floor(model):
    """Copy every weight to numpy and make one pass over it."""
    total = 0.0
    for v in model.weights:
        total += float(np.asarray(v.numpy()).sum())
    return total


PROBE_SEQUENCES = 32


def writer_time(cells, logdir, repeats):
    """Median time of writing one step of `cells`' statistics and histograms, computed beforehand:
    the event writer's share of `on_epoch_end`."""
    from tb_lstm_gates.core import stats
    from tb_lstm_gates.logs import summary

    pieces = [
        (cell, part, gates, *stats.gate_summary(view, view))
        for cell in cells
        for part, gates, view in cell.layout.blocks(cell.arrays())
    ]
    writer = summary.GateSummaryWriter(logdir)
    steps = iter(range(1, 10**6))

    def write():
        for cell, part, gates, block_stats, histograms in pieces:
            writer.write_gate_stats(cell.layer, cell.layout.cell, part, gates, block_stats)
            writer.write_gate_histograms(cell.layer, cell.layout.cell, part, gates, histograms)
        writer.end_step(next(steps))

    cost = median_time(write, repeats * 10)
    writer.close()
    return cost


def epoch_end_time(model, repeats, **kwargs):
    """Median `on_epoch_end` time of an `LSTMGatesCallback(**kwargs)` on `model`."""
    import tb_lstm_gates

    with tempfile.TemporaryDirectory() as tmp:
        callback = tb_lstm_gates.LSTMGatesCallback(tmp, **kwargs)
        start(callback, model, tmp)
        epoch = iter(range(1, 10**6))
        cost = median_time(lambda: callback.on_epoch_end(next(epoch)), repeats)
        callback.on_train_end()
    return cost


def demo_epoch_share(repeats):
    """Median epoch time and `on_epoch_end` times on the demo's model and data.

    Returns:
      `(epoch, ours, ours with a probe, ours with a probe and its gradients)`.
    """
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "demo"))
    import keras
    import run as demo

    x, y, vocab = demo.text_dataset()
    model = demo.build_model(len(vocab))
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=64, epochs=1, verbose=0)  # compile and warm up
    epochs = []
    for _ in range(3):
        t = time.perf_counter()
        model.fit(x, y, batch_size=64, epochs=1, verbose=0)
        epochs.append(time.perf_counter() - t)
    probe = (x[:PROBE_SEQUENCES], y[:PROBE_SEQUENCES])
    return (
        statistics.median(epochs),
        epoch_end_time(model, repeats),
        epoch_end_time(model, repeats, probe=probe),
        epoch_end_time(model, repeats, probe=probe, probe_gradients=True),
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args(argv)

    import keras

    import tb_lstm_gates
    from tb_lstm_gates.keras import discover

    model = big_model()
    n_weights = sum(int(np.prod(v.shape)) for v in model.weights)
    cells = discover.find_cells(model)
    recurrent_bytes = sum(np.asarray(v.numpy()).nbytes for c in cells for v in c.variables.values())
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        ours = tb_lstm_gates.LSTMGatesCallback(os.path.join(tmp, "ours"))
        start(ours, model, tmp)
        epoch = iter(range(1, 10**6))
        t_ours = median_time(lambda: ours.on_epoch_end(next(epoch)), args.repeats)

        keras_tb = keras.callbacks.TensorBoard(os.path.join(tmp, "keras"), histogram_freq=1)
        start(keras_tb, model, tmp)
        epoch_k = iter(range(1, 10**6))
        t_keras = median_time(lambda: keras_tb.on_epoch_end(next(epoch_k), {"loss": 0.0}), args.repeats)
        keras_tb.on_train_end()

        t_floor = median_time(lambda: floor(model), args.repeats)
        t_writer = writer_time(cells, os.path.join(tmp, "writer"), args.repeats)

        tracemalloc.start()
        ours.on_epoch_end(next(epoch))
        tracemalloc.reset_peak()
        base, _ = tracemalloc.get_traced_memory()
        ours.on_epoch_end(next(epoch))
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        ours.on_train_end()

    share = demo_epoch_share(args.repeats)
    rows.append(("model weights", "%.2f M (recurrent: %.1f MB)" % (n_weights / 1e6, recurrent_bytes / 2**20)))
    rows.append(("ours on_epoch_end (stats + histograms)", "%.1f ms" % (t_ours * 1e3)))
    rows.append(("keras TensorBoard(histogram_freq=1) on_epoch_end", "%.1f ms" % (t_keras * 1e3)))
    rows.append(("floor: weights to numpy + one pass", "%.1f ms" % (t_floor * 1e3)))
    rows.append(("of ours: the event writer alone", "%.2f ms" % (t_writer * 1e3)))
    rows.append(("ours / keras TensorBoard (target <= 0.10)", "%.3f" % (t_ours / t_keras)))
    rows.append(("ours / floor (target <= 5)", "%.2f" % (t_ours / t_floor)))
    rows.append(
        ("peak extra memory / recurrent weights (target <= 1)", "%.2f" % ((peak - base) / recurrent_bytes))
    )
    rows.append(("demo: one training epoch", "%.0f ms" % (share[0] * 1e3)))
    rows.append(("demo: ours on_epoch_end", "%.1f ms" % (share[1] * 1e3)))
    rows.append(("demo: ours / epoch (target <= 1%)", "%.2f%%" % (100 * share[1] / share[0])))
    probe_cost = share[2] - share[1]
    rows.append(
        (
            "demo: probe of %d sequences (activations + maps), per logged step" % PROBE_SEQUENCES,
            "%.1f ms (%.2f%% of an epoch)" % (probe_cost * 1e3, 100 * probe_cost / share[0]),
        )
    )
    rows.append(
        (
            "demo: probe gradients, extra per logged step",
            "%.1f ms" % ((share[3] - share[2]) * 1e3),
        )
    )
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
