"""Ports of a home: each instance gets one of the range, unique in the home.

``var/ports/PORT`` is a symbolic link naming the instance that holds PORT:
creating it is atomic (it fails if the port is taken), listing the folder
tells the ports in use without reading any instance's record, and a link
whose instance has no record (an interrupted ``new``) is reclaimed when the
range runs out.
"""

from __future__ import annotations

import contextlib
import os
import socket

from .errors import PortsExhausted


def can_bind(host: str, port: int) -> bool:
    """True when nothing on this machine listens on ``host``:``port`` (SO_REUSEADDR, as
    servers set it: a port that only has connections in TIME_WAIT counts as free)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def port_is_free(port: int) -> bool:
    """True when nothing on this machine listens on 127.0.0.1:``port``."""
    return can_bind("127.0.0.1", port)


class Ports:
    """The ports of ``folder`` (``var/ports``) in ``first``..``last``.

    ``is_free(port)`` checks that nothing on the machine listens there;
    ``owner_exists(instance_id)`` tells a live allocation from a leftover.
    """

    def __init__(self, folder, first, last, *, is_free=None, owner_exists=lambda _: True,
                 settings_path="etc/sarge.toml"):
        self.folder = folder
        self.first = first
        self.last = last
        self.is_free = is_free or port_is_free
        self.owner_exists = owner_exists
        self.settings_path = settings_path

    def allocate(self, instance_id) -> int:
        """The lowest free port, now held by ``instance_id``."""
        for sweep in (False, True):
            if sweep:
                self.sweep()
            taken = set(os.listdir(self.folder))
            for port in range(self.first, self.last + 1):
                if str(port) in taken or not self.is_free(port):
                    continue
                try:
                    os.symlink(instance_id, os.path.join(self.folder, str(port)))
                except FileExistsError:
                    continue
                return port
        raise PortsExhausted(
            f"no free port left in {self.first}-{self.last}; destroy instances or widen "
            f"[ports] in {self.settings_path}"
        )

    def release(self, port, instance_id) -> None:
        """Free ``port`` if ``instance_id`` holds it."""
        path = os.path.join(self.folder, str(port))
        with contextlib.suppress(OSError):
            if os.readlink(path) == instance_id:
                os.unlink(path)

    def sweep(self) -> None:
        """Release the ports whose instance has no record."""
        for name in os.listdir(self.folder):
            try:
                owner = os.readlink(os.path.join(self.folder, name))
            except OSError:
                continue
            if not self.owner_exists(owner):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(self.folder, name))
