"""What the launcher execs for a program of a backing service's group
(``python -I -m sarge.supervisord.launch --service HOME ID PROGRAM``): the server, as
the app's user, in its data folder (``var/data/APP/KIND``, given to that user, 0700),
with the path and locale of supervisord's environment, the user's ``HOME`` (the data
folder for RabbitMQ), the kind's own variables and ``SARGE_SERVICE=ID``, by which the
launcher knows what a previous run left behind (:func:`member`)."""

from __future__ import annotations

import os
import pwd
import time

from .. import ownership, privileges
from ..commands import run_as
from ..errors import ServiceError, SettingsError, UsageError
from ..users import switches
from . import kinds
from .kind import accepts
from .store import SERVICE_ID_RE, ServiceStore


def member(home, service_id: str):
    """A test for :func:`sarge.processes.reap`: the process is one of the service's (its
    id in its environment, or, as a server may write over its environment's memory
    when it sets its process title, its working folder the service's data folder)."""
    match = SERVICE_ID_RE.fullmatch(service_id)
    folder = home.service_data_dir(match.group(1), match.group(2)) if match else None

    def belongs(proc) -> bool:
        return proc.environ().get("SARGE_SERVICE") == service_id or (
            folder is not None and proc.cwd() == folder)
    return belongs


def prepare(home, service_id: str, program: str):
    """(argv, env, folder, user) of the service's ``program``; its folders made and given
    to the user. :class:`~sarge.errors.SargeError` when it cannot be run."""
    match = SERVICE_ID_RE.fullmatch(service_id)
    if match is None:
        raise UsageError(f"{service_id!r} is not a service id (svc.APP.KIND)")
    service = ServiceStore(home).get(match.group(1), match.group(2))
    if service is None:
        raise ServiceError(f"no service {service_id} in {home.path}: its record "
                           f"{home.service_record_path(service_id)} is gone")
    kind = kinds.get(service.kind)
    if program not in kind.programs:
        raise UsageError(f"{service_id} has no program {program!r}")
    user = run_as(home, home.settings, service.app)
    name = user.name if user is not None else pwd.getpwuid(os.geteuid()).pw_name
    folder = home.service_data_dir(service.app, service.kind)
    try:
        for path in (home.data_dir(service.app), folder):
            ownership.give(path, user, 0o700)
    except OSError as exc:
        raise SettingsError(f"cannot prepare {exc.filename}: {exc.strerror}") from exc
    base = user.inherit(os.environ) if switches(user) else dict(os.environ)
    env = {k: v for k, v in base.items() if not k.startswith("SUPERVISOR_")}
    if user is not None:
        env = user.env(env)
    env.update(kind.server_env(home, service, program), SARGE_SERVICE=service.id)
    argv = kind.argv(home, service, program, name)
    for port in kind.waits_for(service, program):
        wait_for(port, f"{service_id}:{program}")
    return argv, env, folder, user


def wait_for(port: int, what: str, timeout: float = 30, sleep=time.sleep) -> None:
    """Wait until 127.0.0.1:``port`` accepts connections (the program ``what`` needs it)."""
    deadline = time.monotonic() + timeout
    while not accepts(port):
        if time.monotonic() > deadline:
            raise ServiceError(f"{what}: nothing accepts connections on 127.0.0.1:{port} "
                               f"after {timeout:g}s")
        sleep(0.1)


def execute(argv, env, folder, user) -> None:
    """Become ``user`` in ``folder`` and exec the server (:class:`SettingsError` when it
    cannot)."""
    try:
        os.chdir(folder)
        privileges.become(user)
        os.execvpe(argv[0], argv, env)
    except OSError as exc:
        raise SettingsError(f"cannot run {argv[0]}: {exc.strerror}") from exc
