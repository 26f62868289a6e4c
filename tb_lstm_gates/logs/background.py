"""Runs the logging work of each step on one background thread, as asynchronous checkpointers do.

Orbax's async checkpointer and `torch.distributed.checkpoint.async_save`
block training only for a copy of the state to host memory and write it
from another thread. The gate loggers do the same: the training thread
takes a snapshot of the recurrent weights (numpy copies) and whatever
needs the live model (the probe, its gradients, penalties read from the
model), then hands a job to `BackgroundWriter`; statistics, histograms,
the spectral norm, summary encoding and file writing run on the writer's
thread while training goes on (numpy releases the GIL in its loops).

The promises of the synchronous loggers hold:

- At most one step is in flight. A step handed over while the previous
  one is still being written waits for it first, so memory stays at one
  snapshot beside the previous step's weights (which `update_ratio` needs),
  and a SIGKILL loses at most the step in flight: each step is flushed as
  it is written.
- Steps are written in the order they were handed over, each once.
- A failure on the writer's thread is raised on the training thread by the
  next `submit` or by `wait`, so the caller's `guard.FailureGuard` turns it
  into one warning, or raises it under `strict=True`; the steps after a
  failed one are not written.
- `wait` returns once every step handed over is on disk; the loggers call
  it in `on_train_end` and `close`, and `reader.load` waits the same way
  (`settle_all`), so reading right after logging sees the step.

The thread stays up between steps, so handing a step over costs a
notification, not a thread start (1.4 ms with its GIL handovers); it ends
after `IDLE_SECONDS` without work. It is a daemon thread, and an `atexit`
handler waits for the step in flight, so a process that exits without
closing its logger still writes its last step.
"""

import atexit
import threading
import weakref
from collections.abc import Callable
from typing import Any

THREAD_NAME = "tb-lstm-gates writer"
IDLE_SECONDS = 30

_writers: "weakref.WeakSet[BackgroundWriter]" = weakref.WeakSet()


@atexit.register
def _finish_steps_in_flight() -> None:
    for writer in list(_writers):
        try:
            writer.wait()
        except Exception:  # noqa: S110 - the process is ending; its logger already warned or raised once
            pass


def settle_all() -> None:
    """Waits until every writer of this process has written the step it was handed.

    `reader.load` calls it first, so a `load()` right after `log()` sees
    that step. A failed job's error stays for its logger's next `submit`
    or `wait`, where the logger's failure guard reports it.
    """
    for writer in list(_writers):
        writer.settle()


class BackgroundWriter:
    """Runs jobs one at a time, in order, on a background thread; at most one in flight."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._job: Callable[[], object] | None = None  # the job handed over and not yet finished
        self._error: BaseException | None = None
        self._serving = False  # whether the thread is up
        _writers.add(self)

    def submit(self, job: Callable[[], object]) -> None:
        """Hands `job` (a callable) to the writer's thread; waits first for the job in flight.

        Raises:
          the exception of an earlier job, once; `job` is then not run.
        """
        with self._changed:
            self._wait_locked()
            self._job = job
            if not self._serving:
                self._serving = True
                threading.Thread(target=self._serve, name=THREAD_NAME, daemon=True).start()
            self._changed.notify_all()

    def wait(self) -> None:
        """Waits until the job in flight (if any) is done.

        Raises:
          the exception of a job that failed since the last `submit` or `wait`.
        """
        with self._changed:
            self._wait_locked()

    def settle(self) -> None:
        """Waits until the job in flight (if any) is done; its error, if any, is left for `submit` or `wait`."""
        with self._changed:
            while self._job is not None:
                self._changed.wait()

    def _wait_locked(self) -> None:
        while self._job is not None:
            self._changed.wait()
        error, self._error = self._error, None
        if error is not None:
            raise error

    def _serve(self) -> None:
        while True:
            with self._changed:
                if self._job is None and not self._changed.wait_for(
                    lambda: self._job is not None, IDLE_SECONDS
                ):
                    self._serving = False
                    return
                job = self._job
            # wait_for returned True: a job was handed over.
            assert job is not None
            error: BaseException | None = None
            try:
                job()
            except BaseException as e:  # raised again on the training thread
                error = e
            with self._changed:
                self._error = error
                self._job = None
                self._changed.notify_all()


class StepRecorder:
    """Stands in for a `summary.GateSummaryWriter` on the training thread.

    What must read the live model (the probe, penalties) writes here; its
    `write_*` calls are replayed on the writer's thread, into the step being
    assembled there, in the order they were made.
    """

    def __init__(self) -> None:
        self._calls: list[tuple[str, tuple[Any, ...]]] = []

    def __getattr__(self, name: str) -> Callable[..., None]:
        if not name.startswith("write_"):
            raise AttributeError(name)
        return lambda *args: self._calls.append((name, args))

    def replay(self, writer: Any) -> None:
        for name, args in self._calls:
            getattr(writer, name)(*args)
