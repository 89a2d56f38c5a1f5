"""The files of a backing service: its supervisord program (``etc/supervisor.d/ID.conf``,
a group of its own, started at boot) and the server's configuration
(``etc/services/ID.conf``: its password too, so 0640, root's, in the group of the
app's user who runs the server; 0600 when sarge does not run as root)."""

from __future__ import annotations

import os

from .. import render
from ..commands import module_argv
from ..files import File, write_file
from . import kinds

#: Seconds a server has to exit on SIGTERM before its group is killed (Redis writes its
#: AOF, RabbitMQ closes its database).
STOP_TIMEOUT = 60


def program_file(home, service) -> File:
    """The program file of ``service``: ``launch --service HOME ID PROGRAM`` for each
    program of its kind, in order (RabbitMQ's epmd first)."""
    kind = kinds.get(service.kind)
    programs = [
        {"name": name, "program": f"{service.id}_{name}", "priority": 100 + 10 * n,
         "command": module_argv(home.python, "sarge.supervisord.launch", "--service",
                                home.path, service.id, name),
         "log_file": home.log_path(service.id, name)}
        for n, name in enumerate(kind.programs)
    ]
    return render.service_program(home.program_path(service.id), service=service,
                                  programs=programs, directory=home.path,
                                  settings=home.settings, stop_timeout=STOP_TIMEOUT)


def config_file(home, service, user) -> File | None:
    """The server's configuration, readable by ``user`` (a RunAs, None: sarge's own)."""
    text = kinds.get(service.kind).config(home, service)
    if text is None:
        return None
    shared = user is not None and user.uid != os.geteuid()
    return File(home.service_config_path(service.id), text, mode=0o640 if shared else 0o600)


def write_config(home, file: File | None, user) -> None:
    """Write the server's configuration (root's, in the user's group when it is 0640)."""
    if file is None:
        return
    folder = home.service_configs_dir
    os.makedirs(folder, 0o711, exist_ok=True)
    os.chmod(folder, 0o711)  # the app's user reaches its own file, lists none
    write_file(file)
    if file.mode == 0o640:
        os.chown(file.path, -1, user.gid)
