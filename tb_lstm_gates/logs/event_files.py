"""Event files: TFRecord framing with google-crc32c, reading them back, their names, and `gfile`.

Event files are TFRecord files of `Event` protos, framed here with
google-crc32c's compiled CRC32C (TensorBoard's pure-Python one runs at
about 1.5 MB/s, which histograms of large layers feel). Files go through
TensorBoard's own `gfile` (local, S3, fsspec), or TensorFlow's for a
remote path when TensorFlow is installed, as remote log directories always
needed it.
"""

import importlib.util
import itertools
import os
import socket
import struct
import time

import google_crc32c
from tensorboard.compat.proto import event_pb2

_file_ids = itertools.count()


def gfile(path):
    """The `gfile` module for `path`: TensorFlow's for a remote path when installed, else TensorBoard's."""
    if "://" in os.fspath(path) and importlib.util.find_spec("tensorflow") is not None:
        import tensorflow as tf

        return tf.io.gfile
    from tensorboard.compat.tensorflow_stub.io import gfile as stub_gfile

    return stub_gfile


def _masked_crc(data):
    """TFRecord's masked CRC32C of `data`."""
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


class _RecordFile:
    """Writes TFRecords (length, its CRC, data, its CRC) to a file object."""

    def __init__(self, file):
        self._file = file

    def write(self, data):
        header = struct.pack("<Q", len(data))
        self._file.write(
            header + struct.pack("<I", _masked_crc(header)) + data + struct.pack("<I", _masked_crc(data))
        )

    def flush(self):
        self._file.flush()

    def close(self):
        self._file.close()


def read_events(path):
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
    """A TFRecord writer with `write(bytes)`, `flush()` and `close()`."""
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
