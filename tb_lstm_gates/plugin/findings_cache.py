"""Each run's findings, kept until TensorBoard lists new points for that run.

The rules of `tb_lstm_gates.findings` read every point of every scalar
series of a run: about 35 ms a run of 100 epochs x 4 cells, so 17 s for a
sweep of 500 runs, on every auto-reload of the tab. Every rule looks
within one run, so a run's findings depend on its own series only. The
listing of a run's time series (`list_scalars`, `list_tensors`) is cheap
and says, per time series, its last step and last wall time, which change
whenever TensorBoard loads a point (also a step written again by a resumed
run). So a run's findings are kept under that listing, and a request reads
only the runs whose listing changed.

TensorBoard serves requests on several threads: the table is guarded by a
lock, and one request (or the thread it hands its remaining runs to)
checks runs at a time; the others answer with what is kept
(`begin_checking`). `refresh` schedules the checks: a request checks
stale runs in batches until its budget is spent, then hands the rest to a
background thread.
"""

import collections
import logging
import threading
import time

logger = logging.getLogger(__name__)

# Threshold overrides (`set`) kept at once; each has its own findings per run.
SETTINGS_KEPT = 4
# Seconds a `findings` request spends checking runs before it answers with
# the others pending (a background thread goes on with them), and the runs
# read together (one read per batch).
FINDINGS_BUDGET = 0.5
FINDINGS_BATCH = 16


def settings_key(settings):
    """A hashable form of `parse_settings`' overrides (None: the defaults)."""
    return tuple(sorted((settings or {}).items()))


class FindingsCache:
    """Per threshold settings and run, the run's findings and the listing key they were computed at."""

    def __init__(self):
        self._lock = threading.Lock()
        # Held by whoever checks runs: a request, then the thread it hands the rest to.
        self._checking = threading.Lock()
        # settings key -> {run: (run key, findings)}, the most recently used settings last.
        self._by_settings = collections.OrderedDict()

    def lookup(self, settings, keys):
        """`(kept, stale)` for the runs of `keys` (`{run: key}`, see `unpack.listing_keys`).

        `kept`: `{run: findings}` of every run with findings kept, also when
        they were computed at another key. `stale`: the runs, in name order,
        whose kept findings are not those of their key (or that have none).
        """
        with self._lock:
            table = self._by_settings.setdefault(settings_key(settings), {})
            self._by_settings.move_to_end(settings_key(settings))
            while len(self._by_settings) > SETTINGS_KEPT:
                self._by_settings.popitem(last=False)
            kept = {run: table[run][1] for run in keys if run in table}
            stale = sorted(run for run, key in keys.items() if run not in table or table[run][0] != key)
            return kept, stale

    def store(self, settings, run, key, found):
        """Keeps `found`, the findings of `run` at listing key `key`."""
        with self._lock:
            self._by_settings.setdefault(settings_key(settings), {})[run] = (key, found)

    def forget_others(self, runs):
        """Drops the findings of runs not in `runs` (runs gone from the log directory)."""
        with self._lock:
            for table in self._by_settings.values():
                for run in set(table) - set(runs):
                    del table[run]

    def begin_checking(self):
        """Whether the caller may check runs now (no one else does); if so, it calls `end_checking` when done."""
        return self._checking.acquire(blocking=False)

    def end_checking(self):
        self._checking.release()

    def refresh(self, settings, stale, keys, check, kept, budget=FINDINGS_BUDGET):
        """Checks the runs of `stale` and keeps their findings; returns the set of runs checked now.

        `check(runs)` returns `{run: findings}` of a batch of runs; `keys`
        is `{run: listing key}`. Runs are checked a batch at a time until
        `budget` seconds have passed (None: all), their findings added to
        `kept`; a background thread goes on with the others. If another
        request or thread is checking, nothing is checked now.
        """
        if not stale or not self.begin_checking():
            return set()
        deadline = None if budget is None else time.monotonic() + budget
        try:
            checked = self._check_stale(settings, stale, keys, check, deadline, kept)
        except BaseException:
            self.end_checking()
            raise
        left = [run for run in stale if run not in checked]
        if left:
            # The lock passes to the thread, which lets it go when done.
            threading.Thread(
                target=self._check_in_background,
                args=(settings, left, keys, check),
                name="lstm_gates findings",
                daemon=True,
            ).start()
        else:
            self.end_checking()
        return checked

    def _check_stale(self, settings, stale, keys, check, deadline, kept):
        checked = set()
        for k in range(0, len(stale), FINDINGS_BATCH):
            batch = stale[k : k + FINDINGS_BATCH]
            found = check(batch)
            for run in batch:
                self.store(settings, run, keys[run], found[run])
                kept[run] = found[run]
            checked.update(batch)
            if deadline is not None and time.monotonic() > deadline:
                break
        return checked

    def _check_in_background(self, settings, stale, keys, check):
        try:
            self._check_stale(settings, stale, keys, check, None, {})
        except Exception:  # A run that cannot be read now stays pending; the next request tries again.
            logger.warning("LSTM Gates: checking findings failed", exc_info=True)
        finally:
            self.end_checking()
