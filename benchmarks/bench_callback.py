"""Benchmark: what a logged step costs, for the Keras callback and the torch GateLogger.

For each: the blocking time (what training waits for in `on_epoch_end` or
`GateLogger.log`; the writer's thread is idle when the step starts, as after
an epoch of training), the total CPU time of the step (`time.process_time`,
every thread of the process, from the call until the writer's thread has
written and flushed the step), and the floor (the weights to numpy plus one
pass over them: single-threaded work, so the smaller of its wall and CPU
times, the less disturbed one, is taken), beside `keras.callbacks.TensorBoard(histogram_freq=1)` and
`torch.utils.tensorboard.SummaryWriter.add_histogram` of every parameter,
measured the same way. Prints a table and exits non-zero only on error. All
figures come from one process, so compare the ratios rather than the
absolute times.

    python benchmarks/bench_callback.py [--repeats 15] [--profile]
"""

import argparse
import cProfile
import os
import pstats
import statistics
import sys
import tempfile
import threading
import time
import tracemalloc

import numpy as np
from common import print_table

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


def floor(weights):
    """Copy every weight to numpy and make one pass over it."""
    total = 0.0
    for v in weights():
        total += float(np.asarray(v).sum())
    return total


def step_cost(step, drain, repeats, prepare=lambda: None):
    """Median `(blocking wall time, CPU time of all threads until drained)` of `repeats` calls of `step`.

    `prepare` (untimed) runs before each call, once `drain` has returned."""
    blocking, cpu = [], []
    for _ in range(repeats):
        drain()
        prepare()
        # Thread pools (TensorFlow's, OpenMP's) spin for a while after work
        # such as `prepare`'s: let them fall asleep outside the timed window.
        time.sleep(0.05)
        wall, started = time.perf_counter(), time.process_time()
        step()
        blocking.append(time.perf_counter() - wall)
        drain()
        cpu.append(time.process_time() - started)
    return statistics.median(blocking), statistics.median(cpu)


def profile_step(step, drain, prepare, repeats, title):
    """Prints where the CPU time of `repeats` steps goes, every thread included."""
    profiles = []
    original = threading.Thread.run

    def profiled_run(thread):
        profile = cProfile.Profile()
        profiles.append(profile)
        profile.runcall(original, thread)

    threading.Thread.run = profiled_run
    main = cProfile.Profile()
    try:
        for _ in range(repeats):
            drain()
            prepare()
            time.sleep(0.05)
            main.runcall(step)
            drain()
    finally:
        threading.Thread.run = original
    stats = pstats.Stats(main)
    for profile in profiles:
        stats.add(profile)
    print("\n## cProfile of %d steps: %s (training thread and writer threads)\n" % (repeats, title))
    stats.sort_stats("tottime").print_stats(18)


PROBE_SEQUENCES = 32


def epoch_end_time(model, repeats, **kwargs):
    """Median `on_epoch_end` blocking time of an `LSTMGatesCallback(**kwargs)` on `model`."""
    import tb_lstm_gates

    with tempfile.TemporaryDirectory() as tmp:
        callback = tb_lstm_gates.LSTMGatesCallback(tmp, **kwargs)
        start(callback, model, tmp)
        epoch = iter(range(1, 10**6))
        callback.on_epoch_end(next(epoch))  # the cold start of spectral_norm, once per run
        cost, _ = step_cost(lambda: callback.on_epoch_end(next(epoch)), callback._background.wait, repeats)
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


def keras_figures(args, rows):
    import keras

    import tb_lstm_gates
    from tb_lstm_gates.keras import discover

    model = big_model()
    n_weights = sum(int(np.prod(v.shape)) for v in model.weights)
    cells = discover.find_cells(model)
    recurrent_bytes = sum(np.asarray(v.numpy()).nbytes for c in cells for v in c.variables.values())
    rng = np.random.default_rng(0)

    def drift():
        # Weights drift by 1e-3 between logged steps, as in training (not timed).
        for v in model.weights:
            value = v.numpy()
            v.assign(value + 1e-3 * value.std() * rng.standard_normal(value.shape).astype(value.dtype))

    with tempfile.TemporaryDirectory() as tmp:
        ours = tb_lstm_gates.LSTMGatesCallback(os.path.join(tmp, "ours"))
        start(ours, model, tmp)
        epoch = iter(range(1, 10**6))
        ours.on_epoch_end(next(epoch))  # the cold start of spectral_norm, once per run

        def drain_ours():
            ours._background.wait()

        blocking, cpu = step_cost(lambda: ours.on_epoch_end(next(epoch)), drain_ours, args.repeats, drift)
        if args.profile:
            profile_step(lambda: ours.on_epoch_end(next(epoch)), drain_ours, drift, 5, "LSTMGatesCallback")

        keras_tb = keras.callbacks.TensorBoard(os.path.join(tmp, "keras"), histogram_freq=1)
        start(keras_tb, model, tmp)
        epoch_k = iter(range(1, 10**6))

        def drain_keras():
            keras_tb._train_writer.flush()

        _, keras_cpu = step_cost(
            lambda: keras_tb.on_epoch_end(next(epoch_k), {"loss": 0.0}), drain_keras, args.repeats, drift
        )
        keras_tb.on_train_end()

        floor_wall, floor_cpu = step_cost(
            lambda: floor(lambda: (v.numpy() for v in model.weights)), lambda: None, args.repeats, drift
        )

        tracemalloc.start()
        drain_ours()
        drift()
        base, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        ours.on_epoch_end(next(epoch))
        ours._background.wait()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        ours.on_train_end()

    rows.append(
        ("keras: model weights", "%.2f M (recurrent: %.1f MB)" % (n_weights / 1e6, recurrent_bytes / 2**20))
    )
    rows.append(
        (
            "keras: floor (weights to numpy + one pass), wall / CPU",
            "%.1f ms / %.1f ms" % (floor_wall * 1e3, floor_cpu * 1e3),
        )
    )
    rows.append(("keras: ours on_epoch_end blocking", "%.1f ms" % (blocking * 1e3)))
    rows.append(("keras: ours CPU per logged step (all threads, until flushed)", "%.1f ms" % (cpu * 1e3)))
    rows.append(("keras: TensorBoard(histogram_freq=1) CPU per step", "%.1f ms" % (keras_cpu * 1e3)))
    floor_time = min(floor_wall, floor_cpu)
    rows.append(("keras: blocking / floor (goal <= 1.5)", _goal(blocking / floor_time, 1.5)))
    rows.append(("keras: CPU / floor (goal <= 5)", _goal(cpu / floor_time, 5)))
    rows.append(("keras: CPU / Keras TensorBoard CPU (goal <= 0.05)", _goal(cpu / keras_cpu, 0.05)))
    extra = (peak - base) / recurrent_bytes
    rows.append(
        ("keras: peak extra memory in a step / recurrent weights (the snapshot is 1)", "%.3f" % extra)
    )
    rows.append(("keras: of it, beyond the snapshot (goal <= 1)", _goal(extra - 1, 1)))


def torch_figures(args, rows):
    import torch
    from torch.utils.tensorboard import SummaryWriter

    from tb_lstm_gates import torch as tg

    torch.manual_seed(0)
    torch.set_num_threads(1)  # as the Keras figures: one training thread's view, the writer's beside it
    model = torch.nn.LSTM(256, 512, num_layers=2, batch_first=True)

    def drift():
        with torch.no_grad():
            for p in model.parameters():
                p.add_(1e-3 * p.std() * torch.randn_like(p))

    with tempfile.TemporaryDirectory() as tmp:
        ours = tg.GateLogger(os.path.join(tmp, "ours"))
        steps = iter(range(10**6))
        ours.log(model, next(steps))  # the cold start of spectral_norm, once per run

        def drain_ours():
            ours._background.wait()

        blocking, cpu = step_cost(lambda: ours.log(model, next(steps)), drain_ours, args.repeats, drift)
        if args.profile:
            profile_step(lambda: ours.log(model, next(steps)), drain_ours, drift, 5, "GateLogger")
        ours.close()

        # Before SummaryWriter: its writer thread stays busy after it closes.
        floor_wall, floor_cpu = step_cost(
            lambda: floor(lambda: (p.detach().cpu().numpy().copy() for p in model.parameters())),
            lambda: None,
            args.repeats,
            drift,
        )

        writer = SummaryWriter(os.path.join(tmp, "add_histogram"))
        steps_h = iter(range(10**6))

        def add_histograms():
            step = next(steps_h)
            for name, p in model.named_parameters():
                writer.add_histogram(name, p, step)

        def drain_writer():
            writer.flush()

        _, histogram_cpu = step_cost(add_histograms, drain_writer, args.repeats, drift)
        writer.close()
    rows.append(
        (
            "torch: floor (weights to numpy + one pass), wall / CPU",
            "%.1f ms / %.1f ms" % (floor_wall * 1e3, floor_cpu * 1e3),
        )
    )
    rows.append(("torch: ours GateLogger.log blocking", "%.1f ms" % (blocking * 1e3)))
    rows.append(("torch: ours CPU per logged step (all threads, until flushed)", "%.1f ms" % (cpu * 1e3)))
    rows.append(
        ("torch: SummaryWriter.add_histogram of every parameter, CPU", "%.1f ms" % (histogram_cpu * 1e3))
    )
    floor_time = min(floor_wall, floor_cpu)
    rows.append(("torch: blocking / floor (goal <= 1.5)", _goal(blocking / floor_time, 1.5)))
    rows.append(("torch: CPU / floor (goal <= 5)", _goal(cpu / floor_time, 5)))
    rows.append(("torch: CPU / add_histogram CPU (goal <= 0.05)", _goal(cpu / histogram_cpu, 0.05)))


def _goal(ratio, goal):
    return "%.3f (%s)" % (ratio, "met" if ratio <= goal else "missed")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument(
        "--profile", action="store_true", help="also print a cProfile of 5 logged steps of each"
    )
    parser.add_argument("--no-demo", action="store_true", help="skip the demo model's epoch share")
    args = parser.parse_args(argv)

    rows = []
    keras_figures(args, rows)
    torch_figures(args, rows)
    if not args.no_demo:
        share = demo_epoch_share(args.repeats)
        rows.append(("demo: one training epoch", "%.0f ms" % (share[0] * 1e3)))
        rows.append(("demo: ours on_epoch_end blocking", "%.1f ms" % (share[1] * 1e3)))
        rows.append(("demo: ours blocking / epoch (goal <= 1%)", "%.2f%%" % (100 * share[1] / share[0])))
        probe_cost = share[2] - share[1]
        rows.append(
            (
                "demo: probe of %d sequences (activations + maps), blocking per logged step"
                % PROBE_SEQUENCES,
                "%.1f ms (%.2f%% of an epoch)" % (probe_cost * 1e3, 100 * probe_cost / share[0]),
            )
        )
        rows.append(
            (
                "demo: probe gradients, extra blocking per logged step",
                "%.1f ms" % ((share[3] - share[2]) * 1e3),
            )
        )
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
