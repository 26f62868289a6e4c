"""Which process of a `tf.distribute` cluster writes the logs.

Reads `TF_CONFIG` only, so the Keras callback and the TF1 hook share it
without importing TensorFlow or Keras.
"""

import json
import os


def is_chief() -> bool:
    """Whether this process is the chief of its `tf.distribute` cluster (or alone).

    The chief is the `chief` task, or worker 0 when the cluster has no chief,
    as TensorFlow's own `MultiWorkerMirroredStrategy` decides.
    """
    try:
        config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    except ValueError:
        return True
    task = config.get("task") or {}
    task_type, task_id = task.get("type"), task.get("index", 0)
    if task_type in (None, "chief", "evaluator"):
        return task_type != "evaluator"
    if task_type == "worker":
        return "chief" not in (config.get("cluster") or {}) and int(task_id) == 0
    return False
