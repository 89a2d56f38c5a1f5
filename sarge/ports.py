"""Ports of a home: each instance gets one of the range, unique in the home.

``var/ports/PORT`` is a symbolic link naming the instance that holds PORT (the
folder is private: a local user who knew the next port could bind it first):
creating it is atomic (it fails if the port is taken), listing the folder
tells the ports in use without reading any instance's record, and a link
whose instance has no record (an interrupted ``new``) is reclaimed when the
range runs out.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import ipaddress
import os
import pwd
import socket
import sys

from . import sockdiag
from .errors import PortsExhausted, PortTaken, UsageError


def _bind_error(family, address) -> int | None:
    """The errno of binding a TCP socket to ``address`` (SO_REUSEADDR, as servers set it:
    a port that only has connections in TIME_WAIT counts as free), or None."""
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(address)
        except OSError as exc:
            return exc.errno
    return None


def can_bind(host: str, port: int) -> bool:
    """Whether a front-end can listen on ``--listen host:port``: True when nothing on this
    machine listens there, False when something does. A host name counts for each
    address it resolves to (nginx listens on each).

    :class:`~sarge.errors.UsageError` when no program could listen there: ``host`` does
    not resolve, or is not an address of this machine, or the port is below 1024 and
    this user is not root.
    """
    where = f"--listen {f'[{host}]' if ':' in host else host}:{port}"
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UsageError(f"{where}: {host} does not resolve ({exc.strerror}); give an "
                         "address of this machine, or a name /etc/hosts or DNS knows") from None
    for family, _, _, _, address in dict.fromkeys(addresses):
        error = _bind_error(family, address)
        if error == errno.EADDRNOTAVAIL:
            named = host if address[0] == host else f"{host} ({address[0]})"
            raise UsageError(f"{where}: {named} is not an address of this machine "
                             "(`ip address` lists them; 0.0.0.0 is all of them)")
        if error == errno.EACCES:
            raise UsageError(f"{where}: this user may not listen on port {port} (below "
                             "1024: root's)")
        if error == errno.EADDRINUSE:
            return False
        if error is not None:
            raise OSError(error, f"{where}: cannot listen there ({os.strerror(error)})")
    return True


def port_is_free(port: int) -> bool:
    """True when nothing on this machine listens on 127.0.0.1:``port``."""
    return _bind_error(socket.AF_INET, ("127.0.0.1", port)) is None


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
        if os.stat(self.folder).st_mode & 0o077:  # a home made before it was private
            os.chmod(self.folder, 0o700)
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

    def release_all(self, instance_id) -> None:
        """Free every port ``instance_id`` holds."""
        for name in os.listdir(self.folder):
            self.release(name, instance_id)

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


# -- who listens on a port -------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Listener:
    """A TCP socket listening on this machine: its address, port, owner's uid and inode."""

    address: str
    port: int
    uid: int
    inode: int


def _address(text: str) -> str:
    """An address of /proc/net/tcp (hex, each 32-bit word in the host's byte order)."""
    raw = bytes.fromhex(text)
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4)) \
        if sys.byteorder == "little" else raw
    address = ipaddress.ip_address(words)
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1: IPv4 after all
    return str(mapped or address)


#: The kernel's tables of TCP sockets, read when netlink cannot be asked.
PROC_TABLES = ("/proc/net/tcp", "/proc/net/tcp6")


def listeners(port: int, tables=None) -> list:
    """Every TCP socket listening on ``port``, every user's, with the uid and inode of
    each: asked of the kernel over netlink (:mod:`sarge.sockdiag`), else read from its
    ``tables`` (default :data:`PROC_TABLES`; tests pass them to compare)."""
    return [li for li in all_listeners(tables) if li.port == port]


def all_listeners(tables=None, ask=sockdiag.listening) -> list:
    """Every TCP socket listening on this machine (:func:`listeners`, any port); ``ask``
    asks netlink (tests pass one that fails)."""
    if tables is None:
        try:
            return [Listener(*found) for found in ask()]
        except OSError:  # no NETLINK_SOCK_DIAG here (a kernel, a sandbox): /proc
            tables = PROC_TABLES
    found = []
    for table in tables:
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except FileNotFoundError:  # no IPv6
            continue
        for row in rows:
            fields = row.split()
            if len(fields) < 10 or fields[3] != "0A":  # 0A: LISTEN
                continue
            address, _, hex_port = fields[1].partition(":")
            found.append(Listener(_address(address), int(hex_port, 16), int(fields[7]),
                                  int(fields[9])))
    return found


def still_listening(pid: int) -> bool:
    """Whether the process ``pid`` holds a listening TCP socket (False once it is gone or
    not ours to look at)."""
    held = socket_inodes([pid])
    return bool(held) and any(li.inode in held for li in all_listeners())


#: The addresses a connection to 127.0.0.1 reaches when something listens there.
#: (A socket on [::] that takes no IPv4 counts too: a refusal in doubt, never a miss.)
LOOPBACK_REACHED = {"127.0.0.1", "0.0.0.0", "::"}


def socket_inodes(pids) -> set:
    """The inodes of the sockets that the processes ``pids`` hold open."""
    inodes = set()
    for pid in pids:
        try:
            names = os.listdir(f"/proc/{pid}/fd")
        except OSError:  # gone, or not ours to look at
            continue
        for name in names:
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{name}")
                if target.startswith("socket:["):
                    inodes.add(int(target[8:-1]))
    return inodes


def check_holder(port: int, pids, owner: str, host: str = "127.0.0.1") -> None:
    """Refuse (:class:`~sarge.errors.PortTaken`) unless what answers on ``host``:``port``
    is the process tree ``pids`` of ``owner`` (an instance, nginx): a local user who
    bound the port first would otherwise get the traffic (and its Authorization
    headers), and pass the health check."""
    addresses = LOOPBACK_REACHED if host in LOOPBACK_REACHED else {host, "0.0.0.0", "::"}
    reached = [li for li in listeners(port) if li.address in addresses]
    ours = socket_inodes(pids)
    foreign = [li for li in reached if li.inode not in ours]
    if foreign:
        holder, program = describe_holder(foreign[0])
        raise PortTaken(f"port {port} is held by {holder}, not by "
                        f"{owner}: another program took it. Stop that program (or give "
                        f"it another port); sarge sends {owner} no traffic meanwhile",
                        uid=foreign[0].uid, program=program)
    if not reached:
        raise PortTaken(f"nothing listens on {host}:{port}, where {owner} should")


def check_unix_holder(path: str, pids, owner: str) -> None:
    """As :func:`check_holder`, for the unix socket at ``path``: every socket listening
    there (``/proc/net/unix``) must be one of the process tree ``pids``."""
    listening = []
    with open("/proc/net/unix") as f:
        for row in f.read().splitlines()[1:]:
            fields = row.split(None, 7)
            # Flags 00010000: accepting connections (listening)
            if len(fields) == 8 and fields[7] == path and int(fields[3], 16) & 0x10000:
                listening.append(int(fields[6]))
    ours = socket_inodes(pids)
    if not listening:
        raise PortTaken(f"nothing listens on {path}, where {owner} should")
    if any(inode not in ours for inode in listening):
        raise PortTaken(f"{path} is held by a process that is not {owner}'s")


def describe_holder(listener: Listener) -> tuple:
    """("pid 123 (user mallory, program nc)", "nc"), as far as this user may see (the
    program None when it cannot)."""
    import psutil

    try:
        user = pwd.getpwuid(listener.uid).pw_name
    except KeyError:
        user = f"uid {listener.uid}"
    for pid in psutil.pids():
        if listener.inode in socket_inodes([pid]):
            try:
                program = psutil.Process(pid).name()
            except psutil.Error:
                break
            return f"pid {pid} (user {user}, program {program})", program
    return f"a process of user {user}", None
