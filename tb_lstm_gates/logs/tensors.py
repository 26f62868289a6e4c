"""The `TensorProto`s of the data contract: arrays, and histograms packed as ends and counts."""

import numpy as np
from tensorboard.compat.proto import tensor_pb2, tensor_shape_pb2, types_pb2


def array_tensor(values, dtype):
    """A `TensorProto` of `values` as `dtype` (float32, float16, uint8, uint16 or uint32), any shape."""
    values = np.ascontiguousarray(values, dtype=dtype)
    return tensor_pb2.TensorProto(
        dtype=_PROTO_DTYPES[values.dtype],
        tensor_shape=tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=n) for n in values.shape]
        ),
        tensor_content=values.tobytes(),
    )


_PROTO_DTYPES = {
    np.dtype(np.float32): types_pb2.DT_FLOAT,
    np.dtype(np.float16): types_pb2.DT_HALF,
    np.dtype(np.uint8): types_pb2.DT_UINT8,
    np.dtype(np.uint16): types_pb2.DT_UINT16,
    np.dtype(np.uint32): types_pb2.DT_UINT32,
}


def pack_histograms(histograms):
    """`(ends, counts)` of `n` histograms of `k` even buckets: float32 `(n, 2)` `[left, right]`, int64 `(n, k)`.

    Args:
      histograms: array of shape `(n, k, 3)`, rows `[left, right, count]`,
        as `stats.gate_summary` returns.

    Raises:
      ValueError: the buckets of a histogram are not contiguous and evenly
        spaced (what `stats` makes), so the edges cannot be rebuilt from
        the ends, or the counts are not whole numbers below 2**32.
    """
    histograms = np.asarray(histograms, dtype=np.float64)
    if histograms.ndim != 3 or histograms.shape[-1] != 3 or not histograms.shape[1]:
        raise ValueError("histograms must have shape (gates, buckets, 3), got %s" % (histograms.shape,))
    left, right = histograms[:, 0, 0], histograms[:, -1, 1]
    k = histograms.shape[1]
    edges = left[:, None] + ((right - left) / k)[:, None] * np.arange(k + 1)
    edges[:, -1] = right
    tolerance = 1e-6 * np.abs(right - left)[:, None] + 1e-12
    if not (
        np.all(np.abs(histograms[:, :, 0] - edges[:, :-1]) <= tolerance)
        and np.all(np.abs(histograms[:, :, 1] - edges[:, 1:]) <= tolerance)
    ):
        raise ValueError(
            "histogram buckets must be contiguous and evenly spaced (as stats.gate_summary makes them); "
            "compute them with stats.gate_histograms"
        )
    counts = histograms[:, :, 2]
    if not (np.all(counts >= 0) and np.all(counts < 2**32) and np.all(counts == np.round(counts))):
        raise ValueError("histogram counts must be whole numbers from 0 to 2**32 - 1")
    return np.stack([left, right], axis=-1).astype(np.float32), counts.astype(np.int64)


def histogram_tensor(ends, counts):
    """Packed histograms: `[..., ends as float32 bits, counts]` in the smallest unsigned type that holds the counts.

    Args:
      ends: float32 array `(..., 2)`, `[left, right]` of each histogram.
      counts: int array `(..., bins)`.
    """
    largest = int(counts.max()) if counts.size else 0
    dtype = next(t for t in (np.uint8, np.uint16, np.uint32) if largest <= np.iinfo(t).max)
    bits = np.ascontiguousarray(ends, dtype=np.float32).view(dtype)
    return array_tensor(np.concatenate([bits, counts.astype(dtype)], axis=-1), dtype)
