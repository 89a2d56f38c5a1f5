"""One rollout of a fleet at a time: a lock file beside the fleet file (this machine's
rollouts), and a lock on the fleet's first host (everyone's)."""

from __future__ import annotations

import fcntl
import getpass
import json
import os
import posixpath
import socket
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


class HostLock:
    """``with HostLock(remote, what):`` holds the fleet's lock on the host of ``remote``
    (the fleet file's first host), so that rollouts from two machines, each with its
    own copy of the fleet file, are kept apart too: ``flock -n`` on the host's
    ``HOME/var/uploads/fleet.lock`` around a ``cat`` that reads this side's channel.
    When this process ends, however it ends, the SSH connection closes, ``cat`` sees
    the end of its input and the lock goes with it."""

    def __init__(self, remote, what: str):
        self.remote, self.what = remote, what
        self._channel = None

    def __enter__(self):
        import shlex

        home = self.remote.host.home
        folder = posixpath.join(home, "var", "uploads")
        path = posixpath.join(folder, "fleet.lock")
        who = json.dumps({"pid": os.getpid(), "user": getpass.getuser(), "what": self.what,
                          "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                          "from": socket.gethostname()})
        inner = f"printf '%s\\n' {shlex.quote(who)} > {shlex.quote(path)}.who && echo locked " \
                "&& exec cat > /dev/null"
        command = (f"mkdir -p -m 700 {shlex.quote(folder)} && exec flock -n "
                   f"{shlex.quote(path)} sh -c {shlex.quote(inner)}")
        try:
            channel = self.remote.connection().client.get_transport().open_session()
            channel.exec_command(command)
            answer = channel.makefile("r").readline()
        except Exception as exc:  # noqa: BLE001 - paramiko's and socket's: one error
            raise FleetError(f"{self.remote.host.name}: cannot take the fleet's lock there: "
                             f"{exc}") from exc
        if answer == "locked\n":
            self._channel = channel
            return self
        status = channel.recv_exit_status()
        channel.close()
        if status != 1:  # flock -n says 1 when the lock is held
            raise FleetError(f"{self.remote.host.name}: cannot take the fleet's lock in "
                             f"{path} (exit status {status}: is flock installed?)")
        held = self.remote.run(f"cat {shlex.quote(path)}.who").stdout.strip()
        try:
            data = json.loads(held)
            holder = (f"{data.get('what')} by {data.get('user')} on {data.get('from')}, pid "
                      f"{data.get('pid')}, since {data.get('since')}")
        except ValueError:
            holder = "holder unknown"
        raise RolloutLocked(f"another rollout of this fleet is running ({holder}); wait "
                            f"until it ends (its lock: {path} on {self.remote.host.name})")

    def __exit__(self, *exc):
        try:
            self._channel.shutdown_write()
            self._channel.close()
        except Exception:  # noqa: BLE001 - a connection gone takes the lock with it
            pass
        self._channel = None
