"""A sarge command on many hosts: ``sarge-fleet run`` and ``sarge-fleet config``.

Configuration values never go on a command line (a remote one is seen by every user
of the host in ``ps``, and Fabric's ``env=`` puts them there too): they travel as a
file, 0600 from its first byte, over SFTP into the home, read by ``bin/sarge config
NAME --from-file`` and removed.
"""

from __future__ import annotations

import os
import posixpath
import secrets
import tempfile

from ..errors import UsageError
from .parallel import each
from .remote import Remote
from .rollout import UPLOADS


def run_everywhere(fleet, hosts, args, remote=Remote, line=None) -> list:
    """``bin/sarge ARGS`` on each host at once: a list of (host, Answer or None,
    error)."""
    def one(host):
        r = remote(host, fleet.ssh)
        try:
            return r.sarge(*args, line=(lambda text: line(host.name, text)) if line else None)
        finally:
            r.close()

    return each(hosts, one)


def config_file(assignments, unset) -> str:
    """The text of a variables file: a KEY=VALUE line each, then ``-KEY`` for each
    unset; a value with a line break is refused (sarge refuses it too)."""
    lines = []
    for assignment in assignments:
        if "=" not in assignment or "\n" in assignment or "\r" in assignment:
            raise UsageError(f"not KEY=VALUE on one line: {assignment.split('=')[0]!r}")
        lines.append(assignment)
    for key in unset:
        if "=" in key or "\n" in key:
            raise UsageError(f"--unset takes a variable's name, not {key!r}")
        lines.append("-" + key)
    return "".join(line + "\n" for line in lines)


def configure_everywhere(fleet, hosts, app, assignments, unset=(), remote=Remote) -> list:
    """Set (and unset) ``app``'s variables on each host: (host, Answer or None, error)."""
    text = config_file(assignments, unset)
    fd, local = tempfile.mkstemp(prefix="sarge-fleet-config-")  # 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)

        def one(host):
            r = remote(host, fleet.ssh)
            uploads = posixpath.join(host.home, *UPLOADS)
            path = posixpath.join(uploads, f"config-{secrets.token_hex(8)}")
            try:
                r.makedirs(uploads)
                r.put(local, path, 0o600)
                return r.sarge("config", app, "--from-file", path)
            finally:
                r.remove(path)
                r.close()

        return each(hosts, one)
    finally:
        os.unlink(local)
