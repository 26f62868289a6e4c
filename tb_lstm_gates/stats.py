"""Per-gate statistics and histograms of split weights, in vectorised passes.

Pure numpy. Every function takes a gate view of shape `(..., n_gates, units)`
(as `layouts.gate_view` returns) and reduces over every axis but the gate
axis (-2), so one pass over a weight serves all of its gates.
"""

import numpy as np

DEFAULT_BINS = 30


def _reduce_axes(view):
    return tuple(i for i in range(view.ndim) if i != view.ndim - 2)


def gate_stats(view, previous=None):
    """Statistics of each gate block of `view`.

    Non-finite values (NaN, +-Inf) are counted in `nonfinite` and left out of
    every other statistic, so one diverged unit does not hide the rest.

    Args:
      view: array of shape `(..., n_gates, units)`.
      previous: the same view at the previous logged step, or None. When
        given, `update_ratio` = ||view - previous|| / ||previous|| per gate.

    Returns:
      dict from stat name to a float64 array of shape `(n_gates,)`.
    """
    axes = _reduce_axes(view)
    count = view.size // view.shape[-2]
    total = view.sum(axis=axes, dtype=np.float64)
    if np.isfinite(total).all():
        # Float64 sums of finite float32/float64 values cannot overflow, so a
        # finite sum proves every value finite: no mask pass needed.
        stats = _finite_stats(view, axes, count, total)
    else:
        stats = _masked_stats(view, axes, count)
    if previous is not None:
        stats["update_ratio"] = update_ratio(view, previous)
    return stats


def _finite_stats(view, axes, count, total):
    sumsq = np.einsum(_sumsq_subscripts(view.ndim), view, view, dtype=np.float64)
    mean = total / count
    lo = view.min(axis=axes).astype(np.float64)
    hi = view.max(axis=axes).astype(np.float64)
    return {
        "l2": np.sqrt(sumsq),
        "mean": mean,
        "std": np.sqrt(np.maximum(sumsq / count - mean * mean, 0.0)),
        "min": lo,
        "max": hi,
        "mean_abs": np.abs(view).sum(axis=axes, dtype=np.float64) / count,
        "max_abs": np.maximum(-lo, hi),
        "nonfinite": np.zeros(view.shape[-2]),
    }


def _masked_stats(view, axes, count):
    finite = np.isfinite(view)
    n = finite.sum(axis=axes).astype(np.float64)
    clean = np.where(finite, view, 0).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        sumsq = (clean * clean).sum(axis=axes)
        mean = clean.sum(axis=axes) / n
        lo = np.where(finite, view, np.inf).min(axis=axes).astype(np.float64)
        hi = np.where(finite, view, -np.inf).max(axis=axes).astype(np.float64)
        empty = n == 0
        lo[empty] = np.nan
        hi[empty] = np.nan
        return {
            "l2": np.where(empty, np.nan, np.sqrt(sumsq)),
            "mean": mean,
            "std": np.sqrt(np.maximum(sumsq / n - mean * mean, 0.0)),
            "min": lo,
            "max": hi,
            "mean_abs": np.abs(clean).sum(axis=axes) / n,
            "max_abs": np.maximum(-lo, hi),
            "nonfinite": count - n,
        }


def _sumsq_subscripts(ndim):
    letters = "abcdefghijklmnopqrstuvwxyz"[:ndim]
    gate = letters[ndim - 2]
    return "%s,%s->%s" % (letters, letters, gate)


def update_ratio(view, previous):
    """||view - previous||_F / ||previous||_F per gate, shape `(n_gates,)`."""
    if previous.shape != view.shape:
        raise ValueError(
            "weight changed shape from %s to %s between logged steps"
            % (previous.shape, view.shape)
        )
    diff = np.subtract(view, previous, dtype=np.float64)
    subs = _sumsq_subscripts(view.ndim)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sqrt(np.einsum(subs, diff, diff)) / np.sqrt(
            np.einsum(subs, previous, previous, dtype=np.float64)
        )


def gate_histograms(view, bins=DEFAULT_BINS, lo=None, hi=None, all_finite=False):
    """Histogram of each gate block, in TensorBoard's format.

    Bucket edges span each gate's own finite range in `bins` equal buckets;
    non-finite values are not counted.

    Args:
      view: array of shape `(..., n_gates, units)`.
      bins: number of buckets.
      lo, hi: each gate's finite min and max (shape `(n_gates,)`) if already
        known, to save a pass.
      all_finite: True if `view` is known to hold no NaN or Inf (as
        `gate_stats` reports), to save a pass.

    Returns:
      float64 array of shape `(n_gates, bins, 3)`: rows `[left, right, count]`.
    """
    n_gates = view.shape[-2]
    axes = _reduce_axes(view)
    if lo is None or hi is None:
        finite = np.isfinite(view)
        lo = np.where(finite, view, np.inf).min(axis=axes).astype(np.float64)
        hi = np.where(finite, view, -np.inf).max(axis=axes).astype(np.float64)
    lo = np.where(np.isfinite(lo), lo, 0.0)
    hi = np.where(np.isfinite(hi), hi, 0.0)
    # A constant block (e.g. a zero-initialised bias) gets a unit-wide range
    # centred on its value, as TensorBoard's own histograms do.
    flat = hi <= lo
    lo = np.where(flat, lo - 0.5, lo)
    hi = np.where(flat, hi + 0.5, hi)
    width = (hi - lo) / bins
    shape = [1] * view.ndim
    shape[-2] = n_gates
    scaled = (view - lo.reshape(shape).astype(view.dtype)) / width.reshape(shape).astype(view.dtype)
    if not all_finite:
        valid = np.isfinite(scaled)
        scaled = np.where(valid, scaled, 0)
    index = np.clip(scaled, 0, bins - 1, out=scaled).astype(np.intp)
    index += (np.arange(n_gates) * bins).reshape(shape)
    if not all_finite:
        index = index[valid]
    counts = np.bincount(index.ravel(), minlength=n_gates * bins).reshape(n_gates, bins)
    edges = lo[:, None] + width[:, None] * np.arange(bins + 1)
    edges[:, -1] = hi
    return np.stack([edges[:, :-1], edges[:, 1:], counts.astype(np.float64)], axis=-1)
