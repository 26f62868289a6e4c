"""Each run's part of a `series` answer, as JSON text, kept until TensorBoard lists new points for it.

A sweep's `series` answer for one layer is 50,000 tensors read through
the data provider (one per run and step), turned into numpy one by one by
TensorBoard, then 13 MB of JSON: about 2 s for 500 runs, for each reload
of the tab, though most runs of a sweep have ended. So each run's series
are kept as the JSON text of the answer, under the run's listing of that
layer (the tag, last step and last wall time of each time series, as
`unpack.listing_keys` gives them), and a request reads and encodes only the
runs whose listing changed. At most `MAX_BYTES` of text are kept, the least
recently used dropped first.
"""

import collections
import threading

MAX_BYTES = 128 * 2**20


class SeriesCache:
    """`{(run, experiment, layer, stat, samples, wall_times): (listing key, JSON text)}`, bounded in bytes."""

    def __init__(self, max_bytes=MAX_BYTES):
        self._lock = threading.Lock()
        self._max_bytes = max_bytes
        self._bytes = 0
        self._kept = collections.OrderedDict()

    def get(self, key, listing):
        """The text kept under `key` if it was made at `listing`, else None."""
        with self._lock:
            kept = self._kept.get(key)
            if kept is None or kept[0] != listing:
                return None
            self._kept.move_to_end(key)
            return kept[1]

    def put(self, key, listing, text):
        with self._lock:
            old = self._kept.pop(key, None)
            if old is not None:
                self._bytes -= len(old[1])
            self._kept[key] = (listing, text)
            self._bytes += len(text)
            while self._bytes > self._max_bytes and len(self._kept) > 1:
                self._bytes -= len(self._kept.popitem(last=False)[1][1])
