"""What a run directory already holds: the steps logged there, for the callback to continue or warn."""

import os
from typing import Any

from tb_lstm_gates.logs import summary


def logged_steps(run_dir: Any) -> Any:
    """The steps of tb-lstm-gates' events in `run_dir` (local or remote), as a set; empty if none."""
    files = summary.gfile(run_dir)
    if not files.isdir(run_dir):
        return set()
    steps: set[int] = set()
    for name in files.listdir(run_dir):
        if "tfevents" in name and name.endswith(".lstm_gates"):
            steps.update(
                e.step for e in summary.read_events(os.path.join(run_dir, name)) if e.HasField("summary")
            )
    return steps


def exists(path: Any) -> Any:
    return summary.gfile(path).exists(path)


def step_range(steps: Any) -> Any:
    steps = sorted(steps)
    if steps == list(range(steps[0], steps[-1] + 1)):
        return "%d to %d" % (steps[0], steps[-1]) if len(steps) > 1 else str(steps[0])
    shown = ", ".join(map(str, steps[:5]))
    return shown + (", ... %d" % steps[-1] if len(steps) > 5 else "")
