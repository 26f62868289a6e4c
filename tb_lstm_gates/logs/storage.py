"""Where event files go: the file system of a log directory, and how a run stays live on object storage.

A local path goes through TensorBoard's own `gfile`. A URL (`s3://`,
`gs://`, `az://`, `abfs://`, any fsspec protocol) goes through TensorFlow's
`gfile` only when TensorFlow serves its scheme (TensorFlow 2.21 has `gs://`
but no `s3://`), else through TensorBoard's own, which reaches S3 with boto3
(endpoint from `S3_ENDPOINT`) and the rest with fsspec (s3fs, gcsfs,
adlfs, ...). A process without TensorFlow never imports it; one that has
not imported it yet imports it only when no installed client serves the
scheme.

Object stores have no append: writing an object again uploads all of it.
So a remote run is written as a sequence of event files, each uploaded
once (`RollingRecords`): the records of the steps logged during
`ROLL_SECONDS` go up together as one new object, whose name sorts after
the run's earlier ones (TensorBoard reads a run's event files in name
order). A step therefore shows in TensorBoard within `ROLL_SECONDS` plus
TensorBoard's reload interval; a killed process loses at most the steps of
its last `ROLL_SECONDS`; no step is written twice, since each record goes in
exactly one object.
"""

import atexit
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from tb_lstm_gates.logs import background

# Seconds between two uploads of a remote run; TB_LSTM_GATES_ROLL_SECONDS overrides it.
ROLL_SECONDS = 10.0

# The package that serves a scheme, where its fsspec name says less than the package's.
_CLIENTS = {
    "s3": "boto3 (or s3fs)",
    "s3a": "s3fs",
    "gs": "gcsfs",
    "gcs": "gcsfs",
    "az": "adlfs",
    "abfs": "adlfs",
}


class MissingClientError(ImportError):
    """No installed library reaches a log directory's storage; the message names the package to install."""


def scheme(path: str | os.PathLike[str]) -> str:
    """The URL scheme of `path` (`"s3"`, `"gs"`, ...), or `""` for a local path."""
    path = os.fspath(path)
    return path.partition("://")[0] if "://" in path else ""


def is_remote(path: str | os.PathLike[str]) -> bool:
    """Whether `path` is a URL of a file system that cannot append (object storage)."""
    return scheme(path) not in ("", "file")


def gfile(path: str | os.PathLike[str]) -> Any:
    """The `gfile` module that reads and writes `path`.

    Raises:
      MissingClientError: no installed library reaches `path`'s scheme;
        the message says which package to install.
    """
    from tensorboard.compat.tensorflow_stub.io import gfile as stub_gfile

    name = scheme(path)
    if not name:
        return stub_gfile
    if "tensorflow" in sys.modules and name in _tensorflow_schemes():
        return sys.modules["tensorflow"].io.gfile
    if _stub_reaches(stub_gfile, name):
        return stub_gfile
    if name in _tensorflow_schemes():
        return sys.modules["tensorflow"].io.gfile
    raise MissingClientError(
        "cannot reach %s: no installed library serves %s:// URLs; install %s "
        "(pip install %s)" % (os.fspath(path), name, _client(name), _client(name).split(" ")[0])
    )


def _tensorflow_schemes() -> set[str]:
    """The schemes TensorFlow's `gfile` serves; none without TensorFlow."""
    try:
        import tensorflow as tf
    except ImportError:
        return set()
    try:
        return set(tf.io.gfile.get_registered_schemes())
    except AttributeError:  # older TensorFlow: it knew gs:// and not s3://
        return {"", "file", "gs"}


def _stub_reaches(stub_gfile: Any, name: str) -> bool:
    """Whether TensorBoard's own `gfile` has a client for the scheme `name` installed."""
    if name == "s3" and stub_gfile.S3_ENABLED:
        return True
    if not stub_gfile.FSSPEC_ENABLED:
        return False
    import fsspec

    try:
        fsspec.get_filesystem_class(name)
    except (ImportError, ValueError):
        return False
    return True


def _client(name: str) -> str:
    """The package that serves the scheme `name`."""
    if name in _CLIENTS:
        return _CLIENTS[name]
    try:
        from fsspec.registry import known_implementations

        return known_implementations[name]["class"].split(".")[0]
    except (ImportError, KeyError):
        return "an fsspec implementation of %s://" % name


def roll_seconds() -> float:
    """Seconds between two uploads of a remote run (TB_LSTM_GATES_ROLL_SECONDS, else ROLL_SECONDS)."""
    value = os.environ.get("TB_LSTM_GATES_ROLL_SECONDS")
    if not value:
        return ROLL_SECONDS
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise ValueError("TB_LSTM_GATES_ROLL_SECONDS must be a number of seconds above 0, got %r" % value)
    return seconds


_pending: "weakref.WeakSet[RollingRecords]" = weakref.WeakSet()


@atexit.register
def _upload_pending() -> None:
    # The step a logger's thread is writing goes in the last upload.
    background.settle_all()
    for records in list(_pending):
        try:
            records.close()
        except Exception:  # noqa: S110 - the process is ending; its logger reported failures already
            pass


class RollingRecords:
    """Writes framed records to object storage as a sequence of objects, each uploaded once.

    The first record written is every object's header (TensorBoard's
    `file_version` event starts each event file). Each later record is
    buffered; the first one buffered starts a timer, and when it fires
    (after `seconds`), or on `close`, the buffered records go up as one new
    object: the first at `path`, each next one at `next_path` of the one
    before, whose name sorts after it.

    An upload that fails on the timer's thread is raised by the next
    `write`, `flush` or `close`.

    Args:
      path: the first object's path.
      frame: a callable turning one record's bytes into their TFRecord framing.
      seconds: seconds from the first buffered record to its upload
        (default: `roll_seconds()`).
    """

    def __init__(self, path: str, frame: Callable[[bytes], bytes], seconds: float | None = None) -> None:
        self._gfile = gfile(path)
        self._path = path
        self._uploaded: str | None = None  # the path of the last object uploaded
        self._frame = frame
        self._header: bytes | None = None
        self._seconds = roll_seconds() if seconds is None else seconds
        self._lock = threading.Lock()
        self._buffer: list[bytes] = []
        self._timer: threading.Timer | None = None
        self._error: Exception | None = None
        _pending.add(self)

    def write(self, data: bytes) -> None:
        framed = self._frame(data)
        with self._lock:
            self._raise_error()
            if self._header is None:
                self._header = framed
                return
            self._buffer.append(framed)
            if self._timer is None:
                self._timer = threading.Timer(self._seconds, self._upload_on_timer)
                self._timer.daemon = True
                self._timer.start()

    def flush(self) -> None:
        """Raises an earlier upload's failure; the upload itself waits for the timer."""
        with self._lock:
            self._raise_error()

    def close(self) -> None:
        """Uploads what is buffered now."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            try:
                self._upload()
            finally:
                _pending.discard(self)
            self._raise_error()

    def _raise_error(self) -> None:
        error, self._error = self._error, None
        if error is not None:
            raise error

    def _upload_on_timer(self) -> None:
        with self._lock:
            try:
                self._upload()
            except Exception as e:  # raised on the writer's thread by its next call
                self._error = e

    def _upload(self) -> None:
        self._timer = None
        if not self._buffer:
            return
        path = self._path if self._uploaded is None else next_path(self._uploaded)
        with self._gfile.GFile(path, "wb") as f:
            f.write(b"".join([self._header or b"", *self._buffer]))
        self._uploaded = path
        self._buffer = []


def next_path(path: str) -> str:
    """The path of the event file after `path` (`.../events.out.tfevents.<seconds>.<host>...`).

    The same name with its seconds raised to now, and at least one above
    `path`'s: TensorBoard reads a run's files in name order, and two files
    of one writer within a second would otherwise have one name.
    """
    directory, _, name = path.rpartition("/")
    head, _, tail = name.partition("tfevents.")
    previous, _, rest = tail.partition(".")
    seconds = max(int(time.time()), int(previous) + 1)
    return "%s/%stfevents.%010d.%s" % (directory, head, seconds, rest)
