"""One logged step of the Keras callback: what training waits for, and what the writer's thread does."""

import functools
from typing import Any

from tb_lstm_gates.keras import penalties as keras_penalties
from tb_lstm_gates.logs import background


def write_step(
    model: Any,
    cells: Any,
    probe: Any,
    writer_thread: Any,
    writer: Any,
    logger: Any,
    step: Any,
    histograms: Any,
    logs: Any,
) -> None:
    """Logs `step`: the probe and the weights' copy now, statistics and writing on `writer_thread`.

    Training waits only for what reads the model (the probe, the
    penalties) and for a copy of the weights; statistics, histograms and
    writing run on the writer's thread (see `logs.background`).
    """
    probed = background.StepRecorder()
    if probe is not None:
        probe.log(probed, maps=histograms)
    # At most one step in flight: the previous one is done before this
    # step's copy is taken, so memory holds one snapshot at a time.
    writer_thread.wait()
    snapshot = [(cell, cell.snapshot()) for cell in cells]
    penalized = background.StepRecorder()
    penalties = [(cell, keras_penalties.cell_penalties(cell, arrays)) for cell, arrays in snapshot]
    keras_penalties.write_penalties(penalized, model, penalties, (logs or {}).get("loss"))
    writer_thread.submit(
        functools.partial(_write_snapshot, writer, logger, step, histograms, probed, snapshot, penalized)
    )


def _write_snapshot(
    writer: Any, logger: Any, step: Any, histograms: Any, probed: Any, snapshot: Any, penalized: Any
) -> None:
    """One step's work on the writer's thread: statistics of the copied weights, then the event."""
    probed.replay(writer)
    for cell, arrays in snapshot:
        logger.log_cell(cell.layer, cell.layout, arrays, histograms)
    penalized.replay(writer)
    writer.end_step(step)
