"""The tab's static files (the bundle `npm run build` writes), served by `/static/*`."""

import mimetypes
import os

from tensorboard import errors

STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
# Set explicitly: `mimetypes` reads the system's tables (the Windows
# registry, /etc/mime.types), which can be wrong for `.js`.
_CONTENT_TYPES = {
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".css": "text/css",
    ".map": "application/json",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".woff2": "font/woff2",
}


def read(name, static_dir=STATIC_DIR):
    """`(content, content_type)` of a file of the static folder.

    Raises:
      NotFoundError: `name` is not a file inside the static folder
        (missing, a directory, or a path that leads out of it).
    """
    root = os.path.realpath(static_dir)
    path = os.path.realpath(os.path.join(root, name)) if name and "\0" not in name else root
    if os.path.commonpath([root, path]) != root or path == root or not os.path.isfile(path):
        raise errors.NotFoundError("no static file %r" % name)
    with open(path, "rb") as f:
        content = f.read()
    extension = os.path.splitext(path)[1].lower()
    content_type = (
        _CONTENT_TYPES.get(extension) or mimetypes.guess_type(path)[0] or "application/octet-stream"
    )
    return content, content_type
