"""Files on disk: read one, or write one atomically (temporary file, fsync, rename)."""

from __future__ import annotations

import contextlib
import os


def write_file(file) -> None:
    """Write ``file`` atomically: a temporary file, fsync, then rename over the target."""
    directory = os.path.dirname(file.path)
    tmp = os.path.join(directory, f".{os.path.basename(file.path)}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, file.mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(file.text)
            f.flush()
            os.fchmod(f.fileno(), file.mode)
            os.fsync(f.fileno())
        os.replace(tmp, file.path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(directory)


def _fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_text(path: str):
    """A file's text, or None when it does not exist."""
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        return None
