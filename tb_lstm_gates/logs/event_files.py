"""Event files: TFRecord framing with google-crc32c, reading them back, their names, and `gfile`.

Event files are TFRecord files of `Event` protos, framed here with
google-crc32c's compiled CRC32C (TensorBoard's pure-Python one runs at
about 1.5 MB/s, which histograms of large layers feel). `storage` picks
the file system of a path and, on object storage, uploads a run as a
sequence of event files.
"""

import itertools
import os
import socket
import struct
import time
from collections.abc import Iterator
from typing import Any

import google_crc32c
from tensorboard.compat.proto import event_pb2

from tb_lstm_gates.logs import storage

_file_ids = itertools.count()


def gfile(path: str | os.PathLike[str]) -> Any:
    """The `gfile` module that reads and writes `path` (see `storage.gfile`)."""
    return storage.gfile(path)


def _masked_crc(data):
    """TFRecord's masked CRC32C of `data`."""
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _framed(data):
    """`data` as one TFRecord: length, its CRC, data, its CRC."""
    header = struct.pack("<Q", len(data))
    return header + struct.pack("<I", _masked_crc(header)) + data + struct.pack("<I", _masked_crc(data))


class _RecordFile:
    """Writes TFRecords to a file object."""

    def __init__(self, file):
        self._file = file

    def write(self, data):
        self._file.write(_framed(data))

    def flush(self):
        self._file.flush()

    def close(self):
        self._file.close()


def read_events(path: str) -> Iterator[event_pb2.Event]:
    """The `Event`s of one event file, up to its last whole, intact record.

    Reads the framing itself, like `_RecordFile` writes it, because
    TensorBoard's readers import TensorFlow whenever it is installed.
    """
    with gfile(path).GFile(path, "rb") as f:
        data = f.read()
    offset = 0
    while offset + 12 <= len(data):
        header = data[offset : offset + 8]
        (length,) = struct.unpack("<Q", header)
        end = offset + 12 + length + 4
        if end > len(data) or struct.unpack("<I", data[offset + 8 : offset + 12])[0] != _masked_crc(header):
            return
        record = data[offset + 12 : end - 4]
        if struct.unpack("<I", data[end - 4 : end])[0] != _masked_crc(record):
            return
        yield event_pb2.Event.FromString(record)
        offset = end


def open_records(path):
    """A TFRecord writer with `write(bytes)`, `flush()` and `close()`; on object storage, one that rolls."""
    if storage.is_remote(path):
        return storage.RollingRecords(path, _framed)
    return _RecordFile(gfile(path).GFile(path, "wb"))


def event_file_name(filename_suffix=""):
    """A new event file name in TensorBoard's pattern, unique in this process."""
    return "events.out.tfevents.%010d.%s.%d.%d%s" % (
        time.time(),
        socket.gethostname(),
        os.getpid(),
        next(_file_ids),
        filename_suffix,
    )
