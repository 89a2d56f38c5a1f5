"""One rollout of a fleet at a time: a lock file beside the fleet file."""

from __future__ import annotations

import fcntl
import getpass
import json
import os
import time

from ..errors import FleetError, RolloutLocked


class FleetLock:
    """``with FleetLock(path, what):`` holds the fleet's lock or raises
    :class:`~sarge.errors.RolloutLocked` naming who holds it. The kernel lets it go when
    its process ends, however it ends; the file stays, saying who held it last."""

    def __init__(self, path: str, what: str):
        self.path, self.what = path, what
        self._fd = None

    def __enter__(self):
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise FleetError(f"cannot open the fleet's lock {self.path}: {exc.strerror}") \
                from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(fd)
            os.close(fd)
            raise RolloutLocked(
                f"another rollout of this fleet is running ({holder}); wait until it ends "
                f"(its lock: {self.path})") from None
        text = json.dumps({"pid": os.getpid(), "user": getpass.getuser(), "what": self.what,
                           "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        os.ftruncate(fd, 0)
        os.pwrite(fd, text.encode() + b"\n", 0)
        self._fd = fd
        return self

    def __exit__(self, *exc):
        os.close(self._fd)  # and the lock with it
        self._fd = None


def _read(fd) -> str:
    try:
        data = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return (f"{data.get('what', '?')} by {data.get('user', '?')}, pid {data.get('pid')}, "
                f"since {data.get('since', '?')}")
    except (OSError, ValueError, AttributeError):
        return "holder unknown"
