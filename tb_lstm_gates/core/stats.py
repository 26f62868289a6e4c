"""Per-gate statistics and histograms of split weights, in vectorised passes.

Pure numpy. Every function takes a gate view of shape `(..., n_gates, units)`
(as `layouts.gate_view` returns) and reduces over every axis but the gate
axis (-2).

The fast path treats the view as a matrix of `n_gates * units` columns and
sweeps it in row chunks small enough to stay in the CPU cache: each chunk
feeds every per-column accumulator (sum, sum of squares, min, max, sum of
absolute values, squared change since the previous step), then a second
sweep bins it. Per-gate figures are reduced from the column accumulators at
the end. Temporary memory is one chunk and the histograms' bucket indices
(at most `PAIRED_ELEMENTS` bytes), whatever the weight's size.
"""

import numpy as np

DEFAULT_BINS = 30
# Elements per chunk: 128 Ki float32 values (512 KiB) stay in a core's L2 cache (1 to 2 MiB on the
# machines measured); smaller chunks cost more in per-call overhead than they gain.
CHUNK_ELEMENTS = 1 << 17
# What `gate_summary` returns: `(stats, histograms)`.
Summary = tuple[dict[str, np.ndarray], np.ndarray | None]


def gate_summary(view: np.ndarray, previous: np.ndarray | None = None, bins: int = DEFAULT_BINS) -> Summary:
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


def gate_stats(view: np.ndarray, previous: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The statistics of `gate_summary`, without histograms."""
    return gate_summary(view, previous, bins=0)[0]


def gate_histograms(view: np.ndarray, bins: int = DEFAULT_BINS) -> np.ndarray | None:
    """The histograms of `gate_summary`: shape `(n_gates, bins, 3)`."""
    return gate_summary(view, bins=bins)[1]


def update_ratio(view: np.ndarray, previous: np.ndarray) -> np.ndarray:
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

    With at most 256 buckets in all (a byte per index), the indices of
    several chunks are gathered and counted two at a time (`_count_pairs`).
    """
    lo, hi = _bin_edges(lo, hi, bins)
    columns = matrix.shape[1:]
    units = matrix[0].size // n_gates
    width = (hi - lo) / bins
    low = np.repeat(lo, units).astype(matrix.dtype).reshape(columns)
    scale = np.repeat((1 - 1e-6) / width, units).astype(matrix.dtype).reshape(columns)
    buckets = n_gates * bins
    index_type = np.uint8 if buckets <= 256 else np.intp
    gate_start = np.repeat(np.arange(n_gates) * bins, units).astype(index_type).reshape(columns)
    counts = np.zeros(buckets, dtype=np.int64)
    chunk = min(matrix.size, CHUNK_ELEMENTS + matrix[0].size)
    scratch = np.empty(chunk, dtype=matrix.dtype)
    # Byte indices waiting to be counted; None where they are counted per chunk.
    pending = None
    if index_type is np.uint8 and finite is None:
        pending, filled = np.empty(max(chunk, min(matrix.size, PAIRED_ELEMENTS)), np.uint8), 0
    for rows in _chunks(matrix):
        x = matrix[rows]
        tmp = scratch[: x.size].reshape(x.shape)
        np.subtract(x, low, out=tmp)
        tmp *= scale
        if pending is None:
            index = tmp.astype(index_type)
            index += gate_start
            if finite is not None:
                index = index[finite[rows]]
            counts += np.bincount(index.ravel(), minlength=buckets)
            continue
        if filled + x.size > pending.size:
            counts += _count_pairs(pending[:filled], buckets)
            filled = 0
        index = pending[filled : filled + x.size].reshape(x.shape)
        np.copyto(index, tmp, casting="unsafe")
        index += gate_start
        filled += x.size
    if pending is not None:
        counts += _count_pairs(pending[:filled], buckets)
    edges = lo[:, None] + width[:, None] * np.arange(bins + 1)
    edges[:, -1] = hi
    counts = counts.reshape(n_gates, bins).astype(np.float64)
    return np.stack([edges[:, :-1], edges[:, 1:], counts], axis=-1)


# Byte indices gathered before `_count_pairs` counts them (256 KiB; bincount widens them to 2 MiB).
PAIRED_ELEMENTS = 1 << 18


def _count_pairs(index, buckets):
    """How often each of `buckets` byte values occurs in `index`, counting two bytes at a time.

    `np.bincount` widens its input to 8-byte integers first, which costs
    more than the counting; read as 16-bit values, the same bytes are half
    as many. Each 16-bit value holds two indices (which one is the high byte
    depends on the machine's byte order), so the counts of a byte value are
    its row's sum plus its column's sum in the 256 x 256 table.
    """
    even = index.size - index.size % 2
    table = np.bincount(index[:even].view(np.uint16), minlength=1 << 16).reshape(256, 256)
    counts = table.sum(axis=0) + table.sum(axis=1)
    return counts[:buckets] + np.bincount(index[even:], minlength=buckets)


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

# Lanczos iteration on M^T M, one start vector per gate: the previous logged
# step's top singular vector (warm), else a fixed random vector (cold: the
# first step, or weights that jumped), which keeps logged values
# reproducible. Between logged steps the weights move little, so the warm
# vector keeps nearly all its weight on the new top singular vector and two
# steps (three passes over the block) settle the estimate: the Ritz values
# grow with each step, and all gates' growing by less than SPECTRAL_SETTLED
# (relative, on the squared value) ends it.
#
# Growth alone can stop too early from a poor start: on random Gaussian blocks of 256 to 1024 units, 1
# cold start in 36 stalled at 2e-3 below the top before climbing. So a warm start must be near a singular
# vector (its first residual ||A q - alpha q|| at most SPECTRAL_NEAR * alpha: 0.003 to 0.015 after drifts
# of 1e-3 to 1e-2, about 1 from a random vector), or it is dropped; and a cold start runs at least
# SPECTRAL_COLD_MIN_STEPS steps (40 steps reached 1e-4 on all 36 blocks, 50 reached 5e-7). Where the top
# singular values cluster (each gate's block orthogonal: initialized so per gate, as PyTorch code often
# does, or pulled there by `GateRegularizer(orthogonal=...)`), any start is near the top and Lanczos
# settles in 5 to 7 steps, where power or subspace iteration stall. The products are einsum loops, one
# thread and no BLAS: on a busy machine a threaded BLAS call waits for a core far longer than the product
# takes.
SPECTRAL_SETTLED = 1e-4
SPECTRAL_NEAR = 0.1
SPECTRAL_WARM_STEPS = 20
SPECTRAL_COLD_MIN_STEPS = 60
SPECTRAL_COLD_STEPS = 100


def spectral_norm(view: np.ndarray, start: np.ndarray | None = None) -> np.ndarray:
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


def top_singular(view: np.ndarray, start: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The largest singular value of each gate block of `view` and its right singular vector.

    Lanczos iteration on `M^T M` for every gate at once (see
    `SPECTRAL_SETTLED`): from `start`, the previous step's vectors, for at
    most `SPECTRAL_WARM_STEPS` (usually two steps: three passes over the
    blocks); then, if it has not settled or `start` is None or does not fit,
    from a fixed random vector for at most `SPECTRAL_COLD_STEPS`. Each step
    is one or two `(rows, units)` products per gate, against a full SVD's
    `rows * units^2`.

    Returns:
      `(values, vectors)`: float64 `(n_gates,)` as `spectral_norm`
      returns, and float32 or float64 `(n_gates, n)` unit vectors to pass
      as the next step's `start` (`n` is `units`, or the rows for a
      transposed view, whose blocks are taken as `M^T`).
    """
    dtype = view.dtype if view.dtype in (np.float32, np.float64) else np.float64
    # PyTorch's weights come transposed: M^T has the same singular values,
    # and contiguous rows, which the einsum products read fast.
    blocks = _gate_columns(np.asarray(view, dtype=dtype))
    n_gates, units = blocks.shape[-2:]
    if start is not None and start.shape == (n_gates, units) and np.all(np.linalg.norm(start, axis=1) > 0):
        values, vectors, settled = _lanczos(blocks, start.astype(np.float64), warm=True)
        if settled:
            return values, vectors
    cold = np.random.default_rng(0).standard_normal((n_gates, units))
    return _lanczos(blocks, cold, warm=False)[:2]


def _lanczos(blocks, start, warm):
    """`(values, vectors, settled)` of Lanczos on each gate's M^T M from `start`.

    Settled: the top Ritz value of every gate grew by at most
    `SPECTRAL_SETTLED` in a step, after at least two steps from a `warm`
    start near a singular vector (one that is not ends it at once, not
    settled), or `SPECTRAL_COLD_MIN_STEPS` from a cold one.
    Step m's Ritz value needs only `M q_m` (alpha_m = ||M q_m||^2); the
    product with M^T that makes the next vector runs only when the estimate
    has not settled. Blocks holding NaN or Inf (whose alpha is not finite)
    get NaN and take no further part.
    """
    dtype = blocks.dtype
    n_gates, units = blocks.shape[-2:]
    min_steps, steps = (2, SPECTRAL_WARM_STEPS) if warm else (SPECTRAL_COLD_MIN_STEPS, SPECTRAL_COLD_STEPS)
    steps = min(steps, units)
    basis = np.zeros((steps, n_gates, units))
    alphas, betas = np.zeros((n_gates, steps)), np.zeros((n_gates, steps))
    q = first = start / np.linalg.norm(start, axis=1, keepdims=True)
    finite, previous = None, None
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        for m in range(steps):
            basis[m] = q
            image = np.einsum("rgu,gu->rg", blocks, q.astype(dtype))
            alpha = np.einsum("rg,rg->g", image, image, dtype=np.float64)
            if finite is None:
                finite = np.isfinite(alpha)
            alphas[:, m] = np.where(finite, alpha, 0.0)
            tridiagonal = np.zeros((n_gates, m + 1, m + 1))
            tridiagonal[:, range(m + 1), range(m + 1)] = alphas[:, : m + 1]
            tridiagonal[:, range(1, m + 1), range(m)] = betas[:, :m]
            tridiagonal[:, range(m), range(1, m + 1)] = betas[:, :m]
            theta, ritz = np.linalg.eigh(tridiagonal)
            top, top_ritz = theta[:, -1], ritz[:, :, -1]
            settled = (
                m > 0
                and m + 1 >= min(min_steps, steps)
                and bool(np.all(top - previous <= SPECTRAL_SETTLED * top))
            )
            if settled or m == steps - 1:
                break
            previous = top
            z = np.einsum("rgu,rg->gu", blocks, image).astype(np.float64)
            z[~finite] = 0.0
            done = basis[: m + 1]
            for _ in range(2):  # full reorthogonalization, twice is enough
                z -= np.einsum("mgu,mg->gu", done, np.einsum("mgu,gu->mg", done, z))
            beta = np.linalg.norm(z, axis=1)
            if warm and m == 0 and np.any(beta > SPECTRAL_NEAR * alphas[:, 0]):
                return None, None, False  # a warm start far from any singular vector: the weights jumped
            betas[:, m] = beta
            q = z / np.where(beta > 0, beta, 1)[:, None]
    vectors = np.einsum("mgu,gm->gu", basis[: m + 1], top_ritz)
    vectors[~finite] = first[~finite]  # a start for the next step, should the block become finite
    values = np.where(finite, np.sqrt(np.maximum(top, 0.0)), np.nan)
    return values, vectors.astype(dtype), settled
