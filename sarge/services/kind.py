"""What every kind of backing service is: which Debian package and programs it needs,
the ports it takes, the programs of its supervisord group, its configuration, the
variables it gives the app's instances, how to tell it answers and how to back it up.

A kind is a value (:mod:`.redis`, :mod:`.memcached`, :mod:`.rabbitmq`); its methods
take the home's paths (a :class:`~sarge.layout.Layout`) and a service's record
(:class:`~sarge.services.store.Service`), and ``which`` (:func:`shutil.which`'s
signature) to find a program, so that a test can say one is missing.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess

from ..errors import ServiceError

#: Where Debian puts the servers (``/usr/sbin`` is not on every user's PATH).
SEARCH_PATH = os.pathsep.join(["/usr/lib/rabbitmq/bin", "/usr/sbin", "/usr/bin",
                               "/usr/local/sbin", "/usr/local/bin"])


class Kind:
    """The base of the kinds: override what differs."""

    #: The name on the command line (``service add NAME redis``), Debian's package, the
    #: programs (executables) it needs, the programs of its group in start order, the
    #: roles of the ports it takes, and where its variables rank (a later kind's win).
    name = ""
    package = ""
    executables: dict = {}
    programs = ("server",)
    roles = ("main",)
    rank = 0
    #: What a backup of it is (for ``--help`` and the docs), None when it has none.
    backup_format: str | None = None

    def roles_of(self, service) -> tuple:
        """The ports ``service`` takes (none for a server on a unix socket)."""
        return self.roles

    def executable(self, program: str, which=shutil.which) -> str:
        """The path of the executable of ``program``, or :class:`ServiceError` saying
        which package to install."""
        name = self.executables[program]
        path = which(name, path=SEARCH_PATH + os.pathsep + os.environ.get("PATH", ""))
        if path is None:
            raise ServiceError(f"{self.name} needs {name}, which is not installed here: "
                               f"install Debian's package with `apt-get install "
                               f"{self.package}`, then add the service again")
        return path

    def version(self, which=shutil.which) -> str:
        """The version of the server installed here ("7.0.15")."""
        raise NotImplementedError

    def check_version(self, wanted: str | None, which=shutil.which) -> str:
        """The installed version, when it is ``wanted`` (a prefix: "7", "7.0"); else a
        :class:`ServiceError`: the servers are Debian's, one version each."""
        found = self.version(which)
        if wanted and not (found == wanted or found.startswith(wanted.rstrip(".") + ".")):
            raise ServiceError(f"--version {wanted}: the {self.package} installed here is "
                               f"{found}; sarge runs the server of Debian's package, "
                               f"so add it without --version, or install {self.package} "
                               f"{wanted} first")
        return found

    def config(self, layout, service) -> str | None:
        """The text of the server's configuration file (``etc/services/ID.conf``), None
        when it takes none."""
        return None

    def argv(self, layout, service, program: str, user_name: str, which=shutil.which) -> list:
        """What the launcher execs for ``program`` of the service's group."""
        raise NotImplementedError

    def server_env(self, layout, service, program: str) -> dict:
        """Variables of the server's own environment (beyond the user's and the path)."""
        return {}

    def waits_for(self, service, program: str) -> tuple:
        """Ports that must accept connections before ``program`` is exec'd."""
        return ()

    def variables(self, service) -> dict:
        """The variables every instance of the app gets."""
        raise NotImplementedError

    def answers(self, service) -> bool:
        """Whether the server takes requests now."""
        raise NotImplementedError

    def reuse(self, layout, service, user, which=shutil.which) -> None:
        """Bring data a service of this app left (``service remove`` without ``--data``)
        in line with the new record (its password) once the server answers."""

    def backup(self, layout, service, user, which=shutil.which) -> bytes:
        """A consistent copy of the service's data, as bytes."""
        raise ServiceError(f"{self.name} keeps nothing worth a backup (a cache in memory "
                           "only): there is nothing to back up")

    def public(self, service) -> dict:
        """The service's variables with its password hidden, for ``service list``."""
        return {k: v.replace(service.password, "***") for k, v in self.variables(service).items()}


def version_output(argv: list, timeout: float = 10) -> str:
    """The first line a ``--version`` command prints (stdout, else stderr)."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ServiceError(f"cannot ask {argv[0]} its version: {exc}") from exc
    return (done.stdout.strip() or done.stderr.strip()).splitlines()[0] if (
        done.stdout.strip() or done.stderr.strip()) else ""


def exchange(where, message: bytes, timeout: float = 2.0, size: int = 4096) -> bytes:
    """Send ``message`` to 127.0.0.1:``where`` (a port) or to the unix socket ``where`` (a
    path) and return the first bytes of the answer."""
    if isinstance(where, str):
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.settimeout(timeout)
        try:
            conn.connect(where)
        except BaseException:
            conn.close()
            raise
    else:
        conn = socket.create_connection(("127.0.0.1", where), timeout=timeout)
    with conn:
        conn.sendall(message)
        return conn.recv(size)


def accepts(port: int, timeout: float = 1.0) -> bool:
    """Whether something accepts connections on 127.0.0.1:``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False
