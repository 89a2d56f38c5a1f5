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
    from .errors import SettingsError

    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        return None
    except UnicodeDecodeError as exc:
        raise SettingsError(f"{path} is damaged (not UTF-8 text); `sarge HOME repair` "
                            "rebuilds what it can, or restore it or remove it") from exc


@contextlib.contextmanager
def locked(path: str, blocking: bool = True, create: bool = True):
    """Hold an exclusive flock on the file at ``path`` (created, mode 0600, if missing).

    Without ``blocking``, raise BlockingIOError when another process holds it.
    """
    import fcntl

    fd = os.open(path, (os.O_RDWR | os.O_CREAT) if create else os.O_RDONLY, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        yield fd
    finally:
        os.close(fd)
