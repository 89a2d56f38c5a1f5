"""Memcached: ``memcached`` on the service's port of 127.0.0.1 (TCP only, no UDP), or
on a unix socket in its data folder (``service add --socket``), its memory capped
(``-m``, ``service add --memory``, 64 MiB by default). It keeps a cache in memory
alone: nothing to back up, nothing that outlives a restart.

Memcached has no password (SASL needs a build Debian's lacks): any local user can
reach a port of 127.0.0.1, while the socket, in a folder only the app's user can
enter, is the app's alone (docs: Backing services).
"""

from __future__ import annotations

import shutil

from .kind import Kind, exchange, version_output

#: The memory cap when ``--memory`` is not given, in MiB.
DEFAULT_MEMORY = 64


class Memcached(Kind):
    name = "memcached"
    package = "memcached"
    executables = {"server": "memcached"}
    rank = 2

    def version(self, which=shutil.which) -> str:
        line = version_output([self.executable("server", which), "-V"])
        return line.split()[-1] if line else line

    def roles_of(self, service) -> tuple:
        return () if service.socket else self.roles

    def argv(self, layout, service, program, user_name, which=shutil.which) -> list:
        # -s: the socket alone (no TCP), only its user may connect (-a 0700); -u:
        # memcached refuses to run as root without it, and ignores it otherwise
        where = (["-s", service.socket, "-a", "0700"] if service.socket else
                 ["-l", "127.0.0.1", "-p", str(service.port)])
        return [self.executable("server", which), *where, "-U", "0", "-m",
                str(service.memory or DEFAULT_MEMORY), "-u", user_name]

    def variables(self, service) -> dict:
        return {"MEMCACHED_SERVERS": service.address}

    def answers(self, service) -> bool:
        try:
            return exchange(service.socket or service.port,
                            b"version\r\n").startswith(b"VERSION ")
        except OSError:
            return False

    def public(self, service) -> dict:
        return self.variables(service)
