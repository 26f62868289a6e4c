"""The probe's self-check: the gates recomputed from the logged blocks must give the framework's own output.

Every probe recomputes each probed cell's gates and outputs in numpy from
the weight blocks it logs (`activations.Trace.outputs`), and captures the
framework's own output of the same calls (`Trace.reference_outputs`). If the
two differ, the logged blocks are not the weights (or the inputs) the model
computed with: a wrapper swapped them (weight drop), a custom cell's `call`
changes them, and every statistic of the layer describes another model.

`difference` is the largest difference between the two over the valid
steps, relative to the output's scale where that exceeds 1:

    max |recomputed - reference| / max(1, max |reference|)

so it is an absolute difference for outputs within [-1, 1] (an LSTM's or a
GRU's h with tanh) and a relative one for larger outputs (relu, a
ConvLSTM's unbounded activations). Past TOLERANCE the check fails.

A non-finite output on both sides (a diverged model computes NaN both ways)
is no mismatch; on one side only, the difference is infinite.
"""

import numpy as np

# Largest `difference` of a healthy cell. The recomputation runs in float64
# from float32 weights, the framework in float32 (on TensorFlow's, torch's
# or XLA's kernels): over a sequence their rounding drifts apart. Measured
# on every structure of the Keras generator (tests/keras_structures.py),
# the demo and the examples: at most about 1e-5 over hundreds of steps.
# A weight changed by the model behind the logger's back differs by far
# more: dropping one weight in ten moves h by 1e-2 and above.
TOLERANCE = 1e-3


def difference(outputs, reference, valid):
    """The largest difference between `outputs` and `reference` at the valid steps (see the module).

    Args:
      outputs, reference: `(batch, time, ...)` arrays of one shape.
      valid: `(batch, time)` bool, False at masked and padded steps.

    Returns:
      a float >= 0; inf where one side is finite and the other not; nan
      where no step is valid.
    """
    outputs = np.asarray(outputs, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    if outputs.shape != reference.shape:
        raise ValueError(
            "the recomputed outputs %s and the framework's %s differ in shape"
            % (outputs.shape, reference.shape)
        )
    valid = np.asarray(valid, dtype=bool)
    if not valid.any():
        return float("nan")
    ours, theirs = outputs[valid], reference[valid]
    finite_ours, finite_theirs = np.isfinite(ours), np.isfinite(theirs)
    if np.any(finite_ours != finite_theirs):
        return float("inf")
    # Non-finite on both sides: equal if both are the same infinity or NaN.
    both = ~finite_ours
    if np.any(both & ~np.isnan(ours) & (ours != theirs)):
        return float("inf")
    ours, theirs = ours[finite_ours], theirs[finite_ours]
    if ours.size == 0:
        return 0.0
    scale = max(1.0, float(np.abs(theirs).max()))
    return float(np.abs(ours - theirs).max() / scale)


def check(trace):
    """`difference` of a `Trace`'s recomputed outputs and its `reference_outputs`; None where it has none.

    Only valid steps are compared, `valid` read in the outputs' time order
    (reversed for `outputs_backwards`). A NaN in the reference at a valid
    step is compared like any other value: a framework that computed NaN
    where the recomputation did not is a mismatch.
    """
    reference = trace.reference_outputs
    if reference is None:
        return None
    valid = np.asarray(trace.valid, dtype=bool)
    if trace.outputs_backwards:
        valid = valid[:, ::-1]
    outputs = np.asarray(trace.outputs)
    if outputs.shape != np.shape(reference):
        raise ValueError(
            "reference_outputs %s is not shaped as outputs %s" % (np.shape(reference), outputs.shape)
        )
    return difference(outputs, reference, valid)


def mismatched(value, tolerance=TOLERANCE):
    """Whether a `difference` is past `tolerance` (inf is; nan, no valid step, is not)."""
    return value is not None and not np.isnan(value) and value > tolerance
