"""Where a warning points: the user's line that led to it, not ours or a framework's.

A warning raised while logging is reached through layers of Keras or
TensorFlow (`model.fit` -> callback list -> our callback; `sess.run` ->
`MonitoredSession` -> our hook), whose depth differs between versions, so no
fixed `stacklevel` names the user's `model.fit(...)` line. Python 3.12's
`skip_file_prefixes` does this; this module does the same on older versions.
"""

import os
import sys
import types

# Packages whose frames lie between the user's call and a warning of ours.
_LIBRARIES = (
    "tb_lstm_gates",
    "keras",
    "tf_keras",
    "tensorflow",
    "torch",
    "lightning",
    "pytorch_lightning",
    "jax",
)


def user_stacklevel() -> int:
    """The `stacklevel` for `warnings.warn`, called in the function calling this, of the user's line.

    That is the first frame, outward from the caller, whose file lies outside
    tb-lstm-gates and the frameworks above; 1 (the caller) if every frame does.
    """
    # Only packages already imported can have frames on the stack.
    prefixes = tuple(
        os.path.dirname(module.__file__) + os.sep
        for module in map(sys.modules.get, _LIBRARIES)
        if module is not None and module.__file__
    )
    frame: types.FrameType | None = sys._getframe(1)
    level = 1
    while frame is not None and frame.f_code.co_filename.startswith(prefixes):
        frame, level = frame.f_back, level + 1
    return 1 if frame is None else level
