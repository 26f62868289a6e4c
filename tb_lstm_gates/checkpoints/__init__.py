"""Checkpoints of past runs imported into a run, one logged step per checkpoint.

`importer` decides each checkpoint's step, compares it with what the run
already holds and writes it; `formats` reads each file format (TF
checkpoints, Keras `.weights.h5` / `.keras`, PyTorch and Lightning files)
into cells found by their variable names. Nothing here builds a model; a
TF checkpoint needs TensorFlow, a PyTorch file needs torch, and nothing
else imports either.
"""

from tb_lstm_gates.checkpoints.formats import CheckpointError, one_line
from tb_lstm_gates.checkpoints.importer import (
    RECIPE,
    Checkpoint,
    find_checkpoints,
    import_checkpoints,
    open_checkpoint,
    step_from_name,
)

__all__ = [
    "RECIPE",
    "Checkpoint",
    "CheckpointError",
    "find_checkpoints",
    "import_checkpoints",
    "one_line",
    "open_checkpoint",
    "step_from_name",
]
