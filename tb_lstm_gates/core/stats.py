"""Per-gate statistics and histograms of split weights, in vectorised passes.

Pure numpy. Every function takes a gate view of shape `(..., n_gates, units)`
(as `layouts.gate_view` returns) and reduces over every axis but the gate
axis (-2).

The fast path treats the view as a matrix of `n_gates * units` columns and
sweeps it in row chunks small enough to stay in the CPU cache: each chunk
feeds every per-column accumulator (sum, sum of squares, min, max, sum of
absolute values, squared change since the previous step), then a second
sweep bins it. Per-gate figures are reduced from the column accumulators at
the end. Temporary memory is one chunk, whatever the weight's size.
"""

import numpy as np

DEFAULT_BINS = 30
# Elements per chunk: 64 Ki float32 values (256 KiB) fit in a core's L2 cache.
CHUNK_ELEMENTS = 1 << 16


def gate_summary(view, previous=None, bins=DEFAULT_BINS):
    """Statistics and histograms of each gate block of `view`.

    Non-finite values (NaN, +-Inf) are counted in `nonfinite` and left out of
    every other statistic and of the histograms, so one diverged unit does
    not hide the rest.

    Args:
      view: array of shape `(..., n_gates, units)`.
      previous: the same view at the previous logged step, or None. When
        given, `update_ratio` = ||view - previous|| / ||previous|| per gate.
      bins: histogram buckets per gate; 0 for no histograms.

    Returns:
      `(stats, histograms)`: `stats` maps each stat name to a float64 array
      of shape `(n_gates,)`; `histograms` is a float64 array of shape
      `(n_gates, bins, 3)` with rows `[left, right, count]` (TensorBoard's
      histogram format), or None when `bins` is 0.
    """
    if previous is not None and previous.shape != view.shape:
        raise ValueError(
            "weight changed shape from %s to %s between logged steps" % (previous.shape, view.shape)
        )
    n_gates, units = view.shape[-2:]
    matrix, prev_matrix = _gate_columns(view), None if previous is None else _gate_columns(previous)
    units = matrix.shape[-1]  # the rows of a transposed view (see _gate_columns)
    columns = _column_sums(matrix, prev_matrix)
    if not np.isfinite(columns["sum"]).all():
        # Float64 sums of finite values cannot overflow, so only NaN or Inf
        # weights get here: take the slower masked path.
        return _masked_summary(view, previous, bins)
    count = matrix.shape[0] * units

    def per_gate(column_values, reduce=np.sum):
        return reduce(column_values.reshape(n_gates, units), axis=1).astype(np.float64)

    total, sumsq = per_gate(columns["sum"]), per_gate(columns["sumsq"])
    mean = total / count
    lo, hi = per_gate(columns["min"], np.min), per_gate(columns["max"], np.max)
    result = {
        "l2": np.sqrt(sumsq),
        "mean": mean,
        "std": np.sqrt(np.maximum(sumsq / count - mean * mean, 0.0)),
        "min": lo,
        "max": hi,
        "mean_abs": per_gate(columns["abs"]) / count,
        "max_abs": np.maximum(-lo, hi),
        "nonfinite": np.zeros(n_gates),
    }
    if previous is not None:
        with np.errstate(invalid="ignore", divide="ignore"):
            result["update_ratio"] = np.sqrt(per_gate(columns["diffsq"]) / per_gate(columns["prevsq"]))
    histograms = _histograms(matrix, n_gates, lo, hi, bins) if bins else None
    return result, histograms


def gate_stats(view, previous=None):
    """The statistics of `gate_summary`, without histograms."""
    return gate_summary(view, previous, bins=0)[0]


def gate_histograms(view, bins=DEFAULT_BINS):
    """The histograms of `gate_summary`: shape `(n_gates, bins, 3)`."""
    return gate_summary(view, bins=bins)[1]


def update_ratio(view, previous):
    """||view - previous||_F / ||previous||_F per gate, shape `(n_gates,)`."""
    return gate_stats(view, previous)["update_ratio"]


def _gate_columns(view):
    """`view` as `(rows, n_gates, width)` with contiguous last axis where it allows, without a copy.

    The units are the width for a view whose units are contiguous (Keras,
    TF1); the view's leading axis is, for a transposed view (PyTorch's
    weights, stored `(gates * units, inputs)`): every statistic and
    histogram of a gate is the same over its values in any order.
    """
    n_gates, units = view.shape[-2:]
    if (
        view.ndim == 3
        and not view.flags.c_contiguous
        and np.swapaxes(view, 0, -1).strides[-1] == view.itemsize
    ):
        return np.swapaxes(view, 0, -1)
    return view.reshape(-1, n_gates, units)


def _chunks(matrix):
    step = max(1, CHUNK_ELEMENTS // max(1, matrix[0].size))
    for start in range(0, matrix.shape[0], step):
        yield slice(start, start + step)


def _column_sums(matrix, previous):
    """One sweep: per-column sum, sum of squares, min, max, sum of |w| (and change)."""
    columns = matrix.shape[1:]
    acc = {k: np.zeros(columns) for k in ("sum", "sumsq", "abs")}
    acc["min"] = np.full(columns, np.inf, dtype=matrix.dtype)
    acc["max"] = np.full(columns, -np.inf, dtype=matrix.dtype)
    if previous is not None:
        acc["diffsq"], acc["prevsq"] = np.zeros(columns), np.zeros(columns)
    scratch = np.empty(min(matrix.size, CHUNK_ELEMENTS + matrix[0].size), dtype=matrix.dtype)
    for rows in _chunks(matrix):
        x = matrix[rows]
        tmp = scratch[: x.size].reshape(x.shape)
        acc["sum"] += x.sum(axis=0)
        acc["sumsq"] += np.einsum("i...,i...->...", x, x)
        np.minimum(acc["min"], x.min(axis=0), out=acc["min"])
        np.maximum(acc["max"], x.max(axis=0), out=acc["max"])
        acc["abs"] += np.abs(x, out=tmp).sum(axis=0)
        if previous is not None:
            p = previous[rows]
            np.subtract(x, p, out=tmp)
            acc["diffsq"] += np.einsum("i...,i...->...", tmp, tmp)
            acc["prevsq"] += np.einsum("i...,i...->...", p, p)
    return acc


def _bin_edges(lo, hi, bins):
    """Finite `(lo, hi)` per gate; a constant block gets a unit-wide range centred on its value."""
    lo = np.where(np.isfinite(lo), lo, 0.0)
    hi = np.where(np.isfinite(hi), hi, 0.0)
    flat = hi <= lo
    return np.where(flat, lo - 0.5, lo), np.where(flat, hi + 0.5, hi)


def _histograms(matrix, n_gates, lo, hi, bins, finite=None):
    """Second sweep: bucket index of each value, offset by its gate, counted at once.

    `(x - lo) * scale` is never negative for `x >= lo` (IEEE subtraction is
    monotonic), and a scale shrunk by one part in a million keeps `x == hi`
    below `bins`, so truncation alone gives the bucket: no clip pass.
    """
    lo, hi = _bin_edges(lo, hi, bins)
    columns = matrix.shape[1:]
    units = matrix[0].size // n_gates
    width = (hi - lo) / bins
    low = np.repeat(lo, units).astype(matrix.dtype).reshape(columns)
    scale = np.repeat((1 - 1e-6) / width, units).astype(matrix.dtype).reshape(columns)
    index_type = np.uint8 if n_gates * bins <= 256 else np.intp
    gate_start = np.repeat(np.arange(n_gates) * bins, units).astype(index_type).reshape(columns)
    counts = np.zeros(n_gates * bins, dtype=np.int64)
    scratch = np.empty(min(matrix.size, CHUNK_ELEMENTS + matrix[0].size), dtype=matrix.dtype)
    for rows in _chunks(matrix):
        x = matrix[rows]
        tmp = scratch[: x.size].reshape(x.shape)
        np.subtract(x, low, out=tmp)
        tmp *= scale
        index = tmp.astype(index_type)
        index += gate_start
        if finite is not None:
            index = index[finite[rows]]
        counts += np.bincount(index.ravel(), minlength=n_gates * bins)
    edges = lo[:, None] + width[:, None] * np.arange(bins + 1)
    edges[:, -1] = hi
    counts = counts.reshape(n_gates, bins).astype(np.float64)
    return np.stack([edges[:, :-1], edges[:, 1:], counts], axis=-1)


def _masked_summary(view, previous, bins):
    """`gate_summary` for weights holding NaN or Inf: whole-array masked passes."""
    n_gates, units = view.shape[-2:]
    axes = tuple(i for i in range(view.ndim) if i != view.ndim - 2)
    count = view.size // n_gates
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
        result = {
            "l2": np.where(empty, np.nan, np.sqrt(sumsq)),
            "mean": mean,
            "std": np.sqrt(np.maximum(sumsq / n - mean * mean, 0.0)),
            "min": lo,
            "max": hi,
            "mean_abs": np.abs(clean).sum(axis=axes) / n,
            "max_abs": np.maximum(-lo, hi),
            "nonfinite": count - n,
        }
        if previous is not None:
            diff = np.subtract(view, previous, dtype=np.float64)
            result["update_ratio"] = np.sqrt((diff * diff).sum(axis=axes)) / np.sqrt(
                np.square(previous, dtype=np.float64).sum(axis=axes)
            )
    histograms = None
    if bins:
        matrix = np.where(finite, view, 0).reshape(-1, n_gates * units)
        histograms = _histograms(matrix, n_gates, lo, hi, bins, finite.reshape(matrix.shape))
    return result, histograms


# The tolerance `spectral_norm` is tested to: relative to `np.linalg.norm(W, 2)`,
# on drifting weights (warm start) and after a sudden jump (cold start).
SPECTRAL_TOLERANCE = 1e-3

# Cold start: power iteration on a block of vectors (subspace iteration).
# The largest singular value of the block's image converges at the rate
# (s_{k+1} / s_1)^2 rather than (s_2 / s_1)^2, so trained and random
# matrices, whose top singular values cluster, converge in tens of
# iterations. A fixed start keeps the logged values reproducible.
SPECTRAL_VECTORS = 8
SPECTRAL_COLD_SETTLED = 2e-5
SPECTRAL_MAX_ITERATIONS = 100

# Warm start: Lanczos iteration on M^T M from the previous step's singular
# vector, one vector per gate. Between logged steps the weights move little,
# so that vector keeps nearly all its weight on the new top singular vector
# and two Lanczos steps (four passes over the block) settle the estimate,
# even where the top singular values cluster (orthogonal initializations),
# which stalls plain power iteration. Ritz values grow with each step; one
# that grew by less than SPECTRAL_WARM_SETTLED (relative) ends it; after
# SPECTRAL_WARM_STEPS the cold start runs instead (the weights jumped). The
# products are einsum loops, one thread and no BLAS: on a busy machine a
# threaded BLAS call waits for a core far longer than the product takes.
SPECTRAL_WARM_SETTLED = 1e-4
SPECTRAL_WARM_STEPS = 5


def spectral_norm(view, start=None):
    """Largest singular value of each gate block of `view`, within `SPECTRAL_TOLERANCE`.

    Each block `view[..., g, :]` is taken as a matrix `M` of shape
    `(rows, units)`, its leading axes flattened into rows: for a recurrent
    kernel `(units, n_gates, units)`, the matrix that multiplies h_{t-1}.
    The estimate never exceeds the true value.

    Args:
      view: array of shape `(..., n_gates, units)`.
      start: None, or the vectors `top_singular` returned for the same
        blocks at the previous logged step, to start from (see `top_singular`).

    Returns:
      float64 array of shape `(n_gates,)`; NaN for a block holding NaN or
      Inf, 0 for an all-zero block.
    """
    return top_singular(view, start)[0]


def top_singular(view, start=None):
    """The largest singular value of each gate block of `view` and its right singular vector.

    Without `start`, iterates `Q <- orth(M^T M Q)` on `SPECTRAL_VECTORS`
    vectors for every gate at once, until the largest singular value of
    `M Q` changes by less than `SPECTRAL_COLD_SETTLED` (relative) or after
    `SPECTRAL_MAX_ITERATIONS`: two `(rows, units) x (units, 8)` products per
    gate and iteration, against a full SVD's `rows * units^2`.

    With `start`, the previous step's vectors, Lanczos iteration from them
    (two passes over the blocks per step, usually two steps); if an estimate
    has not settled after `SPECTRAL_WARM_STEPS` (the weights jumped), or
    `start` does not fit, the cold start runs.

    Returns:
      `(values, vectors)`: float64 `(n_gates,)` as `spectral_norm`
      returns, and float32 or float64 `(n_gates, n)` unit vectors to pass
      as the next step's `start` (`n` is `units`, or the rows for a
      transposed view, whose blocks are taken as `M^T`).
    """
    n_gates, units = view.shape[-2:]
    dtype = view.dtype if view.dtype in (np.float32, np.float64) else np.float64
    # PyTorch's weights come transposed: M^T has the same singular values,
    # and contiguous rows, which the einsum products read fast.
    blocks = _gate_columns(np.asarray(view, dtype=dtype))
    n_gates, units = blocks.shape[-2:]
    if start is not None and start.shape == (n_gates, units):
        values, vectors = _warm_lanczos(blocks, start.astype(np.float64))
        if np.isfinite(values).all():
            return values, vectors
    return _subspace_iteration(blocks)


def _warm_lanczos(blocks, start):
    """Lanczos on M^T M from `start`; NaN for the blocks that have not settled (or hold NaN or Inf)."""
    dtype = blocks.dtype
    q = start / np.linalg.norm(start, axis=1, keepdims=True)
    basis, alphas, betas, previous = [], [], [], None
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        for _ in range(SPECTRAL_WARM_STEPS):
            basis.append(q)
            image = np.einsum("rgu,gu->rg", blocks, q.astype(dtype))
            z = np.einsum("rgu,rg->gu", blocks, image).astype(np.float64)
            alphas.append(np.einsum("gu,gu->g", q, z))
            for _ in range(2):  # full reorthogonalization, twice is enough
                for p in basis:
                    z -= np.einsum("gu,gu->g", p, z)[:, None] * p
            beta = np.linalg.norm(z, axis=1)
            m = len(alphas)
            tridiagonal = np.zeros((len(q), m, m))
            tridiagonal[:, range(m), range(m)] = np.stack(alphas, axis=1)
            if m > 1:
                off = np.stack(betas, axis=1)
                tridiagonal[:, range(1, m), range(m - 1)] = off
                tridiagonal[:, range(m - 1), range(1, m)] = off
            if not np.isfinite(tridiagonal).all():
                break
            theta, ritz = np.linalg.eigh(tridiagonal)
            top, top_ritz = theta[:, -1], ritz[:, :, -1]
            if m > 1 and np.all(top - previous <= SPECTRAL_WARM_SETTLED * top):
                vectors = np.einsum("mgu,gm->gu", np.stack(basis), top_ritz)
                return np.sqrt(np.maximum(top, 0.0)), vectors.astype(dtype)
            previous = top
            betas.append(beta)
            q = z / np.where(beta > 0, beta, 1)[:, None]
    return np.full(len(q), np.nan), start


def _subspace_iteration(blocks):
    """The cold start of `top_singular`."""
    n_gates, rows, units = blocks.shape[1], blocks.shape[0], blocks.shape[2]
    # (n_gates, rows, units), contiguous once so every product runs in BLAS.
    matrices = np.ascontiguousarray(np.moveaxis(blocks, 1, 0))
    finite = np.isfinite(matrices).all(axis=(1, 2))
    matrices[~finite] = 0
    k = min(SPECTRAL_VECTORS, units, rows)
    basis = np.linalg.qr(
        np.random.default_rng(0).standard_normal((n_gates, units, k)).astype(matrices.dtype)
    )[0]
    estimate = np.zeros(n_gates)
    for _ in range(SPECTRAL_MAX_ITERATIONS):
        image = matrices @ basis
        previous = estimate
        estimate = np.linalg.svd(image.astype(np.float64), compute_uv=False)[:, 0]
        converged = np.abs(estimate - previous) <= SPECTRAL_COLD_SETTLED * estimate
        if converged.all():
            break
        basis = np.linalg.qr(np.swapaxes(matrices, 1, 2) @ image)[0]
    # The top right singular vector of M Q, taken back to the units' space.
    top = np.linalg.svd(image.astype(np.float64))[2][:, 0, :]
    vectors = np.einsum("guk,gk->gu", basis.astype(np.float64), top).astype(matrices.dtype)
    return np.where(finite, estimate, np.nan), vectors
