"""Helpers shared by the benchmark scripts."""

import statistics
import time


def median_time(fn, repeats):
    """Median wall time of `repeats` calls of `fn`, in seconds."""
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def print_table(rows):
    """Prints `(figure, value)` rows as a Markdown table."""
    width = max(len(name) for name, _ in rows)
    print("| %s | value |" % "figure".ljust(width))
    print("| %s | --- |" % ("-" * width))
    for name, value in rows:
        print("| %s | %s |" % (name.ljust(width), value))
